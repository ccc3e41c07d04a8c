// docs/CLUSTER.md (the Redis adapter) seen through real clients: several herald processes
// share a private redis-server (started here on a free port, never a shared one); pusher-js
// clients connect to different nodes and the `pusher` Node SDK talks to any node's HTTP API.
//
// Needs `redis-server` on PATH (scripts/test.sh installs Debian's package); the whole file is
// skipped with a message when it is missing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  startHerald, serverSdk, client, closeAllClients, connected, subscribed, next, record,
  eventually, sleep, withTimeout, json, sdk, DEFAULT_APP,
} from '../lib/harness.mjs';

const HAVE_REDIS = spawnSync('redis-server', ['--version']).status === 0;
const skip = HAVE_REDIS ? false : 'redis-server is not installed (apt-get install redis-server)';

/** How long "nothing arrives" is watched for. */
const QUIET_MS = 500;

// ---------------------------------------------------------------- redis-server

const redises = new Set();
process.on('exit', () => {
  for (const r of redises) {
    try { r.kill('SIGKILL'); } catch { /* gone */ }
  }
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** A private redis-server on a free port; `kill()` then `start()` restarts it on the same port (empty). */
async function startRedis() {
  const port = await freePort();
  const r = {
    port,
    url: `redis://127.0.0.1:${port}`,
    child: null,
    async start() {
      const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: 'ignore' });
      r.child = child;
      redises.add(child);
      child.once('exit', () => redises.delete(child));
      await eventually(() => canConnect(port), { timeoutMs: 5000, what: `redis-server on port ${port}` });
    },
    async kill() {
      const child = r.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      r.child = null;
    },
  };
  await r.start();
  return r;
}

// ---------------------------------------------------------------- nodes

/**
 * A herald node of the cluster on `redis`. `nodeTimeout` 2 s (heartbeat 400 ms). Resolves once
 * `/ready` says the node reached Redis.
 */
async function startNode(redis, { config = {}, apps = [DEFAULT_APP], extraToml = '' } = {}) {
  const node = await startHerald({
    apps,
    config,
    // `[[apps.webhooks]]` (in extraToml) must follow the `[[apps]]` table: put it before `[adapter]`.
    extraToml: `${extraToml}\n[adapter]\ndriver = "redis"\nurl = ${JSON.stringify(redis.url)}\nprefix = "compat"\nnode_timeout = 2\n`,
  });
  node.sdk = serverSdk(node);
  await eventually(async () => (await readyBody(node)) === 'ready\n', { timeoutMs: 5000, what: `node :${node.port} connected to Redis` });
  return node;
}

async function readyBody(node) {
  const res = await fetch(`${node.httpUrl}/ready`);
  return res.text();
}

/** Sum of a Prometheus metric's samples on GET /metrics (throws when the node does not export it). */
async function metric(node, name) {
  const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
  let sum = null;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (m && m[1] === name) sum = (sum ?? 0) + Number(m[3]);
  }
  if (sum === null) throw new Error(`metric ${name} not exported by node :${node.port}`);
  return sum;
}

/** A pusher-js client authorising private/presence channels with the `pusher` SDK (as user `userId`). */
function authedClient(node, userId, opts = {}) {
  return client(node, {
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) => {
        const presence = channelName.startsWith('presence-') ? { user_id: userId, user_info: { name: userId } } : undefined;
        cb(null, node.sdk.authorizeChannel(socketId, channelName, presence));
      },
    },
    ...opts,
  });
}

/** Connects a pusher-js client (as `userId`) to `node` and subscribes `channel`. */
async function member(node, channel, userId, opts) {
  const c = authedClient(node, userId, opts);
  await connected(c);
  const ch = await subscribed(c, channel);
  return { c, ch };
}

const memberIds = (ch) => {
  const ids = [];
  ch.members.each((m) => ids.push(m.id));
  return ids.sort();
};

const getJson = async (node, p, params) => json(await sdk(node.sdk.get({ path: p, params })));

/** Test teardown: no graceful shutdown needed (every suite has its own Redis). */
async function stopAll(nodes) {
  closeAllClients();
  await Promise.all(nodes.filter(Boolean).map((n) => {
    try { n.child.kill('SIGKILL'); } catch { /* gone */ }
    return n.stop();
  }));
}

// ================================================================ fan-out, presence, HTTP API

describe('three nodes on one Redis', { skip }, () => {
  let redis;
  let A; let B; let C;

  before(async () => {
    redis = await startRedis();
    [A, B, C] = await Promise.all([startNode(redis), startNode(redis), startNode(redis)]);
  });
  after(async () => {
    await stopAll([A, B, C]);
    await redis?.kill();
  });

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
});

// ================================================================ a node is SIGKILLed

