//! The supervisor's own lines in the platform's output.

/// Prints `[up] ...` like every line of the platform's output.
pub fn say(msg: &str) {
    println!("[up] {msg}");
}
