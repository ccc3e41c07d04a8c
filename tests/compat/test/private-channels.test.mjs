// PROTOCOL.md 5.3, 5.9, 6.1–6.3 — private channels through a real auth endpoint
// (pusher SDK authorizeChannel, reached by pusher-js over its 'ajax' auth transport).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startHerald, client, closeAllClients, connected, subscribed, next, serverSdk, sdk, json, withTimeout,
} from '../lib/harness.mjs';
import { startAuthServer, authOptions } from '../lib/auth-server.mjs';

let herald;
let pusher;
let auth;

before(async () => {
  herald = await startHerald();
  pusher = serverSdk(herald);
  auth = await startAuthServer(pusher);
});

after(async () => {
  closeAllClients();
  await auth?.close();
  await herald?.stop();
});

test('private channel subscription authorized by the auth endpoint receives events', async () => {
  const c = client(herald, authOptions(auth));
  const socketId = await connected(c);
  const ch = await subscribed(c, 'private-orders.42');
  const req = auth.requests.find((r) => r.params.channel_name === 'private-orders.42');
  assert.ok(req, 'pusher-js called the auth endpoint');
  assert.equal(req.params.socket_id, socketId);
  const got = next(ch, 'order-updated');
  await sdk(pusher.trigger('private-orders.42', 'order-updated', { id: 42, status: 'shipped' }));
  assert.deepEqual((await got).data, { id: 42, status: 'shipped' });
  c.disconnect();
});

test('auth with a wrong signature is refused with pusher:error and the connection stays open', async () => {
  const c = client(herald, authOptions(auth, { bad: '1' }));
  const socketId = await connected(c);
  const errors = [];
  c.connection.bind('error', (e) => errors.push(e));
  const states = [];
  c.connection.bind('state_change', (s) => states.push(s.current));
  const ch = c.subscribe('private-bad');
  let succeeded = false;
  ch.bind('pusher:subscription_succeeded', () => { succeeded = true; });
  const err = await withTimeout(new Promise((resolve) => {
    c.connection.bind('error', (e) => { if (e?.type === 'PusherError') resolve(e); });
  }), 5000, 'pusher:error for the bad signature');
  assert.equal(err.data.code, null, `pusher:error code must be null, got ${JSON.stringify(err.data)}`);
  assert.match(err.data.message, /^Invalid signature/, `message: ${err.data.message}`);
  assert.ok(err.data.message.includes(`${socketId}:private-bad`),
    `message should name the string to sign "${socketId}:private-bad": ${err.data.message}`);

  // the connection is still usable: a public subscription afterwards succeeds on the same socket
  const pub = await subscribed(c, 'after-bad-auth');
  const got = next(pub, 'still-alive');
  await sdk(pusher.trigger(['private-bad', 'after-bad-auth'], 'still-alive', { ok: true }));
  await got;
  assert.equal(succeeded, false, 'refused channel must not report subscription_succeeded');
  assert.equal(ch.subscribed, false);
  assert.equal(c.connection.state, 'connected');
  assert.equal(c.connection.socket_id, socketId);
  assert.deepEqual(states, []);
  const occ = await json(await sdk(pusher.get({ path: '/channels/private-bad' })));
  assert.equal(occ.occupied, false, 'refused subscription must not occupy the channel');
  c.disconnect();
});

test('private channel auth from another app secret is refused', async () => {
  const other = serverSdk(herald, { id: herald.app.id, key: herald.app.key, secret: 'not-the-secret' });
  const otherAuth = await startAuthServer(other);
  try {
    const c = client(herald, authOptions(otherAuth));
    await connected(c);
    c.subscribe('private-wrong-secret');
    const err = await withTimeout(new Promise((resolve) => {
      c.connection.bind('error', (e) => { if (e?.type === 'PusherError') resolve(e); });
    }), 5000, 'pusher:error for a signature made with the wrong secret');
    assert.match(err.data.message, /^Invalid signature/);
    assert.equal(c.connection.state, 'connected');
    c.disconnect();
  } finally {
    await otherAuth.close();
  }
});
