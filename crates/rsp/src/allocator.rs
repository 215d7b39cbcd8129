//! How the process gives memory back to the system: what the allocator holds freed, and the code pages
//! start-up ran.
//!
//! glibc serves an allocation of 128 KiB or more with its own `mmap`, returned to the system when freed,
//! but it raises that threshold to the size of each such block freed (up to 32 MiB), and the trim
//! threshold to twice that. After the first large buffer (a JSON batch answer, a request body, SQLite's
//! page cache growing) the server's request threads therefore keep what they free in their arenas, and
//! RSS under load stays at the high-water mark of every thread's arena at once. Fixing the threshold at
//! glibc's own starting value stops that drift: with `bench/memory.sh 6s 32` (five runs each), the mixed
//! load's peak fell from 54.5–59.5 to 49.1–56.5 MiB and the highest peak of the ten loads from a median of
//! 67.4 to 65.4 MiB, at the same throughput (BENCHMARKS.md). Fewer arenas (`M_ARENA_MAX`) cut more but
//! cost throughput; mimalloc and jemalloc both idle above 20 MB.
//!
//! glibc also gives back only the top of an arena, and only when a free happens there: memory freed in the
//! middle of an arena, or by a thread that then goes quiet, stays resident until the process exits. So once
//! a burst of work is over, a thread trims every arena (`malloc_trim`): after the ten loads of
//! `bench/memory.sh` the server goes back to ~33 MiB instead of staying at 63–66. It does not trim while the
//! process is busy: trimming every 2 s under load lowered the peaks by a few MiB but cost 5–10% of the
//! throughput of several loads (pages handed back and faulted in again), BENCHMARKS.md.
//!
//! At the same moment the thread hands back the executable's pages ([`page_out_code`]). The kernel maps
//! code 64 KiB around each page a thread runs, so start-up (migrations, configuration, key and policy set-up)
//! leaves 12–15 MiB of the binary resident that requests never run again: three quarters of an idle server's
//! RSS. Paged out, an idle server holds 10 MiB instead of 18–19; the code requests do run comes back at their
//! first call, from the page cache (a minor fault, microseconds), so under load RSS is what it was.

use std::time::Duration;

/// How often the trimming thread looks at how busy the process was.
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// CPU time below which an interval counts as quiet: 10 ticks of `/proc/self/stat` (USER_HZ is 100 on
/// Linux) in 2 s, 5% of one core. An idle server uses none; a loaded one, most of two cores.
const QUIET_TICKS: u64 = 10;

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

/// Starts the thread that trims (and pages out code) once the process falls quiet after work. On other C
/// libraries it starts nothing.
pub fn trim_freed_memory_when_quiet() -> std::io::Result<()> {
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        std::thread::Builder::new().name("rsp-trim".into()).spawn(|| {
            let mut quiet = QuietAfterWork::new(cpu_ticks());
            loop {
                std::thread::sleep(LOOK_EVERY);
                if quiet.trim_now(cpu_ticks()) {
                    trim_freed_memory();
                    page_out_code();
                }
            }
        })?;
    }
    Ok(())
}

/// Decides, one interval at a time, when to trim: in the first quiet interval after a busy one, once.
#[derive(Debug)]
struct QuietAfterWork {
    last_ticks: Option<u64>,
    trimmed: bool,
}

impl QuietAfterWork {
    fn new(ticks: Option<u64>) -> Self {
        Self { last_ticks: ticks, trimmed: false }
    }

    /// `ticks` is the process's CPU time now; an unreadable one counts as quiet.
    fn trim_now(&mut self, ticks: Option<u64>) -> bool {
        let used = match (self.last_ticks, ticks) {
            (Some(before), Some(now)) => now.saturating_sub(before),
            _ => 0,
        };
        self.last_ticks = ticks;
        if used >= QUIET_TICKS {
            self.trimmed = false;
            return false;
        }
        !std::mem::replace(&mut self.trimmed, true)
    }
}

/// The process's CPU time so far, user and system, in clock ticks (`/proc/self/stat`).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name (in parentheses, and free to contain spaces): state, then 10 fields, then
    // utime and stime.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Returns the free pages of every arena to the system now. Returns whether any memory was released.
pub fn trim_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        #[allow(unsafe_code, reason = "malloc_trim has no safe binding; the call is sound as argued below")]
        // SAFETY: `malloc_trim` takes each arena's lock in turn and only advises the kernel that free pages
        // are unused; it changes no allocated memory, and glibc allows it from any thread at any time.
        let released = unsafe { libc::malloc_trim(0) };
        released == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Asks the kernel to reclaim the resident pages of this executable's read-only mappings (its code and
