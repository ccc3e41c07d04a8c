// PROTOCOL.md 5.5, 5.8 — presence channels: member list, member_added / member_removed,
// one member per user_id across connections.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startHerald, client, closeAllClients, connected, subscribed, next, serverSdk, sdk, json, eventually,
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

function user(id, name) {
  return client(herald, authOptions(auth, { user_id: id, user_name: name }));
}

function members(ch) {
  const list = [];
  ch.members.each((m) => list.push({ id: m.id, info: m.info }));
  return list.sort((x, y) => x.id.localeCompare(y.id));
}

async function subscriptionCount(channel) {
  const r = await json(await sdk(pusher.get({ path: `/channels/${channel}`, params: { info: 'subscription_count' } })));
  return r.subscription_count;
}

/** Publish a marker on `channel` and wait until `ch` received it: everything herald sent before has arrived. */
async function sync(ch, channel) {
  const tag = Math.random().toString(36).slice(2);
  const got = next(ch, 'marker', 5000, (d) => d.tag === tag);
  await sdk(pusher.trigger(channel, 'marker', { tag }));
  await got;
}

test('presence subscription reports members.count, members.each and members.me', async () => {
  const ada = user('u-1', 'Ada');
  await connected(ada);
  const ch = await subscribed(ada, 'presence-solo');
  assert.equal(ch.members.count, 1);
  assert.deepEqual(ch.members.me, { id: 'u-1', info: { name: 'Ada' } });
  assert.deepEqual(members(ch), [{ id: 'u-1', info: { name: 'Ada' } }]);

  const bob = user('u-2', 'Bob');
  await connected(bob);
  const added = next(ch, 'pusher:member_added');
  const chBob = await subscribed(bob, 'presence-solo');
  assert.equal(chBob.members.count, 2);
  assert.deepEqual(chBob.members.me, { id: 'u-2', info: { name: 'Bob' } });
  assert.deepEqual(members(chBob), [{ id: 'u-1', info: { name: 'Ada' } }, { id: 'u-2', info: { name: 'Bob' } }]);
  assert.deepEqual((await added).data, { id: 'u-2', info: { name: 'Bob' } });
  assert.equal(ch.members.count, 2);
  ada.disconnect();
  bob.disconnect();
});

test('member_added and member_removed are seen by another client', async () => {
  const ada = user('u-1', 'Ada');
  const cy = user('u-3', 'Cy');
  await Promise.all([connected(ada), connected(cy)]);
  const ch = await subscribed(ada, 'presence-room');
  const added = next(ch, 'pusher:member_added');
  await subscribed(cy, 'presence-room');
  assert.deepEqual((await added).data, { id: 'u-3', info: { name: 'Cy' } });

  const removed = next(ch, 'pusher:member_removed');
  cy.disconnect();
  assert.deepEqual((await removed).data, { id: 'u-3', info: { name: 'Cy' } });
  assert.equal(ch.members.count, 1);
  assert.deepEqual(members(ch), [{ id: 'u-1', info: { name: 'Ada' } }]);

  // unsubscribe (not only disconnect) also removes the member
  const dan = user('u-4', 'Dan');
  await connected(dan);
  const addedDan = next(ch, 'pusher:member_added');
  await subscribed(dan, 'presence-room');
  await addedDan;
  const removedDan = next(ch, 'pusher:member_removed');
  dan.unsubscribe('presence-room');
  assert.equal((await removedDan).data.id, 'u-4');
  assert.equal(dan.connection.state, 'connected');
  ada.disconnect();
  dan.disconnect();
});

test('the same user on two connections is one member; removal only after the last connection leaves', async () => {
  const channel = 'presence-multi';
  const watcher = user('w-1', 'Watcher');
  await connected(watcher);
  const ch = await subscribed(watcher, channel);
  const events = [];
  ch.bind('pusher:member_added', (m) => events.push(['added', m.id]));
  ch.bind('pusher:member_removed', (m) => events.push(['removed', m.id]));

  const tab1 = user('u-2', 'Bob');
  const tab2 = user('u-2', 'Bob');
  await Promise.all([connected(tab1), connected(tab2)]);
  const added = next(ch, 'pusher:member_added');
  const ch1 = await subscribed(tab1, channel);
  await added;
  assert.equal(ch1.members.count, 2);
  const ch2 = await subscribed(tab2, channel);
  assert.equal(ch2.members.count, 2, 'second connection of u-2 sees 2 members, not 3');
  assert.deepEqual(members(ch2).map((m) => m.id), ['u-2', 'w-1']);
  await sync(ch, channel);
  assert.deepEqual(events, [['added', 'u-2']], 'no second member_added for the same user');
  assert.equal(ch.members.count, 2);
  const users = await json(await sdk(pusher.get({ path: `/channels/${channel}/users` })));
  assert.deepEqual(users.users.map((u) => u.id).sort(), ['u-2', 'w-1']);

  tab1.disconnect();
  await eventually(async () => (await subscriptionCount(channel)) === 2, { what: 'herald to drop tab1 (subscription_count 2)' });
  await sync(ch, channel);
  assert.deepEqual(events, [['added', 'u-2']], 'u-2 still has a connection: no member_removed yet');
  assert.equal(ch.members.count, 2);

  const removed = next(ch, 'pusher:member_removed');
  tab2.disconnect();
  assert.equal((await removed).data.id, 'u-2');
  assert.deepEqual(events, [['added', 'u-2'], ['removed', 'u-2']]);
  assert.equal(ch.members.count, 1);
  watcher.disconnect();
});

test('a numeric user_id in channel_data is accepted and reported as a string', async () => {
  const n = client(herald, authOptions(auth, { user_id: '1265', user_name: 'Numeric', numeric_id: '1' }));
  await connected(n);
  const ch = await subscribed(n, 'presence-numeric');
  assert.equal(ch.members.count, 1);
  assert.equal(String(ch.members.me.id), '1265');
  assert.deepEqual(ch.members.me.info, { name: 'Numeric' });
  assert.deepEqual(members(ch), [{ id: '1265', info: { name: 'Numeric' } }]);
  const users = await json(await sdk(pusher.get({ path: '/channels/presence-numeric/users' })));
  assert.deepEqual(users, { users: [{ id: '1265' }] });
  n.disconnect();
});
