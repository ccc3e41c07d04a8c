// Test harness: starts a real herald binary with a temporary TOML config and
// hands out real clients (pusher-js, the `pusher` Node server SDK) wired to it.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import PusherClient from 'pusher-js';
import PusherServer from 'pusher';

const here = path.dirname(fileURLToPath(import.meta.url));
export const COMPAT_DIR = path.resolve(here, '..');
export const REPO_ROOT = path.resolve(COMPAT_DIR, '..', '..');

/** Path of the herald binary: $HERALD_BIN, else ../../target/debug/herald relative to tests/compat. */
export function heraldBin() {
  const p = process.env.HERALD_BIN
    ? path.resolve(process.cwd(), process.env.HERALD_BIN)
    : path.resolve(COMPAT_DIR, '..', '..', 'target', 'debug', 'herald');
  if (!existsSync(p)) {
    throw new Error(`herald binary not found at ${p} (build it with \`cargo build -p herald\` or set HERALD_BIN)`);
  }
  return p;
}

export const DEFAULT_APP = Object.freeze({
  id: 'app-id',
  key: 'app-key',
  secret: 'app-secret',
  enable_client_messages: true,
});

// ---------------------------------------------------------------- TOML

function tomlValue(v) {
  if (typeof v === 'string') return JSON.stringify(v); // JSON string escapes are valid TOML basic strings
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  throw new Error(`unsupported TOML value ${JSON.stringify(v)}`);
}

const isTable = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Serialise a config: top-level scalars, then each plain-object value as a `[name]` table of
 * scalars (e.g. `app_store: { driver, url, table, cache_ttl }`), then `apps` (array of flat
 * tables, each an `[[apps]]`; none when `apps` is empty or missing).
 */
