// PROTOCOL.md 7 — client events between two pusher-js clients.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startHerald, client, closeAllClients, connected, subscribed, next, record, serverSdk, sdk, DEFAULT_APP,
} from '../lib/harness.mjs';
import { startAuthServer, authOptions } from '../lib/auth-server.mjs';

const NO_CLIENT_EVENTS = { id: 'app-quiet', key: 'key-quiet', secret: 'secret-quiet', enable_client_messages: false };

let herald;
let pusher;
let auth;
let quietPusher;
let quietAuth;

before(async () => {
  herald = await startHerald({ apps: [DEFAULT_APP, NO_CLIENT_EVENTS] });
  pusher = serverSdk(herald);
  auth = await startAuthServer(pusher);
  quietPusher = serverSdk(herald, NO_CLIENT_EVENTS);
  quietAuth = await startAuthServer(quietPusher);
});

after(async () => {
  closeAllClients();
  await auth?.close();
  await quietAuth?.close();
  await herald?.stop();
});

/** Marker published via HTTP: once `ch` has it, every earlier frame for `ch` has arrived. */
async function sync(sdkClient, ch) {
  const tag = Math.random().toString(36).slice(2);
  const got = next(ch, 'marker', 5000, (d) => d.tag === tag);
  await sdk(sdkClient.trigger(ch.name, 'marker', { tag }));
  await got;
}

function pusherErrors(c) {
  const errors = [];
  c.connection.bind('error', (e) => { if (e?.type === 'PusherError') errors.push(e.data); });
  return errors;
}

test('client event on a private channel reaches the other client and is not echoed to the sender', async () => {
  const a = client(herald, authOptions(auth));
  const b = client(herald, authOptions(auth));
  await Promise.all([connected(a), connected(b)]);
  const chA = await subscribed(a, 'private-chat');
  const chB = await subscribed(b, 'private-chat');
  const seenA = record(chA);
  const got = next(chB, 'client-typing');
  assert.equal(chA.trigger('client-typing', { typing: true, who: 'a' }), true);
  const { data, metadata } = await got;
  assert.deepEqual(data, { typing: true, who: 'a' });
  assert.equal(metadata?.user_id, undefined, 'no user_id on private channels');
  await sync(pusher, chA);
  assert.deepEqual(seenA.filter((e) => e.event === 'client-typing'), [], 'sender must not receive its own client event');
  a.disconnect();
  b.disconnect();
});

test('client event on a presence channel carries metadata.user_id of the sender', async () => {
  const a = client(herald, authOptions(auth, { user_id: 'u-1', user_name: 'Ada' }));
  const b = client(herald, authOptions(auth, { user_id: 'u-2', user_name: 'Bob' }));
  await Promise.all([connected(a), connected(b)]);
  const chA = await subscribed(a, 'presence-chat');
  const chB = await subscribed(b, 'presence-chat');
  const seenA = record(chA);
  const got = next(chB, 'client-wave');
  chA.trigger('client-wave', { hand: 'left' });
  const { data, metadata } = await got;
  assert.deepEqual(data, { hand: 'left' });
  assert.equal(metadata?.user_id, 'u-1');

  const back = next(chA, 'client-wave');
  chB.trigger('client-wave', { hand: 'right' });
  const reply = await back;
  assert.deepEqual(reply.data, { hand: 'right' });
  assert.equal(reply.metadata?.user_id, 'u-2');
  await sync(pusher, chA);
  assert.deepEqual(seenA.filter((e) => e.event === 'client-wave').map((e) => e.data), [{ hand: 'right' }]);
  a.disconnect();
  b.disconnect();
});

test('client events are refused with pusher:error on an app with enable_client_messages = false', async () => {
  const a = client(herald, { app: NO_CLIENT_EVENTS, ...authOptions(quietAuth) });
  const b = client(herald, { app: NO_CLIENT_EVENTS, ...authOptions(quietAuth) });
  await Promise.all([connected(a), connected(b)]);
  const chA = await subscribed(a, 'private-quiet');
  const chB = await subscribed(b, 'private-quiet');
  const seenB = record(chB);
  const errors = pusherErrors(a);
  const err = next(a.connection, 'error', 5000, (e) => e?.type === 'PusherError');
  chA.trigger('client-hello', { hi: true });
  const { data } = await err;
  assert.equal(data.data.code, null, JSON.stringify(data.data));
  assert.match(data.data.message, /client events/i, `message: ${data.data.message}`);
  await sync(quietPusher, chB);
  assert.deepEqual(seenB.filter((e) => e.event === 'client-hello'), [], 'refused client event must not be delivered');
  assert.equal(a.connection.state, 'connected', 'the connection stays open');
  assert.equal(errors.length, 1);
  a.disconnect();
  b.disconnect();
});

test('client events on a public channel are refused and not delivered', async () => {
  const a = client(herald);
  const b = client(herald);
  await Promise.all([connected(a), connected(b)]);
  const chA = await subscribed(a, 'public-chat');
  const chB = await subscribed(b, 'public-chat');
  const seenB = record(chB);
  const err = next(a.connection, 'error', 5000, (e) => e?.type === 'PusherError');
  a.send_event('client-hello', { hi: true }, 'public-chat');
  const { data } = await err;
  assert.equal(data.data.code, null);
  await sync(pusher, chB);
  assert.deepEqual(seenB.filter((e) => e.event === 'client-hello'), []);
  assert.equal(a.connection.state, 'connected');
  assert.ok(chA.subscribed);
  a.disconnect();
  b.disconnect();
});

test('client events above 10 per second get pusher:error 4301 and the connection stays open', async () => {
  const a = client(herald, authOptions(auth));
  const b = client(herald, authOptions(auth));
  await Promise.all([connected(a), connected(b)]);
  const chA = await subscribed(a, 'private-burst');
  const chB = await subscribed(b, 'private-burst');
  const seenB = record(chB);
  const rateErr = next(a.connection, 'error', 5000, (e) => e?.type === 'PusherError' && e.data?.code === 4301);
  // 25 events sent back to back: whatever the window alignment, one second holds more than 10
  for (let i = 0; i < 25; i += 1) chA.trigger('client-burst', { i });
  const { data } = await rateErr;
  assert.equal(data.data.code, 4301);
  await sync(pusher, chB);
  const delivered = seenB.filter((e) => e.event === 'client-burst').length;
  assert.ok(delivered >= 10 && delivered < 25, `expected between 10 and 24 delivered, got ${delivered}`);
  assert.equal(a.connection.state, 'connected', '4301 is never a close code');
  a.disconnect();
  b.disconnect();
});

test('client event names must start with client- : pusher-js refuses others locally', async () => {
  const a = client(herald, authOptions(auth));
  await connected(a);
  const ch = await subscribed(a, 'private-naming');
  assert.throws(() => ch.trigger('not-client-event', {}), /client-/);
  a.disconnect();
});
