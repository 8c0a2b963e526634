//! rp.wasm's heap: an arena that rp.js empties before every export call.
//! Nothing lives in wasm between calls (`exports` is stateless and std keeps
//! no heap data on wasm32-unknown-unknown), so a call can allocate by bumping
//! a pointer and the next call starts again from the bottom. Freeing does
//! nothing, so every `drop` compiles to nothing (−0.75 KB gzip against
//! freeing the newest block): a call's temporary strings stay until the next
//! reset, a few times the size of its arguments. Growing the newest block
//! happens in place, so a growing result does not pile up. dlmalloc (Rust's default on wasm32)
//! costs ~4 KB of the download for generality the tracker does not need.
//! Memory is never returned to the browser (wasm cannot shrink memory).
//! Single-threaded by construction: wasm32 without the atomics feature has
//! one thread.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::ptr::null_mut;

const PAGE: usize = 65536;

pub struct Arena {
    /// Where the arena starts (the end of the module's initial memory; 0 until first use).
    base: Cell<usize>,
    /// The first free byte.
    top: Cell<usize>,
}

// SAFETY: wasm32-unknown-unknown without atomics runs one thread; the arena is
// never touched concurrently.
unsafe impl Sync for Arena {}

impl Arena {
    pub const fn new() -> Arena {
        Arena { base: Cell::new(0), top: Cell::new(0) }
    }

    /// Forgets every allocation.
    ///
    /// # Safety
    /// No allocation made so far may be used (or freed) afterwards.
    pub unsafe fn reset(&self) {
        self.top.set(self.base.get());
    }

    /// Makes `[start, start + size)` the newest block: memory grows as
    /// needed; null when it cannot.
    fn claim(&self, start: usize, size: usize) -> *mut u8 {
        let Some(stop) = start.checked_add(size) else { return null_mut() };
        let end = core::arch::wasm32::memory_size(0) * PAGE;
        if stop > end && core::arch::wasm32::memory_grow(0, (stop - end).div_ceil(PAGE)) == usize::MAX {
            return null_mut();
        }
        self.top.set(stop);
        start as *mut u8
    }
}

unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.base.get() == 0 {
            let start = core::arch::wasm32::memory_size(0) * PAGE;
            self.base.set(start);
            self.top.set(start);
        }
        self.claim((self.top.get() + layout.align() - 1) & !(layout.align() - 1), layout.size())
    }

    /// Nothing: the block waits for the next reset.
    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize;
        if start + layout.size() == self.top.get() {
            // The newest block grows (or shrinks) where it is.
            return self.claim(start, new_size);
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `layout.align()` is a valid alignment and the caller keeps `new_size` in range.
        let new_ptr = unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
        if !new_ptr.is_null() {
            // SAFETY: both blocks are live and distinct (the new one lies above the old).
            unsafe { core::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size()) };
        }
        new_ptr
    }
}
