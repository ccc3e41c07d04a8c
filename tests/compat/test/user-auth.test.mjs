// PROTOCOL.md 5.7, 8.1–8.3 — pusher.signin() through an auth endpoint using the `pusher` SDK's
// authenticateUser, then sendToUser() from the SDK to that user's connections.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startHerald, client, closeAllClients, connected, next, serverSdk, sdk, withTimeout, greetEverySignin,
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

function signedIn(c) {
  return withTimeout(c.user.signinDonePromise, 5000, 'pusher.signin() to complete');
}

/** Call before signin(). Resolves when herald acknowledged the #server-to-user channel pusher-js subscribes after signin. */
function serverToUserReady(c, userId) {
  const name = `#server-to-user-${userId}`;
  return withTimeout(new Promise((resolve) => {
    c.connection.bind('message', (m) => {
      if (m.channel === name && m.event === 'pusher_internal:subscription_succeeded') resolve();
    });
  }), 5000, `${name} subscription_succeeded`);
}

test('signin with authenticateUser, then sendToUser reaches every connection of that user only', async () => {
  const tab1 = client(herald, authOptions(auth, { user_id: 'u-1', user_name: 'Ada' }));
  const tab2 = client(herald, authOptions(auth, { user_id: 'u-1', user_name: 'Ada' }));
  const other = client(herald, authOptions(auth, { user_id: 'u-2', user_name: 'Bob' }));
  await Promise.all([tab1, tab2, other].map((c) => connected(c)));
  const ready = [serverToUserReady(tab1, 'u-1'), serverToUserReady(tab2, 'u-1'), serverToUserReady(other, 'u-2')];
  for (const c of [tab1, tab2, other]) c.signin();
  await Promise.all([tab1, tab2, other].map(signedIn));
  await Promise.all(ready);
  assert.equal(tab1.user.user_data.id, 'u-1');
  assert.deepEqual(tab1.user.user_data.user_info, { name: 'Ada' });

  const otherGot = [];
  other.user.bind('notice', (d) => otherGot.push(d));
  const got1 = next(tab1.user, 'notice');
  const got2 = next(tab2.user, 'notice');
  await sdk(pusher.sendToUser('u-1', 'notice', { text: 'for Ada' }));
  assert.deepEqual((await got1).data, { text: 'for Ada' });
  assert.deepEqual((await got2).data, { text: 'for Ada' });

  const bobGot = next(other.user, 'notice');
  await sdk(pusher.sendToUser('u-2', 'notice', { text: 'for Bob' }));
  await bobGot;
  assert.deepEqual(otherGot, [{ text: 'for Bob' }], 'u-2 must not receive u-1 messages');
});

test("subscribing to another user's #server-to-user channel is refused", async () => {
  const c = client(herald, authOptions(auth, { user_id: 'u-3', user_name: 'Cy' }));
  await connected(c);
  const ready = serverToUserReady(c, 'u-3');
  c.signin();
  await signedIn(c);
  await ready;
  const frames = [];
  c.connection.bind('message', (m) => { if (m.channel === '#server-to-user-u-1') frames.push(m); });
  const err = next(c.connection, 'error', 5000, (e) => e?.type === 'PusherError');
  // pusher-js refuses to create '#' channels itself, so send the raw subscribe frame.
  c.send_event('pusher:subscribe', { auth: '', channel: '#server-to-user-u-1' });
  const { data } = await err;
  assert.equal(data.data.code, null);
  assert.match(data.data.message, /#server-to-user-u-1/);
  assert.deepEqual(frames.filter((m) => m.event === 'pusher_internal:subscription_succeeded'), []);
  assert.equal(c.connection.state, 'connected');
});

test('sendToUser the moment signin_success arrives is never lost (100 sign-ins, machine busy)', async () => {
  // pusher-js subscribes to #server-to-user-{id} only after signin_success; herald delivers to
  // the signed-in connection without waiting for that subscription (PROTOCOL.md 8.3).
  const lost = await greetEverySignin({
    rounds: 10,
    perRound: 10,
    connect: (userId) => client(herald, authOptions(auth, { user_id: userId, user_name: userId })),
    sender: pusher,
  });
  assert.deepEqual(lost, [], 'every greeting arrived');
});
