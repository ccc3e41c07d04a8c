// The console (docs/OPERATIONS.md, "Console") in a real browser: Debian's chromium driven by
// playwright-core logs in through the login form, watches the live debug log while pusher-js
// clients and the `pusher` Node SDK act on the app, publishes with the event creator, reads the
// channels, webhooks and charts pages, and is refused (401, no app data) with a wrong password.
// With CONSOLE_SCREENSHOTS=<dir> it also saves a 1280x800 PNG of every page of this session
// into <dir> (docs/console holds the ones in the README).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  startHerald, serverSdk, client, closeAllClients, connected, subscribed, next, eventually, sleep,
  DEFAULT_APP,
} from '../lib/harness.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const USER = 'admin';
const PASSWORD = 'console-secret-42';
const APP = { ...DEFAULT_APP, max_messages_per_day: 5000 };
const VIEWPORT = { width: 1280, height: 800 };
const SHOTS = process.env.CONSOLE_SCREENSHOTS ? path.resolve(process.cwd(), process.env.CONSOLE_SCREENSHOTS) : null;
const WAIT = 15000;

let herald;
let sdk;
let dataDir;
let hookServer;
let hookUrl;
let hookRequests = 0;
let browser;
let ctx; // the logged-in browser context
let debugPage; // the debug log, open from the debug test on
const browserLog = [];

/** A webhook receiver that answers every request with 500. */
function startFailingReceiver() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        hookRequests += 1;
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end('receiver is down');
      });
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

const url = (p) => `${herald.httpUrl}${p}`;
const basic = (user, pass) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

/** A pusher-js client that can join presence channels as `userId` (info: { name }). */
function member(userId, name = userId) {
  return client(herald, {
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) => {
        try {
          const data = channelName.startsWith('presence-') ? { user_id: userId, user_info: { name } } : undefined;
          cb(null, sdk.authorizeChannel(socketId, channelName, data));
        } catch (e) {
          cb(e, null);
        }
      },
    },
  });
}

function watchPage(page, name) {
  page.on('console', (m) => browserLog.push(`${name} ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => browserLog.push(`${name} pageerror: ${e.message}`));
  return page;
}

/** Adds the browser console and herald's log to a failure's message. */
async function explained(fn) {
  try {
    await fn();
  } catch (e) {
    const { stderr } = herald.output();
    e.message += `\n--- browser console ---\n${browserLog.slice(-40).join('\n')}\n--- herald stderr ---\n${stderr.slice(-3000)}`;
    throw e;
  }
}

/** The first row of the debug log of `kind` containing every one of `texts`, as visible text. */
function logRow(page, kind, ...texts) {
  let rows = page.locator(`#log-body tr[data-kind="${kind}"]`);
  for (const t of texts) rows = rows.filter({ hasText: t });
  return rows.first();
}
const seen = (page, kind, ...texts) => logRow(page, kind, ...texts).waitFor({ state: 'visible', timeout: WAIT });

async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

async function openPage(p, name) {
  const page = watchPage(await ctx.newPage(), name);
  const res = await page.goto(url(p));
  assert.equal(res.status(), 200, `GET ${p}`);
  return page;
}

before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`chromium not found at ${CHROMIUM}. Install Debian's chromium (apt-get install -y chromium; ` +
      'scripts/test.sh does this) or set CHROMIUM_PATH.');
  }
  hookServer = await startFailingReceiver();
  hookUrl = `http://127.0.0.1:${hookServer.address().port}/hooks`;
  dataDir = mkdtempSync(path.join(tmpdir(), 'herald-console-'));
  herald = await startHerald({
    apps: [APP],
    config: {
      data_dir: path.join(dataDir, 'data'),
      webhook_retry_initial_ms: 200,
      webhook_retry_max_elapsed: 3,
      webhook_removal_delay_ms: 100,
      console: { enabled: true, username: USER, password: PASSWORD },
    },
    extraToml: ['[[apps.webhooks]]', `url = ${JSON.stringify(hookUrl)}`,
      'event_types = ["channel_occupied", "channel_vacated", "member_added", "member_removed", "client_event"]'].join('\n'),
  });
  sdk = serverSdk(herald);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 30000 });
});

