//! File-descriptor headroom: the main listener stops accepting while the process's open file
//! descriptors are within `fd_reserve` of `RLIMIT_NOFILE`, so the reserve stays free for the ops
//! listener, Redis, webhook requests and the outbox even when clients hold every other fd.
//!
//! Counting `/proc/self/fd` on every accept would cost a directory scan per connection (100k+
//! entries on a busy node), so the count is kept in two parts: every socket herald serves is
//! wrapped in [`Counted`], which counts it while it is open, and a sampler corrects for every
//! other descriptor (listeners, Redis, webhook clients, the outbox, stdio) every
//! [`SAMPLE_EVERY`]. Linux only for the sample; elsewhere only the counted sockets are seen.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// How often the descriptors that are not client sockets are counted again.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// The process's descriptor budget as the accept loops see it.
#[derive(Debug)]
pub(crate) struct FdBudget {
    /// Client sockets open now (each [`Counted`] adds one while it lives). Atomic: read on every
    /// accept and changed on every open and close, on any thread; no lock.
    live: AtomicUsize,
    /// Every other open descriptor, from the last sample (its count minus `live` at the time).
    /// Atomic for the same reason; written only by the sampler.
    other: AtomicUsize,
    /// `RLIMIT_NOFILE` minus the reserve: the main listener accepts only while below it. `None`
    /// when the limit is infinite or the reserve is 0.
    threshold: Option<usize>,
}

impl FdBudget {
    /// A budget for the current `RLIMIT_NOFILE` soft limit, keeping `reserve` descriptors free.
    pub(crate) fn new(reserve: usize) -> Arc<Self> {
        let threshold = if reserve == 0 { None } else { nofile_limit().map(|limit| limit.saturating_sub(reserve)) };
        let budget = Arc::new(FdBudget { live: AtomicUsize::new(0), other: AtomicUsize::new(0), threshold });
        budget.sample();
        budget
    }

    /// Whether the main listener may take one more connection.
    pub(crate) fn has_headroom(&self) -> bool {
        self.threshold.is_none_or(|t| self.open() < t)
    }

    /// The estimated number of open descriptors.
    pub(crate) fn open(&self) -> usize {
        self.live.load(Ordering::Relaxed) + self.other.load(Ordering::Relaxed)
    }

    /// Wraps an accepted socket so it is counted until it is dropped (after a WebSocket upgrade
    /// the wrapper lives on inside the upgraded connection).
    pub(crate) fn track(self: &Arc<Self>, stream: TcpStream) -> Counted {
        self.live.fetch_add(1, Ordering::Relaxed);
        Counted { stream, budget: self.clone() }
    }

    /// Counts the open descriptors again (a directory scan: call from a blocking thread).
    fn sample(&self) {
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
        let live = self.live.load(Ordering::Relaxed);
        // The scan's own descriptor is in the listing: not counted.
        let total = dir.count().saturating_sub(1);
        self.other.store(total.saturating_sub(live), Ordering::Relaxed);
    }

    /// Samples every [`SAMPLE_EVERY`] until `stop`.
    pub(crate) async fn run_sampler(self: Arc<Self>, stop: CancellationToken) {
        if self.threshold.is_none() {
            return;
        }
        let mut every = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => {
                    let budget = self.clone();
                    let _ = tokio::task::spawn_blocking(move || budget.sample()).await;
                }
                () = stop.cancelled() => return,
            }
        }
    }
}

/// The soft `RLIMIT_NOFILE`, or `None` when it is infinite or cannot be read.
fn nofile_limit() -> Option<usize> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct it is given, which lives on this stack frame.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    usize::try_from(limit.rlim_cur).ok()
}

/// An accepted socket, counted in its [`FdBudget`] until dropped. Reads and writes pass through.
#[derive(Debug)]
pub(crate) struct Counted {
    stream: TcpStream,
    budget: Arc<FdBudget>,
}

impl Counted {
    /// Writes what the socket takes without waiting (see `TcpStream::try_write`).
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.stream.try_write(buf)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.budget.live.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for Counted {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
