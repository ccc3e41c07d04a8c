// A real local HTTP auth endpoint, written the way a customer writes one with the
// `pusher` Node server SDK (authorizeChannel / authenticateUser). pusher-js reaches it
// through `channelAuthorization: { endpoint, transport: 'ajax' }` (form-encoded POST).
import http from 'node:http';

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

/**
 * Start an auth endpoint for `sdk` (a `pusher` server SDK instance).
 * Form parameters understood (pusher-js sends socket_id and channel_name; tests add the rest
 * through channelAuthorization.params):
 *   user_id, user_name  presence member (channel_data = {user_id, user_info: {name}})
 *   numeric_id=1        send user_id as a JSON number (hosted accepts {"user_id":1265})
 *   bad=1               return an auth whose signature is wrong (same shape, flipped hex)
 *   watchlist=a,b       user authentication: the user's watchlist (PROTOCOL.md 8.5)
 * Returns { url, authEndpoint, userAuthEndpoint, requests, close() }.
 */
export async function startAuthServer(sdk) {
  const requests = [];
  const server = http.createServer(async (req, res) => {
    const body = await readBody(req);
    const params = Object.fromEntries(new URLSearchParams(body));
    requests.push({ path: req.url, params });
    const send = (status, obj) => {
      res.writeHead(status, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
      res.end(JSON.stringify(obj));
    };
    try {
      if (req.method === 'POST' && req.url.startsWith('/pusher/auth')) {
        const { socket_id: socketId, channel_name: channel } = params;
        let auth;
        if (channel.startsWith('presence-')) {
          const userId = params.numeric_id === '1' ? Number(params.user_id) : (params.user_id ?? 'anonymous');
          const presenceData = { user_id: userId, user_info: { name: params.user_name ?? params.user_id ?? 'anonymous' } };
          auth = sdk.authorizeChannel(socketId, channel, presenceData);
        } else {
          auth = sdk.authorizeChannel(socketId, channel);
        }
        if (params.bad === '1') {
          const [key, sig] = auth.auth.split(':');
          const flipped = sig.replace(/^./, (ch) => (ch === '0' ? '1' : '0'));
          auth = { ...auth, auth: `${key}:${flipped}` };
        }
        return send(200, auth);
      }
      if (req.method === 'POST' && req.url.startsWith('/pusher/user-auth')) {
        const user = { id: params.user_id ?? 'anonymous', user_info: { name: params.user_name ?? 'anonymous' } };
        if (params.watchlist) user.watchlist = params.watchlist.split(',');
        return send(200, sdk.authenticateUser(params.socket_id, user));
      }
      send(404, { error: 'not found' });
    } catch (e) {
      send(500, { error: String(e && e.message ? e.message : e) });
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    authEndpoint: `${url}/pusher/auth`,
    userAuthEndpoint: `${url}/pusher/user-auth`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

/** pusher-js options that use the auth endpoint through the ajax transport. */
/**
 * laravel-echo options the way a Laravel app configures its pusher broadcaster against `herald`
 * (ws only, no TLS, no stats), authorizing through `auth` with extra form `params`.
 */
export function echoOptions(herald, auth, params = {}) {
  return {
    broadcaster: 'pusher',
    key: herald.app.key,
    wsHost: herald.host,
    wsPort: herald.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    cluster: 'mt1',
    disableStats: true,
    authEndpoint: auth.authEndpoint,
    auth: { headers: {}, params },
  };
}

export function authOptions(auth, params = {}) {
  return {
    channelAuthorization: { endpoint: auth.authEndpoint, transport: 'ajax', params },
    userAuthentication: { endpoint: auth.userAuthEndpoint, transport: 'ajax', params },
  };
}
