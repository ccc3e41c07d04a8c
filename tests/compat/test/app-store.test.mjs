// docs/OPERATIONS.md "App store" and "Caching and outages" — apps that are rows of a PostgreSQL
// or MariaDB table, written with psql / mariadb (never through herald), used by the real client
// libraries: pusher-js, the `pusher` Node SDK and pusher-http-python. Each test has its own table,
// dropped at its end, and its own herald with `[app_store]` and no `[[apps]]`.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  client, connected, subscribed, next, serverSdk, sdk, json, withTimeout, eventually, COMPAT_DIR,
  errorWithCode, refusedWith, statusOf, signedBy,
} from '../lib/harness.mjs';
import { startAuthServer, authOptions } from '../lib/auth-server.mjs';
import { DATABASES, withStoreHerald } from '../lib/sql-store.mjs';

const runFile = promisify(execFile);
const PY_DIR = path.join(COMPAT_DIR, 'python');
const PYTHON = process.env.HERALD_PYTHON ?? path.join(PY_DIR, '.venv', 'bin', 'python');

/** pusher-http-python (python/sdk_roundtrip.py) as app `app` of `herald`. */
async function python(herald, app, ...args) {
  if (!existsSync(PYTHON)) {
    throw new Error(`python venv missing at ${PYTHON}: run scripts/test.sh (it builds tests/compat/python/.venv)`);
  }
  const env = {
    ...process.env,
    HERALD_HOST: herald.host, HERALD_PORT: String(herald.port), APP_ID: app.id, APP_KEY: app.key, APP_SECRET: app.secret,
  };
  try {
    const { stdout } = await runFile(PYTHON, [path.join(PY_DIR, 'sdk_roundtrip.py'), ...args], { env, timeout: 20000 });
    return JSON.parse(stdout);
  } catch (e) {
    throw new Error(`python ${args.join(' ')} failed (exit ${e.code}):\n${e.stderr ?? ''}\n${e.stdout ?? ''}`);
  }
}

