//! Fixtures for the app-store tests: the shared PostgreSQL and MariaDB/MySQL test servers
//! (`HERALD_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`, and
//! `HERALD_TEST_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`; scripts/test.sh makes
//! sure both run), a table with a name unique to the test (so tests run in parallel), dropped
//! when the fixture is dropped, and plain SQL through the databases' own command-line clients
//! (`psql`, `mariadb`/`mysql`), never through herald's `SqlStore`.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use herald::apps::sql::SqlStore;
use herald::config::app_store::{SqlDriver, SqlStoreConfig};

/// One of the two databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Db {
    Postgres,
    Mysql,
}

impl Db {
    /// Both, for tests that must hold on each.
    pub(crate) const ALL: [Db; 2] = [Db::Postgres, Db::Mysql];

    /// The shared test server's URL.
    pub(crate) fn shared_url(self) -> String {
        let (var, default) = match self {
            Db::Postgres => ("HERALD_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"),
            Db::Mysql => ("HERALD_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
        };
        std::env::var(var).unwrap_or_else(|_| default.to_owned())
    }

    pub(crate) fn driver(self) -> SqlDriver {
        match self {
            Db::Postgres => SqlDriver::Postgres,
            Db::Mysql => SqlDriver::Mysql,
        }
    }

    /// The `driver` value / `HERALD_APP_STORE_DRIVER`.
    pub(crate) fn name(self) -> &'static str {
        self.driver().name()
    }

    /// `name` quoted as an identifier in this dialect (`key` is reserved in MySQL).
    pub(crate) fn q(self, name: &str) -> String {
        match self {
            Db::Postgres => format!("\"{name}\""),
            Db::Mysql => format!("`{name}`"),
        }
    }
}

/// A table name no other test (in this or another test process) uses.
pub(crate) fn unique_table(label: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let label: String = label.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(30).collect();
    format!("t_{label}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A test's own table on one database; dropped (if it exists) when this is dropped.
pub(crate) struct SqlTable {
    pub(crate) db: Db,
    pub(crate) url: String,
    pub(crate) name: String,
}

impl SqlTable {
    /// A fresh table name on the shared server of `db` (the table itself is not created).
    pub(crate) fn shared(db: Db, label: &str) -> SqlTable {
        SqlTable::on(db, db.shared_url(), label)
    }

    /// A fresh table name on the server at `url`.
    pub(crate) fn on(db: Db, url: String, label: &str) -> SqlTable {
        SqlTable { db, url, name: unique_table(label) }
    }

    /// The `[app_store]` settings for this table.
    pub(crate) fn config(&self) -> SqlStoreConfig {
        SqlStoreConfig {
            driver: self.db.driver(),
            url: self.url.clone(),
            table: self.name.clone(),
            cache_ttl: Duration::from_secs(30),
        }
    }

    /// A store over this table (lazy: nothing is connected yet).
    pub(crate) fn store(&self) -> SqlStore {
        SqlStore::connect_lazy(&self.config()).unwrap()
    }

    /// The `HERALD_APP_STORE_*` variables naming this table, for the herald binary.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HERALD_APP_STORE_DRIVER", self.db.name().to_owned()),
            ("HERALD_APP_STORE_URL", self.url.clone()),
            ("HERALD_APP_STORE_TABLE", self.name.clone()),
        ]
    }

    /// Runs plain SQL (`{t}` stands for the table) with the database's own client; panics
    /// with the client's message if it fails.
    pub(crate) fn exec(&self, sql: &str) {
        client(self.db, &self.url, &sql.replace("{t}", &self.name));
    }

    /// Runs a query with the database's own client: one `Vec` of column texts per row
    /// (PostgreSQL prints booleans as `t`/`f`, MySQL as `1`/`0`).
    pub(crate) fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let out = client(self.db, &self.url, &sql.replace("{t}", &self.name));
        out.lines().filter(|l| !l.is_empty()).map(|l| l.split('\t').map(str::to_owned).collect()).collect()
    }

    /// Whether the table exists.
    pub(crate) fn exists(&self) -> bool {
        let sql = match self.db {
            Db::Postgres => format!("SELECT to_regclass('{}') IS NOT NULL", self.name),
            Db::Mysql => format!(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{}'",
                self.name
            ),
        };
        matches!(self.rows(&sql)[0][0].as_str(), "t" | "1")
    }
}

impl Drop for SqlTable {
    fn drop(&mut self) {
        // Best effort: a stopped private server has nothing to drop.
        let _ = try_client(self.db, &self.url, &format!("DROP TABLE IF EXISTS {}", self.name));
    }
}

/// Runs `sql` with `psql` or `mariadb` (`mysql`) against `url`; panics on failure.
pub(crate) fn client(db: Db, url: &str, sql: &str) -> String {
    match try_client(db, url, sql) {
        Ok(out) => out,
        Err(e) => panic!("{db:?} client failed on {sql:?}: {e}"),
    }
}

fn try_client(db: Db, url: &str, sql: &str) -> Result<String, String> {
    let output = match db {
        Db::Postgres => Command::new("psql")
            .args([url, "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output(),
        Db::Mysql => {
            let u = url::Url::parse(url).map_err(|e| e.to_string())?;
            let mut cmd = Command::new(mysql_client());
            cmd.arg(format!("--host={}", u.host_str().unwrap_or("127.0.0.1")))
                .arg(format!("--port={}", u.port().unwrap_or(3306)))
                .arg(format!("--user={}", if u.username().is_empty() { "root" } else { u.username() }))
                .args(["--batch", "--skip-column-names", "--raw"]);
            if let Some(pw) = u.password() {
                cmd.arg(format!("--password={pw}"));
            }
            cmd.arg(u.path().trim_start_matches('/')).args(["-e", sql]).output()
        }
    }
    .map_err(|e| format!("cannot run the client: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// `mariadb`, or `mysql` where only that is installed.
fn mysql_client() -> &'static str {
    let has = |name: &str| Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success());
    if has("mariadb") {
        "mariadb"
    } else {
        "mysql"
    }
}
