// herald terminating TLS itself ([tls], docs/OPERATIONS.md "TLS"), driven by real clients that
// trust a private CA made for the test: pusher-js (Node) with forceTLS over wss://, the `pusher`
// Node SDK with useTLS over https://, the Python SDK with ssl=True, and pusher-js in Debian's
// Chromium (the examples/browser page) over wss://.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { startHerald, serverSdk, sdk, withTimeout, COMPAT_DIR, REPO_ROOT } from '../lib/harness.mjs';
import { makeCertificates } from '../lib/tls-fixture.mjs';

const run = promisify(execFile);
const CHILD = path.join(COMPAT_DIR, 'lib', 'pusher-js-child.mjs');
const PYTHON = process.env.HERALD_PYTHON ?? path.join(COMPAT_DIR, 'python', '.venv', 'bin', 'python');
const PY_SCRIPT = path.join(COMPAT_DIR, 'python', 'sdk_roundtrip.py');
const EXAMPLE_DIR = path.join(REPO_ROOT, 'examples', 'browser');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// pusher-http-python only accepts numeric app ids.
const APP = { id: '4343', key: 'tls-key', secret: 'tls-secret', enable_client_messages: true, force_tls: true };

let certs;
let herald;
const children = new Set();

before(async () => {
  certs = makeCertificates();
  herald = await startHerald({ apps: [APP], tls: { certFile: certs.certFile, keyFile: certs.keyFile } });
});

after(async () => {
  for (const child of children) {
    try { child.kill('SIGKILL'); } catch { /* gone */ }
  }
  await herald?.stop();
  certs?.remove();
});

/**
 * pusher-js in a child process trusting the test CA (NODE_EXTRA_CA_CERTS), subscribed to
 * `channel`. Resolves once subscribed, with `nextEvent()` (the data of the next `event`) and its
 * output so far for error messages.
 */
async function pusherJsOverTls(channel, event) {
  const child = spawn(process.execPath, [CHILD], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NODE_EXTRA_CA_CERTS: certs.caFile,
      HERALD_HOST: 'localhost',
      HERALD_PORT: String(herald.port),
      APP_KEY: APP.key,
      CHANNEL: channel,
      EVENT: event,
      FORCE_TLS: '1',
    },
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const lines = [];
  const waiters = [];
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { stderr += d; });
  createInterface({ input: child.stdout }).on('line', (line) => {
    const msg = JSON.parse(line);
    lines.push(msg);
    for (const w of [...waiters]) {
      if (w.match(msg)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(msg);
      }
    }
  });
  const output = () => `child output: ${JSON.stringify(lines)}\nstderr: ${stderr}`;
  const waitFor = (match, what) => withTimeout(new Promise((resolve) => {
    const seen = lines.find(match);
    if (seen) resolve(seen);
    else waiters.push({ match, resolve });
  }), 15000, `${what}; ${output()}`);
  await waitFor((m) => m.subscribed === channel, `pusher-js to subscribe to ${channel} over wss://`);
  return {
    nextEvent: () => waitFor((m) => m.event === event, `${event} on ${channel}`).then((m) => m.data),
    states: () => lines.filter((m) => m.state).map((m) => m.state),
    stop: () => child.kill('SIGTERM'),
  };
}

test('pusher-js with forceTLS receives an event the pusher Node SDK published with useTLS', async () => {
  const sub = await pusherJsOverTls('tls-node', 'node-event');
  try {
    assert.ok(sub.states().includes('connected'), `states: ${sub.states()}`);
    const got = sub.nextEvent();
    const sender = serverSdk(herald, APP, { host: 'localhost', useTLS: true, agent: new https.Agent({ ca: certs.caPem }) });
    const res = await sdk(sender.trigger('tls-node', 'node-event', { over: 'https' }));
    assert.equal(res.status, 200);
    assert.deepEqual(await got, { over: 'https' });
  } finally {
    sub.stop();
  }
});

