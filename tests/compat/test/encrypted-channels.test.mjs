// PROTOCOL.md 5.4, 6.4 — end-to-end encrypted channels: the `pusher` SDK encrypts with
// encryptionMasterKeyBase64, herald relays the ciphertext untouched, pusher-js (its Node build
// bundles tweetnacl) decrypts with the shared_secret from the auth endpoint.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';
import {
  startHerald, client, closeAllClients, connected, subscribed, next, serverSdk, sdk,
} from '../lib/harness.mjs';
import { startAuthServer, authOptions } from '../lib/auth-server.mjs';

const MASTER_KEY = randomBytes(32).toString('base64');
let herald;
let pusher;
let auth;

before(async () => {
  herald = await startHerald();
  pusher = serverSdk(herald, herald.app, { encryptionMasterKeyBase64: MASTER_KEY });
  auth = await startAuthServer(pusher);
});

after(async () => {
  closeAllClients();
  await auth?.close();
  await herald?.stop();
});

test('pusher-js decrypts an event published by the server SDK on a private-encrypted channel', async () => {
  const c = client(herald, authOptions(auth));
  await connected(c);
  const ch = await subscribed(c, 'private-encrypted-vault');
  const req = auth.requests.find((r) => r.params.channel_name === 'private-encrypted-vault');
  assert.ok(req, 'auth endpoint was asked for the encrypted channel');

  // Raw frame as herald sent it: ciphertext, never the plaintext.
  const raw = next(c.connection, 'message', 5000, (m) => m.channel === 'private-encrypted-vault' && m.event === 'secret');
  const got = next(ch, 'secret');
  const payload = { msg: 'hello from the vault', n: 7, unicode: 'ą§¶™€' };
  await sdk(pusher.trigger('private-encrypted-vault', 'secret', payload));
  assert.deepEqual((await got).data, payload);

  const frame = (await raw).data;
  const wire = typeof frame.data === 'string' ? JSON.parse(frame.data) : frame.data;
  assert.deepEqual(Object.keys(wire).sort(), ['ciphertext', 'nonce']);
  assert.equal(Buffer.from(wire.nonce, 'base64').length, 24);
  const key = Buffer.from(pusher.channelSharedSecret('private-encrypted-vault'));
  const opened = nacl.secretbox.open(Buffer.from(wire.ciphertext, 'base64'), Buffer.from(wire.nonce, 'base64'), key);
  assert.ok(opened, 'ciphertext relayed by herald opens with the channel shared secret');
  assert.deepEqual(JSON.parse(Buffer.from(opened).toString('utf8')), payload);
  c.disconnect();
});

test('a multi-channel publish including an encrypted channel is rejected with 400', async () => {
  // The SDK refuses this locally, so send the signed request through its generic post().
  await assert.rejects(
    pusher.post({ path: '/events', body: { name: 'x', data: '{}', channels: ['private-encrypted-vault', 'plain'] } }),
    (e) => { assert.equal(e.status, 400, `expected 400, got ${e.status}: ${e.body}`); return true; },
  );
});
