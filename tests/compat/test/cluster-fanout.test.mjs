// docs/CLUSTER.md fan-out seen through real clients: three herald processes share one Redis;
// events triggered through one node's HTTP API (the `pusher` Node SDK) and client events reach
// pusher-js subscribers on the other nodes, socket_id exclusion holds across nodes, and a node
// with no subscriber to a channel receives none of its messages.
//
// Each file starts its own private redis-server on a free port (never a shared one) and herald
// processes on it (lib/cluster-fixture.mjs); it is skipped with a message when redis-server is
// missing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { client, connected, subscribed, next, record, eventually, sleep, sdk } from '../lib/harness.mjs';
import { skip, QUIET_MS, startCluster, metric, member } from '../lib/cluster-fixture.mjs';

describe('three nodes on one Redis', { skip }, () => {
  let cluster;
  let A; let B; let C;

  before(async () => {
    cluster = await startCluster(3);
    [A, B, C] = cluster.nodes;
  });
  after(() => cluster?.stop());

  test('an event triggered through node B\'s HTTP API reaches a pusher-js subscriber on node A', async () => {
    const a = client(A);
    await connected(a);
    const ch = await subscribed(a, 'fanout-orders');
    const got = next(ch, 'created');
    await sdk(B.sdk.trigger('fanout-orders', 'created', { id: 1 }));
    assert.deepEqual((await got).data, { id: 1 });
  });

  test('client events on a private channel cross nodes in both directions, never echoed to the sender', async () => {
    const { ch: chA } = await member(A, 'private-fanout-chat');
    const { ch: chB } = await member(B, 'private-fanout-chat');
    const seenA = record(chA);
    const seenB = record(chB);
    const toB = next(chB, 'client-hi');
    assert.ok(chA.trigger('client-hi', { x: 1 }));
    assert.deepEqual((await toB).data, { x: 1 });
    const toA = next(chA, 'client-back');
    assert.ok(chB.trigger('client-back', { y: 2 }));
    assert.deepEqual((await toA).data, { y: 2 });
    await sleep(QUIET_MS);
    assert.deepEqual(seenA.map((e) => e.event), ['client-back'], 'A got only B\'s event');
    assert.deepEqual(seenB.map((e) => e.event), ['client-hi'], 'B got only A\'s event');
  });

  test('socket_id exclusion holds across nodes', async () => {
    const a = client(A);
    const aSocket = await connected(a);
    const chA = await subscribed(a, 'fanout-excl');
    const a2 = client(A);
    await connected(a2);
    const chA2 = await subscribed(a2, 'fanout-excl');
    const b = client(B);
    const bSocket = await connected(b);
    const chB = await subscribed(b, 'fanout-excl');
    const [seenA, seenA2, seenB] = [record(chA), record(chA2), record(chB)];

    // triggered on node B excluding a socket of node A, then on node A excluding a socket of node B
    await sdk(B.sdk.trigger('fanout-excl', 'not-to-a', { n: 1 }, { socket_id: aSocket }));
    await sdk(A.sdk.trigger('fanout-excl', 'not-to-b', { n: 2 }, { socket_id: bSocket }));
    // a marker from each node: per publishing node order is preserved, so once the marker is
    // in, an excluded event that was going to arrive would have arrived
    await sdk(B.sdk.trigger('fanout-excl', 'marker-b', {}));
    await sdk(A.sdk.trigger('fanout-excl', 'marker-a', {}));
    const names = (seen) => seen.map((e) => e.event).filter((n) => !n.startsWith('pusher:'));
    const allIn = (seen) => names(seen).includes('marker-a') && names(seen).includes('marker-b');
    await eventually(() => allIn(seenA) && allIn(seenA2) && allIn(seenB), { timeoutMs: 5000, what: 'both markers on every client' });
    assert.deepEqual(names(seenA).sort(), ['marker-a', 'marker-b', 'not-to-b']);
    assert.deepEqual(names(seenB).sort(), ['marker-a', 'marker-b', 'not-to-a']);
    assert.deepEqual(names(seenA2).sort(), ['marker-a', 'marker-b', 'not-to-a', 'not-to-b']);
  });

  test('a node with no subscriber to a channel receives none of its messages from Redis', async () => {
    const a = client(A);
    await connected(a);
    const ch = await subscribed(a, 'fanout-busy');
    const seen = record(ch);
    const before = await metric(C, 'herald_cluster_messages_received_total');
    const beforeB = await metric(B, 'herald_cluster_messages_received_total');
    const beforeA = await metric(A, 'herald_cluster_messages_received_total');
    for (let i = 0; i < 20; i++) await sdk(B.sdk.trigger('fanout-busy', 'e', { i }));
    await eventually(() => seen.filter((e) => e.event === 'e').length === 20, { timeoutMs: 5000, what: '20 events on node A' });
    assert.deepEqual(seen.filter((e) => e.event === 'e').map((e) => e.data.i), [...Array(20).keys()], 'in publish order');
    await sleep(200);
    assert.ok(await metric(A, 'herald_cluster_messages_received_total') >= beforeA + 20, 'node A (subscriber) received the 20 messages from Redis');
    assert.equal(await metric(C, 'herald_cluster_messages_received_total'), before, 'node C (no subscriber) received nothing');
    assert.equal(await metric(B, 'herald_cluster_messages_received_total'), beforeB, 'node B (publisher, no subscriber) received nothing');
    for (const n of [A, B, C]) {
      assert.equal(await metric(n, 'herald_cluster_unneeded_messages_total'), 0, `unneeded messages on :${n.port}`);
    }
  });
});
