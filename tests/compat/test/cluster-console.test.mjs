// The console's live debug log across a cluster (docs/OPERATIONS.md, "Console"; docs/CLUSTER.md):
// two herald nodes on a private Redis, the debug log open in Debian's chromium on node A, and
// pusher-js clients and the `pusher` Node SDK acting on node B only. Every action on B shows up
// in A's log as it happens (connection, subscription, occupied channel, presence member, API
// message, client event, vacated channel), and the event creator on A reaches a pusher-js
// client on B.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { next, DEFAULT_APP } from '../lib/harness.mjs';
import { skip, startCluster, member } from '../lib/cluster-fixture.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'];
const USER = 'admin';
const PASSWORD = 'cluster-console-42';
const WAIT = 15000;

/** The first row of the debug log of `kind` containing every one of `texts`, as visible text. */
function logRow(page, kind, ...texts) {
  let rows = page.locator(`#log-body tr[data-kind="${kind}"]`);
  for (const t of texts) rows = rows.filter({ hasText: t });
  return rows.first();
}
const seen = (page, kind, ...texts) => logRow(page, kind, ...texts).waitFor({ state: 'visible', timeout: WAIT });

describe('the debug log on one node shows what happens on another', { skip }, () => {
  let cluster;
  let A; let B;
  let browser;
  let page;

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`chromium not found at ${CHROMIUM} (apt-get install -y chromium; scripts/test.sh does this)`);
    }
    const config = { console: { enabled: true, username: USER, password: PASSWORD } };
    cluster = await startCluster([{ config }, { config }]);
    [A, B] = cluster.nodes;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 30000 });
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await ctx.newPage();
    // The shared link of A's debug log: the login form, then the log itself.
    const debugPath = `/console/apps/${DEFAULT_APP.id}/debug`;
    const first = await page.goto(`${A.httpUrl}${debugPath}`);
    assert.equal(first.status(), 401);
    await page.fill('input[name="username"]', USER);
    await page.fill('input[name="password"]', PASSWORD);
    await Promise.all([
      page.waitForURL((u) => u.pathname === debugPath, { timeout: WAIT }),
      page.press('input[name="password"]', 'Enter'),
    ]);
    await page.locator('#debug-status', { hasText: 'Live' }).waitFor({ timeout: WAIT });
  });

  after(async () => {
    await browser?.close();
    await cluster?.stop();
  });

  test('connections, subscriptions, presence, API messages and client events on node B appear on node A', async () => {
    // The watch reaches B through Redis within about a second: publish on B until A shows it.
    const probe = async () => {
      for (let i = 0; i < 30; i += 1) {
        await B.sdk.trigger('cluster-probe', 'probe', { i });
        if (await logRow(page, 'api_message', 'probe', 'cluster-probe').isVisible()) return;
        await new Promise((r) => setTimeout(r, 300));
      }
      assert.fail('node B\'s API message never reached the debug log on node A');
    };
    await probe();

    const { c: alice, ch: room } = await member(B, 'presence-lobby', 'alice');
    const aliceSocket = alice.connection.socket_id;
    await seen(page, 'connection_opened', aliceSocket);
    await seen(page, 'subscribed', 'presence-lobby', aliceSocket);
    await seen(page, 'channel_occupied', 'presence-lobby');
    await seen(page, 'member_added', 'presence-lobby', 'alice');
    assert.ok(room.members.count >= 1);

    await B.sdk.trigger('cluster-news', 'headline', { text: 'from node B' });
    await seen(page, 'api_message', 'headline', 'cluster-news');

    const { ch: bobChat } = await member(B, 'private-cluster-chat', 'bob');
    const { ch: aliceChat } = await member(B, 'private-cluster-chat', 'alice');
    const got = next(bobChat, 'client-wave', WAIT);
    assert.ok(aliceChat.trigger('client-wave', { hi: true }), 'pusher-js sent the client event');
    await got;
    await seen(page, 'client_event', 'client-wave', 'private-cluster-chat');

    alice.unsubscribe('presence-lobby');
    await seen(page, 'member_removed', 'presence-lobby', 'alice');
    await seen(page, 'channel_vacated', 'presence-lobby');
  });

  test('the event creator on node A reaches a pusher-js client on node B', async () => {
    const { ch } = await member(B, 'cluster-created', 'carol');
    const got = next(ch, 'from-console', WAIT);
    const creator = await page.context().newPage();
    const res = await creator.goto(`${A.httpUrl}/console/apps/${DEFAULT_APP.id}/events`);
    assert.equal(res.status(), 200);
    await creator.fill('#ev-channel', 'cluster-created');
    await creator.fill('#ev-event', 'from-console');
    await creator.fill('#ev-data', '{"n": 1}');
    await creator.click('#ev-send');
    await creator.locator('#ev-result', { hasText: 'Sent "from-console" to cluster-created' }).waitFor({ timeout: WAIT });
    assert.deepEqual((await got).data, { n: 1 });
    await creator.close();
  });
});
