// PROTOCOL.md 10.1 and 10.11, and 7.1 rule 8 — message quotas seen by unmodified libraries: the `pusher`
// Node SDK gets 403 with the quota message once an app used its `max_messages_per_day`, reads
// `GET /usage`, gets 429 over `max_api_requests_per_second`, and pusher-js gets `pusher:error`
// for a client event while the connection stays open.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  startHerald, client, closeAllClients, connected, subscribed, next, serverSdk, sdk, json, statusOf, eventually, sleep,
} from '../lib/harness.mjs';
import { startAuthServer, authOptions } from '../lib/auth-server.mjs';

const QUOTA = { id: 'app-quota', key: 'key-quota', secret: 'secret-quota', enable_client_messages: true, max_messages_per_day: 40 };
const RATED = { id: 'app-rated', key: 'key-rated', secret: 'secret-rated', max_api_requests_per_second: 2 };

let herald;
let pusher;
let auth;
let dataDir;

before(async () => {
  // An app with a quota makes herald keep its counts in data_dir/usage.json.
  dataDir = mkdtempSync(path.join(tmpdir(), 'herald-usage-'));
  herald = await startHerald({ apps: [QUOTA, RATED], config: { data_dir: dataDir } });
  pusher = serverSdk(herald, QUOTA);
  auth = await startAuthServer(pusher);
});

after(async () => {
  closeAllClients();
  await auth?.close();
  await herald?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('the pusher SDK gets 403 with the quota message once the day is used up; client events then get pusher:error', async () => {
  const a = client(herald, { app: QUOTA, ...authOptions(auth) });
  const b = client(herald, { app: QUOTA, ...authOptions(auth) });
  await Promise.all([connected(a), connected(b)]);
  const chA = await subscribed(a, 'private-room');
  await subscribed(b, 'private-room');

  // Each trigger: 1 request + 2 deliveries.
  const first = await json(await sdk(pusher.get({ path: '/usage' })));
  assert.equal(first.max_messages_per_day, 40);
  assert.equal(first.connections, 2);
  assert.match(first.date, /^\d{4}-\d{2}-\d{2}$/);
  assert.equal(first.hourly.length, 24);
  let accepted = 0;
  let refusal;
  for (let i = 0; i < 40 && !refusal; i++) {
    try {
      await pusher.trigger('private-room', 'tick', { i });
      accepted++;
    } catch (e) {
      refusal = e;
    }
  }
  assert.ok(refusal, 'the quota applied');
  assert.equal(refusal.status, 403, `got ${refusal.status}: ${refusal.body}`);
  assert.match(refusal.body, /over its message quota/);
  assert.equal(accepted, 13, '1 usage request, then 3 per trigger: the 13th starts at 37');

  const report = await json(await sdk(pusher.get({ path: '/usage' })));
  assert.ok(report.messages >= 40, JSON.stringify(report));
  assert.equal(report.hourly.reduce((x, y) => x + y, 0), report.messages);

  // The node's flusher sees the quota within a second.
  await sleep(1200);
  const err = next(a.connection, 'error', 5000, (e) => e?.type === 'PusherError');
  chA.trigger('client-typing', { on: true });
  const { data } = await err;
  assert.equal(data.data.code, null);
  assert.match(data.data.message, /message quota/);
  assert.equal(a.connection.state, 'connected', 'the connection stays open');
  a.disconnect();
  b.disconnect();
});

test('the pusher SDK gets 429 over max_api_requests_per_second, then succeeds after Retry-After', async () => {
  const rated = serverSdk(herald, RATED);
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push(await statusOf(rated.trigger('news', 'tick', {})));
  assert.deepEqual(statuses, [200, 200, 429]);
  await eventually(async () => (await statusOf(rated.trigger('news', 'tick', {}))) === 200,
    { timeoutMs: 3000, intervalMs: 600, what: 'a token after the refill' });
});
