// herald browser example: serves index.html + pusher-js, an auth endpoint and a "trigger" endpoint,
// all written with the official `pusher` Node server SDK. Nothing here is herald-specific except
// the host/port the SDK and the page point at.
//
// Environment (all optional):
//   PORT          port of this example server (default 3000; 0 = any free port)
//   HOST          bind address of this example server (default 127.0.0.1)
//   HERALD_HOST   herald host for the browser and the SDK (default 127.0.0.1)
//   HERALD_PORT   herald port (default 6001)
//   HERALD_TLS    1 when herald serves TLS ([tls]): the page connects with wss:// and the SDK
//                 publishes over https:// (Node must trust herald's certificate: start this
//                 server with NODE_EXTRA_CA_CERTS=<CA or certificate PEM> for a private CA)
//   APP_ID, APP_KEY, APP_SECRET   herald app credentials (default app-id / app-key / app-secret)
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Pusher from 'pusher';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const config = {
  port: Number(process.env.PORT ?? 3000),
  host: process.env.HOST ?? '127.0.0.1',
  heraldHost: process.env.HERALD_HOST ?? '127.0.0.1',
  heraldPort: Number(process.env.HERALD_PORT ?? 6001),
  heraldTls: process.env.HERALD_TLS === '1',
  appId: process.env.APP_ID ?? 'app-id',
  key: process.env.APP_KEY ?? 'app-key',
  secret: process.env.APP_SECRET ?? 'app-secret',
};

const PUBLIC_CHANNEL = 'demo-public';
const PRIVATE_CHANNEL = 'private-demo';

const pusher = new Pusher({
  appId: config.appId,
  key: config.key,
  secret: config.secret,
  host: config.heraldHost,
  port: String(config.heraldPort),
  useTLS: config.heraldTls,
});

const pusherJsPath = path.join(path.dirname(require.resolve('pusher-js/package.json')), 'dist', 'web', 'pusher.min.js');

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; if (body.length > 65536) req.destroy(); });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

const sendJson = (res, status, obj) => send(res, status, 'application/json', JSON.stringify(obj));

async function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) {
    return send(res, 200, 'text/html; charset=utf-8', await readFile(path.join(here, 'index.html')));
  }
  if (req.method === 'GET' && url.pathname === '/pusher.min.js') {
    return send(res, 200, 'text/javascript; charset=utf-8', await readFile(pusherJsPath));
  }
  if (req.method === 'GET' && url.pathname === '/config.js') {
    // What the page needs to reach herald; the secret never leaves this server.
    const pageConfig = {
      key: config.key,
      wsHost: config.heraldHost,
      wsPort: config.heraldPort,
      forceTLS: config.heraldTls,
      publicChannel: PUBLIC_CHANNEL,
      privateChannel: PRIVATE_CHANNEL,
    };
    return send(res, 200, 'text/javascript; charset=utf-8', `window.HERALD_CONFIG = ${JSON.stringify(pageConfig)};\n`);
  }
  if (req.method === 'POST' && url.pathname === '/pusher/auth') {
    // pusher-js posts application/x-www-form-urlencoded: socket_id, channel_name
    const form = new URLSearchParams(await readBody(req));
    const socketId = form.get('socket_id');
    const channel = form.get('channel_name');
    if (channel !== PRIVATE_CHANNEL) return sendJson(res, 403, { error: `not allowed: ${channel}` });
    return sendJson(res, 200, pusher.authorizeChannel(socketId, channel));
  }
  if (req.method === 'POST' && url.pathname === '/trigger') {
    let message = 'hello from the server';
    try {
      const body = JSON.parse((await readBody(req)) || '{}');
      if (typeof body.message === 'string' && body.message.trim()) message = body.message.slice(0, 500);
    } catch { /* keep the default message */ }
    const data = { message, sentAt: new Date().toISOString() };
    try {
      await pusher.trigger([PUBLIC_CHANNEL, PRIVATE_CHANNEL], 'demo-event', data);
      return sendJson(res, 200, { ok: true, data });
    } catch (e) {
      return sendJson(res, 502, { ok: false, error: `herald answered ${e.status ?? ''} ${e.body ?? e.message}` });
    }
  }
  return send(res, 404, 'text/plain; charset=utf-8', 'not found');
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => send(res, 500, 'text/plain; charset=utf-8', String(e?.stack ?? e)));
});

server.listen(config.port, config.host, () => {
  const { address, port } = server.address();
  console.log(`example listening on http://${address}:${port} (herald at ${config.heraldTls ? 'wss' : 'ws'}://${config.heraldHost}:${config.heraldPort}, key ${config.key})`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { server.closeAllConnections?.(); server.close(() => process.exit(0)); });
}
