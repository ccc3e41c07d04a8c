//! Gives freed memory back to the operating system after a wave of disconnects or
//! unsubscribes.
//!
//! glibc's allocator keeps what a process frees in its arenas for reuse, so after 19,000
//! connections close (or one connection that held 200,000 subscriptions leaves) herald's RSS
//! stays where the peak left it (docs/BENCHMARKS.md). That is harmless for a steady node but
//! misleading on a dashboard and wasteful after a one-off spike. [`Trimmer`] watches the node's
//! footprint — connections + subscriptions + channels (`Hub::footprint`; the sweeper samples it
//! every 10 s) — and, once it has fallen by [`TRIM_AFTER_DROP`] since the last trim or peak, asks
//! glibc to return free pages (`malloc_trim`). On other allocators or platforms trimming is a
//! no-op.

use metrics::{Counter, Key, Level, Metadata, Recorder};

/// How far the footprint must have fallen since the peak before a trim is worth its cost (it
/// walks the allocator's free lists: milliseconds on a large heap). A connection, a subscription
/// and a channel each count one (each is around a kilobyte or more).
pub(crate) const TRIM_AFTER_DROP: u64 = 1_000;

/// Decides when to trim; holds only the highest footprint seen since the last trim.
#[derive(Debug, Default)]
pub(crate) struct Trimmer {
    peak: u64,
}

impl Trimmer {
    /// Records the current footprint; true when a trim is due now (the caller then runs
    /// [`trim`], off the async workers).
    pub(crate) fn observe(&mut self, footprint: u64) -> bool {
        self.peak = self.peak.max(footprint);
        if self.peak - footprint >= TRIM_AFTER_DROP {
            self.peak = footprint;
            return true;
        }
        false
    }
}

static METADATA: Metadata<'static> = Metadata::new("herald::memory", Level::INFO, Some(module_path!()));

/// `herald_memory_trims_total`: trims run (each after a drop of [`TRIM_AFTER_DROP`]).
pub(crate) fn trims_counter(r: &dyn Recorder) -> Counter {
    r.register_counter(&Key::from_static_name("herald_memory_trims_total"), &METADATA)
}

/// Returns free heap memory to the OS (glibc on Linux; a no-op elsewhere).
pub(crate) fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only releases memory the allocator owns and
    // does not use.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_after_a_large_drop_then_waits_for_the_next() {
        let mut t = Trimmer::default();
        assert!(!t.observe(5_000));
        assert!(!t.observe(4_500), "a drop of 500 is not worth a trim");
        assert!(t.observe(3_900), "1,100 gone since the peak");
        assert!(!t.observe(3_800), "the peak restarts at the trim");
        assert!(!t.observe(10_000));
        assert!(t.observe(0));
        trim(); // callable anywhere, returns
    }
}
