//! Set-up shared by the benches (each includes this file as `mod common`).

/// Puts SQLite on the program's allocator as the `portolan` binary's main
/// does, unless `BENCH_SQLITE_MALLOC=system` keeps it on the C library's
/// (to measure the difference); says which one it got. Call it first, before
/// anything opens a database.
pub fn sqlite_heap() -> &'static str {
    if std::env::var("BENCH_SQLITE_MALLOC").is_ok_and(|v| v == "system") {
        "the C library's malloc (BENCH_SQLITE_MALLOC=system)"
    } else if portolan_store::sqlite_memory::use_program_allocator() {
        "the program's allocator"
    } else {
        "the C library's malloc (SQLite was already initialised)"
    }
}

/// Keeps the heap on small pages as the `portolan` binary's main does
/// (see [`portolan::use_small_pages`]), unless `BENCH_HUGE_PAGES=1` leaves
/// transparent huge pages as the system has them (to measure the
/// difference); says which.
pub fn heap_pages() -> &'static str {
    if std::env::var("BENCH_HUGE_PAGES").is_ok_and(|v| v == "1") {
        "transparent huge pages as the system has them (BENCH_HUGE_PAGES=1)"
    } else if portolan::use_small_pages() {
        "small pages (transparent huge pages off, as in the portolan binary)"
    } else {
        "transparent huge pages as the system has them (could not turn them off)"
    }
}
