//! Waiting for a condition up to a deadline (never sleeping for a fixed
//! time and then asserting): the condition is polled, first often, then
//! every 25 ms at most.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// Polls `f` until it gives a value; panics naming `what` after `limit`.
pub fn until<T>(limit: Duration, what: impl Display, f: impl FnMut() -> Option<T>) -> T {
    until_explained(limit, f, || format!("{what}"))
}

/// [`until`] for a yes/no condition.
pub fn until_true(limit: Duration, what: impl Display, mut f: impl FnMut() -> bool) {
    until(limit, what, || f().then_some(()))
}

/// [`until`] whose panic message is made only on timeout (a process's log,
/// the last value seen).
pub fn until_explained<T>(
    limit: Duration,
    mut f: impl FnMut() -> Option<T>,
    explain: impl FnOnce() -> String,
) -> T {
    let end = Instant::now() + limit;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= end {
            panic!("timed out after {limit:?} waiting for {}", explain());
        }
        std::thread::sleep(pause.min(end.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_value_and_names_what_timed_out() {
        let mut n = 0;
        assert_eq!(
            until(Duration::from_secs(5), "n to reach 3", || {
                n += 1;
                (n == 3).then_some(n)
            }),
            3
        );
        let err = std::panic::catch_unwind(|| {
            until_true(Duration::from_millis(30), "never", || false);
        })
        .unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("waiting for never"), "{msg}");
    }
}
