//! How the process's allocator gives memory back.
//!
//! glibc serves an allocation of 128 KiB or more with its own `mmap`, returned to the system when freed,
//! but it raises that threshold to the size of each such block freed (up to 32 MiB), and the trim
//! threshold to twice that. After the first large buffer (a JSON batch answer, a request body, SQLite's
//! page cache growing) the server's request threads therefore keep what they free in their arenas, and
//! RSS under load stays at the high-water mark of every thread's arena at once. Fixing the threshold at
//! glibc's own starting value stops that drift: with `bench/memory.sh 6s 32` (five runs each), the mixed
//! load's peak fell from 54.5–59.5 to 49.1–56.5 MiB and the highest peak of the ten loads from a median of
//! 67.4 to 65.4 MiB, at the same throughput (BENCHMARKS.md, top). Fewer arenas (`M_ARENA_MAX`) cut more
//! but cost throughput; mimalloc and jemalloc both idle above 20 MB.

/// The size from which each allocation is mapped on its own (and so returned when freed): glibc's default.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MAPPED_FROM_BYTES: libc::c_int = 128 * 1024;

/// Freezes glibc's mmap threshold (and with it the trim threshold) at their defaults. Call it first thing
/// in `main`; on other C libraries it does nothing. Returns whether the setting was accepted.
pub fn return_large_frees_to_the_system() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        #[allow(unsafe_code, reason = "mallopt has no safe binding; the call is sound as argued below")]
        // SAFETY: `mallopt` only sets a parameter of the allocator, under the allocator's own lock; glibc
        // allows it at any time from any thread, and it touches no memory of ours.
        let accepted = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MAPPED_FROM_BYTES) };
        accepted == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_threshold() {
        assert!(super::return_large_frees_to_the_system());
    }
}
