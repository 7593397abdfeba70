//! What a fault did, as users saw it, and the table of a run.

use std::fmt::Write as _;
use std::time::Duration;

#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub fault: String,
    /// The node it hit (the Redis master is found at the time).
    pub node: String,
    pub hold: Duration,
    /// Per stream (golive, second): requests no edge answered, requests a
    /// second edge answered, the longest time a viewer's live end stood
    /// still.
    pub errors: [usize; 2],
    pub retried: usize,
    pub stall: [Duration; 2],
    /// From the fault's start until every viewer saw a new segment.
    pub viewers_after: Option<Duration>,
    /// From the fault's start until a new publish was accepted, and how
    /// many attempts were refused meanwhile.
    pub publish_after: Option<Duration>,
    pub refused: usize,
    /// Until the node did its job again: from the fault's heal, or from its
    /// start for a crashed node podman restarts by itself.
    pub node_back_after: Option<Duration>,
    pub reconnects: usize,
    pub notes: Vec<String>,
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("never".into(), |d| format!("{:.1}", d.as_secs_f64()))
}

pub fn table(outcomes: &[Outcome]) -> String {
    let mut s = String::from(
        "| fault | node | held s | viewer errors (golive/second) | answered by another edge | \
         longest stall s (golive/second) | all viewers advancing after s | \
         new publish accepted after s (refused) | node back after s | encoder reconnects |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for o in outcomes {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {}/{} | {} | {:.1}/{:.1} | {} | {} ({}) | {} | {} |",
            o.fault,
            o.node,
            o.hold.as_secs(),
            o.errors[0],
            o.errors[1],
            o.retried,
            o.stall[0].as_secs_f64(),
            o.stall[1].as_secs_f64(),
            secs(o.viewers_after),
            secs(o.publish_after),
            o.refused,
            if o.node.is_empty() || o.node == "-" {
                "-".into()
            } else {
                secs(o.node_back_after)
            },
            o.reconnects,
        );
    }
    for o in outcomes.iter().filter(|o| !o.notes.is_empty()) {
        let _ = writeln!(s, "\n{}: {}", o.fault, o.notes.join("; "));
    }
    s
}