after(async () => {
  closeAllClients();
  await browser?.close();
  hookServer?.close();
  await herald?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('a wrong password gets 401 and no app data, in the browser and over Basic auth', async () => explained(async () => {
  const fresh = await browser.newContext({ viewport: VIEWPORT });
  try {
    // A script or curl asking without credentials: 401 with the Basic challenge and the form.
    const first = await fresh.request.get(url(`/console/apps/${APP.id}/debug`));
    const firstBody = await first.text();
    assert.equal(first.status(), 401);
    assert.match(first.headers()['www-authenticate'] ?? '', /^Basic realm="herald console"/);
    assert.match(firstBody, /name="password"/);
    for (const secret of [APP.key, APP.secret, '"connections"', 'log-body', 'data-page=']) {
      assert.ok(!firstBody.includes(secret), `the 401 page contains ${secret}`);
    }

    // The browser opening the debug link itself: 401 and the login form in the page (no
    // Basic challenge on a navigation, so no browser dialog).
    const page = watchPage(await fresh.newPage(), 'wrong');
    const form = await page.goto(url(`/console/apps/${APP.id}/debug`));
    assert.equal(form.status(), 401);
    assert.equal(form.headers()['www-authenticate'], undefined);
    await page.fill('input[name="username"]', USER);
    await page.fill('input[name="password"]', 'not-the-password');
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/console/login'),
      page.press('input[name="password"]', 'Enter'),
    ]);
    assert.equal(answer.status(), 401);
    await page.waitForLoadState();
    const html = await page.content();
    assert.ok(await page.locator('input[name="password"]').isVisible(), 'the login form is shown again');
    for (const secret of [APP.key, APP.secret, '"connections"', 'log-body', 'data-page=']) {
      assert.ok(!html.includes(secret), `the 401 page contains ${secret}`);
    }
    assert.deepEqual((await fresh.cookies()).filter((c) => c.name === 'herald_console'), [], 'no session cookie');
    const api = await fresh.request.get(url('/console/api/apps'));
    assert.equal(api.status(), 401);
    assert.ok(!(await api.text()).includes(APP.id), 'no app id in the API 401 body');
  } finally {
    await fresh.close();
  }

  const wrong = await fetch(url('/console/api/apps'), { headers: { Authorization: basic(USER, 'wrong-password') } });
  const wrongBody = await wrong.text();
  assert.equal(wrong.status, 401);
  assert.match(wrong.headers.get('www-authenticate') ?? '', /^Basic realm="herald console"/);
  assert.ok(!wrongBody.includes(APP.id) && !wrongBody.includes('"connections"'), `no app data: ${wrongBody.slice(0, 200)}`);

  const right = await fetch(url('/console/api/apps'), { headers: { Authorization: basic(USER, PASSWORD) } });
  assert.equal(right.status, 200);
  assert.ok((await right.json()).some((a) => a.id === APP.id), 'the right password lists the app');

  // A POST without the CSRF token is refused even with the right credentials.
  const noToken = await fetch(url(`/console/api/apps/${APP.id}/events`), {
    method: 'POST',
    headers: { Authorization: basic(USER, PASSWORD), 'Content-Type': 'application/json' },
    body: JSON.stringify({ channel: 'csrf-check', event: 'nope', data: '{}' }),
  });
  assert.equal(noToken.status, 403);
}));

test('a shared debug link asks for the login and opens on the live log; the apps overview', async () => explained(async () => {
  ctx = await browser.newContext({ viewport: VIEWPORT });
  const page = watchPage(await ctx.newPage(), 'login');
  const debugPath = `/console/apps/${APP.id}/debug`;
  const res = await page.goto(url(debugPath));
  assert.equal(res.status(), 401);
  await page.fill('input[name="username"]', USER);
  await page.fill('input[name="password"]', PASSWORD);
  await Promise.all([
    page.waitForURL((u) => u.pathname === debugPath, { timeout: WAIT }),
    page.press('input[name="password"]', 'Enter'),
  ]);
  await page.locator('#debug-status', { hasText: 'Live' }).waitFor({ timeout: WAIT });
  await page.goto(url('/console'));
  const cookie = (await ctx.cookies()).find((c) => c.name === 'herald_console');
  assert.ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', `session cookie: ${JSON.stringify(cookie)}`);
  await page.locator('#apps-body a.app-id', { hasText: APP.id }).waitFor({ timeout: WAIT });
  await page.locator('#apps-body .quota-text', { hasText: '/ 5,000' }).waitFor({ timeout: WAIT });
  await page.close();
}));