export function toToml(config) {
  const lines = [];
  for (const [k, v] of Object.entries(config)) {
    if (k === 'apps' || v === undefined || isTable(v)) continue;
    lines.push(`${k} = ${tomlValue(v)}`);
  }
  for (const [name, table] of Object.entries(config)) {
    if (name === 'apps' || !isTable(table)) continue;
    lines.push('', `[${name}]`);
    for (const [k, v] of Object.entries(table)) {
      if (v === undefined) continue;
      lines.push(`${k} = ${tomlValue(v)}`);
    }
  }
  for (const app of config.apps ?? []) {
    lines.push('', '[[apps]]');
    for (const [k, v] of Object.entries(app)) {
      if (v === undefined) continue;
      lines.push(`${k} = ${tomlValue(v)}`);
    }
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------- herald process

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

/**
 * Start herald. Options:
 *   apps: array of app tables (default [DEFAULT_APP]); `[]` writes no `[[apps]]` at all (for a
 *     server whose apps come from an `[app_store]` table; `server.app` is then undefined)
 *   config: extra top-level keys (activity_timeout, ...); an object value is written as a table
 *     (`config: { app_store: { driver: 'postgres', url, table, cache_ttl: 1 } }`)
 *   host: bind host (default 127.0.0.1), port: (default 0 = OS picks)
 *   extraToml: raw TOML text appended after the generated config (e.g. an `[adapter]` table,
 *     or `[[apps.webhooks]]` tables, which attach to the last `[[apps]]`)
 *   env: extra environment variables for the herald process
 *   tls: { certFile, keyFile } — serve wss:// and https:// with this pair (a `[tls]` table)
 * Returns { host, port, httpUrl, tls, apps, app, child, exited, dir, configPath, stop(), output() }
 * (`httpUrl` is https://… with `tls`; `exited` resolves with { code, signal } when the process
 * ends; `dir` is its temp dir and `configPath` the config file in it, which a test may rewrite
 * before sending SIGHUP).
 */
export async function startHerald({ apps = [DEFAULT_APP], config = {}, host = '127.0.0.1', port = 0, startTimeoutMs = 15000, extraToml = '', env = {}, tls } = {}) {
  const bin = heraldBin();
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-compat-'));
  const cfgPath = path.join(dir, 'herald.toml');
  const tlsToml = tls ? `[tls]\ncert_file = ${tomlValue(tls.certFile)}\nkey_file = ${tomlValue(tls.keyFile)}\n` : '';
  writeFileSync(cfgPath, toToml({ host, port, activity_timeout: 120, ...config, apps }) + (extraToml ? `\n${extraToml}\n` : '') +
    (tlsToml ? `\n${tlsToml}` : ''));

  const child = spawn(bin, ['--config', cfgPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { RUST_LOG: process.env.RUST_LOG ?? 'info', ...process.env, ...env },
  });
  live.add(child);
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stdout.setEncoding('utf8');
  child.stderr.on('data', (d) => { err += d; if (err.length > 200_000) err = err.slice(-100_000); });

  const exited = new Promise((resolve) => child.once('exit', (code, signal) => { live.delete(child); resolve({ code, signal }); }));

  const listening = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`herald did not print "herald listening on http(s)://HOST:PORT" within ${startTimeoutMs} ms.\n` +
        `config:\n${toToml({ host, port, ...config, apps })}\nstdout:\n${out}\nstderr:\n${err.slice(-4000)}`));
    }, startTimeoutMs);
    const onData = (d) => {
      out += d;
      const m = /herald listening on https?:\/\/(\[[^\]]+\]|[^\s:/]+):(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        // keep draining stdout so the pipe never fills up
        child.stdout.on('data', (more) => { out += more; if (out.length > 200_000) out = out.slice(-100_000); });
        resolve({ host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) });
      }
    };
    child.stdout.on('data', onData);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`herald exited (code ${code}, signal ${signal}) before listening.\nconfig:\n` +
        `${toToml({ host, port, ...config, apps })}\nstdout:\n${out}\nstderr:\n${err.slice(-4000)}`));
    });
  });

  const server = {
    host: listening.host,
    port: listening.port,
    httpUrl: `${tls ? 'https' : 'http'}://${listening.host}:${listening.port}`,
    tls: Boolean(tls),
    apps,
    app: apps[0],
    child,
    exited,
    dir,
    configPath: cfgPath,
    output: () => ({ stdout: out, stderr: err }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, 3000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
      // Bad input must never panic the server (issue "herald core", bad input): every test
      // file that stops its herald fails if the log shows a panic.
      if (/panicked at/.test(err)) {
        throw new Error(`herald logged a panic:\n${err.slice(-4000)}`);
      }
    },
  };
  return server;
}

// ---------------------------------------------------------------- clients

/** The `pusher` Node server SDK configured for one app of a running herald. */
export function serverSdk(server, app = server.app, extra = {}) {
  return new PusherServer({
    appId: app.id,
    key: app.key,
    secret: app.secret,
    host: server.host,
    port: String(server.port),
    useTLS: false,
    ...extra,
  });
}

const openClients = new Set();
// The WebSocket (faye-websocket) of every connection the clients opened, for closeAllClients.
const openSockets = new Set();

/** A pusher-js (Node build) client. Call `closeAllClients()` (or client.disconnect()) at the end. */
export function client(server, { app = server.app, ...opts } = {}) {
  const c = new PusherClient(app.key, {
    wsHost: server.host,
    wsPort: server.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    cluster: 'mt1',
    disableStats: true,
    ...opts,
  });
  openClients.add(c);
  c.connection.bind('connected', () => {
    const socket = c.connection.connection?.transport?.socket;
    if (socket) openSockets.add(socket);
  });
  return c;
}

export function closeAllClients() {
  for (const c of openClients) {
    try { c.disconnect(); } catch { /* ignore */ }
  }
  openClients.clear();
  // When the server closes an established connection with a "refused" code (4000-4099, e.g.
  // 4003), pusher-js answers the close by calling close() on the already closed faye-websocket,
  // which arms a 30 s close timer nothing clears: it would keep this test file's process alive
  // for 30 s after its last test. Unref'ing it changes nothing else (the socket is closed).
  for (const socket of openSockets) socket._closeTimer?.unref?.();
  openSockets.clear();
}

