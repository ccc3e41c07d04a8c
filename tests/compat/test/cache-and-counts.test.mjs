// PROTOCOL.md 9.1 (cache channels) and 9.2 (subscription count) as pusher-js sees them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startHerald, client, closeAllClients, connected, next, serverSdk, sdk, json, DEFAULT_APP, withTimeout,
} from '../lib/harness.mjs';

let herald;
let pusher;

before(async () => {
  herald = await startHerald({ apps: [{ ...DEFAULT_APP, enable_subscription_count: true }] });
  pusher = serverSdk(herald);
});

after(async () => {
  closeAllClients();
  await herald?.stop();
});

/** Subscribe and collect, in order, what the channel emits right after subscribing. */
function subscribeRecording(c, name) {
  const ch = c.subscribe(name);
  const events = [];
  // subscription counts are enabled on this app (9.2 covers cache channels too): not part of the cache sequence
  ch.bind_global((event, data) => { if (event !== 'pusher:subscription_count') events.push({ event, data }); });
  return { ch, events };
}

test('cache channel: pusher:cache_miss when empty, the last event right after subscribing when cached', async () => {
  const first = client(herald);
  await connected(first);
  const { ch, events } = subscribeRecording(first, 'cache-btc');
  await next(ch, 'pusher:cache_miss');
  assert.deepEqual(events.map((e) => e.event), ['pusher:subscription_succeeded', 'pusher:cache_miss']);

  const live = next(ch, 'price-updated');
  await sdk(pusher.trigger('cache-btc', 'price-updated', { usd: 64000 }));
  assert.deepEqual((await live).data, { usd: 64000 });

  const late = client(herald);
  await connected(late);
  const rec = subscribeRecording(late, 'cache-btc');
  const { data } = await next(rec.ch, 'price-updated');
  assert.deepEqual(data, { usd: 64000 });
  assert.deepEqual(rec.events.map((e) => e.event), ['pusher:subscription_succeeded', 'price-updated']);

  const info = await json(await sdk(pusher.get({ path: '/channels/cache-btc', params: { info: 'cache' } })));
  assert.equal(info.occupied, true);
  assert.equal(info.cache.data, JSON.stringify({ usd: 64000 }));
  assert.ok(Number.isInteger(info.cache.ttl) && info.cache.ttl > 0 && info.cache.ttl <= 1800, `ttl ${info.cache.ttl}`);
  first.disconnect();
  late.disconnect();
});

test('subscription count: pusher:subscription_count follows subscribers joining and leaving', async () => {
  const a = client(herald);
  const b = client(herald);
  await Promise.all([connected(a), connected(b)]);
  const chA = a.subscribe('counted');
  const one = await next(chA, 'pusher:subscription_count');
  assert.deepEqual(one.data, { subscription_count: 1 });
  const two = next(chA, 'pusher:subscription_count', 5000, (d) => d.subscription_count === 2);
  const chB = b.subscribe('counted');
  await two;
  assert.equal(chA.subscriptionCount, 2);
  await withTimeout(new Promise((r) => (chB.subscriptionCount === 2 ? r() : chB.bind('pusher:subscription_count', r))),
    5000, 'second subscriber to learn the count');
  const back = next(chA, 'pusher:subscription_count', 5000, (d) => d.subscription_count === 1);
  b.disconnect();
  await back;
  a.disconnect();
});
