//! Each worker's decoded copies of the routes it served last. A route is
//! decoded (and its origins parsed) when the zone's copy changes, not on
//! every request: requests compare the zone's encoded bytes with the copy's
//! and share the decoded route when they match. Bounded: a worker that
//! holds too many copies drops them all and starts over.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use edge_router_policy::Prepared;
use foldhash::fast::RandomState;

/// At most this many routes per worker (a few hundred bytes each).
const MAX_ROUTES: usize = 4096;

struct Copy {
    encoded: Box<[u8]>,
    prepared: Rc<Prepared>,
}

thread_local! {
    // nginx workers run one thread: this is the worker's own map.
    static ROUTES: RefCell<HashMap<Box<[u8]>, Copy, RandomState>> = RefCell::default();
}

/// The decoded form of `encoded`, the route the zone holds for `name` now;
/// `None` if it does not decode.
pub fn prepared(name: &[u8], encoded: &[u8]) -> Option<Rc<Prepared>> {
    ROUTES.with(|routes| {
        let mut routes = routes.borrow_mut();
        if let Some(c) = routes.get(name) {
            if *c.encoded == *encoded {
                return Some(Rc::clone(&c.prepared));
            }
        }
        let prepared = Rc::new(Prepared::decode(encoded)?);
        if routes.len() >= MAX_ROUTES && !routes.contains_key(name) {
            routes.clear();
        }
        routes.insert(
            name.into(),
            Copy {
                encoded: encoded.into(),
                prepared: Rc::clone(&prepared),
            },
        );
        Some(prepared)
    })
}
