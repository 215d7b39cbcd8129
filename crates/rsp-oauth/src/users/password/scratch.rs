//! Argon2's working memory, kept from one hash to the next while logins keep coming.
//!
//! Each hash fills 19 MiB of blocks. Allocated per hash, that memory is mapped, faulted in page by page and
//! unmapped every time (the server freezes glibc's mmap threshold, so a block that size is never recycled
//! from the heap): `rsp loadtest --scenario login` made 28 logins/s instead of 44, and a login storm
//! (`bench/login-storm.sh`) 21–22 instead of 33–34 (BENCHMARKS.md). Argon2 overwrites every block before
//! reading it, so the memory of one hash serves the next as it is. Memory nobody has used for
//! [`RELEASE_AFTER`] is dropped (and so unmapped), so a server that saw one login does not keep it for good.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Block;

/// How long working memory may lie unused before it is handed back to the system.
pub(super) const RELEASE_AFTER: Duration = Duration::from_secs(10);

/// Working memory for hashes of one size, at most one piece per hash running at once.
#[derive(Debug)]
pub(super) struct ScratchMemory {
    /// Blocks per piece: what a hash at the current parameters needs.
    blocks: usize,
    /// Pieces not in use, with when each was given back.
    unused: Mutex<Vec<(Vec<Block>, Instant)>>,
}

impl ScratchMemory {
    pub(super) fn new(blocks: usize) -> Self {
        Self { blocks, unused: Mutex::new(Vec::new()) }
    }

    /// Runs `hash` with at least `blocks` blocks of memory: a kept piece when `blocks` is the usual size,
    /// else (a stored hash made with other parameters) a piece of its own, dropped afterwards.
    pub(super) fn with<T>(&self, blocks: usize, hash: impl FnOnce(&mut [Block]) -> T) -> T {
        let kept = if blocks <= self.blocks { self.lock().pop().map(|(piece, _)| piece) } else { None };
        let mut piece = kept.unwrap_or_else(|| vec![Block::default(); blocks.max(self.blocks)]);
        let answer = hash(&mut piece);
        if piece.len() == self.blocks {
            self.lock().push((piece, Instant::now()));
        }
        answer
    }

    /// Drops the pieces unused for [`RELEASE_AFTER`] or longer.
    pub(super) fn release_unused(&self) {
        self.release_unused_since(Instant::now() - RELEASE_AFTER);
    }

    fn release_unused_since(&self, before: Instant) {
        let released: Vec<_> = {
            let mut unused = self.lock();
            let (old, recent) = std::mem::take(&mut *unused).into_iter().partition(|(_, at)| *at <= before);
            *unused = recent;
            old
        };
        // Dropped outside the lock: unmapping 19 MiB is not free.
        drop(released);
    }

    /// How many pieces are kept, for tests.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.lock().len()
    }

    /// A poisoned lock means a hash panicked while taking or giving a piece; the list itself is intact.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Vec<Block>, Instant)>> {
        self.unused.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piece_is_reused_by_the_next_hash_and_released_once_unused_long_enough() {
        let scratch = ScratchMemory::new(8);
        let first = scratch.with(8, |memory| memory.as_ptr() as usize);
        assert_eq!(scratch.kept(), 1);
        let second = scratch.with(8, |memory| memory.as_ptr() as usize);
        assert_eq!(first, second, "the second hash gets the first one's memory");
        assert_eq!(scratch.kept(), 1);

        scratch.release_unused();
        assert_eq!(scratch.kept(), 1, "just used: kept");
        scratch.release_unused_since(Instant::now());
        assert_eq!(scratch.kept(), 0, "unused long enough: released");
    }

    #[test]
    fn concurrent_hashes_get_a_piece_each_and_an_odd_size_is_not_kept() {
        let scratch = ScratchMemory::new(8);
        scratch.with(8, |outer| {
            scratch.with(8, |inner| assert_ne!(outer.as_ptr(), inner.as_ptr()));
        });
        assert_eq!(scratch.kept(), 2);
        scratch.with(16, |memory| assert!(memory.len() >= 16));
        scratch.with(4, |memory| assert!(memory.len() >= 4));
        assert_eq!(scratch.kept(), 2, "a larger piece made for one hash is dropped after it");
    }
}
