// PROTOCOL.md 2.4, 2.5, 2.7, 2.8, 12.1 — connection lifecycle as pusher-js (Node build) sees it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startHerald, client, closeAllClients, connected, next, sleep, withTimeout, DEFAULT_APP,
} from '../lib/harness.mjs';

let herald;

before(async () => {
  herald = await startHerald({ config: { activity_timeout: 7 } });
});

after(async () => {
  closeAllClients();
  await herald?.stop();
});

test('pusher-js connects and gets a socket_id of the form digits.digits', async () => {
  const a = client(herald);
  const b = client(herald);
  const [idA, idB] = await Promise.all([connected(a), connected(b)]);
  assert.match(idA, /^\d+\.\d+$/);
  assert.match(idB, /^\d+\.\d+$/);
  assert.notEqual(idA, idB, 'two live connections must have distinct socket ids');
  a.disconnect();
  b.disconnect();
});

test('handshake activity_timeout from the config is applied by pusher-js', async () => {
  const c = client(herald);
  await connected(c);
  // pusher-js: activityTimeout = min(option 120000, handshake activity_timeout * 1000)
  assert.equal(c.connection.activityTimeout, 7000);
  c.disconnect();
});

test('pusher:ping from the client is answered with pusher:pong and the connection stays up', async () => {
  // A short client activityTimeout makes pusher-js send pusher:ping after 300 ms of silence;
  // without a pong within pongTimeout it would drop the socket and reconnect.
  const c = client(herald, { activityTimeout: 300, pongTimeout: 1000 });
  const socketId = await connected(c);
  const states = [];
  c.connection.bind('state_change', (s) => states.push(s.current));
  let pongs = 0;
  c.connection.bind('message', (m) => { if (m.event === 'pusher:pong') pongs += 1; });
  await next(c.connection, 'message', 3000, (m) => m.event === 'pusher:pong');
  await sleep(1800); // > pongTimeout + 2 activity periods
  assert.ok(pongs >= 2, `expected at least two pusher:pong replies, got ${pongs}`);
  assert.deepEqual(states, [], 'connection must not have changed state');
  assert.equal(c.connection.state, 'connected');
  assert.equal(c.connection.socket_id, socketId);
  c.disconnect();
});

test('an idle connection survives several activity_timeout periods (server probe + client ping)', async () => {
  const own = await startHerald({ config: { activity_timeout: 1 } });
  try {
    const c = client(own, { pongTimeout: 1500 });
    const socketId = await connected(c);
    assert.equal(c.connection.activityTimeout, 1000);
    const states = [];
    c.connection.bind('state_change', (s) => states.push(s.current));
    await sleep(3500);
    assert.deepEqual(states, [], 'no reconnect while idle');
    assert.equal(c.connection.state, 'connected');
    assert.equal(c.connection.socket_id, socketId);
    c.disconnect();
  } finally {
    await own.stop();
  }
});

test('unknown app key is refused with 4001 and pusher-js stops without retrying', async () => {
  const c = client(herald, { app: { ...DEFAULT_APP, key: 'no-such-key' } });
  const states = [];
  const errors = [];
  c.connection.bind('state_change', (s) => states.push(s.current));
  c.connection.bind('error', (e) => errors.push(e));
  await withTimeout(new Promise((resolve) => {
    const check = ({ current }) => {
      if (['disconnected', 'failed', 'unavailable'].includes(current)) resolve();
    };
    c.connection.bind('state_change', check);
  }), 5000, 'pusher-js to give up on an unknown key');
  await sleep(1500); // pusher-js would retry after 1 s if the close action were not "refused"
  const codes = errors.map((e) => e?.error?.data?.code ?? e?.data?.code);
  assert.ok(codes.includes(4001), `expected an error carrying code 4001, got ${JSON.stringify(errors)}`);
  assert.equal(states.filter((s) => s === 'connecting').length, 0,
    `pusher-js must not reconnect after 4001; states: ${states.join(' -> ')}`);
  assert.ok(['disconnected', 'failed', 'unavailable'].includes(c.connection.state), `state is ${c.connection.state}`);
  assert.equal(c.connection.socket_id, undefined);
  c.disconnect();
});

test('graceful shutdown (SIGTERM) closes client connections with 4200', async () => {
  const own = await startHerald();
  try {
    const c = client(own);
    await connected(c);
    // pusher-js is stopped in the same tick as the 4200 error, before it handles the close
    // frame: on 4200 it reconnects at once, and a reconnect racing the process exit can keep
    // retrying in this test's process (the lifecycle tests cover the reconnect itself).
    const err = withTimeout(new Promise((resolve) => {
      c.connection.bind('error', (e) => {
        if ((e?.error?.data?.code ?? e?.data?.code) === 4200) {
          c.disconnect();
          resolve(e);
        }
      });
    }), 5000, 'the 4200 error');
    const stopping = own.stop();
    const data = await err;
    assert.equal(data?.error?.data?.code ?? data?.data?.code, 4200);
    await stopping;
  } finally {
    await own.stop();
  }
});