test('the Python SDK with ssl=True triggers an event pusher-js receives over wss://', async () => {
  if (!existsSync(PYTHON)) {
    throw new Error(`python venv missing at ${PYTHON}: run scripts/test.sh`);
  }
  const sub = await pusherJsOverTls('tls-python', 'py-event');
  try {
    const got = sub.nextEvent();
    const env = {
      ...process.env,
      HERALD_HOST: 'localhost',
      HERALD_PORT: String(herald.port),
      HERALD_SSL: '1',
      REQUESTS_CA_BUNDLE: certs.caFile,
      APP_ID: APP.id,
      APP_KEY: APP.key,
      APP_SECRET: APP.secret,
    };
    let out;
    try {
      out = await run(PYTHON, [PY_SCRIPT, 'trigger', 'tls-python', 'py-event', '{"from": "python", "ssl": true}'],
        { env, timeout: 20000 });
    } catch (e) {
      throw new Error(`python trigger failed (exit ${e.code}):\n${e.stderr ?? ''}\n${e.stdout ?? ''}`);
    }
    assert.deepEqual(JSON.parse(out.stdout), {});
    assert.deepEqual(await got, { from: 'python', ssl: true });
  } finally {
    sub.stop();
  }
});

test('the pusher Node SDK refuses herald without the CA (the certificate is really checked)', async () => {
  const sender = serverSdk(herald, APP, { host: 'localhost', useTLS: true });
  await assert.rejects(sender.trigger('tls-node', 'unseen', {}), (e) => {
    // The SDK's RequestError carries the TLS error in `error`.
    const cause = `${e.error?.code ?? ''} ${e.error?.message ?? ''} ${e.error?.cause?.code ?? ''}`;
    assert.match(cause, /CERT|VERIFY|certificate/i, `${e.message}: ${cause}`);
    return true;
  });
});

test('pusher-js in Chromium (the browser example) connects over wss:// and receives an event', async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`chromium not found at ${CHROMIUM}; scripts/test.sh installs it`);
  }
  if (!existsSync(path.join(EXAMPLE_DIR, 'node_modules', 'pusher-js'))) {
    throw new Error(`examples/browser dependencies missing: run \`npm ci\` in ${EXAMPLE_DIR}`);
  }
  // The example's own `pusher` SDK publishes over https:// and trusts the CA the same way.
  const example = spawn(process.execPath, ['server.mjs'], {
    cwd: EXAMPLE_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NODE_EXTRA_CA_CERTS: certs.caFile,
      PORT: '0',
      HOST: '127.0.0.1',
      HERALD_HOST: 'localhost',
      HERALD_PORT: String(herald.port),
      HERALD_TLS: '1',
      APP_ID: APP.id,
      APP_KEY: APP.key,
      APP_SECRET: APP.secret,
    },
  });
  children.add(example);
  let exampleLog = '';
  example.stderr.setEncoding('utf8');
  example.stderr.on('data', (d) => { exampleLog += d; });
  example.stdout.setEncoding('utf8');
  const exampleUrl = await withTimeout(new Promise((resolve, reject) => {
    example.stdout.on('data', (d) => {
      exampleLog += d;
      const m = /example listening on (http:\/\/\S+)/.exec(exampleLog);
      if (m) resolve(m[1]);
    });
    example.once('exit', (code) => reject(new Error(`example server exited with ${code}:\n${exampleLog}`)));
  }), 10000, 'the example server to listen');
  assert.match(exampleLog, /herald at wss:\/\/localhost:/);

  // Chromium trusts exactly this leaf (its public key's SHA-256), not any certificate.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--ignore-certificate-errors-spki-list=${certs.spkiSha256}`,
    ],
  });
  const page = await browser.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  try {
    await page.goto(exampleUrl);
    await page.locator('#connection-state', { hasText: /^connected$/ }).waitFor({ timeout: 15000 });
    await page.locator('#public-status', { hasText: 'subscribed to demo-public' }).waitFor({ timeout: 10000 });
    const message = `over wss ${Date.now()}`;
    await page.fill('#message', message);
    await page.click('#trigger');
    await page.locator('li.event[data-channel="demo-public"]', { hasText: message }).waitFor({ timeout: 10000 });
    await page.locator('#trigger-result', { hasText: /^triggered$/ }).waitFor({ timeout: 10000 });
    // The page really is on wss:// to herald's port (force_tls app: a plain ws:// would get 4000).
    const url = await page.evaluate(() => window.Pusher.instances[0].connection.connection.transport.socket.url);
    assert.match(url, new RegExp(`^wss://localhost:${herald.port}/app/${APP.key}`));
  } catch (e) {
    e.message += `\n--- browser console ---\n${consoleLines.join('\n')}\n--- example server ---\n${exampleLog}`;
    throw e;
  } finally {
    await page.close();
    await browser.close();
    example.kill('SIGTERM');
  }
});
