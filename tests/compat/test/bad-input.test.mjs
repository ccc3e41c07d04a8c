// Bad input against the real binary: every abuse gets the protocol's answer, the server keeps
// serving everyone else, and its log shows no panic (checked by herald.stop()).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startHerald, serverSdk } from '../lib/harness.mjs';

let herald;

before(async () => {
  herald = await startHerald({ config: { max_ws_message_kb: 4 } });
});

after(async () => {
  await herald?.stop();
});

function rawWs(path = `/app/${'app-key'}?protocol=7`) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${herald.host}:${herald.port}${path}`);
    const frames = [];
    let closed = null;
    ws.onmessage = (m) => frames.push(m.data);
    ws.onclose = (e) => { closed = { code: e.code, reason: e.reason }; };
    ws.onerror = () => {};
    ws.onopen = () => resolve({ ws, frames, closed: () => closed });
    setTimeout(() => reject(new Error('no open')), 5000);
  });
}

const until = async (cond, ms = 5000) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
};

test('garbage bytes before the handshake get an HTTP error and the server keeps serving', async () => {
  const reply = await new Promise((resolve) => {
    const s = net.connect(herald.port, herald.host, () => s.write(Buffer.from([0, 1, 2, 0xff, 0xfe, 13, 10, 13, 10])));
    let data = '';
    s.on('data', (d) => { data += d; });
    s.on('close', () => resolve(data));
    s.on('error', () => resolve(data));
    setTimeout(() => { s.destroy(); resolve(data); }, 3000);
  });
  assert.match(reply, /^HTTP\/1\.1 4\d\d/);
  const c = await rawWs();
  assert.ok(await until(() => c.frames.length > 0));
  assert.match(c.frames[0], /pusher:connection_established/);
  c.ws.close();
});

test('malformed JSON, unknown events, binary frames keep the connection open', async () => {
  const c = await rawWs();
  await until(() => c.frames.length > 0);
  c.ws.send('{not json');
  c.ws.send('[1,2,3]');
  c.ws.send(JSON.stringify({ event: 'foo', data: {} }));
  c.ws.send(new Uint8Array([1, 2, 3]));
  c.ws.send(JSON.stringify({ event: 'pusher:ping', data: {} }));
  assert.ok(await until(() => c.frames.some((f) => f.includes('pusher:pong'))));
  const errors = c.frames.filter((f) => f.includes('pusher:error')).map((f) => JSON.parse(f));
  assert.equal(errors.length, 3);
  for (const e of errors) assert.equal(e.data.code, null);
  assert.equal(c.closed(), null);
  c.ws.close();
});

test('a frame over max_ws_message_kb is closed with 1009 and others are unaffected', async () => {
  const victim = await rawWs();
  const bystander = await rawWs();
  await until(() => victim.frames.length > 0 && bystander.frames.length > 0);
  victim.ws.send('x'.repeat(5 * 1024));
  assert.ok(await until(() => victim.closed() !== null));
  assert.equal(victim.closed().code, 1009);
  bystander.ws.send(JSON.stringify({ event: 'pusher:ping' }));
  assert.ok(await until(() => bystander.frames.some((f) => f.includes('pusher:pong'))));
  bystander.ws.close();
});

test('unknown app key and bad protocol get their close codes', async () => {
  const unknown = await rawWs('/app/nope?protocol=7');
  assert.ok(await until(() => unknown.closed() !== null));
  assert.equal(unknown.closed().code, 4001);
  const badProto = await rawWs('/app/app-key?protocol=99');
  assert.ok(await until(() => badProto.closed() !== null));
  assert.equal(badProto.closed().code, 4007);
});

test('a flood of junk from one client does not disturb event delivery to another', async () => {
  const flooder = await rawWs();
  const listener = await rawWs();
  await until(() => listener.frames.length > 0);
  listener.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'calm' } }));
  await until(() => listener.frames.some((f) => f.includes('subscription_succeeded')));
  for (let i = 0; i < 500; i += 1) flooder.ws.send(`junk ${i} {{{`);
  await serverSdk(herald).trigger('calm', 'still-here', { ok: true });
  assert.ok(await until(() => listener.frames.some((f) => f.includes('still-here'))));
  flooder.ws.close();
  listener.ws.close();
});
