//! Private, throwaway database servers for tests that must stop a database (store outages):
//! a PostgreSQL (`initdb` + `pg_ctl` from `/usr/lib/postgresql/*/bin`) or a MariaDB
//! (`mariadb-install-db` + `mariadbd`) on a free port with its data in a temp dir. They can be
//! stopped and started again on the same port; dropping one stops it and removes its files.
//! The shared test servers are never touched. scripts/test.sh installs the binaries.
//!
//! Both refuse to run as root: PostgreSQL's tools then run as the `postgres` user (through
//! `runuser`), MariaDB is told `--user=root`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a private server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A new empty directory under the temp dir.
fn temp_dir(kind: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "herald-{kind}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd`, panicking with its output if it fails.
fn run(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until something accepts TCP connections on `port`.
fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port} within {START_TIMEOUT:?}");
}

/// A private PostgreSQL server (trust authentication, user `postgres`, database `postgres`).
pub(crate) struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    pub(crate) port: u16,
    running: bool,
}

impl PrivatePostgres {
    /// Creates a cluster in a temp dir and starts it on a free port.
    pub(crate) fn start() -> PrivatePostgres {
        let bin = postgres_bin_dir();
        let dir = temp_dir("pg");
        if is_root() {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres:postgres"]).arg(&dir);
            run(chown, "chown the PostgreSQL dir");
        }
        let mut pg = PrivatePostgres { dir, bin, port: free_port(), running: false };
        let mut initdb = pg.tool("initdb");
        initdb.arg("-D").arg(pg.dir.join("data")).args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        run(initdb, "initdb");
        pg.start_again();
        pg
    }

    /// Starts the server again (same port, same data).
    pub(crate) fn start_again(&mut self) {
        let mut ctl = self.tool("pg_ctl");
        ctl.arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=20",
                self.port,
                self.dir.display()
            ))
            .arg("start");
        run(ctl, "pg_ctl start");
        self.running = true;
        wait_for_port(self.port, "PostgreSQL");
    }

    /// Stops the server at once (`-m immediate`: connections are cut, as in a crash).
    pub(crate) fn stop(&mut self) {
        if !self.running {
            return;
        }
        let mut ctl = self.tool("pg_ctl");
        ctl.arg("-D").arg(self.dir.join("data")).args(["-m", "immediate", "-w", "stop"]);
        run(ctl, "pg_ctl stop");
        self.running = false;
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// One of PostgreSQL's tools, run as `postgres` when we are root.
    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.stdin(Stdio::null());
        cmd
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let mut ctl = self.tool("pg_ctl");
            ctl.arg("-D").arg(self.dir.join("data")).args(["-m", "immediate", "-w", "stop"]);
            let _ = ctl.output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`, else the directory of
/// `initdb` on the PATH.
fn postgres_bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let out = Command::new("sh").args(["-c", "command -v initdb"]).output().unwrap();
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!path.is_empty(), "no PostgreSQL server binaries (initdb): scripts/test.sh installs them");
    Path::new(&path).parent().unwrap().to_path_buf()
}

/// A private MariaDB server (`root` with no password, database `test`).
pub(crate) struct PrivateMariadb {
    dir: PathBuf,
    pub(crate) port: u16,
    child: Option<Child>,
}

impl PrivateMariadb {
    /// Creates a data dir in a temp dir and starts the server on a free port.
    pub(crate) fn start() -> PrivateMariadb {
        let dir = temp_dir("mariadb");
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if is_root() {
            install.arg("--user=root");
        }
        run(install, "mariadb-install-db");
        let mut db = PrivateMariadb { dir, port: free_port(), child: None };
        db.start_again();
        super::sql::client(super::sql::Db::Mysql, &db.url_of("mysql"), "CREATE DATABASE IF NOT EXISTS test");
        db
    }

    /// Starts the server again (same port, same data).
    pub(crate) fn start_again(&mut self) {
        let mut cmd = Command::new("mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .arg(format!("--pid-file={}", self.dir.join("pid").display()))
            .arg(format!("--log-error={}", self.dir.join("error.log").display()))
            // Commits reach the OS at once (they survive the process being killed), the disk
            // only once a second: a throwaway server need not survive a power cut.
            .args(["--skip-log-bin", "--innodb-buffer-pool-size=16M", "--innodb-flush-log-at-trx-commit=2"]);
        if is_root() {
            cmd.arg("--user=root");
        }
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("mariadbd");
        self.child = Some(child);
        wait_for_port(self.port, "MariaDB");
    }

    /// Kills the server at once (connections are cut, as in a crash).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn url(&self) -> String {
        self.url_of("test")
    }

    fn url_of(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
