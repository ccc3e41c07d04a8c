// examples/browser in a real browser: Debian's chromium driven by playwright-core runs the
// pusher-js web build against herald, with the example's `pusher` SDK auth + trigger endpoints.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startHerald, withTimeout, REPO_ROOT } from '../lib/harness.mjs';

const EXAMPLE_DIR = path.join(REPO_ROOT, 'examples', 'browser');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

let herald;
let example;
let exampleUrl;
let exampleLog = '';
let browser;

function startExample(heraldServer) {
  if (!existsSync(path.join(EXAMPLE_DIR, 'node_modules', 'pusher-js'))) {
    throw new Error(`examples/browser dependencies missing: run \`npm ci\` in ${EXAMPLE_DIR} (scripts/test.sh does it)`);
  }
  example = spawn(process.execPath, ['server.mjs'], {
    cwd: EXAMPLE_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      HERALD_HOST: heraldServer.host,
      HERALD_PORT: String(heraldServer.port),
      APP_ID: heraldServer.app.id,
      APP_KEY: heraldServer.app.key,
      APP_SECRET: heraldServer.app.secret,
    },
  });
  process.on('exit', () => { try { example.kill('SIGKILL'); } catch { /* gone */ } });
  example.stderr.setEncoding('utf8');
  example.stderr.on('data', (d) => { exampleLog += d; });
  example.stdout.setEncoding('utf8');
  return withTimeout(new Promise((resolve, reject) => {
    example.stdout.on('data', (d) => {
      exampleLog += d;
      const m = /example listening on (http:\/\/\S+)/.exec(exampleLog);
      if (m) resolve(m[1]);
    });
    example.once('exit', (code) => reject(new Error(`example server exited with ${code}:\n${exampleLog}`)));
  }), 10000, 'the example server to listen');
}

before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`chromium not found at ${CHROMIUM}. Install Debian's chromium (apt-get install -y chromium; ` +
      'scripts/test.sh does this) or set CHROMIUM_PATH.');
  }
  herald = await startHerald();
  exampleUrl = await startExample(herald);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 30000 });
});

after(async () => {
  await browser?.close();
  if (example && example.exitCode === null) {
    example.kill('SIGTERM');
    await new Promise((r) => { example.once('exit', r); setTimeout(r, 2000); });
  }
  await herald?.stop();
});

test('browser page connects, subscribes to public and private channels, and shows a triggered event', async () => {
  const page = await browser.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  try {
    await page.goto(exampleUrl);
    await page.locator('#connection-state', { hasText: /^connected$/ }).waitFor({ timeout: 10000 });
    const socketId = await page.locator('#socket-id').textContent();
    assert.match(socketId, /^\d+\.\d+$/);
    await page.locator('#public-status', { hasText: 'subscribed to demo-public' }).waitFor({ timeout: 10000 });
    await page.locator('#private-status', { hasText: 'subscribed to private-demo' }).waitFor({ timeout: 10000 });

    const message = `browser check ${Date.now()}`;
    await page.fill('#message', message);
    await page.click('#trigger');
    await page.locator('li.event[data-channel="demo-public"]', { hasText: message }).waitFor({ timeout: 10000 });
    await page.locator('li.event[data-channel="private-demo"]', { hasText: message }).waitFor({ timeout: 10000 });
    // the events may arrive over the WebSocket before the fetch() answer: wait for it too
    await page.locator('#trigger-result', { hasText: /^triggered$/ }).waitFor({ timeout: 10000 });
    const texts = await page.locator('li.event .text').allTextContents();
    assert.deepEqual(texts, [`demo-event: ${message}`, `demo-event: ${message}`]);
  } catch (e) {
    e.message += `\n--- browser console ---\n${consoleLines.join('\n')}\n--- example server ---\n${exampleLog}`;
    throw e;
  } finally {
    await page.close();
  }
});