// ---------------------------------------------------------------- waiting helpers

export function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

/**
 * Keeps `n` worker threads spinning (a busy machine) until the returned function is called:
 * races that need a loaded machine to show up get one.
 */
export function busyCpu(n = 2) {
  const spin = '(function spin() { const t = Date.now(); while (Date.now() - t < 50); setImmediate(spin); })();';
  const workers = Array.from({ length: n }, () => new Worker(spin, { eval: true }));
  return async () => { await Promise.all(workers.map((w) => w.terminate())); };
}

/**
 * Signs `c` in and, in the same tick as its `pusher:signin_success` arrives, has `sender` (a
 * `pusher` server SDK) send `user_id` one `notice` event, as a backend that greets a user the
 * moment they sign in does. Resolves with the event's data on `c.user`; rejects after `ms`.
 */
export function signinThenSendToUser(c, userId, sender, ms = 5000) {
  const got = next(c.user, 'notice', ms);
  const onMessage = (m) => {
    if (m.event !== 'pusher:signin_success') return;
    c.connection.unbind('message', onMessage);
    sender.sendToUser(userId, 'notice', { to: userId }).catch(() => {});
  };
  c.connection.bind('message', onMessage);
  c.signin();
  return got.then(({ data }) => data);
}

/**
 * `rounds` × `perRound` sign-ins, each greeted at once through `sender` (signinThenSendToUser),
 * `perRound` at a time, with two CPU-bound threads running. `connect(userId)` returns a new
 * pusher-js client that can sign in as `userId`. Resolves with the greetings that never
 * arrived (an empty array when none was lost).
 */
