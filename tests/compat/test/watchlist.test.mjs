// PROTOCOL.md 8.5 — watchlist events seen through pusher-js's `user.watchlist` bindings, with the
// user-authentication endpoint written with the `pusher` SDK's authenticateUser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startHerald, client, closeAllClients, connected, serverSdk, withTimeout,
} from '../lib/harness.mjs';
import { startAuthServer, authOptions } from '../lib/auth-server.mjs';

let herald;
let auth;

before(async () => {
  herald = await startHerald({
    apps: [{ id: 'app-id', key: 'app-key', secret: 'app-secret', enable_watchlist_events: true }],
  });
  auth = await startAuthServer(serverSdk(herald));
});

after(async () => {
  closeAllClients();
  await auth?.close();
  await herald?.stop();
});

async function signIn(params) {
  const c = client(herald, authOptions(auth, params));
  await connected(c);
  c.signin();
  await withTimeout(c.user.signinDonePromise, 5000, 'signin');
  return c;
}

/** Every watchlist event pusher-js emits on `c.user.watchlist`, as "name:id". */
function watch(c) {
  const seen = [];
  for (const name of ['online', 'offline']) {
    c.user.watchlist.bind(name, (event) => {
      for (const id of event.user_ids) seen.push(`${name}:${id}`);
    });
  }
  return seen;
}

const until = async (cond, what, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('pusher-js user.watchlist gets the initial state, then online and offline as watched users come and go', async () => {
  const bob = await signIn({ user_id: 'bob' });
  const watcher = client(herald, authOptions(auth, { user_id: 'ada', watchlist: 'bob,cy' }));
  const seen = watch(watcher);
  await connected(watcher);
  watcher.signin();
  await withTimeout(watcher.user.signinDonePromise, 5000, 'watcher signin');
  await until(() => seen.length >= 2, 'initial watchlist state');
  assert.deepEqual(seen.slice().sort(), ['offline:cy', 'online:bob']);

  const cy = await signIn({ user_id: 'cy' });
  await until(() => seen.includes('online:cy'), 'online:cy');
  cy.disconnect();
  await until(() => seen.includes('offline:cy'), 'offline:cy');
  bob.disconnect();
  await until(() => seen.includes('offline:bob'), 'offline:bob');
  assert.deepEqual(seen.filter((e) => e.endsWith(':cy')), ['offline:cy', 'online:cy', 'offline:cy']);
});
