// PROTOCOL.md 15 item 7 — laravel-echo (pusher broadcaster, pusher-js underneath) against herald,
// configured the way a Laravel app does it (authEndpoint, App.Events namespace).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Echo from 'laravel-echo';
import PusherClient from 'pusher-js';
import {
  startHerald, serverSdk, sdk, withTimeout, connected,
} from '../lib/harness.mjs';
import { startAuthServer, echoOptions } from '../lib/auth-server.mjs';

let herald;
let pusher;
let auth;
const echos = [];

before(async () => {
  herald = await startHerald();
  pusher = serverSdk(herald);
  auth = await startAuthServer(pusher);
});

after(async () => {
  for (const e of echos) e.disconnect();
  await auth?.close();
  await herald?.stop();
});

function echo(params = {}) {
  const e = new Echo({ ...echoOptions(herald, auth, params), Pusher: PusherClient });
  echos.push(e);
  return e;
}

const once = (register, what, ms = 5000) => withTimeout(new Promise((resolve) => register(resolve)), ms, what);

test('Echo.private().listen() receives a Laravel broadcast event name (App\\Events\\OrderShipped)', async () => {
  const e = echo();
  await connected(e.connector.pusher);
  const ch = e.private('orders.7');
  await once((r) => ch.subscribed(r), 'Echo private channel subscribed');
  const got = once((r) => ch.listen('OrderShipped', r), 'OrderShipped');
  await sdk(pusher.trigger('private-orders.7', 'App\\Events\\OrderShipped', { order: { id: 7 } }));
  assert.deepEqual(await got, { order: { id: 7 } });
  const dotted = once((r) => ch.listen('.order.updated', r), '.order.updated');
  await sdk(pusher.trigger('private-orders.7', 'order.updated', { id: 7, status: 'paid' }));
  assert.deepEqual(await dotted, { id: 7, status: 'paid' });
});

test('Echo.join(): here, joining, leaving', async () => {
  const ada = echo({ user_id: 'u-1', user_name: 'Ada' });
  const here = once((r) => ada.join('room').here(r), 'here()');
  assert.deepEqual(await here, [{ name: 'Ada' }]);
  const joining = once((r) => ada.join('room').joining(r), 'joining()');
  const leaving = once((r) => ada.join('room').leaving(r), 'leaving()');

  const bob = echo({ user_id: 'u-2', user_name: 'Bob' });
  const hereBob = once((r) => bob.join('room').here(r), 'here() for Bob');
  const bobSees = (await hereBob).map((u) => u.name).sort();
  assert.deepEqual(bobSees, ['Ada', 'Bob']);
  assert.deepEqual(await joining, { name: 'Bob' });
  bob.disconnect();
  assert.deepEqual(await leaving, { name: 'Bob' });
});

test('whisper() / listenForWhisper() between two Echo clients', async () => {
  const a = echo({ user_id: 'u-1', user_name: 'Ada' });
  const b = echo({ user_id: 'u-2', user_name: 'Bob' });
  const chA = a.private('chat');
  const chB = b.private('chat');
  // Bind both before awaiting either: Echo's subscribed() does not fire for a subscription that
  // already succeeded, and b may finish first.
  await Promise.all([once((r) => chA.subscribed(r), 'a subscribed'), once((r) => chB.subscribed(r), 'b subscribed')]);
  const got = once((r) => chB.listenForWhisper('typing', r), 'whisper');
  chA.whisper('typing', { name: 'Ada', typing: true });
  assert.deepEqual(await got, { name: 'Ada', typing: true });
});
