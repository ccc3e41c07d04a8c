// PROTOCOL.md 5.1, 5.2, 10.3, 10.4 — public channels fed by the `pusher` Node server SDK.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startHerald, client, closeAllClients, connected, subscribed, next, record, serverSdk, sdk, json, eventually,
} from '../lib/harness.mjs';

let herald;
let pusher;

before(async () => {
  herald = await startHerald();
  pusher = serverSdk(herald);
});

after(async () => {
  closeAllClients();
  await herald?.stop();
});

test('event triggered with the server SDK reaches a subscribed pusher-js client', async () => {
  const c = client(herald);
  await connected(c);
  const ch = await subscribed(c, 'my-channel');
  assert.equal(ch.subscribed, true);
  const got = next(ch, 'my-event');
  const res = await sdk(pusher.trigger('my-channel', 'my-event', { hello: 'world', n: 42, nested: { ok: true } }));
  assert.deepEqual(await json(res), {}, 'trigger without info answers {}');
  const { data } = await got;
  assert.deepEqual(data, { hello: 'world', n: 42, nested: { ok: true } });
  c.disconnect();
});

test('string data and Laravel-style event names (backslashes) are relayed unchanged', async () => {
  const c = client(herald);
  await connected(c);
  const ch = await subscribed(c, 'orders');
  const got = next(ch, 'App\\Events\\OrderShipped');
  await sdk(pusher.trigger('orders', 'App\\Events\\OrderShipped', 'plain text, not JSON'));
  assert.equal((await got).data, 'plain text, not JSON');
  c.disconnect();
});

test('triggerBatch delivers every event of the batch to its own channel', async () => {
  const c = client(herald);
  await connected(c);
  const [a, b] = await Promise.all([subscribed(c, 'batch-a'), subscribed(c, 'batch-b')]);
  const gotA = next(a, 'first');
  const gotB = next(b, 'second');
  const res = await sdk(pusher.triggerBatch([
    { channel: 'batch-a', name: 'first', data: { n: 1 } },
    { channel: 'batch-b', name: 'second', data: { n: 2 } },
  ]));
  assert.deepEqual(await json(res), {});
  assert.deepEqual((await gotA).data, { n: 1 });
  assert.deepEqual((await gotB).data, { n: 2 });
  c.disconnect();
});

test('one trigger to several channels delivers one copy per subscribed channel', async () => {
  const all = client(herald);
  const one = client(herald);
  await Promise.all([connected(all), connected(one)]);
  const chans = await Promise.all(['multi-1', 'multi-2', 'multi-3'].map((n) => subscribed(all, n)));
  const only2 = await subscribed(one, 'multi-2');
  const got = chans.map((ch) => next(ch, 'fanout'));
  const gotOne = next(only2, 'fanout');
  const seenByOne = record(only2);
  await sdk(pusher.trigger(['multi-1', 'multi-2', 'multi-3'], 'fanout', { x: 1 }));
  for (const g of await Promise.all(got)) assert.deepEqual(g.data, { x: 1 });
  assert.deepEqual((await gotOne).data, { x: 1 });
  // a marker published afterwards proves no second copy was queued for `one`
  const marker = next(only2, 'marker');
  await sdk(pusher.trigger('multi-2', 'marker', {}));
  await marker;
  assert.deepEqual(seenByOne.filter((e) => e.event === 'fanout').length, 1);
  all.disconnect();
  one.disconnect();
});

test('trigger with socket_id is not delivered to that socket but is to others', async () => {
  const a = client(herald);
  const b = client(herald);
  const [idA] = await Promise.all([connected(a), connected(b)]);
  const chA = await subscribed(a, 'exclusion');
  const chB = await subscribed(b, 'exclusion');
  const seenA = record(chA);
  const bGotExcluded = next(chB, 'ev', 5000, (d) => d.n === 1);
  const aGotMarker = next(chA, 'ev', 5000, (d) => d.n === 2);
  await sdk(pusher.trigger('exclusion', 'ev', { n: 1 }, { socket_id: idA }));
  await bGotExcluded;
  await sdk(pusher.trigger('exclusion', 'ev', { n: 2 }));
  await aGotMarker;
  assert.deepEqual(seenA.filter((e) => e.event === 'ev').map((e) => e.data), [{ n: 2 }],
    `socket ${idA} must not receive the event it was excluded from`);
  a.disconnect();
  b.disconnect();
});

test('unsubscribed client no longer receives events', async () => {
  const a = client(herald);
  const b = client(herald);
  await Promise.all([connected(a), connected(b)]);
  await subscribed(a, 'leaving');
  const chB = await subscribed(b, 'leaving');
  // raw frames: pusher-js would silently drop events for a channel it no longer knows
  const framesA = [];
  a.connection.bind('message', (m) => { if (m.channel === 'leaving') framesA.push(m); });
  a.unsubscribe('leaving');
  // wait until herald has processed the unsubscribe: subscription_count drops to 1
  await eventually(async () => {
    const r = await json(await sdk(pusher.get({ path: '/channels/leaving', params: { info: 'subscription_count' } })));
    return r.subscription_count === 1;
  }, { what: 'subscription_count of "leaving" to drop to 1' });
  const gotB = next(chB, 'after');
  await sdk(pusher.trigger('leaving', 'after', { late: true }));
  await gotB;
  // a marker on another channel of `a`, published after, proves nothing is still in flight
  const other = await subscribed(a, 'leaving-marker');
  const marker = next(other, 'm');
  await sdk(pusher.trigger('leaving-marker', 'm', {}));
  await marker;
  assert.deepEqual(framesA, [], 'no frame for an unsubscribed channel');
  a.disconnect();
  b.disconnect();
});
