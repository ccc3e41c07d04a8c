// docs/CLUSTER.md crash cleanup seen through real clients: when a herald node of two is SIGKILLed,
// the other node removes its presence members (member_removed to pusher-js) and its channels
// within the node_timeout bound.
//
// Each file starts its own private redis-server on a free port (never a shared one) and herald
// processes on it (lib/cluster-fixture.mjs); it is skipped with a message when redis-server is
// missing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { client, connected, subscribed, next, eventually } from '../lib/harness.mjs';
import { skip, startCluster, member, memberIds, getJson } from '../lib/cluster-fixture.mjs';

describe('a SIGKILLed node', { skip }, () => {
  let cluster;
  let A; let B;

  before(async () => {
    cluster = await startCluster(2);
    [A, B] = cluster.nodes;
  });
  after(() => cluster?.stop());

  test('has its presence members removed within the node_timeout bound, with member_removed on the other node', async (t) => {
    const { ch: w } = await member(A, 'presence-crash', 'w');
    const added = next(w, 'pusher:member_added');
    await member(B, 'presence-crash', 'ghost');
    const onlyB = client(B);
    await connected(onlyB);
    await subscribed(onlyB, 'crash-only-b');
    assert.equal((await added).data.id, 'ghost');
    assert.deepEqual(memberIds(w), ['ghost', 'w']);
    await eventually(async () => 'crash-only-b' in (await getJson(A, '/channels')).channels, { what: 'crash-only-b listed on node A' });

    const removed = next(w, 'pusher:member_removed', 15000);
    const killedAt = Date.now();
    B.child.kill('SIGKILL');
    const { data } = await removed;
    const elapsed = Date.now() - killedAt;
    assert.equal(data.id, 'ghost');
    // node_timeout 2 s + heartbeat 0.4 s, plus one reaper tick: well within 15 s
    assert.ok(elapsed < 15000, `member_removed after ${elapsed} ms`);
    t.diagnostic(`member_removed ${elapsed} ms after SIGKILL`);
    assert.deepEqual(memberIds(w), ['w']);
    assert.deepEqual(await getJson(A, '/channels/presence-crash/users'), { users: [{ id: 'w' }] });
    const channels = (await getJson(A, '/channels')).channels;
    assert.ok(!('crash-only-b' in channels), `the dead node's channel is gone: ${JSON.stringify(channels)}`);
    assert.deepEqual(await getJson(A, '/channels/presence-crash', { info: 'user_count,subscription_count' }),
      { occupied: true, user_count: 1, subscription_count: 1 });
  });
});
