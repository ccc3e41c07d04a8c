// docs/CLUSTER.md shared state seen through real clients: three herald processes share one Redis;
// a user connected to two nodes is one presence member for pusher-js subscribers on any node,
// and the HTTP API of every node answers with the cluster-wide channels, counts and users.
//
// Each file starts its own private redis-server on a free port (never a shared one) and herald
// processes on it (lib/cluster-fixture.mjs); it is skipped with a message when redis-server is
// missing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  client, connected, subscribed, next, record, eventually, sleep, greetEverySignin,
} from '../lib/harness.mjs';
import { skip, QUIET_MS, startCluster, member, memberIds, getJson } from '../lib/cluster-fixture.mjs';

describe('three nodes on one Redis', { skip }, () => {
  let cluster;
  let A; let B; let C;

  before(async () => {
    cluster = await startCluster(3);
    [A, B, C] = cluster.nodes;
  });
  after(() => cluster?.stop());

  test('the same user connected to nodes A and B is one presence member', async () => {
    const { c: watcher, ch: w } = await member(C, 'presence-room', 'w');
    const seenW = record(w);
    const added = next(w, 'pusher:member_added');
    const { c: uA, ch: chUA } = await member(A, 'presence-room', 'u');
    assert.deepEqual(memberIds(chUA), ['u', 'w'], 'node A sees node C\'s member');
    assert.equal((await added).data.id, 'u');

    const { c: uB, ch: chUB } = await member(B, 'presence-room', 'u');
    assert.equal(chUB.members.count, 2, `members on node B: ${memberIds(chUB)}`);
    assert.deepEqual(memberIds(chUB), ['u', 'w']);
    assert.deepEqual(chUB.members.get('u').info, { name: 'u' });
    await sleep(QUIET_MS);
    const memberEvents = () => seenW.filter((e) => e.event.startsWith('pusher:member_')).map((e) => `${e.event}:${e.data.id}`);
    assert.deepEqual(memberEvents(), ['pusher:member_added:u'], 'the watcher saw one member_added for u');
    assert.equal(w.members.count, 2);

    // leaving one of the two connections sends nothing
    uA.disconnect();
    await sleep(QUIET_MS);
    assert.deepEqual(memberEvents(), ['pusher:member_added:u'], 'no member_removed while u is still on node B');
    assert.equal(w.members.count, 2);

    // leaving the last one removes the member
    const removed = next(w, 'pusher:member_removed');
    uB.disconnect();
    assert.equal((await removed).data.id, 'u');
    assert.deepEqual(memberIds(w), ['w']);
    await sleep(QUIET_MS);
    assert.deepEqual(memberEvents(), ['pusher:member_added:u', 'pusher:member_removed:u']);
    watcher.disconnect();
  });

  test('the HTTP API on any node answers with the cluster-wide channels, counts and users', async () => {
    for (const n of [A, B]) {
      const c = client(n);
      await connected(c);
      await subscribed(c, 'api-news');
    }
    await member(A, 'presence-api-room', 'p1');
    await member(B, 'presence-api-room', 'p2');
    await member(C, 'presence-api-room', 'p1');
    const expected = {
      list: { channels: { 'api-news': {} } },
      presenceList: { channels: { 'presence-api-room': { user_count: 2 } } },
      news: { occupied: true, subscription_count: 2 },
      room: { occupied: true, user_count: 2, subscription_count: 3 },
      users: [{ id: 'p1' }, { id: 'p2' }],
    };
    for (const n of [A, B, C]) {
      const actual = async () => ({
        list: await getJson(n, '/channels', { filter_by_prefix: 'api-' }),
        presenceList: await getJson(n, '/channels', { filter_by_prefix: 'presence-api-', info: 'user_count' }),
        news: await getJson(n, '/channels/api-news', { info: 'subscription_count' }),
        room: await getJson(n, '/channels/presence-api-room', { info: 'user_count,subscription_count' }),
        users: (await getJson(n, '/channels/presence-api-room/users')).users.sort((x, y) => x.id.localeCompare(y.id)),
      });
      // counts are written to Redis right after the subscriptions: allow them a moment
      let last;
      await eventually(async () => { last = await actual(); try { assert.deepEqual(last, expected); return true; } catch { return false; } },
        { timeoutMs: 3000, what: `cluster-wide answers on node :${n.port} (last ${JSON.stringify(last)})` });
      assert.deepEqual(last, expected);
    }
    // a channel nobody subscribes to is unoccupied everywhere
    assert.deepEqual(await getJson(C, '/channels/api-nobody', { info: 'subscription_count' }), { occupied: false, subscription_count: 0 });
  });

  test('sendToUser through node B the moment signin_success arrives on node A is never lost (40 sign-ins, machine busy)', async () => {
    // The node a user signs in on listens to the user's channel before it sends signin_success
    // (PROTOCOL.md 8.3), so an event published on any node right after it arrives.
    const lost = await greetEverySignin({
      rounds: 4,
      perRound: 10,
      connect: (userId) => client(A, {
        userAuthentication: {
          customHandler: ({ socketId }, cb) => cb(null, A.sdk.authenticateUser(socketId, { id: userId })),
        },
      }),
      sender: B.sdk,
    });
    assert.deepEqual(lost, [], 'every greeting arrived');
  });
});
