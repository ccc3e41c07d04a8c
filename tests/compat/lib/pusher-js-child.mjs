// pusher-js (Node build) in a process of its own, for TLS tests: Node reads
// NODE_EXTRA_CA_CERTS (the test CA) only when a process starts, and pusher-js's Node transport
// takes no TLS options, so the client runs here with the variable set by its parent.
//
// Environment: HERALD_HOST, HERALD_PORT, APP_KEY, CHANNEL, EVENT, FORCE_TLS (1 = wss://).
// Prints one JSON object per line on stdout: {"state":"connected"|"failed"|...},
// {"subscribed":CHANNEL}, {"event":EVENT,"data":...} for each event received; exits on SIGTERM
// or after 60 s.
import PusherClient from 'pusher-js';

const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const env = process.env;
const client = new PusherClient(env.APP_KEY, {
  wsHost: env.HERALD_HOST,
  wsPort: Number(env.HERALD_PORT),
  wssPort: Number(env.HERALD_PORT),
  forceTLS: env.FORCE_TLS === '1',
  enabledTransports: ['ws', 'wss'],
  cluster: 'mt1',
  disableStats: true,
});
client.connection.bind('state_change', ({ current }) => say({ state: current }));
client.connection.bind('error', (e) => say({ error: String(e?.error?.data?.message ?? e?.error?.type ?? e?.type ?? e) }));
const channel = client.subscribe(env.CHANNEL);
channel.bind('pusher:subscription_succeeded', () => say({ subscribed: env.CHANNEL }));
channel.bind(env.EVENT, (data) => say({ event: env.EVENT, data }));

const quit = () => { client.disconnect(); process.exit(0); };
process.on('SIGTERM', quit);
setTimeout(quit, 60000);