export async function greetEverySignin({ rounds, perRound, connect, sender }) {
  const stopBusy = busyCpu(2);
  const lost = [];
  try {
    for (let round = 0; round < rounds; round += 1) {
      await Promise.all(Array.from({ length: perRound }, async (_, i) => {
        const userId = `greet-${round}-${i}`;
        const c = connect(userId);
        try {
          await connected(c, 10000);
          const data = await signinThenSendToUser(c, userId, sender, 10000);
          if (data?.to !== userId) lost.push(`${userId}: got ${JSON.stringify(data)}`);
        } catch (e) {
          lost.push(`${userId}: ${e.message}`);
        } finally {
          c.disconnect();
        }
      }));
    }
  } finally {
    await stopBusy();
  }
  return lost;
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolve when the pusher-js client is connected; returns its socket_id. */
export function connected(c, ms = 5000) {
  if (c.connection.state === 'connected') return Promise.resolve(c.connection.socket_id);
  return withTimeout(new Promise((resolve, reject) => {
    const onState = ({ current }) => {
      if (current === 'connected') { c.connection.unbind('state_change', onState); resolve(c.connection.socket_id); }
      if (current === 'failed' || current === 'unavailable') {
        c.connection.unbind('state_change', onState);
        reject(new Error(`connection went ${current}`));
      }
    };
    c.connection.bind('state_change', onState);
  }), ms, `pusher-js connection to reach "connected" (state now ${c.connection.state})`);
}

/** Subscribe and resolve on pusher:subscription_succeeded (with its data); reject on subscription_error. */
export function subscribed(c, channelName, ms = 5000) {
  const ch = c.subscribe(channelName);
  return withTimeout(new Promise((resolve, reject) => {
    ch.bind('pusher:subscription_succeeded', (data) => resolve(ch));
    ch.bind('pusher:subscription_error', (e) => reject(new Error(`subscription_error on ${channelName}: ${JSON.stringify(e)}`)));
  }), ms, `pusher:subscription_succeeded on ${channelName}`);
}

/** Resolve with the next `event` on `bindable` (channel, connection, members...). */
export function next(bindable, event, ms = 5000, filter = () => true) {
  return withTimeout(new Promise((resolve) => {
    const fn = (data, metadata) => {
      if (!filter(data, metadata)) return;
      bindable.unbind(event, fn);
      resolve({ data, metadata });
    };
    bindable.bind(event, fn);
  }), ms, `event "${event}"`);
}

/** Record every event of a channel (bind_global) into an array. */
export function record(channel) {
  const events = [];
  channel.bind_global((event, data) => { events.push({ event, data }); });
  return events;
}

/**
 * Wait until an HTTP-visible condition holds (e.g. herald has registered a subscription).
 * Polls `fn` until it returns a truthy value.
 */
export async function eventually(fn, { timeoutMs = 3000, intervalMs = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last result: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await sleep(intervalMs);
  }
}

/** The close code a pusher-js `error` event carries (handshake refusal or `pusher:error`). */
export const errorCode = (e) => e?.error?.data?.code ?? e?.data?.code;

/** Resolves with the first pusher-js `error` event of `c` carrying `code`; rejects after `ms`. */
export function errorWithCode(c, code, ms = 5000, what = `an error with code ${code}`) {
  return withTimeout(new Promise((resolve) => {
    const fn = (e) => {
      if (errorCode(e) !== code) return;
      c.connection.unbind('error', fn);
      resolve(e);
    };
    c.connection.bind('error', fn);
  }), ms, what);
}

/**
 * A new pusher-js client of `app` is refused with `code` (4001, 4003, ...) and gives up: it
 * ends "disconnected" without a socket id, and never went back to "connecting".
 */
export async function refusedWith(server, app, code, ms = 5000) {
  const c = client(server, { app });
  const states = [];
  c.connection.bind('state_change', (s) => states.push(s.current));
  try {
    await errorWithCode(c, code, ms, `a new pusher-js connection with key ${app.key} to be refused with ${code}`);
    await eventually(() => c.connection.state === 'disconnected',
      { what: `the refused client to stop (${states.join(' -> ')})` });
    // pusher-js went "connecting" in its constructor, before `states` was bound
    if (c.connection.socket_id !== undefined || states.includes('connecting')) {
      throw new Error(`refused client reconnected: ${states.join(' -> ')}, socket_id ${c.connection.socket_id}`);
    }
  } finally {
    c.disconnect();
  }
}

/** The HTTP status a `pusher` SDK request ends with (200, or the RequestError's status). */
export async function statusOf(request) {
  try {
    return (await request).status;
  } catch (e) {
    if (e?.status === undefined) throw e;
    return e.status;
  }
}

/**
 * pusher-js options whose channel authorization is signed by whichever `pusher` SDK `signer()`
 * returns at that moment (its authorizeChannel): a backend whose secret can be rotated.
 */
export function signedBy(signer) {
  return {
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => {
        try {
          callback(null, signer().authorizeChannel(socketId, channelName));
        } catch (e) {
          callback(e, null);
        }
      },
    },
  };
}

/** Read a JSON body from a `pusher` SDK response (fetch Response). */
export async function json(res) {
  const text = await res.text();
  assertStatus(res, 200, text);
  try { return JSON.parse(text); } catch { throw new Error(`expected JSON body, got ${JSON.stringify(text)}`); }
}

function assertStatus(res, status, body) {
  if (res.status !== status) throw new Error(`expected HTTP ${status}, got ${res.status}: ${body}`);
}

/** Run an SDK request; on RequestError include status and body in the thrown message. */
export async function sdk(promise) {
  try {
    return await promise;
  } catch (e) {
    if (e && e.status !== undefined) {
      throw new Error(`server SDK request failed: HTTP ${e.status} ${e.body ?? ''} (${e.url ?? ''})`);
    }
    throw e;
  }
}
