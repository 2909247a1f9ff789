// Routing at scale (issue #3): one request matched against 10 and against 10,000 routes
// (hosts × path prefixes, plus regex and header-matcher routes on other hosts), including the
// per-request work the handler does before the match: Host check, path normalisation and the RouteRequest.
// From the compiled tree (run `npm run build` first).

import { HostPathRouter, normalisePath, RouteRequest, splitHost, validHost } from '../../dist/src/router/index.js';

function table(hosts, prefixes) {
  const routes = [];
  let index = 0;
  const add = (match, extra = {}) => {
    const config = { name: `r${index}`, index, match: { hosts: [], ...match }, upstream: 'app', source: { file: 'bench', line: index + 1, column: 1 }, ...extra };
    routes.push({ config, route: config.name });
    index++;
  };
  for (let h = 0; h < hosts; h++) for (let p = 0; p < prefixes; p++) add({ hosts: [`host${h}.example.test`], path: `/svc${p}/v1` });
  // What real tables also have: a canary by header, a regex route, a wildcard, a priority rule.
  add({ hosts: ['host1.example.test'], path: '/svc3/v1', headers: [{ name: 'x-canary', exact: '1' }] });
  add({ hosts: ['host2.example.test'], path_regex: '^/items/[0-9]+$' });
  add({ hosts: ['*.wild.test'], path: '/api' });
  add({ path: '/healthz' }, { priority: 10 });
  add({});
  return new HostPathRouter(routes);
}

const small = table(2, 5); // 10 routes (+5)
const large = table(100, 100); // 10,000 routes (+5)

const HEADERS = ['Host', 'host57.example.test', 'User-Agent', 'bench', 'Accept', '*/*', 'Cookie', 'session=abc; ab=b'];

function request(router, hostHeader, target) {
  const q = target.indexOf('?');
  const path = normalisePath(q < 0 ? target : target.slice(0, q));
  if (!validHost(hostHeader)) return undefined;
  const [host, port] = splitHost(hostHeader);
  return router.route(new RouteRequest(host, port, path, q < 0 ? '' : target.slice(q + 1), 'GET', HEADERS, '127.0.0.1', 'http'));
}

export const cases = [
  { name: 'routing: 10 routes, host+prefix hit', fn: () => request(small, 'host1.example.test', '/svc3/v1/users?page=2'), iterations: 2_000_000 },
  { name: 'routing: 10,000 routes, host+prefix hit', fn: () => request(large, 'host57.example.test', '/svc63/v1/users?page=2'), iterations: 2_000_000 },
  { name: 'routing: 10 routes, header-matcher candidate fails', fn: () => request(small, 'host1.example.test', '/svc3/v1/x'), iterations: 2_000_000 },
  { name: 'routing: 10,000 routes, regex route', fn: () => request(large, 'host2.example.test', '/items/42'), iterations: 2_000_000 },
  { name: 'routing: 10 routes, fallback', fn: () => request(small, 'unknown.test', '/x/y'), iterations: 2_000_000 },
  { name: 'routing: 10,000 routes, fallback', fn: () => request(large, 'unknown.test', '/x/y'), iterations: 2_000_000 },
  { name: 'routing: normalise a clean path', fn: () => normalisePath('/svc63/v1/users/12345/orders'), iterations: 5_000_000 },
  { name: 'routing: normalise /a/./b//%63/../d', fn: () => normalisePath('/a/./b//%63/../d'), iterations: 2_000_000 },
];
