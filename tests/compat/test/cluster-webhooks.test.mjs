// docs/CLUSTER.md and docs/WEBHOOKS.md: two herald processes sharing one Redis report webhooks to
// one receiver, verified with the `pusher` SDK's `webhook(req).isValid()`; channel_occupied /
// channel_vacated and member_added / member_removed are sent once for the whole cluster.
//
// Each file starts its own private redis-server on a free port (never a shared one) and herald
// processes on it (lib/cluster-fixture.mjs); it is skipped with a message when redis-server is
// missing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serverSdk, client, connected, subscribed, eventually, sleep, DEFAULT_APP } from '../lib/harness.mjs';
import { skip, QUIET_MS, startCluster, member } from '../lib/cluster-fixture.mjs';

describe('webhooks in a cluster', { skip }, () => {
  let cluster;
  let A; let B;
  let receiver;
  const received = [];
  const dataDirs = [];

  before(async () => {
    const verifier = serverSdk({ host: '127.0.0.1', port: 1 }, DEFAULT_APP);
    receiver = http.createServer((req, res) => {
      let rawBody = '';
      req.setEncoding('utf8');
      req.on('data', (d) => { rawBody += d; });
      req.on('end', () => {
        const webhook = verifier.webhook({ headers: req.headers, rawBody });
        const valid = webhook.isValid();
        received.push({ valid, events: valid ? webhook.getEvents() : [], raw: rawBody });
        res.writeHead(200);
        res.end('ok');
      });
    });
    await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${receiver.address().port}/webhooks`;
    const hooks = `[[apps.webhooks]]\nurl = ${JSON.stringify(url)}\n` +
      'event_types = ["channel_occupied", "channel_vacated", "member_added", "member_removed"]\n';
    const node = () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'herald-cluster-hooks-'));
      dataDirs.push(dir);
      return { config: { data_dir: path.join(dir, 'data'), webhook_removal_delay_ms: 300 }, extraToml: hooks };
    };
    cluster = await startCluster([node(), node()]);
    [A, B] = cluster.nodes;
  });
  after(async () => {
    await cluster?.stop();
    receiver?.closeAllConnections?.();
    receiver?.close();
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
  });

  const events = (name, channel) => received.flatMap((r) => r.events).filter((e) => e.name === name && e.channel === channel);

  test('channel_occupied / channel_vacated are sent once for the cluster, vacated only when the last node empties', async () => {
    const a = client(A);
    await connected(a);
    await subscribed(a, 'wh-room');
    const b = client(B);
    await connected(b);
    await subscribed(b, 'wh-room');
    await eventually(() => events('channel_occupied', 'wh-room').length > 0, { timeoutMs: 5000, what: 'channel_occupied' });

    a.unsubscribe('wh-room'); // node A empties, node B still has a subscriber
    await sleep(300 + 2 * QUIET_MS); // past the removal delay
    assert.deepEqual(events('channel_vacated', 'wh-room'), [], 'no channel_vacated while node B has a subscriber');

    b.unsubscribe('wh-room');
    await eventually(() => events('channel_vacated', 'wh-room').length > 0, { timeoutMs: 5000, what: 'channel_vacated' });
    await sleep(QUIET_MS);
    assert.equal(events('channel_occupied', 'wh-room').length, 1, `occupied: ${JSON.stringify(received.map((r) => r.events))}`);
    assert.equal(events('channel_vacated', 'wh-room').length, 1, `vacated: ${JSON.stringify(received.map((r) => r.events))}`);
    assert.ok(received.every((r) => r.valid), 'every request passes pusher.webhook(req).isValid()');
  });

  test('member_added / member_removed are sent once for a user present on both nodes', async () => {
    const { c: uA } = await member(A, 'presence-wh', 'u');
    const { c: uB } = await member(B, 'presence-wh', 'u');
    await eventually(() => events('member_added', 'presence-wh').length > 0, { timeoutMs: 5000, what: 'member_added' });
    await sleep(QUIET_MS);
    assert.deepEqual(events('member_added', 'presence-wh'), [{ name: 'member_added', channel: 'presence-wh', user_id: 'u' }]);

    uA.disconnect();
    await sleep(300 + 2 * QUIET_MS);
    assert.deepEqual(events('member_removed', 'presence-wh'), [], 'u is still on node B');
    uB.disconnect();
    await eventually(() => events('member_removed', 'presence-wh').length > 0, { timeoutMs: 5000, what: 'member_removed' });
    await sleep(QUIET_MS);
    assert.deepEqual(events('member_removed', 'presence-wh'), [{ name: 'member_removed', channel: 'presence-wh', user_id: 'u' }]);
    assert.equal(events('channel_occupied', 'presence-wh').length, 1);
    assert.equal(events('channel_vacated', 'presence-wh').length, 1);
    assert.ok(received.every((r) => r.valid), 'every request passes pusher.webhook(req).isValid()');
  });
});
