// PROTOCOL.md 6.2 (Python json.dumps spacing, vector C), 10.2 (body_md5 on GET, %2C in info),
// 10.3–10.7 — pusher-http-python (PyPI `pusher`) against herald, observed by pusher-js clients.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  startHerald, client, closeAllClients, connected, subscribed, next, COMPAT_DIR,
} from '../lib/harness.mjs';

const run = promisify(execFile);
const PY_DIR = path.join(COMPAT_DIR, 'python');
const SCRIPT = path.join(PY_DIR, 'sdk_roundtrip.py');
const PYTHON = process.env.HERALD_PYTHON ?? path.join(PY_DIR, '.venv', 'bin', 'python');
// pusher-http-python only accepts numeric app ids.
const PY_APP = { id: '4242', key: 'py-key', secret: 'py-secret', enable_client_messages: true };

let herald;
let env;

before(async () => {
  if (!existsSync(PYTHON)) {
    throw new Error(`python venv missing at ${PYTHON}: run scripts/test.sh (or python3 -m venv ${path.join(PY_DIR, '.venv')} && ` +
      `${path.join(PY_DIR, '.venv', 'bin', 'pip')} install -r ${path.join(PY_DIR, 'requirements.txt')})`);
  }
  herald = await startHerald({ apps: [PY_APP] });
  env = {
    ...process.env,
    HERALD_HOST: herald.host,
    HERALD_PORT: String(herald.port),
    APP_ID: PY_APP.id,
    APP_KEY: PY_APP.key,
    APP_SECRET: PY_APP.secret,
  };
});

after(async () => {
  closeAllClients();
  await herald?.stop();
});

async function python(...args) {
  try {
    const { stdout } = await run(PYTHON, [SCRIPT, ...args], { env, timeout: 20000 });
    return JSON.parse(stdout);
  } catch (e) {
    throw new Error(`python ${args.join(' ')} failed (exit ${e.code}):\n${e.stderr ?? ''}\n${e.stdout ?? ''}`);
  }
}

/** pusher-js channelAuthorization that asks the Python SDK (json.dumps spacing in channel_data). */
function pythonAuthorizer(userId, name) {
  return {
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => {
        python('auth', socketId, channelName, userId, name).then((r) => callback(null, r), (e) => callback(e, null));
      },
    },
  };
}

test('presence auth signed by the Python SDK (spaced channel_data) is accepted', async () => {
  const c = client(herald, { app: PY_APP, ...pythonAuthorizer('py-1', 'Monty') });
  await connected(c);
  const ch = await subscribed(c, 'presence-py-auth', 20000);
  assert.equal(ch.members.count, 1);
  assert.deepEqual(ch.members.me, { id: 'py-1', info: { name: 'Monty' } });
  c.disconnect();
});

test('Python SDK trigger, trigger_batch and channel queries against herald', async () => {
  // Observers: a public subscriber and two presence members (one via Python-signed auth).
  const pub = client(herald, { app: PY_APP });
  const m1 = client(herald, { app: PY_APP, ...pythonAuthorizer('py-1', 'Monty') });
  const m2 = client(herald, { app: PY_APP, ...pythonAuthorizer('py-2', 'Eric') });
  await Promise.all([connected(pub), connected(m1), connected(m2)]);
  const chPub = await subscribed(pub, 'py-public');
  const [chM1] = await Promise.all([subscribed(m1, 'presence-py', 20000), subscribed(m2, 'presence-py', 20000)]);

  const gotEvent = next(chPub, 'py-event', 20000);
  const gotBatch1 = next(chPub, 'py-batch-1', 20000);
  const gotBatch2 = next(chM1, 'py-batch-2', 20000);

  const r = await python('roundtrip');

  assert.deepEqual((await gotEvent).data, { from: 'python', n: 1 });
  assert.deepEqual((await gotBatch1).data, { n: 1 });
  assert.equal((await gotBatch2).data, 'plain string from python');

  assert.deepEqual(r.trigger, {});
  assert.deepEqual(r.batch, {});
  assert.deepEqual(r.channels, { channels: { 'py-public': {}, 'presence-py': {} } });
  assert.deepEqual(r.presence_channels, { channels: { 'presence-py': { user_count: 2 } } });
  assert.deepEqual(r.channel, { occupied: true, user_count: 2, subscription_count: 2 });
  assert.deepEqual(r.public_channel, { occupied: true, subscription_count: 1 });
  assert.deepEqual(r.users.users.map((u) => u.id).sort(), ['py-1', 'py-2']);
  assert.match(r.channel_percent_encoded.url_query, /info=user_count%2Csubscription_count/);
  assert.equal(r.channel_percent_encoded.status, 200, `percent-encoded info: ${JSON.stringify(r.channel_percent_encoded)}`);
  assert.deepEqual(r.channel_percent_encoded.body, { occupied: true, user_count: 2, subscription_count: 2 });
  pub.disconnect();
  m1.disconnect();
  m2.disconnect();
});
