// HTTP load with autocannon, the fallback where wrk is absent; run in its own process so it
// can be pinned to the load-generator core. Prints the same JSON line as tools/ws-client.js.
// Usage: node bench/tools/autocannon-run.js --url URL --connections 50 --duration 4
//        [--method POST --body-bytes 10240 | --body-file F --content-type T] [--close] [--header 'N: V' ...]
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '4' },
    method: { type: 'string', default: 'GET' },
    'body-bytes': { type: 'string' },
    close: { type: 'boolean', default: false },
    'accept-encoding': { type: 'string' },
    authorization: { type: 'string' },
    'body-file': { type: 'string' },
    'content-type': { type: 'string' },
    header: { type: 'string', multiple: true, default: [] },
  },
});

const options = {
  url: values.url,
  connections: Number(values.connections),
  duration: Number(values.duration),
  method: values.method,
  timeout: 5,
  headers: {},
};
if (values['body-bytes']) {
  options.body = 'x'.repeat(Number(values['body-bytes']));
  options.headers['content-type'] = 'application/octet-stream';
}
if (values['body-file']) {
  options.body = fs.readFileSync(values['body-file']);
  options.headers['content-type'] = values['content-type'] ?? 'application/octet-stream';
}
for (const h of values.header) {
  const i = h.indexOf(':');
  options.headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
}
if (values['accept-encoding']) options.headers['accept-encoding'] = values['accept-encoding'];
if (values.authorization) options.headers.authorization = values.authorization;
if (values.close) {
  // A new connection for every request, like wrk with "Connection: close": the server closes
  // after each answer and autocannon reconnects. (Its reconnectRate: 1 completes no request.)
  options.headers.connection = 'close';
}

const result = await autocannon(options);
// Successful responses only, as in lib/wrk.js.
const requests = result.requests.total - result.non2xx;
console.log(
  JSON.stringify({
    requests,
    durationS: result.duration,
    rps: requests / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    errorDetail: `errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${result.non2xx}`,
  }),
);