for (const db of DATABASES) {
  describe(db.name, () => {
    test('a row inserted with SQL serves pusher-js, the Node SDK and the Python SDK, settings applied', async () => {
      // pusher-http-python accepts only numeric app ids
      const app = { id: '4242', key: 'store-key-1', secret: 'store-secret-1' };
      // a long cache_ttl: only herald's immediate lookup of an unknown key can find the new row
      await withStoreHerald(db, 'serves', { cacheTtl: 300 }, async (store) => {
        await store.insert(app, '{"enable_client_messages": true}');
        const pusher = serverSdk(store.herald, app);
        const auth = await startAuthServer(pusher);
        try {
          const a = client(store.herald, { app, ...authOptions(auth) });
          const b = client(store.herald, { app, ...authOptions(auth) });
          await Promise.all([connected(a), connected(b)]);
          const pub = await subscribed(a, 'news');
          const priv = await subscribed(a, 'private-orders');
          const privB = await subscribed(b, 'private-orders');

          const gotPub = next(pub, 'from-node');
          const gotPriv = next(priv, 'from-node');
          assert.deepEqual(await json(await sdk(pusher.trigger(['news', 'private-orders'], 'from-node', { n: 1 }))), {});
          assert.deepEqual((await gotPub).data, { n: 1 });
          assert.deepEqual((await gotPriv).data, { n: 1 });

          // settings.enable_client_messages from the row's JSON is in force
          const whisper = next(privB, 'client-typing');
          assert.ok(priv.trigger('client-typing', { from: 'a' }), 'pusher-js sent the client event');
          assert.deepEqual((await whisper).data, { from: 'a' });

          const gotPy = next(pub, 'from-python', 20000);
          assert.deepEqual(await python(store.herald, app, 'trigger', 'news', 'from-python', '{"lang": "python"}'), {});
          assert.deepEqual((await gotPy).data, { lang: 'python' });
        } finally {
          await auth.close();
        }
      });
    });

    test('a row disabled with SQL closes its pusher-js clients with 4003 and refuses new work', async () => {
      const app = { id: 'off', key: 'store-key-off', secret: 'store-secret-off' };
      await withStoreHerald(db, 'disabled', { cacheTtl: 1 }, async (store) => {
        await store.insert(app);
        const pusher = serverSdk(store.herald, app);
        const c = client(store.herald, { app });
        await connected(c);
        await subscribed(c, 'news');
        assert.equal(await statusOf(pusher.trigger('news', 'before', {})), 200);

        const closed = errorWithCode(c, 4003, 5000, 'the connected client to get 4003 after the row is disabled');
        await store.update(app.id, 'enabled = false');
        await closed;
        await eventually(() => c.connection.state === 'disconnected',
          { what: `pusher-js to stop after 4003 (state ${c.connection.state})` });

        await refusedWith(store.herald, app, 4003);
        assert.equal(await statusOf(pusher.trigger('news', 'after', {})), 403);
      });
    });

    test('a secret rotated with SQL applies within cache_ttl, on a pusher-js connection opened before', async () => {
      const app = { id: 'rot', key: 'store-key-rot', secret: 'old-secret' };
      const rotatedApp = { ...app, secret: 'new-secret' };
      await withStoreHerald(db, 'rotated', { cacheTtl: 1 }, async (store) => {
        await store.insert(app);
        const old = serverSdk(store.herald, app);
        const rotated = serverSdk(store.herald, rotatedApp);
        let signer = old;
        const c = client(store.herald, { app, ...signedBy(() => signer) });
        const socketId = await connected(c);
        const states = [];
        c.connection.bind('state_change', (s) => states.push(s.current));
        const before = await subscribed(c, 'private-before');

        await store.update(app.id, `secret = '${rotatedApp.secret}'`);
        const started = Date.now();
        await eventually(async () => (await statusOf(old.trigger('news', 'probe', {}))) === 401,
          { timeoutMs: 3000, intervalMs: 100, what: 'the old secret to be refused with 401 (cache_ttl = 1 s)' });
        const elapsed = Date.now() - started;

        const got = next(before, 'rotated');
        assert.equal(await statusOf(rotated.trigger('private-before', 'rotated', { v: 2 })), 200);
        assert.deepEqual((await got).data, { v: 2 });

        // a subscription signed with the old secret is refused, with the new one accepted, on the same socket
        const refused = withTimeout(new Promise((resolve) => {
          c.connection.bind('error', (e) => { if (e?.type === 'PusherError' && /^Invalid signature/.test(e.data?.message)) resolve(e); });
        }), 5000, 'pusher:error for a subscription signed with the old secret');
        c.subscribe('private-old-signature');
        await refused;
        signer = rotated;
        const after = await subscribed(c, 'private-after');
        const gotAfter = next(after, 'signed-new');
        assert.equal(await statusOf(rotated.trigger('private-after', 'signed-new', {})), 200);
        await gotAfter;

        assert.equal(c.connection.state, 'connected');
        assert.equal(c.connection.socket_id, socketId, 'the client did not reconnect');
        assert.deepEqual(states, [], `no state change after the rotation (old secret refused after ${elapsed} ms)`);
      });
    });

    test('a row with an invalid setting is refused with 4001 and another row of the table works', async () => {
      const bad = { id: 'bad', key: 'store-key-bad', secret: 'bad-secret' };
      const good = { id: 'good', key: 'store-key-good', secret: 'good-secret' };
      await withStoreHerald(db, 'invalid', { cacheTtl: 1 }, async (store) => {
        await store.insert(bad, '{"max_connections": "many"}');
        await store.insert(good, '{}');
        await refusedWith(store.herald, bad, 4001);
        assert.equal(await statusOf(serverSdk(store.herald, bad).trigger('news', 'x', {})), 404);

        const c = client(store.herald, { app: good });
        await connected(c);
        const ch = await subscribed(c, 'news');
        const got = next(ch, 'still-served');
        assert.equal(await statusOf(serverSdk(store.herald, good).trigger('news', 'still-served', { ok: true })), 200);
        assert.deepEqual((await got).data, { ok: true });

        // the refresh logs the bad row, naming the app and the key
        await eventually(() => /"bad".*settings\.max_connections/.test(store.herald.output().stdout + store.herald.output().stderr),
          { timeoutMs: 5000, intervalMs: 100, what: 'a log line naming app "bad" and settings.max_connections' });
      });
    });
  });
}
