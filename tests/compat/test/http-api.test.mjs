// PROTOCOL.md 10.3–10.7 — HTTP queries made with the `pusher` Node server SDK while real
// pusher-js clients hold subscriptions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startHerald, client, closeAllClients, connected, subscribed, serverSdk, sdk, json,
} from '../lib/harness.mjs';
import { startAuthServer, authOptions } from '../lib/auth-server.mjs';

let herald;
let pusher;
let auth;

before(async () => {
  herald = await startHerald();
  pusher = serverSdk(herald);
  auth = await startAuthServer(pusher);
  // Fixture: two presence members (u-1 twice + u-2 → 3 connections, 2 users), public and private channels.
  const u1 = client(herald, authOptions(auth, { user_id: 'u-1', user_name: 'Ada' }));
  const u1b = client(herald, authOptions(auth, { user_id: 'u-1', user_name: 'Ada' }));
  const u2 = client(herald, authOptions(auth, { user_id: 'u-2', user_name: 'Bob' }));
  const plain = client(herald, authOptions(auth));
  await Promise.all([u1, u1b, u2, plain].map((c) => connected(c)));
  await Promise.all([
    subscribed(u1, 'presence-lobby'), subscribed(u1b, 'presence-lobby'), subscribed(u2, 'presence-lobby'),
    subscribed(u2, 'presence-other'),
    subscribed(plain, 'news'), subscribed(plain, 'news-sports'), subscribed(u1, 'news-sports'),
    subscribed(plain, 'private-x'),
  ]);
});

after(async () => {
  closeAllClients();
  await auth?.close();
  await herald?.stop();
});

const get = async (path, params) => json(await sdk(pusher.get({ path, params })));

test('GET /channels lists every occupied channel', async () => {
  const r = await get('/channels');
  assert.deepEqual(Object.keys(r.channels).sort(),
    ['news', 'news-sports', 'presence-lobby', 'presence-other', 'private-x']);
  for (const v of Object.values(r.channels)) assert.deepEqual(v, {});
});

test('GET /channels with filter_by_prefix returns only matching channels', async () => {
  assert.deepEqual(await get('/channels', { filter_by_prefix: 'news' }),
    { channels: { news: {}, 'news-sports': {} } });
  assert.deepEqual(await get('/channels', { filter_by_prefix: 'nothing-here-' }), { channels: {} });
});

test('GET /channels with filter_by_prefix=presence- and info=user_count counts distinct users', async () => {
  assert.deepEqual(await get('/channels', { filter_by_prefix: 'presence-', info: 'user_count' }),
    { channels: { 'presence-lobby': { user_count: 2 }, 'presence-other': { user_count: 1 } } });
});

test('GET /channels with info=user_count on a non-presence prefix is a 400', async () => {
  await assert.rejects(pusher.get({ path: '/channels', params: { info: 'user_count' } }),
    (e) => { assert.equal(e.status, 400, `got ${e.status}: ${e.body}`); return true; });
});

test('GET /channels/{presence} with info=user_count,subscription_count', async () => {
  assert.deepEqual(await get('/channels/presence-lobby', { info: 'user_count,subscription_count' }),
    { occupied: true, user_count: 2, subscription_count: 3 });
});

test('GET /channels/{public} with info=subscription_count, and an empty channel', async () => {
  assert.deepEqual(await get('/channels/news-sports', { info: 'subscription_count' }),
    { occupied: true, subscription_count: 2 });
  assert.deepEqual(await get('/channels/news'), { occupied: true });
  const empty = await get('/channels/nobody-here');
  assert.equal(empty.occupied, false);
});

test('GET /channels/{presence}/users lists member ids as strings', async () => {
  const r = await get('/channels/presence-lobby/users');
  assert.deepEqual(r.users.map((u) => u.id).sort(), ['u-1', 'u-2']);
  for (const u of r.users) assert.equal(typeof u.id, 'string');
  assert.deepEqual(await get('/channels/presence-empty/users'), { users: [] });
});

test('GET /channels/{non-presence}/users is a 400', async () => {
  await assert.rejects(pusher.get({ path: '/channels/news/users' }),
    (e) => { assert.equal(e.status, 400, `got ${e.status}: ${e.body}`); return true; });
});

test('trigger with info returns per-channel counts', async () => {
  const r = await json(await sdk(pusher.trigger(['presence-lobby', 'news'], 'counted', { x: 1 },
    { info: 'user_count,subscription_count' })));
  assert.deepEqual(r, {
    channels: {
      'presence-lobby': { user_count: 2, subscription_count: 3 },
      news: { subscription_count: 1 },
    },
  });
});

test('triggerBatch with info returns one entry per event in order', async () => {
  const r = await json(await sdk(pusher.triggerBatch([
    { channel: 'news', name: 'a', data: '1' },
    { channel: 'presence-lobby', name: 'b', data: '2', info: 'user_count' },
  ])));
  assert.deepEqual(r, { batch: [{}, { user_count: 2 }] });
});

test('a request signed with the wrong secret is a 401', async () => {
  const wrong = serverSdk(herald, { ...herald.app, secret: 'wrong-secret' });
  await assert.rejects(wrong.trigger('news', 'x', {}),
    (e) => { assert.equal(e.status, 401, `got ${e.status}: ${e.body}`); return true; });
  await assert.rejects(wrong.get({ path: '/channels' }),
    (e) => { assert.equal(e.status, 401, `got ${e.status}: ${e.body}`); return true; });
});

test('a batch of 11 events is a 400 and 10 241 bytes of data is a 413', async () => {
  const batch = Array.from({ length: 11 }, (_, i) => ({ channel: 'news', name: 'n', data: String(i) }));
  await assert.rejects(pusher.triggerBatch(batch),
    (e) => { assert.equal(e.status, 400, `got ${e.status}: ${e.body}`); return true; });
  await assert.rejects(pusher.post({ path: '/events', body: { name: 'big', channels: ['news'], data: 'x'.repeat(10241) } }),
    (e) => { assert.equal(e.status, 413, `got ${e.status}: ${e.body}`); return true; });
  const ok = await json(await sdk(pusher.post({ path: '/events', body: { name: 'big', channels: ['news'], data: 'x'.repeat(10240) } })));
  assert.deepEqual(ok, {});
});
