// usher's own hot functions, from the compiled tree (run `npm run build` first).
// Route match at 10 and 10,000 routes (hosts × path prefixes), a balancer pick, and the two
// header passes of the proxy stage, and the mTLS edge step every request takes (client-cert.ts).

import { HostPathRouter } from '../../dist/src/router/index.js';
import { roundRobin } from '../../dist/src/upstream/balancers/round-robin/index.js';
import { filterResponseHeaders, RequestHead, scanRequestHeaders } from '../../dist/src/proxy/headers.js';
import { applyClientIdentity } from '../../dist/src/tls/client-cert.js';
import { BROWSER_GET } from './headers.js';

function routeTable(hosts, prefixes) {
  const routes = [];
  let index = 0;
  for (let h = 0; h < hosts; h++) {
    for (let p = 0; p < prefixes; p++) {
      const config = { name: `r${index}`, index, match: { hosts: [`host${h}.example.test`], path: `/svc${p}/v1` }, upstream: 'app', source: { file: 'bench', line: index, column: 1 } };
      routes.push({ config, route: config.name });
      index++;
    }
  }
  routes.push({ config: { name: 'fallback', index, match: { hosts: [] }, upstream: 'app', source: { file: 'bench', line: index, column: 1 } }, route: 'fallback' });
  return new HostPathRouter(routes);
}

const small = routeTable(2, 5); // 10 routes (+ fallback)
const large = routeTable(100, 100); // 10,000 routes (+ fallback)

class Ep {
  constructor(id, weight) {
    this.id = id;
    this.weight = weight;
  }
  available() {
    return true;
  }
}
const rr = roundRobin([new Ep('a', 1), new Ep('b', 1), new Ep('c', 1)]);
const wrr = roundRobin([new Ep('a', 5), new Ep('b', 1), new Ep('c', 2)]);
const pickCtx = { attempt: 0 };

const settings = {
  trusted: null,
  via: '1.1 usher',
  via2: '2 usher',
  dropUnderscore: true,
  requestIdHeader: 'x-request-id',
  hideResponse: new Set(['server', 'x-powered-by']),
};
const NGINX_RESPONSE = ['Server', 'nginx/1.22.1', 'Date', 'Mon, 23 Nov 2026 12:00:00 GMT', 'Content-Type', 'text/plain', 'Content-Length', '13', 'Connection', 'keep-alive'].map((s) => Buffer.from(s));

export const cases = [
  { name: 'route: 10 routes, host+prefix hit', fn: () => small.match('host1.example.test', '/svc3/v1/users'), iterations: 3_000_000 },
  { name: 'route: 10,000 routes, host+prefix hit', fn: () => large.match('host57.example.test', '/svc63/v1/users'), iterations: 3_000_000 },
  { name: 'route: 10,000 routes, fallback', fn: () => large.match('unknown.test', '/x'), iterations: 3_000_000 },
  { name: 'balancer: round robin pick (3 equal)', fn: () => rr.pick(pickCtx), iterations: 10_000_000 },
  { name: 'balancer: smooth weighted pick (5:1:2)', fn: () => wrr.pick(pickCtx), iterations: 10_000_000 },
  {
    name: 'headers: usher request pass (browser GET, 12 fields, Connection names one)',
    fn: () => {
      const out = [];
      scanRequestHeaders(BROWSER_GET, settings, new RequestHead(), out);
      return out;
    },
    iterations: 1_000_000,
  },
  {
    // What a plain listener pays per request for unforgeable X-Client-Cert-* (nothing to strip).
    name: 'edge: strip X-Client-Cert-* (browser GET, 12 fields, none present)',
    fn: () => {
      const req = { rawHeaders: BROWSER_GET, headers: {} };
      applyClientIdentity(req, undefined);
      return req;
    },
    iterations: 3_000_000,
  },
  {
    name: 'headers: usher response pass (nginx, 5 fields)',
    fn: () => {
      const out = [];
      filterResponseHeaders(NGINX_RESPONSE, settings, out);
      return out;
    },
    iterations: 1_000_000,
  },
];
