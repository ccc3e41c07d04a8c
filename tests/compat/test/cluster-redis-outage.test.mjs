// docs/CLUSTER.md outage tolerance seen through real clients: while the shared Redis of three
// herald processes is down, each node keeps delivering locally and accepting subscriptions; once
// it is back, cross-node delivery resumes and presence (including changes made during the
// outage) is whole again on every node.
//
// Each file starts its own private redis-server on a free port (never a shared one) and herald
// processes on it (lib/cluster-fixture.mjs); it is skipped with a message when redis-server is
// missing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { client, connected, subscribed, next, eventually, sleep, sdk } from '../lib/harness.mjs';
import { skip, QUIET_MS, startCluster, readyBody, member, memberIds, getJson } from '../lib/cluster-fixture.mjs';

describe('Redis killed and restarted', { skip }, () => {
  let cluster;
  let redis;
  let A; let B; let C;

  before(async () => {
    cluster = await startCluster(3);
    ({ redis } = cluster);
    [A, B, C] = cluster.nodes;
  });
  after(() => cluster?.stop());

  test('local delivery continues during the outage; cross-node delivery and presence are whole after it', { timeout: 30000 }, async (t) => {
    const t0 = Date.now();
    const phase = (what) => t.diagnostic(`${what} at ${Date.now() - t0} ms`);
    const a = client(A);
    await connected(a);
    const chA = await subscribed(a, 'outage-news');
    const b = client(B);
    await connected(b);
    const chB = await subscribed(b, 'outage-news');
    await member(A, 'presence-outage', 'ua');
    await member(B, 'presence-outage', 'ub');
    const before = next(chB, 'before');
    await sdk(A.sdk.trigger('outage-news', 'before', {}));
    await before;

    await redis.kill();
    await eventually(async () => (await readyBody(A)).startsWith('degraded'), { timeoutMs: 5000, what: 'node A /ready degraded' });
    // local delivery on each node goes on
    const localA = next(chA, 'local-a');
    await sdk(A.sdk.trigger('outage-news', 'local-a', { during: true }));
    assert.deepEqual((await localA).data, { during: true });
    const localB = next(chB, 'local-b');
    await sdk(B.sdk.trigger('outage-news', 'local-b', { during: true }));
    assert.deepEqual((await localB).data, { during: true });
    // and so do new local subscriptions, to a channel the node listens to already and to a new
    // one (joined with local state only, after at most the 3 s bound of docs/CLUSTER.md)
    const late = client(A);
    await connected(late);
    const chLate = await subscribed(late, 'outage-news', 5000);
    const localLate = next(chLate, 'local-a2');
    await sdk(A.sdk.trigger('outage-news', 'local-a2', {}));
    await localLate;
    const startedAt = Date.now();
    const chFresh = await subscribed(late, 'outage-fresh', 5000);
    const tookMs = Date.now() - startedAt;
    assert.ok(tookMs < 4000, `subscribing a new channel during the outage took ${tookMs} ms`);
    const fresh = next(chFresh, 'fresh');
    await sdk(A.sdk.trigger('outage-fresh', 'fresh', {}));
    await fresh;

    phase('Redis restarting');
    await redis.start();
    await eventually(async () => (await Promise.all([A, B, C].map(readyBody))).every((r) => r === 'ready\n'),
      { timeoutMs: 10000, what: 'every node ready again' });
    phase('every node ready');
    // cross-node delivery resumes (A → B and B → A)
    let i = 0;
    await eventually(async () => {
      i += 1;
      const got = next(chB, `again-${i}`, 300).then(() => true, () => false);
      await sdk(A.sdk.trigger('outage-news', `again-${i}`, {}));
      return got;
    }, { timeoutMs: 10000, intervalMs: 0, what: 'an event from node A on node B after the restart' });
    const back = next(chA, 'back');
    await sdk(B.sdk.trigger('outage-news', 'back', {}));
    await back;
    phase('cross-node delivery resumed');

    // presence is whole again: a new subscriber on a node that had no interest in the channel
    // (C: its member list comes from Redis) sees the members of both nodes
    let seen;
    await eventually(async () => {
      const { c, ch } = await member(C, 'presence-outage', 'uc');
      seen = memberIds(ch);
      c.disconnect();
      return seen.join() === 'ua,ub,uc';
    }, { timeoutMs: 8000, intervalMs: 200, what: `members ua, ub, uc on node C (last ${seen})` });
    for (const n of [A, B]) {
      const { ch } = await member(n, 'presence-outage', 'check');
      assert.deepEqual(memberIds(ch), ['check', 'ua', 'ub'], `members on node :${n.port}`);
    }
  });

  // After an outage each node rewrites its own part of the shared state from its local state
  // and, a couple of heartbeats later, reloads the other nodes' part (docs/CLUSTER.md).
  test('presence changes made during the outage reach the other nodes\' subscribers after it', {
    timeout: 30000,
  }, async () => {
    const { ch: onA } = await member(A, 'presence-churn', 'ua');
    const { ch: onB } = await member(B, 'presence-churn', 'ub');
    const { c: leaver } = await member(B, 'presence-churn', 'gone-during-outage');
    await eventually(() => memberIds(onA).length === 3, { what: 'three members on node A' });
    const logA = [];
    onA.bind('pusher:member_removed', (m) => logA.push(`removed:${m.id}`));
    onA.bind('pusher:member_added', (m) => logA.push(`added:${m.id}`));

    await redis.kill();
    await eventually(async () => (await readyBody(B)).startsWith('degraded'), { timeoutMs: 5000, what: 'node B /ready degraded' });
    leaver.disconnect(); // leaves node B while Redis is down
    await member(A, 'presence-churn', 'joined-during-outage'); // joins node A while Redis is down
    await sleep(QUIET_MS);
    await redis.start();
    await eventually(async () => (await Promise.all([A, B, C].map(readyBody))).every((r) => r === 'ready\n'),
      { timeoutMs: 10000, what: 'every node ready again' });

    const want = ['joined-during-outage', 'ua', 'ub'];
    await eventually(async () => (await getJson(C, '/channels/presence-churn/users')).users.map((u) => u.id).sort().join() === want.join(),
      { timeoutMs: 5000, what: `HTTP users ${want}` });
    let last;
    try {
      await eventually(() => { last = { A: memberIds(onA), B: memberIds(onB) }; return last.A.join() === want.join() && last.B.join() === want.join(); },
        { timeoutMs: 3000, what: 'member lists on nodes A and B' });
    } catch (e) {
      throw new Error(`member lists of pusher-js subscribers after the outage: ${JSON.stringify(last)}, want ${want} on both ` +
        `(node A subscriber saw ${logA.join(', ') || 'no member events'})`);
    }
    assert.ok(logA.includes('removed:gone-during-outage'));
  });
});
