// Fixtures for the cluster-*.test.mjs files (docs/CLUSTER.md, the Redis adapter): a private
// redis-server on a free port (never a shared one), herald processes sharing it, and the
// pusher-js / HTTP API helpers those files use to look at the cluster.
//
// Needs `redis-server` on PATH (scripts/test.sh installs Debian's package); `skip` is the
// describe option that skips a file's suite with a message when it is missing.
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import {
  startHerald, serverSdk, client, closeAllClients, connected, subscribed, eventually, json, sdk, DEFAULT_APP,
} from './harness.mjs';

const HAVE_REDIS = spawnSync('redis-server', ['--version']).status === 0;
export const skip = HAVE_REDIS ? false : 'redis-server is not installed (apt-get install redis-server)';

/** How long "nothing arrives" is watched for. */
export const QUIET_MS = 500;

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
export async function startRedis() {
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
export async function startNode(redis, { config = {}, apps = [DEFAULT_APP], extraToml = '' } = {}) {
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

export async function readyBody(node) {
  const res = await fetch(`${node.httpUrl}/ready`);
  return res.text();
}

/** Sum of a Prometheus metric's samples on GET /metrics (throws when the node does not export it). */
export async function metric(node, name) {
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
export function authedClient(node, userId, opts = {}) {
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
export async function member(node, channel, userId, opts) {
  const c = authedClient(node, userId, opts);
  await connected(c);
  const ch = await subscribed(c, channel);
  return { c, ch };
}

export const memberIds = (ch) => {
  const ids = [];
  ch.members.each((m) => ids.push(m.id));
  return ids.sort();
};

export const getJson = async (node, p, params) => json(await sdk(node.sdk.get({ path: p, params })));

/** Test teardown: no graceful shutdown needed (every suite has its own Redis). */
export async function stopAll(nodes) {
  closeAllClients();
  await Promise.all(nodes.filter(Boolean).map((n) => {
    try { n.child.kill('SIGKILL'); } catch { /* gone */ }
    return n.stop();
  }));
}

/**
 * A private redis-server and one herald node on it per entry of `nodes` (the options of
 * `startNode`; a number n is n nodes with the defaults). Resolves once every node is ready;
 * `stop()` kills the nodes, then the redis-server.
 */
export async function startCluster(nodes) {
  const redis = await startRedis();
  const options = typeof nodes === 'number' ? Array.from({ length: nodes }, () => ({})) : nodes;
  let started;
  try {
    started = await Promise.all(options.map((o) => startNode(redis, o)));
  } catch (e) {
    await redis.kill();
    throw e;
  }
  return {
    redis,
    nodes: started,
    async stop() {
      await stopAll(started);
      await redis.kill();
    },
  };
}
