//! What a viewer request leaves behind when its pool goes (the drop of its
//! [`Viewer`]): its name lookups are cancelled, it leaves the lists it
//! waits in, and the requests waiting for work it led are woken.

use crate::coalesce;
use crate::collapse;
use crate::state::{State, Viewer};

impl Drop for Viewer {
    fn drop(&mut self) {
        if let Some(names) = &self.names {
            names.cancel();
        }
        collapse::on_free(&self.collapse, self.r);
        match self.state {
            State::Waiting => coalesce::leave(&self.name, self.r),
            // The request went away with its lookup unfinished: let the
            // waiters decide again (one of them leads a new lookup).
            State::Leading | State::Probing => coalesce::wake(&self.name, None),
            _ => {}
        }
    }
}
