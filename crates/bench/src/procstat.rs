//! Process figures read from `/proc`: resident memory (`VmRSS` in `/proc/{pid}/status`) and
//! CPU time (`utime + stime` in `/proc/{pid}/stat`), for the server under test (given its pid)
//! and for the load generator itself. Also the file-descriptor limit of this process.

use std::time::Duration;

/// A sample of one process: RSS in KiB and total CPU time (user + system).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProcSample {
    pub rss_kib: u64,
    pub cpu: Duration,
}

/// Reads RSS and CPU of `pid` (`None` = this process). `None` when the process is gone or
/// `/proc` is unreadable.
pub(crate) fn sample(pid: Option<u32>) -> Option<ProcSample> {
    let base = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_string(),
    };
    let status = std::fs::read_to_string(format!("{base}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    let stat = std::fs::read_to_string(format!("{base}/stat")).ok()?;
    // The command name (field 2) may contain spaces: fields are counted after its closing ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = clock_ticks();
    let cpu = Duration::from_secs_f64((utime + stime) as f64 / ticks as f64);
    Some(ProcSample { rss_kib, cpu })
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit; returns (soft, hard) after.
pub(crate) fn raise_nofile() -> (u64, u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid, writable rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return (0, 0);
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    (lim.rlim_cur, lim.rlim_max)
}

/// The soft RLIMIT_NOFILE of another process, from `/proc/{pid}/limits`.
pub(crate) fn nofile_of(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Difference of two samples: CPU used between them and RSS change in KiB.
pub(crate) fn delta(before: Option<ProcSample>, after: Option<ProcSample>) -> Option<(Duration, i64)> {
    let (b, a) = (before?, after?);
    Some((a.cpu.saturating_sub(b.cpu), a.rss_kib as i64 - b.rss_kib as i64))
}
