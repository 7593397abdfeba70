//! The shared-memory route cache of `edge_router_zone`: stream name → encoded
//! [`Route`], in a red-black tree allocated from the zone's slab pool and
//! guarded by a reader-writer spinlock shared by all worker processes.

use core::ffi::c_void;

use edge_router_policy::{Route, RouteKind, Timing};
use ngx::collections::RbTreeMap;
use ngx::core::{NgxString, SlabPool, Status};
use ngx::ffi::{ngx_int_t, ngx_shm_zone_t};
use ngx::sync::RwLock;

type Map = RbTreeMap<NgxString<SlabPool>, NgxString<SlabPool>, SlabPool>;
type Shared = RwLock<Map>;

/// The zone's shared structure, created on first use of a fresh zone and
/// found again through the slab pool's `data` pointer after a reload.
fn shared(zone: &ngx_shm_zone_t) -> Option<&'static Shared> {
    // SAFETY: the zone is a slab-managed shared zone registered by this module.
    let mut alloc = unsafe { SlabPool::from_shm_zone(zone) }?;
    if alloc.as_mut().data.is_null() {
        let map = Map::try_new_in(alloc.clone()).ok()?;
        let lock = RwLock::new(map);
        let p = ngx::allocator::allocate(lock, &alloc).ok()?;
        alloc.as_mut().data = p.as_ptr().cast();
    }
    // SAFETY: `data` points at the `Shared` allocated above (or by the
    // previous configuration cycle, with the same layout).
    unsafe { alloc.as_ref().data.cast::<Shared>().as_ref() }
}

/// `shm_zone->init`.
pub unsafe extern "C" fn init_zone(zone: *mut ngx_shm_zone_t, _data: *mut c_void) -> ngx_int_t {
    crate::ffi::guard(Status::NGX_ERROR.into(), || {
        // SAFETY: nginx passes the zone being initialized.
        match shared(unsafe { &*zone }) {
            Some(_) => Status::NGX_OK.into(),
            None => Status::NGX_ERROR.into(),
        }
    })
}

/// A handle to the cache of one zone.
pub struct Cache {
    zone: *mut ngx_shm_zone_t,
}

/// Why a route could not be stored.
pub enum StoreError {
    NoZone,
    Full,
}

impl Cache {
    pub fn new(zone: *mut ngx_shm_zone_t) -> Cache {
        Cache { zone }
    }

    fn map(&self) -> Option<&'static Shared> {
        // SAFETY: the zone pointer comes from the configuration and lives as
        // long as the cycle.
        shared(unsafe { self.zone.as_ref()? })
    }

    pub fn get(&self, name: &[u8]) -> Option<Route> {
        let map = self.map()?;
        let guard = map.read();
        let v = guard.get(ngx::core::NgxStr::from_bytes(name))?;
        Route::decode(v.as_bytes())
    }

    /// Stores `route` for `name`. When the zone is full, expired entries are
    /// dropped first; if that is not enough, the whole cache is cleared.
    pub fn put(&self, name: &[u8], route: &Route, t: &Timing) -> Result<(), StoreError> {
        let map = self.map().ok_or(StoreError::NoZone)?;
        // SAFETY: see `map`.
        let alloc = unsafe { SlabPool::from_shm_zone(&*self.zone) }.ok_or(StoreError::NoZone)?;
        let value = route.encode();
        let mut guard = map.write();
        let _ = guard.remove(ngx::core::NgxStr::from_bytes(name));
        for attempt in 0..3 {
            match attempt {
                1 => evict_expired(&mut guard, crate::ffi::now_ms(), t),
                2 => guard.clear(),
                _ => {}
            }
            let (Ok(k), Ok(v)) = (
                NgxString::try_from_bytes_in(name, alloc.clone()),
                NgxString::try_from_bytes_in(value.as_bytes(), alloc.clone()),
            ) else {
                continue;
            };
            if guard.try_insert(k, v).is_ok() {
                return Ok(());
            }
        }
        Err(StoreError::Full)
    }
}

fn evict_expired(map: &mut Map, now: u64, t: &Timing) {
    let dead: Vec<Vec<u8>> = map
        .iter()
        .filter(|(_, v)| match Route::decode(v.as_bytes()) {
            Some(r) => {
                let age = now.saturating_sub(r.fetched_ms);
                match r.kind {
                    RouteKind::Found => age >= t.stale_ms,
                    RouteKind::NotFound => age >= t.negative_ms,
                }
            }
            None => true,
        })
        .map(|(k, _)| k.as_bytes().to_vec())
        .collect();
    for k in dead {
        let _ = map.remove(ngx::core::NgxStr::from_bytes(&k));
    }
}