describe('a SIGKILLed node', { skip }, () => {
  let redis;
  let A; let B;

  before(async () => {
    redis = await startRedis();
    [A, B] = await Promise.all([startNode(redis), startNode(redis)]);
  });
  after(async () => {
    await stopAll([A, B]);
    await redis?.kill();
  });

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

// ================================================================ Redis outage

describe('Redis killed and restarted', { skip }, () => {
  let redis;
  let A; let B; let C;

  before(async () => {
    redis = await startRedis();
    [A, B, C] = await Promise.all([startNode(redis), startNode(redis), startNode(redis)]);
  });
  after(async () => {
    await stopAll([A, B, C]);
    await redis?.kill();
  });

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

// ================================================================ SIGTERM drain

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
  let redis;
  let A; let B;
  let proxy;

  before(async () => {
    redis = await startRedis();
    [A, B] = await Promise.all([
      startNode(redis),
      startNode(redis, { config: { shutdown_drain_window_ms: WINDOW, shutdown_grace: 5 } }),
    ]);
    proxy = await startProxy(B);
  });
  after(async () => {
    await stopAll([A, B]);
    await proxy?.close();
    await redis?.kill();
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

// ================================================================ webhooks

describe('webhooks in a cluster', { skip }, () => {
  let redis;
  let A; let B;
  let receiver;
  const received = [];
  const dataDirs = [];

  before(async () => {
    redis = await startRedis();
    const verifier = serverSdk({ host: '127.0.0.1', port: 1 }, DEFAULT_APP);
    receiver = http.createServer((req, res) => {
      let rawBody = '';
      req.setEncoding('utf8');
      req.on('data', (d) => { rawBody += d; });
      req.on('end', () => {
        const webhook = verifier.webhook({ headers: req.headers, rawBody });
        const valid = webhook.isValid();
        received.push({ valid, events: valid ? webhook.getEvents() : [], raw: rawBody });
        res.writeHead(200);
        res.end('ok');
      });
    });
    await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${receiver.address().port}/webhooks`;
    const hooks = `[[apps.webhooks]]\nurl = ${JSON.stringify(url)}\n` +
      'event_types = ["channel_occupied", "channel_vacated", "member_added", "member_removed"]\n';
    const node = () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'herald-cluster-hooks-'));
      dataDirs.push(dir);
      return startNode(redis, { config: { data_dir: path.join(dir, 'data'), webhook_removal_delay_ms: 300 }, extraToml: hooks });
    };
    [A, B] = await Promise.all([node(), node()]);
  });
  after(async () => {
    await stopAll([A, B]);
    await redis?.kill();
    receiver?.closeAllConnections?.();
    receiver?.close();
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
  });

  const events = (name, channel) => received.flatMap((r) => r.events).filter((e) => e.name === name && e.channel === channel);

  test('channel_occupied / channel_vacated are sent once for the cluster, vacated only when the last node empties', async () => {
    const a = client(A);
    await connected(a);
    await subscribed(a, 'wh-room');
    const b = client(B);
    await connected(b);
    await subscribed(b, 'wh-room');
    await eventually(() => events('channel_occupied', 'wh-room').length > 0, { timeoutMs: 5000, what: 'channel_occupied' });

    a.unsubscribe('wh-room'); // node A empties, node B still has a subscriber
    await sleep(300 + 2 * QUIET_MS); // past the removal delay
    assert.deepEqual(events('channel_vacated', 'wh-room'), [], 'no channel_vacated while node B has a subscriber');

    b.unsubscribe('wh-room');
    await eventually(() => events('channel_vacated', 'wh-room').length > 0, { timeoutMs: 5000, what: 'channel_vacated' });
    await sleep(QUIET_MS);
    assert.equal(events('channel_occupied', 'wh-room').length, 1, `occupied: ${JSON.stringify(received.map((r) => r.events))}`);
    assert.equal(events('channel_vacated', 'wh-room').length, 1, `vacated: ${JSON.stringify(received.map((r) => r.events))}`);
    assert.ok(received.every((r) => r.valid), 'every request passes pusher.webhook(req).isValid()');
  });

  test('member_added / member_removed are sent once for a user present on both nodes', async () => {
    const { c: uA } = await member(A, 'presence-wh', 'u');
    const { c: uB } = await member(B, 'presence-wh', 'u');
    await eventually(() => events('member_added', 'presence-wh').length > 0, { timeoutMs: 5000, what: 'member_added' });
    await sleep(QUIET_MS);
    assert.deepEqual(events('member_added', 'presence-wh'), [{ name: 'member_added', channel: 'presence-wh', user_id: 'u' }]);

    uA.disconnect();
    await sleep(300 + 2 * QUIET_MS);
    assert.deepEqual(events('member_removed', 'presence-wh'), [], 'u is still on node B');
    uB.disconnect();
    await eventually(() => events('member_removed', 'presence-wh').length > 0, { timeoutMs: 5000, what: 'member_removed' });
    await sleep(QUIET_MS);
    assert.deepEqual(events('member_removed', 'presence-wh'), [{ name: 'member_removed', channel: 'presence-wh', user_id: 'u' }]);
    assert.equal(events('channel_occupied', 'presence-wh').length, 1);
    assert.equal(events('channel_vacated', 'presence-wh').length, 1);
    assert.ok(received.every((r) => r.valid), 'every request passes pusher.webhook(req).isValid()');
  });
});
