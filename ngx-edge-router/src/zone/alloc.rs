//! The zone's allocator: the slab pool, used with its mutex held.

use core::alloc::Layout;
use core::ptr::NonNull;

use ngx::allocator::{AllocError, Allocator};
use ngx::ffi::{ngx_slab_alloc_locked, ngx_slab_free_locked, ngx_slab_pool_t};

/// Allocates from the zone's slab pool; only used while `Locked` (mod.rs)
/// holds the pool's mutex, hence the `_locked` slab functions.
#[derive(Clone)]
pub(super) struct ShmAlloc(pub(super) NonNull<ngx_slab_pool_t>);

// SAFETY: memory comes from the slab pool, which stays mapped for the whole
// life of the worker; every allocation and free happens with the pool's
// mutex held (the only way to reach a `ShmAlloc` is through `Locked`).
unsafe impl Allocator for ShmAlloc {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let size = layout.size().max(layout.align()).max(1);
        // SAFETY: the pool is valid and locked by the caller (see above).
        let p = unsafe { ngx_slab_alloc_locked(self.0.as_ptr(), size) };
        let p = NonNull::new(p.cast::<u8>()).ok_or(AllocError)?;
        if p.align_offset(layout.align()) != 0 {
            // SAFETY: `p` was just allocated from this pool.
            unsafe { ngx_slab_free_locked(self.0.as_ptr(), p.as_ptr().cast()) };
            return Err(AllocError);
        }
        Ok(NonNull::slice_from_raw_parts(p, layout.size()))
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, _layout: Layout) {
        // SAFETY: `ptr` came from `allocate` on this pool, which is locked.
        unsafe { ngx_slab_free_locked(self.0.as_ptr(), ptr.as_ptr().cast()) }
    }
}
