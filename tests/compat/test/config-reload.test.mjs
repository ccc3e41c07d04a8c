// docs/OPERATIONS.md "Reloading the configuration (SIGHUP)" — the config file rewritten and
// SIGHUP sent to the running herald, observed by pusher-js clients and the `pusher` Node SDK:
// an added app works, a rotated secret applies on connections opened before, a disabled app's
// clients get 4003, every other connection stays open, and a broken file changes nothing.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import {
  startHerald, toToml, client, closeAllClients, connected, subscribed, next, serverSdk, eventually,
  errorWithCode, refusedWith, statusOf, signedBy,
} from '../lib/harness.mjs';

const A = { id: 'reload-a', key: 'reload-a-key', secret: 'a-secret-1' };
const B = { id: 'reload-b', key: 'reload-b-key', secret: 'b-secret' };
const C = { id: 'reload-c', key: 'reload-c-key', secret: 'c-secret' };

let herald;

afterEach(async () => {
  closeAllClients();
  await herald?.stop();
  herald = undefined;
});

/** herald_config_reloads_total{result} from /metrics (0 before the first reload). */
async function reloads(result) {
  const text = await (await fetch(`${herald.httpUrl}/metrics`)).text();
  const m = new RegExp(`^herald_config_reloads_total\\{result="${result}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** Writes `text` over herald's config file, sends SIGHUP and waits until herald counted the reload as `result`. */
async function reload(text, result) {
  const before = await reloads(result);
  writeFileSync(herald.configPath, text);
  process.kill(herald.child.pid, 'SIGHUP');
  await eventually(async () => (await reloads(result)) > before,
    { timeoutMs: 5000, intervalMs: 50, what: `herald_config_reloads_total{result="${result}"} to grow` });
}

/** The file startHerald writes (host, port 0, activity_timeout), with these apps. */
const configWith = (apps) => toToml({ host: '127.0.0.1', port: 0, activity_timeout: 120, apps });

/** `n` connected pusher-js clients of `app`, each recording its state changes and errors after connecting. */
async function connectMany(app, n, opts = {}) {
  const clients = Array.from({ length: n }, () => client(herald, { app, ...opts }));
  await Promise.all(clients.map((c) => connected(c)));
  return clients.map((c) => {
    const states = [];
    c.connection.bind('state_change', (s) => states.push(s.current));
    return { c, socketId: c.connection.socket_id, states };
  });
}

test('SIGHUP applies a new app, a rotated secret and a disabled app; the other connections stay open', async () => {
  herald = await startHerald({ apps: [A, B] });
  const rotatedA = { ...A, secret: 'a-secret-2' };
  const oldSdk = serverSdk(herald, A);
  const newSdk = serverSdk(herald, rotatedA);
  let signer = oldSdk;
  const as = await connectMany(A, 4, signedBy(() => signer));
  const bs = await connectMany(B, 3);
  const channels = await Promise.all(as.map(({ c }) => subscribed(c, 'news')));
  await Promise.all(bs.map(({ c }) => subscribed(c, 'news')));
  const beforePrivate = await subscribed(as[0].c, 'private-before');
  assert.equal(await statusOf(oldSdk.trigger('news', 'before', {})), 200);
  await refusedWith(herald, C, 4001);

  const bClosed = bs.map(({ c }) => errorWithCode(c, 4003, 5000, 'a client of the disabled app B to get 4003'));
  await reload(configWith([rotatedA, { ...B, enabled: false }, C]), 'ok');
  await Promise.all(bClosed);
  await eventually(() => bs.every(({ c }) => c.connection.state === 'disconnected'),
    { what: 'every client of B to stop after 4003' });
  await refusedWith(herald, B, 4003);
  assert.equal(await statusOf(serverSdk(herald, B).trigger('news', 'x', {})), 403, 'B\'s API refused');

  // A: the old secret is refused, the new one reaches every client, on their open connections
  assert.equal(await statusOf(oldSdk.trigger('news', 'old-secret', {})), 401);
  const got = channels.map((ch) => next(ch, 'rotated'));
  assert.equal(await statusOf(newSdk.trigger('news', 'rotated', { secret: 2 })), 200);
  for (const { data } of await Promise.all(got)) assert.deepEqual(data, { secret: 2 });
  const gotPrivate = next(beforePrivate, 'private-rotated');
  assert.equal(await statusOf(newSdk.trigger('private-before', 'private-rotated', {})), 200);
  await gotPrivate;
  signer = newSdk;
  await subscribed(as[1].c, 'private-after');

  // C, added by the reload, serves pusher-js and its API
  const [{ c: cClient }] = await connectMany(C, 1);
  const cChannel = await subscribed(cClient, 'news');
  const gotC = next(cChannel, 'hello-c');
  assert.equal(await statusOf(serverSdk(herald, C).trigger('news', 'hello-c', { app: 'c' })), 200);
  assert.deepEqual((await gotC).data, { app: 'c' });

  for (const { c, socketId, states } of as) {
    assert.equal(c.connection.state, 'connected');
    assert.equal(c.connection.socket_id, socketId, 'a client of A did not reconnect');
    assert.deepEqual(states, [], 'no state change (no disconnect) on a client of A');
  }
});

test('SIGHUP with a file that does not validate changes nothing', async () => {
  herald = await startHerald({ apps: [A, B] });
  const sdkA = serverSdk(herald, A);
  const [a] = await connectMany(A, 1, signedBy(() => sdkA));
  const ch = await subscribed(a.c, 'news');

  // a rotated secret and a new app, in a file where one value is invalid: none of it applies
  const broken = configWith([{ ...A, secret: 'never-applied' }, { ...B, max_connections: 'many' }, C]);
  await reload(broken, 'error');
  assert.match(herald.output().stdout + herald.output().stderr, /config reload failed.*max_connections/,
    'the error names the key');

  const got = next(ch, 'unchanged');
  assert.equal(await statusOf(sdkA.trigger('news', 'unchanged', { ok: true })), 200);
  assert.deepEqual((await got).data, { ok: true });
  assert.equal(await statusOf(serverSdk(herald, { ...A, secret: 'never-applied' }).trigger('news', 'x', {})), 401);
  await subscribed(a.c, 'private-still-signed-with-a-secret-1');
  const [b] = await connectMany(B, 1);
  assert.equal(b.c.connection.state, 'connected');
  await refusedWith(herald, C, 4001);

  // and an unparsable file the same
  await reload('this is [not toml', 'error');
  assert.equal(await statusOf(sdkA.trigger('news', 'x', {})), 200);
  assert.equal(a.c.connection.state, 'connected');
  assert.equal(a.c.connection.socket_id, a.socketId);
  assert.deepEqual(a.states, []);
});
