//! rp.wasm's heap: power-of-two size classes with one free list each, carved
//! from fresh linear memory. The tracker's allocations are short strings that
//! are freed and reused at the same sizes, which this serves with a few dozen
//! instructions; dlmalloc (Rust's default on wasm32) costs ~4 KB of the
//! download for generality the tracker does not need. Memory is never
//! returned to the browser (wasm cannot shrink memory anyway). Single-threaded
//! by construction: wasm32 without the atomics feature has one thread.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::null_mut;

const PAGE: usize = 65536;
/// Blocks of 2^3 … 2^31 bytes.
const CLASSES: usize = 32;

struct Heap {
    /// Next unused byte and end of the memory this heap owns.
    next: usize,
    end: usize,
    /// Head of each class's free list; a free block's first word links to the next.
    free: [usize; CLASSES],
}

pub struct SizeClasses(UnsafeCell<Heap>);

// SAFETY: wasm32-unknown-unknown without atomics runs one thread; the heap is
// never touched concurrently.
unsafe impl Sync for SizeClasses {}

impl SizeClasses {
    pub const fn new() -> SizeClasses {
        SizeClasses(UnsafeCell::new(Heap { next: 0, end: 0, free: [0; CLASSES] }))
    }
}

/// The class whose block size 2^class holds `layout` (size and alignment).
fn class_of(layout: Layout) -> usize {
    let size = layout.size().max(layout.align()).max(8);
    (usize::BITS - (size - 1).leading_zeros()) as usize
}

unsafe impl GlobalAlloc for SizeClasses {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded (see above) and not re-entered: nothing here allocates.
        let heap = unsafe { &mut *self.0.get() };
        let class = class_of(layout);
        if class >= CLASSES {
            return null_mut();
        }
        let head = heap.free[class];
        if head != 0 {
            // SAFETY: `head` is a block of this class we handed out and got back; its first word is the link.
            heap.free[class] = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
        let size = 1usize << class;
        // Blocks are aligned to their size (capped at a page), so any
        // alignment up to the size holds, also after reuse.
        let align = size.min(PAGE);
        if heap.end == 0 {
            heap.next = core::arch::wasm32::memory_size(0) * PAGE;
            heap.end = heap.next;
        }
        let start = (heap.next + align - 1) & !(align - 1);
        let Some(stop) = start.checked_add(size) else { return null_mut() };
        if stop > heap.end {
            let pages = (stop - heap.end).div_ceil(PAGE);
            if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                return null_mut();
            }
            heap.end += pages * PAGE;
        }
        heap.next = stop;
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as in `alloc`; `ptr` came from `alloc` with this layout.
        let heap = unsafe { &mut *self.0.get() };
        let class = class_of(layout);
        unsafe { *(ptr as *mut usize) = heap.free[class] };
        heap.free[class] = ptr as usize;
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `layout.align()` is a valid alignment and the caller keeps `new_size` in range.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if class_of(new_layout) == class_of(layout) {
            return ptr;
        }
        let new_ptr = unsafe { self.alloc(new_layout) };
        if !new_ptr.is_null() {
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new_ptr
    }
}