test('the debug log shows each connection, subscription, channel, presence, API and client event as it happens', async () => explained(async () => {
  debugPage = await openPage(`/console/apps/${APP.id}/debug`, 'debug');
  await debugPage.locator('#debug-status', { hasText: 'Live' }).waitFor({ timeout: WAIT });
  // The stream is open; publish until an event shows, so nothing below can race the watch.
  await eventually(async () => {
    await sdk.trigger('console-probe', 'probe', { n: 1 });
    return logRow(debugPage, 'api_message', 'probe', 'console-probe').isVisible();
  }, { timeoutMs: WAIT, intervalMs: 500, what: 'a probe event in the debug log' });

  const a = member('alice', 'Alice');
  const aSocket = await connected(a);
  await seen(debugPage, 'connection_opened', aSocket);

  await subscribed(a, 'public-news');
  await seen(debugPage, 'subscribed', 'public-news', aSocket);
  await seen(debugPage, 'channel_occupied', 'public-news');

  await subscribed(a, 'presence-room');
  await seen(debugPage, 'member_added', 'presence-room', 'alice');

  await sdk.trigger('public-news', 'news-flash', { headline: 'herald console works' });
  await seen(debugPage, 'api_message', 'news-flash', 'public-news');
  await seen(debugPage, 'api_message', 'herald console works');

  const b = member('bob', 'Bob');
  await connected(b);
  await subscribed(b, 'private-chat');
  const chat = await subscribed(a, 'private-chat');
  const got = next(b.channel('private-chat'), 'client-typing', WAIT);
  assert.ok(chat.trigger('client-typing', { typing: true }), 'pusher-js sent the client event');
  await got;
  await seen(debugPage, 'client_event', 'client-typing', 'private-chat', aSocket);

  a.unsubscribe('public-news');
  await seen(debugPage, 'unsubscribed', 'public-news', aSocket);
  await seen(debugPage, 'channel_vacated', 'public-news');

  a.disconnect();
  await seen(debugPage, 'connection_closed', aSocket);
  await seen(debugPage, 'member_removed', 'presence-room', 'alice');
  b.disconnect();

  // The kind filter hides the other kinds; clearing it shows them again.
  await debugPage.selectOption('#filter-kind', 'api_message');
  assert.equal(await debugPage.locator('#log-body tr:not([data-kind="api_message"])').count(), 0);
  await debugPage.selectOption('#filter-kind', '');
  await seen(debugPage, 'connection_closed', aSocket);
}));

test('the event creator publishes an event that a pusher-js client receives, and refuses invalid JSON', async () => explained(async () => {
  const c = client(herald);
  await connected(c);
  const channel = await subscribed(c, 'console-target');
  const page = await openPage(`/console/apps/${APP.id}/events`, 'events');

  await page.fill('#ev-channel', 'console-target');
  await page.fill('#ev-event', 'from-console');
  await page.fill('#ev-data', '{"hello": ');
  await page.click('#ev-send');
  await page.locator('#ev-data-error', { hasText: 'Not valid JSON' }).waitFor({ timeout: WAIT });
  assert.equal(await page.getAttribute('#ev-data', 'aria-invalid'), 'true');

  await page.fill('#ev-data', '{"hello": "from the browser"}');
  const received = next(channel, 'from-console', WAIT);
  await page.click('#ev-send');
  const { data } = await received;
  assert.deepEqual(data, { hello: 'from the browser' });
  await page.locator('#ev-result', { hasText: 'Sent "from-console" to console-target' }).waitFor({ timeout: WAIT });
  await seen(debugPage, 'api_message', 'from-console', 'console-target');
  await shot(page, 'events');
  await page.close();
}));

test('failing webhooks show in the debug log and on the webhooks page, whose re-send goes through', async () => explained(async () => {
  await seen(debugPage, 'webhook_failed');
  assert.ok(hookRequests > 0, 'the receiver was called');
  await seen(debugPage, 'webhook_dead_letter');

  // A new channel: a delivery pending while the receiver keeps failing.
  const fresh = client(herald);
  await connected(fresh);
  await subscribed(fresh, 'hook-fresh');
  const page = await openPage(`/console/apps/${APP.id}/webhooks`, 'webhooks');
  await eventually(async () => {
    if (await page.locator('#pending-body tr', { hasText: hookUrl }).count()) return true;
    await page.click('#webhooks-refresh');
    return false;
  }, { timeoutMs: WAIT, intervalMs: 300, what: 'a pending delivery on the webhooks page' });
  await eventually(async () => {
    if (await page.locator('#dead-body tr', { hasText: hookUrl }).count() >= 2) return true;
    await page.click('#webhooks-refresh');
    return false;
  }, { timeoutMs: WAIT, intervalMs: 300, what: 'two dead letters on the webhooks page' });
  await shot(page, 'webhooks');

  await page.locator('#dead-body input[type="checkbox"]').first().check();
  await page.click('#resend-selected');
  await page.locator('#resend-result', { hasText: /^Re-sent 1 dead letter\.$/ }).waitFor({ timeout: WAIT });
  await page.click('#resend-all');
  await page.locator('#resend-result', { hasText: /^Re-sent \d+ dead letters?\.$/ }).waitFor({ timeout: WAIT });
  await page.close();
  fresh.disconnect();
}));

