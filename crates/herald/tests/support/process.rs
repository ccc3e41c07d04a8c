//! The herald binary as a child process, for what only a real process shows: its log lines on
//! stderr (escaping, rate limits) and its start-up line on stdout.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// A running herald; killed when dropped.
pub(crate) struct HeraldProcess {
    /// Behind a mutex so `stop` takes `&self` (tests stop it while closures read the log).
    child: Mutex<Child>,
    /// The address from its `herald listening on http://…` (or `https://…`) line.
    pub(crate) addr: SocketAddr,
    /// Every stderr line so far (filled by a reader thread).
    log: Arc<Mutex<Vec<String>>>,
}

impl HeraldProcess {
    /// Starts `env!("CARGO_BIN_EXE_herald")` with `args` (and `RUST_LOG` removed, so the
    /// config decides the log level) and waits for its listening line. Call from a
    /// multi-threaded runtime: the wait blocks in place.
    pub(crate) fn start(args: &[&str]) -> HeraldProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn herald");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = tokio::task::block_in_place(|| stdout.next().expect("a first line").expect("stdout"));
        let addr = first
            .strip_prefix("herald listening on http://")
            .or_else(|| first.strip_prefix("herald listening on https://"))
            .expect("listening line");
        let addr = addr.parse().expect("listening address");
        std::thread::spawn(move || for _ in stdout {});
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = log.clone();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("log lock").push(line);
            }
        });
        HeraldProcess { child: Mutex::new(child), addr, log }
    }

    /// The process id (to signal it).
    pub(crate) fn pid(&self) -> u32 {
        self.child.lock().expect("child lock").id()
    }

    /// The stderr lines logged so far.
    pub(crate) fn log(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    /// Sends SIGHUP (a configuration reload).
    pub(crate) fn hangup(&self) {
        let pid = self.child.lock().expect("child lock").id();
        let pid = i32::try_from(pid).expect("pid");
        // SAFETY: kill(2) with a pid we own and a valid signal number has no memory effects.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0, "kill -HUP");
    }

    /// Waits until a stderr line contains `needle`; returns it. Panics after `WAIT`.
    pub(crate) async fn wait_log(&self, needle: &str) -> String {
        let mut found = None;
        let ok = super::eventually(super::WAIT, || {
            found = self.log().into_iter().find(|l| l.contains(needle));
            found.is_some()
        })
        .await;
        assert!(ok, "no log line containing {needle:?} in {:#?}", self.log());
        found.unwrap_or_default()
    }

    /// Kills the process and waits for it.
    pub(crate) fn stop(&self) {
        let mut child = self.child.lock().expect("child lock");
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for HeraldProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