/// constants), returning how many bytes of mappings were advised. Best effort: kernels before 5.4 refuse
/// `MADV_PAGEOUT`, and pages shared with another process running the same file stay. Nothing is lost:
/// reclaimed file pages are read again, from the page cache, when next run; a page made private by the
/// loader's relocations (RELRO) is anonymous and, without swap, simply stays.
pub fn page_out_code() -> usize {
    #[cfg(target_os = "linux")]
    {
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else { return 0 };
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return 0 };
        let mut advised = 0;
        for (start, len) in read_only_mappings_of(&maps, &exe.to_string_lossy()) {
            #[allow(unsafe_code, reason = "madvise has no safe binding; the call is sound as argued below")]
            // SAFETY: the range is a whole mapping of the process's own executable, listed by the kernel and
            // never unmapped while the process runs; MADV_PAGEOUT keeps every page's contents (reclaimed
            // pages of a read-only file mapping are read back on the next access), so no Rust reference
            // to that memory, or code running in it, sees a change.
            let accepted = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_PAGEOUT) } == 0;
            if accepted {
                advised += len;
            }
        }
        advised
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// The (start, length) of each mapping in `maps` (the format of `/proc/self/maps`) of the file `exe` that
/// is not writable.
fn read_only_mappings_of(maps: &str, exe: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            // address perms offset dev inode path; the path may contain spaces.
            let mut fields = line.splitn(6, ' ');
            let (range, perms) = (fields.next()?, fields.next()?);
            let path = fields.nth(3)?.trim_start();
            if path != exe || perms.contains('w') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let (start, end) = (usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?);
            Some((start, end.checked_sub(start)?))
        })
        .collect()
}

/// The process's resident memory (`VmRSS` of `/proc/self/status`), in bytes; `None` where there is none.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?.trim().strip_suffix("kB")?;
    kib.trim().parse::<u64>().ok().map(|kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_in_the_first_quiet_interval_after_work() {
        let mut quiet = QuietAfterWork::new(Some(1_000));
        assert!(quiet.trim_now(Some(1_002)), "a quiet start trims what start-up freed");
        assert!(!quiet.trim_now(Some(1_003)), "and not again while nothing happens");
        assert!(!quiet.trim_now(Some(1_200)), "busy: no trim under load");
        assert!(!quiet.trim_now(Some(1_400)));
        assert!(quiet.trim_now(Some(1_405)), "the load is over");
        assert!(!quiet.trim_now(Some(1_406)));
        assert!(!quiet.trim_now(None), "an unreadable clock counts as quiet, and this quiet spell has trimmed");
    }

    #[test]
    fn only_the_executables_read_only_mappings_are_paged_out() {
        let maps = "\
55d0c0000000-55d0c04dd000 r--p 00000000 fe:00 100 /opt/rsp/bin/rsp
55d0c04dd000-55d0c17f1000 r-xp 004dd000 fe:00 100                        /opt/rsp/bin/rsp
55d0c17f3000-55d0c1872000 rw-p 017f3000 fe:00 100 /opt/rsp/bin/rsp
55d0c1872000-55d0c1874000 r--p 00000000 fe:00 101 /opt/rsp/bin/rsp-old
7f0000000000-7f0000100000 r-xp 00000000 fe:00 200 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000200000-7f0000300000 rw-p 00000000 00:00 0 
7f0000400000-7f0000401000 r--p 00000000 fe:00 300 /tmp/a dir/rsp (deleted)";
        let exe = "/opt/rsp/bin/rsp";
        assert_eq!(read_only_mappings_of(maps, exe), [(0x55d0_c000_0000, 0x4d_d000), (0x55d0_c04d_d000, 0x131_4000)]);
        assert_eq!(read_only_mappings_of(maps, "/tmp/a dir/rsp (deleted)"), [(0x7f00_0040_0000, 0x1000)]);
    }

    /// This test binary's own code: paged out, its resident file pages fall (those the running tests touch
    /// come back at once, far fewer than a whole binary's).
    #[test]
    #[cfg(target_os = "linux")]
    fn paging_out_the_code_lowers_resident_file_pages() {
        let file_kib = || -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find_map(|line| line.strip_prefix("RssFile:")).unwrap();
            line.trim().strip_suffix("kB").unwrap().trim().parse().unwrap()
        };
        let before = file_kib();
        assert!(page_out_code() > 0, "no mapping of the executable was advised");
        let after = file_kib();
        assert!(after < before, "resident file pages {before} kB -> {after} kB");
    }

    #[test]
    fn the_process_cpu_time_is_read() {
        let before = cpu_ticks().unwrap();
        assert!(cpu_ticks().unwrap() >= before);
    }
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_threshold() {
        assert!(return_large_frees_to_the_system());
    }

    /// Memory freed below a live block is not given back by glibc on its own; a trim gives it back.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn a_trim_returns_memory_freed_in_the_middle_of_an_arena() {
        const BLOCKS: usize = 16 * 1024;
        let freed: Vec<Vec<u8>> = (0..BLOCKS).map(|i| vec![u8::try_from(i % 251).unwrap(); 4096]).collect();
        // A live block above the freed ones, so that glibc's own trimming of the arena's top cannot take them.
        let above = std::hint::black_box(Box::new([1u8; 64]));
        let before = resident_bytes().unwrap();
        drop(freed);
        let after_free = resident_bytes().unwrap();
        assert!(trim_freed_memory(), "the trim released nothing");
        let after_trim = resident_bytes().unwrap();
        assert!(after_free > before - 32 * 1024 * 1024, "glibc already returned the blocks on its own");
        assert!(after_trim + 32 * 1024 * 1024 < after_free, "{after_free} -> {after_trim}: 64 MiB were freed");
        assert_eq!(above[0], 1);
    }
}
