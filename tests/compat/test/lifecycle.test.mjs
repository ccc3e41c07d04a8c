// PROTOCOL.md 15 items 1 and 7: what pusher-js and laravel-echo do with herald's close codes, and
// laravel-echo's encryptedPrivate() and .error().
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Echo from 'laravel-echo';
import PusherClient from 'pusher-js';
import {
  startHerald, serverSdk, client, closeAllClients, connected, subscribed, next, withTimeout, sdk, sleep, eventually,
} from '../lib/harness.mjs';
import { startAuthServer, authOptions, echoOptions } from '../lib/auth-server.mjs';

const MASTER_KEY = Buffer.alloc(32, 7).toString('base64');
const cleanups = [];
after(async () => {
  closeAllClients();
  for (const c of cleanups.reverse()) await c();
});

async function setup(appExtra = {}) {
  const app = { id: 'app-id', key: 'app-key', secret: 'app-secret', enable_client_messages: true, ...appExtra };
  const herald = await startHerald({ apps: [app] });
  const pusher = serverSdk(herald, app, { encryptionMasterKeyBase64: MASTER_KEY });
  const auth = await startAuthServer(pusher);
  cleanups.push(() => herald.stop(), () => auth.close());
  return { herald, pusher, auth };
}

function echo(herald, auth, params = {}) {
  const e = new Echo({ ...echoOptions(herald, auth, params), Pusher: PusherClient });
  cleanups.push(async () => e.disconnect());
  return e;
}

test('laravel-echo encryptedPrivate() receives and decrypts an event from the SDK', async () => {
  const { herald, pusher, auth } = await setup();
  const e = echo(herald, auth);
  await connected(e.connector.pusher);
  const ch = e.encryptedPrivate('vault');
  await withTimeout(new Promise((r) => ch.subscribed(r)), 5000, 'encrypted channel subscribed');
  const got = withTimeout(new Promise((r) => ch.listen('.secret', r)), 5000, 'decrypted event');
  await sdk(pusher.trigger('private-encrypted-vault', 'secret', { code: 42 }));
  assert.deepEqual(await got, { code: 42 });
});

test('laravel-echo .error() fires for a refused subscription when emit_subscription_error is on', async () => {
  const { herald, auth } = await setup({ emit_subscription_error: true });
  const e = echo(herald, auth, { bad: '1' });
  await connected(e.connector.pusher);
  const err = await withTimeout(new Promise((r) => e.private('locked').error(r)), 5000, 'Echo .error()');
  assert.equal(err.type, 'AuthError');
  assert.equal(err.status, 401);
  assert.match(String(err.error), /^Invalid signature/);
});

test('pusher-js stops for good after terminate_connections (4009)', async () => {
  const { herald, pusher, auth } = await setup();
  const c = client(herald, authOptions(auth, { user_id: 'kicked' }));
  await connected(c);
  const signedIn = next(c.user, 'pusher:signin_success', 5000).catch(() => null);
  c.signin();
  await signedIn;
  await eventually(async () => {
    const res = await pusher.terminateUserConnections('kicked');
    return res.status === 200 && c.connection.state !== 'connected';
  }, { timeoutMs: 5000, what: 'connection closed by terminate' });
  await sleep(1500);
  assert.ok(['disconnected', 'failed', 'unavailable'].includes(c.connection.state), c.connection.state);
  assert.notEqual(c.connection.state, 'connecting');
});

/** A TCP proxy whose backend port can be switched (a load balancer in front of two nodes). */
async function proxy(targetPort) {
  const net = await import('node:net');
  const state = { target: targetPort };
  const sockets = new Set();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(state.target, '127.0.0.1');
    sockets.add(inbound); sockets.add(outbound);
    inbound.pipe(outbound); outbound.pipe(inbound);
    const end = () => { inbound.destroy(); outbound.destroy(); };
    inbound.on('error', end); outbound.on('error', end); inbound.on('close', end); outbound.on('close', end);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    retarget(port) { state.target = port; },
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

test('pusher-js reconnects at once and resubscribes when a node shuts down gracefully (4200)', async () => {
  const app = { id: 'app-id', key: 'app-key', secret: 'app-secret' };
  const first = await startHerald({ apps: [app] });
  const second = await startHerald({ apps: [app] });
  cleanups.push(() => second.stop());
  const lb = await proxy(first.port);
  cleanups.push(() => lb.close());
  const c = client({ host: '127.0.0.1', port: lb.port, app });
  await connected(c);
  await subscribed(c, 'news');
  const firstSocket = c.connection.socket_id;
  lb.retarget(second.port); // new connections go to the surviving node
  const started = Date.now();
  await first.stop(); // SIGTERM → pusher:error 4200 + close 4200
  await eventually(() => c.connection.state === 'connected' && c.connection.socket_id !== firstSocket,
    { timeoutMs: 5000, what: 'pusher-js reconnected to the other node' });
  assert.ok(Date.now() - started < 4000, 'reconnected without a back-off delay');
  const got = next(c.channel('news'), 'after-restart', 5000);
  await eventually(async () => {
    await sdk(serverSdk(second, app).trigger('news', 'after-restart', { ok: 1 }));
    return true;
  }, { what: 'trigger' });
  assert.deepEqual((await got).data, { ok: 1 });
});
