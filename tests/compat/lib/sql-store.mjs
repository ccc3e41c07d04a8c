// The app-store fixtures: the test databases (PostgreSQL and MariaDB/MySQL), plain SQL run with
// their own command-line clients (`psql`, `mariadb` or `mysql`) — never through herald, as an
// operator writes rows — and a herald serving the apps of one table made for one test.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startHerald, closeAllClients, eventually } from './harness.mjs';

const run = promisify(execFile);

/** Runs `statement` with psql against a postgres:// URL; resolves with stdout (unaligned, no headers). */
async function psql(url, statement) {
  return runClient('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-A', '-t', '-c', statement], {}, statement);
}

/** Runs `statement` with the mariadb/mysql client against a mysql:// URL. */
async function mysql(url, statement) {
  const u = new URL(url);
  const args = [
    `--host=${u.hostname}`, `--port=${u.port || '3306'}`, `--user=${decodeURIComponent(u.username)}`,
    '--batch', '--skip-column-names', decodeURIComponent(u.pathname.replace(/^\//, '')), '-e', statement,
  ];
  // The password through the environment keeps it off the command line.
  const env = { MYSQL_PWD: decodeURIComponent(u.password) };
  try {
    return await runClient('mariadb', args, env, statement);
  } catch (e) {
    // `mariadb` on current Debian, `mysql` elsewhere (scripts/test.sh accepts either).
    if (e.code !== 'ENOENT') throw e;
    return runClient('mysql', args, env, statement);
  }
}

async function runClient(bin, args, env, statement) {
  try {
    const { stdout } = await run(bin, args, { env: { ...process.env, ...env }, timeout: 15000 });
    return stdout.trim();
  } catch (e) {
    const err = new Error(`${bin} failed (exit ${e.code}) on ${JSON.stringify(statement)}:\n${e.stderr || e.message}`);
    err.code = e.code;
    throw err;
  }
}

/**
 * The two databases, each with its herald `driver`, URL (the same variables and defaults as
 * scripts/test.sh), `exec(sql)` through its own client, and `q(name)` quoting a column name
 * (`key` is a reserved word in MySQL).
 */
export const DATABASES = [
  {
    name: 'PostgreSQL',
    driver: 'postgres',
    url: process.env.HERALD_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    exec(statement) { return psql(this.url, statement); },
    q: (name) => `"${name}"`,
    async tableExists(table) {
      return (await this.exec(`SELECT to_regclass('${table}') IS NOT NULL`)) === 't';
    },
  },
  {
    name: 'MariaDB',
    driver: 'mysql',
    url: process.env.HERALD_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
    exec(statement) { return mysql(this.url, statement); },
    q: (name) => `\`${name}\``,
    async tableExists(table) {
      const n = await this.exec('SELECT COUNT(*) FROM information_schema.tables ' +
        `WHERE table_schema = DATABASE() AND table_name = '${table}'`);
      return n === '1';
    },
  },
];

let tables = 0;

/** A table name no other test (or concurrent run) uses: `compat_<what>_<pid>_<n>_<time>`. */
export function uniqueTable(what) {
  tables += 1;
  return `compat_${what}_${process.pid}_${tables}_${Date.now().toString(36)}`;
}

/**
 * Starts herald with `[app_store]` on a fresh table of `db` and no `[[apps]]`, waits until it
 * has created the table, runs `fn(store)` and then, whatever happened, closes every pusher-js
 * client, stops herald and drops the table. `store` = { herald, db, table, exec(sql),
 * insert(app, settingsJson), update(id, setSql) }; `{t}` in exec's SQL is the table.
 */
export async function withStoreHerald(db, what, { cacheTtl }, fn) {
  const table = uniqueTable(what);
  const exec = (statement) => db.exec(statement.replaceAll('{t}', table));
  let herald;
  try {
    herald = await startHerald({
      apps: [],
      config: { app_store: { driver: db.driver, url: db.url, table, cache_ttl: cacheTtl } },
    });
    await eventually(() => db.tableExists(table), { timeoutMs: 10000, intervalMs: 100, what: `herald to create ${db.name} table ${table}` });
    const store = {
      herald,
      db,
      table,
      exec,
      insert: (app, settings = '{}') => exec(
        `INSERT INTO {t} (id, ${db.q('key')}, secret, settings) VALUES ('${app.id}', '${app.key}', '${app.secret}', '${settings}')`,
      ),
      update: (id, set) => exec(`UPDATE {t} SET ${set} WHERE id = '${id}'`),
    };
    await fn(store);
  } finally {
    closeAllClients();
    try {
      await herald?.stop();
    } finally {
      await exec('DROP TABLE IF EXISTS {t}');
    }
  }
}