test('the channels page lists the occupied channels and presence members; the charts draw the history', async () => explained(async () => {
  const keepers = [member('alice', 'Alice'), member('bob', 'Bob'), member('carol', 'Carol')];
  for (const k of keepers) {
    await connected(k);
    await subscribed(k, 'presence-lobby');
    await subscribed(k, 'market-prices');
  }
  await subscribed(keepers[0], 'private-orders');

  const page = await openPage(`/console/apps/${APP.id}/channels`, 'channels');
  const lobby = page.locator('#channels-body button.channel-open', { hasText: 'presence-lobby' });
  await lobby.waitFor({ timeout: WAIT });
  const lobbyRow = page.locator('#channels-body tr').filter({ has: page.locator('button.channel-open', { hasText: 'presence-lobby' }) });
  await eventually(async () => JSON.stringify((await lobbyRow.locator('td').allTextContents()).slice(1)) === '["3","3"]',
    { timeoutMs: WAIT, intervalMs: 250, what: 'presence-lobby with 3 subscriptions and 3 users' });
  await page.locator('#channels-body tr', { hasText: 'market-prices' }).waitFor({ timeout: WAIT });
  await lobby.click();
  for (const id of ['alice', 'bob', 'carol']) {
    await page.locator('#members-body tr', { hasText: id }).waitFor({ timeout: WAIT });
  }

  if (SHOTS) await traffic(keepers);
  await page.click('#channels-refresh');
  await page.locator('#members-hint', { hasText: 'presence-lobby: 3 members' }).waitFor({ timeout: WAIT });
  await shot(page, 'channels');

  const charts = await openPage(`/console/apps/${APP.id}/charts`, 'charts');
  await eventually(async () => {
    if (await charts.locator('#chart-connections path.series').count() && await charts.locator('#chart-messages path.series').count()) return true;
    await charts.click('#charts-refresh');
    return false;
  }, { timeoutMs: 30000, intervalMs: 1000, what: 'both charts drawn from /history samples' });
  assert.ok(await charts.locator('#chart-connections text.axis-title', { hasText: 'Connections' }).count());
  assert.ok(await charts.locator('#chart-messages text.axis-title', { hasText: 'Time (local)' }).count());
  await shot(charts, 'charts');

  const apps = await openPage('/console', 'apps');
  await apps.locator('#apps-body a.app-id', { hasText: APP.id }).waitFor({ timeout: WAIT });
  await shot(apps, 'apps');
  for (const k of keepers) k.disconnect();
}));

/**
 * Screenshot runs only: a minute and a half of varying connections and messages, so the charts
 * have more than a sample or two to draw and the debug log a mix of every kind.
 */
async function traffic(keepers) {
  const extra = [];
  const until = Date.now() + 90000;
  for (let round = 0; Date.now() < until; round += 1) {
    if (round === 60) await shot(debugPage, 'debug'); // the log in the middle of it
    const want = 4 + Math.round(6 * Math.abs(Math.sin(round / 6)));
    while (extra.length < want) {
      const c = member(`guest-${round}-${extra.length}`, `Guest ${extra.length}`);
      extra.push(c);
      connected(c).then(() => c.subscribe(extra.length % 2 ? 'market-prices' : 'presence-lobby')).catch(() => {});
    }
    while (extra.length > want) extra.shift().disconnect();
    const burst = 1 + Math.round(4 * Math.abs(Math.cos(round / 4)));
    for (let i = 0; i < burst; i += 1) {
      await sdk.trigger('market-prices', 'price-update', { symbol: 'HRLD', price: 100 + round + i / 10 }).catch(() => {});
    }
    if (round % 3 === 0) keepers[0].channel('private-orders')?.trigger('client-order', { qty: round });
    await sleep(1000);
  }
  for (const c of extra) c.disconnect();
}
