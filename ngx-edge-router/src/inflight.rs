//! The worker's API subrequests and origin probes in flight, bounded by
//! `edge_router_lookups`: each holds an [`InFlight`] token while it lives.

use std::cell::Cell;

thread_local! {
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
}

/// One subrequest in flight; counted until it is dropped (with the
/// subrequest's state, when the request pool goes).
pub struct InFlight(());

impl InFlight {
    pub fn start() -> InFlight {
        IN_FLIGHT.with(|c| c.set(c.get() + 1));
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.with(|c| c.set(c.get().saturating_sub(1)));
    }
}

/// Subrequests in flight in this worker.
pub fn count() -> usize {
    IN_FLIGHT.with(Cell::get)
}
