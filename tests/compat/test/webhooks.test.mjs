// PROTOCOL.md 11 (webhooks) as the `pusher` Node SDK sees them: every event type, driven by
// pusher-js clients, arrives at a local receiver and passes `pusher.webhook(req).isValid()`
// (X-Pusher-Key + HMAC-SHA256 signature + Content-Type exactly application/json).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import PusherServer from 'pusher';
import {
  heraldBin, client, closeAllClients, connected, subscribed, eventually, sleep,
} from '../lib/harness.mjs';

const APP = { id: 'hook-app', key: 'hook-key', secret: 'hook-secret' };
const ALL = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event', 'cache_miss', 'subscription_count'];

let receiver;
let herald;
let sdk;
const received = []; // { valid, events, raw }

/** A local webhook endpoint validating every request with the pusher SDK. */
function startReceiver() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      let rawBody = '';
      req.setEncoding('utf8');
      req.on('data', (d) => { rawBody += d; });
      req.on('end', () => {
        const webhook = sdk.webhook({ headers: req.headers, rawBody });
        const valid = webhook.isValid();
        received.push({ valid, events: valid ? webhook.getEvents() : [], raw: rawBody, headers: req.headers, time: valid ? webhook.getTime() : null });
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('ok');
      });
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/** herald with a webhook target (nested TOML tables: the shared harness only writes flat apps). */
async function startHeraldWithWebhooks(url) {
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-webhooks-'));
  const cfg = path.join(dir, 'herald.toml');
  writeFileSync(cfg, [
    'host = "127.0.0.1"', 'port = 0', `data_dir = ${JSON.stringify(path.join(dir, 'data'))}`,
    'webhook_removal_delay_ms = 300',
    '', '[[apps]]', `id = "${APP.id}"`, `key = "${APP.key}"`, `secret = "${APP.secret}"`,
    'enable_client_messages = true', 'enable_subscription_count = true',
    '', '[[apps.webhooks]]', `url = ${JSON.stringify(url)}`, `event_types = ${JSON.stringify(ALL)}`, '',
  ].join('\n'));
  const child = spawn(heraldBin(), ['--config', cfg], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.setEncoding('utf8');
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`herald did not start: ${out}`)), 15000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /herald listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    });
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`herald exited ${code}: ${out}`)); });
  });
  child.stdout.resume();
  return {
    host: '127.0.0.1', port, httpUrl: `http://127.0.0.1:${port}`, app: APP, apps: [APP],
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

before(async () => {
  receiver = await startReceiver();
  herald = await startHeraldWithWebhooks(`http://127.0.0.1:${receiver.address().port}/webhooks`);
  sdk = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: herald.host, port: String(herald.port), useTLS: false });
});

after(async () => {
  closeAllClients();
  await herald?.stop();
  receiver?.close();
});

const allEvents = () => received.flatMap((r) => r.events);
const find = (name, channel) => allEvents().find((e) => e.name === name && e.channel === channel);

function presenceClient(userId) {
  return client(herald, {
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) => cb(null, sdk.authorizeChannel(socketId, channelName, { user_id: userId })),
    },
  });
}

test('every webhook event type arrives and passes pusher.webhook(req).isValid()', async () => {
  const a = presenceClient('u-1');
  const socketId = await connected(a);
  const room = await subscribed(a, 'presence-room');
  room.trigger('client-typing', { typing: true });
  await subscribed(a, 'counted');
  await subscribed(a, 'cache-btc');
  await eventually(() => find('client_event', 'presence-room') && find('cache_miss', 'cache-btc')
    && find('subscription_count', 'counted'), { timeoutMs: 5000, what: 'webhooks for occupied/added/client/cache/count' });
  a.disconnect();
  await eventually(() => find('member_removed', 'presence-room') && find('channel_vacated', 'presence-room')
    && find('channel_vacated', 'counted'), { timeoutMs: 5000, what: 'removal webhooks' });

  assert.ok(received.length > 0 && received.every((r) => r.valid), `every request is valid: ${JSON.stringify(received.filter((r) => !r.valid))}`);
  for (const r of received) {
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers['x-pusher-key'], APP.key);
    assert.ok(Math.abs(r.time.getTime() - Date.now()) < 60000, 'time_ms is the creation time');
  }
  assert.deepEqual(find('channel_occupied', 'presence-room'), { name: 'channel_occupied', channel: 'presence-room' });
  assert.deepEqual(find('member_added', 'presence-room'), { name: 'member_added', channel: 'presence-room', user_id: 'u-1' });
  assert.deepEqual(find('client_event', 'presence-room'), {
    name: 'client_event', channel: 'presence-room', event: 'client-typing', data: JSON.stringify({ typing: true }), socket_id: socketId, user_id: 'u-1',
  });
  assert.deepEqual(find('cache_miss', 'cache-btc'), { name: 'cache_miss', channel: 'cache-btc' });
  assert.deepEqual(find('subscription_count', 'counted'), { name: 'subscription_count', channel: 'counted', subscription_count: 1 });
  assert.deepEqual(find('member_removed', 'presence-room'), { name: 'member_removed', channel: 'presence-room', user_id: 'u-1' });
  assert.deepEqual(find('channel_vacated', 'counted'), { name: 'channel_vacated', channel: 'counted' });
  // per-channel order: occupied, added … removed, vacated
  const order = allEvents().filter((e) => e.channel === 'presence-room').map((e) => e.name);
  assert.deepEqual(order, ['channel_occupied', 'member_added', 'client_event', 'member_removed', 'channel_vacated']);
});

test('a reconnect within the removal delay produces no vacated/occupied pair', async () => {
  received.length = 0;
  const a = client(herald);
  await connected(a);
  await subscribed(a, 'reload-me');
  await eventually(() => find('channel_occupied', 'reload-me'), { timeoutMs: 5000, what: 'occupied' });
  a.disconnect();
  const b = client(herald);
  await connected(b);
  await subscribed(b, 'reload-me');
  await sleep(800);
  const names = allEvents().filter((e) => e.channel === 'reload-me' && e.name.startsWith('channel_')).map((e) => e.name);
  assert.deepEqual(names, ['channel_occupied']);
  b.disconnect();
});
