//! SQLite's heap: the program's own allocator, without SQLite's statistics.
//!
//! Built as `libsqlite3-sys` builds it, SQLite allocates with the C
//! library's `malloc` and, for its memory statistics, takes a process-wide
//! mutex around every allocation and free. A profile of a 100,000-entity
//! batch push spent about a fifth of its CPU time in glibc's allocator and
//! in those locks. [`use_program_allocator`] routes SQLite's allocations
//! through Rust's global allocator (mimalloc in the `portolan` binary) and
//! turns the statistics off (nothing here reads them).
//!
//! SQLite takes this configuration only before it initialises, that is
//! before the process opens its first SQLite database, and
//! `sqlite3_config` must not run while another thread uses SQLite. So it
//! is for a program's `main` to call first thing, not for the store to
//! call on connect (tests open databases from many threads at once).

use std::alloc::{alloc, dealloc, realloc, Layout};
use std::os::raw::{c_int, c_void};
use std::ptr::null_mut;

use libsqlite3_sys as ffi;

/// Bytes in front of each block: its size (SQLite asks for it back), and
/// enough to keep the block 16-byte aligned.
const HEADER: usize = 16;

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, HEADER).ok()
}

/// # Safety
/// As any `malloc`: the block must be handed back to [`free`].
unsafe extern "C" fn malloc(size: c_int) -> *mut c_void {
    let Some(layout) = usize::try_from(size).ok().and_then(layout) else {
        return null_mut();
    };
    // SAFETY: the layout's size is at least HEADER, so not zero.
    let base = unsafe { alloc(layout) };
    if base.is_null() {
        return null_mut();
    }
    // SAFETY: the block holds HEADER bytes before SQLite's part, aligned for
    // a usize.
    unsafe {
        base.cast::<usize>().write(layout.size() - HEADER);
        base.add(HEADER).cast()
    }
}

/// The start of the block `p` (from [`malloc`] or [`resize`]) and its size.
///
/// # Safety
/// `p` must come from [`malloc`] or [`resize`] and not be freed.
unsafe fn block(p: *mut c_void) -> (*mut u8, usize) {
    // SAFETY: per the caller, HEADER bytes lie in front of p, holding the
    // size that was asked for.
    unsafe {
        let base = p.cast::<u8>().sub(HEADER);
        (base, base.cast::<usize>().read())
    }
}

/// # Safety
/// `p` is null or a block from [`malloc`] or [`resize`], freed once.
unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: per the caller; the layout is the one the block was made with.
    unsafe {
        let (base, size) = block(p);
        dealloc(
            base,
            Layout::from_size_align_unchecked(size + HEADER, HEADER),
        );
    }
}

/// # Safety
/// `p` is null or a live block from [`malloc`] or [`resize`].
unsafe extern "C" fn resize(p: *mut c_void, size: c_int) -> *mut c_void {
    if p.is_null() {
        // SAFETY: a new block.
        return unsafe { malloc(size) };
    }
    let Some(new) = usize::try_from(size).ok().and_then(layout) else {
        return null_mut();
    };
    // SAFETY: per the caller; the old layout is the one the block was made
    // with, and the new size is not zero.
    unsafe {
        let (base, old) = block(p);
        let moved = realloc(
            base,
            Layout::from_size_align_unchecked(old + HEADER, HEADER),
            new.size(),
        );
        if moved.is_null() {
            return null_mut();
        }
        moved.cast::<usize>().write(new.size() - HEADER);
        moved.add(HEADER).cast()
    }
}

/// # Safety
/// `p` is null or a live block from [`malloc`] or [`resize`].
unsafe extern "C" fn size_of(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SAFETY: per the caller.
    let (_, size) = unsafe { block(p) };
    c_int::try_from(size).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn round_up(size: c_int) -> c_int {
    size.saturating_add(7) & !7
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn shutdown(_: *mut c_void) {}

/// Makes SQLite allocate through Rust's global allocator and stop keeping
/// memory statistics. Call it at the start of `main`, before anything opens
/// a SQLite database and while no other thread can (see the module's
/// documentation). Returns `false`, changing nothing, when SQLite has
/// already initialised; SQLite then keeps the C library's allocator, which
/// works as well, only slower.
pub fn use_program_allocator() -> bool {
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(malloc),
        xFree: Some(free),
        xRealloc: Some(resize),
        xSize: Some(size_of),
        xRoundup: Some(round_up),
        xInit: Some(init),
        xShutdown: Some(shutdown),
        pAppData: null_mut(),
    };
    // SAFETY: sqlite3_config copies the methods; before initialisation it
    // only records settings, and it refuses (SQLITE_MISUSE) after. The
    // caller promises no other thread uses SQLite meanwhile.
    unsafe {
        if ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int) != ffi::SQLITE_OK {
            return false;
        }
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_MALLOC,
            &methods as *const ffi::sqlite3_mem_methods,
        ) == ffi::SQLITE_OK
    }
}
