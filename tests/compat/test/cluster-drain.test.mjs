// docs/CLUSTER.md graceful leave seen through real clients: a herald node told to stop (SIGTERM)
// behind a TCP "load balancer" closes its pusher-js clients with 4200 spread over the drain
// window; they reconnect to the other node, resubscribe, and the drained user never leaves its
// presence channel.
//
// Each file starts its own private redis-server on a free port (never a shared one) and herald
// processes on it (lib/cluster-fixture.mjs); it is skipped with a message when redis-server is
// missing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { connected, subscribed, next, eventually, sleep, withTimeout, sdk } from '../lib/harness.mjs';
import { skip, QUIET_MS, startCluster, authedClient, member, memberIds, getJson } from '../lib/cluster-fixture.mjs';

/** A TCP proxy standing in for a load balancer: `retarget` changes where new connections go. */
async function startProxy(target) {
  const state = { target };
  const sockets = new Set();
  const server = net.createServer((down) => {
    const up = net.connect(state.target.port, state.target.host);
    sockets.add(down);
    sockets.add(up);
    down.pipe(up);
    up.pipe(down);
    const gone = () => { down.destroy(); up.destroy(); sockets.delete(down); sockets.delete(up); };
    down.on('error', gone);
    up.on('error', gone);
    down.on('close', gone);
    up.on('close', gone);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    retarget(t) { state.target = t; },
    close() { for (const s of sockets) s.destroy(); return new Promise((r) => server.close(() => r())); },
  };
}

describe('SIGTERM drain of a node', { skip }, () => {
  const WINDOW = 1000;
  const CLIENTS = 20;
  let cluster;
  let A; let B;
  let proxy;

  before(async () => {
    cluster = await startCluster([{}, { config: { shutdown_drain_window_ms: WINDOW, shutdown_grace: 5 } }]);
    [A, B] = cluster.nodes;
    proxy = await startProxy(B);
  });
  after(async () => {
    await cluster?.stop();
    await proxy?.close();
  });

  test('closes connections with 4200 over the window; pusher-js reconnects to the other node, resubscribes, and stays a presence member', { timeout: 30000 }, async (t) => {
    const { ch: w } = await member(A, 'presence-drain', 'w');
    const memberLog = [];
    w.bind('pusher:member_added', (m) => memberLog.push(`added:${m.id}`));
    w.bind('pusher:member_removed', (m) => memberLog.push(`removed:${m.id}`));

    // CLIENTS pusher-js clients reach node B through the "load balancer"; client 0 is the presence user
    const viaLb = [];
    for (let i = 0; i < CLIENTS; i++) {
      const c = authedClient(B, 'drainee', { wsPort: proxy.port });
      const entry = { c, closes: [], socketIds: [] };
      c.connection.bind('error', (e) => { if (e?.data?.code) entry.closes.push({ code: e.data.code, at: Date.now() }); });
      c.connection.bind('connected', () => entry.socketIds.push(c.connection.socket_id));
      await connected(c);
      entry.ch = await subscribed(c, 'drain-news');
      if (i === 0) entry.presence = await subscribed(c, 'presence-drain');
      viaLb.push(entry);
    }
    await eventually(() => w.members.get('drainee'), { what: 'drainee a member on node A' });
    assert.deepEqual(memberLog, ['added:drainee']);
    await eventually(async () => (await getJson(B, '/channels/drain-news', { info: 'subscription_count' })).subscription_count === CLIENTS,
      { what: `subscription_count ${CLIENTS} on drain-news` });

    // every client must resubscribe after reconnecting
    const resubscribed = viaLb.map((e) => next(e.ch, 'pusher:subscription_succeeded', 10000));
    const presenceBack = next(viaLb[0].presence, 'pusher:subscription_succeeded', 10000);

    // the load balancer takes node B out of rotation, then B is told to stop
    proxy.retarget(A);
    const termAt = Date.now();
    B.child.kill('SIGTERM');

    await eventually(() => viaLb.every((e) => e.closes.length > 0), { timeoutMs: WINDOW + 3000, what: 'a close on every client of node B' });
    const codes = viaLb.map((e) => e.closes[0].code);
    assert.deepEqual([...new Set(codes)], [4200], `close codes: ${codes}`);
    const offsets = viaLb.map((e) => e.closes[0].at - termAt).sort((x, y) => x - y);
    const spread = offsets[offsets.length - 1] - offsets[0];
    t.diagnostic(`4200 closes at ${offsets.join(', ')} ms after SIGTERM`);
    assert.ok(spread >= WINDOW / 2, `closes spread over the window: ${offsets.join(', ')} ms`);
    assert.ok(offsets[offsets.length - 1] <= WINDOW + 1000, `closes within the window: ${offsets.join(', ')} ms`);

    // pusher-js reconnects (through the balancer, now to node A) and resubscribes
    await withTimeout(Promise.all(resubscribed), 10000, 'every client resubscribed');
    await presenceBack;
    for (const e of viaLb) {
      assert.equal(e.c.connection.state, 'connected');
      assert.equal(e.socketIds.length, 2, 'one reconnection');
      assert.notEqual(e.socketIds[0], e.socketIds[1]);
    }
    const exit = await withTimeout(B.exited, 10000, 'node B to exit');
    t.diagnostic(`node B exited ${Date.now() - termAt} ms after SIGTERM`);
    assert.deepEqual(exit, { code: 0, signal: null }, 'node B exits cleanly');

    const gotAll = viaLb.map((e) => next(e.ch, 'after-drain'));
    await sdk(A.sdk.trigger('drain-news', 'after-drain', { ok: true }));
    for (const got of await withTimeout(Promise.all(gotAll), 5000, 'after-drain on every client')) {
      assert.deepEqual(got.data, { ok: true });
    }
    // node B's counts are gone (graceful leave), node A's are the CLIENTS reconnected ones
    await eventually(async () => (await getJson(A, '/channels/drain-news', { info: 'subscription_count' })).subscription_count === CLIENTS,
      { what: `subscription_count ${CLIENTS} on drain-news after the drain` });

    // presence on node A: the drained user is a member after the drain and reconnection
    await sleep(QUIET_MS); // node B's leave (NodeGone) has been processed by now
    assert.ok(w.members.get('drainee'), `drainee a member on node A after the drain; member events: ${memberLog}`);
    assert.deepEqual(memberIds(viaLb[0].presence), ['drainee', 'w']);
    const users = (await getJson(A, '/channels/presence-drain/users')).users.map((u) => u.id).sort();
    assert.deepEqual(users, ['drainee', 'w']);
    const flapped = memberLog.includes('removed:drainee');
    t.diagnostic(`presence subscriber on node A saw: ${memberLog.join(', ')} (removed+added pair: ${flapped})`);
    // the drained node keeps its drained members for `leave_grace_ms` (default 3 s), so a user
    // reconnecting elsewhere within it never appears to leave
    assert.deepEqual(memberLog, ['added:drainee'], 'no member_removed + member_added pair for the drained user');
  });
});
