// The `upstreams:` section of the config schema: an upstream (servers, balancing, pool,
// timeouts) and its health, retry, circuit-breaking and DNS parts, with their defaults. Beside
// the upstream code; src/config/schema.ts places it. The descriptions are the user docs.
import { Type } from '@sinclair/typebox';
import { duration, object, size, stringEnum, TOKEN_PATTERN } from '../../config/schema-kit.js';
import { DURATION_PATTERN, MAX_DURATION_MS } from '../../config/units.js';
import { UpstreamTls } from '../../tls/config/schema.js';
import { BALANCER_NAMES } from '../balancers/names.js';

export const SERVER_DEFAULTS = { weight: 1, backup: false, priority: 0 } as const;

export const UPSTREAM_DEFAULTS = {
  balance: 'round_robin',
  host_header: 'preserve',
  pool: { max_connections: 128, keep_alive_timeout: '60s' },
  timeouts: { connect: '5s', response_header: '60s', body_idle: '60s' },
  hash: { key: 'client_ip' },
  sticky: { cookie: 'usher_sticky' },
  panic_threshold: 50,
  slow_start: '0s',
  health_check: { type: 'http', path: '/', method: 'GET', expect_status: ['200-399'], interval: '5s', jitter: 10, timeout: '2s', rise: 2, fall: 3 },
  outlier_detection: {
    enabled: true,
    consecutive_5xx: 3,
    consecutive_connect_failures: 1,
    base_ejection_time: '10s',
    max_ejection_time: '5m',
    max_ejection_percent: 50,
    readmit_on_check: true,
  },
  retry: {
    attempts: 2,
    on: [502, 503, 504, 'reset'] as (number | string)[],
    per_try_timeout: '15s',
    backoff: { base: '25ms', max: '250ms' },
    budget: { percent: 20, min_retries: 3 },
    buffer_body: '64kb',
  },
  circuit_breaker: { max_pending: 0, queue_timeout: '1s' },
  dns: { refresh: '30s', family: 'any', servers: [] as string[], srv: false },
} as const;

/** From the balancer registry's own list (src/upstream/balancers/names.ts). */
export const BALANCERS = BALANCER_NAMES;
export const UPSTREAM_PROTOCOLS = ['http1', 'h2', 'h2c'] as const;
export const UPSTREAM_ENGINES = ['undici', 'native'] as const;
export const UPSTREAM_NAME_PATTERN = '^[A-Za-z0-9_.-]+$';

const H = UPSTREAM_DEFAULTS.health_check;
const STATUS_RANGE_PATTERN = '^[1-5][0-9]{2}(-[1-5][0-9]{2})?$';
export const HealthCheck = object(
  {
    type: Type.Optional(
      stringEnum(['http', 'tcp'] as const, {
        default: H.type,
        description: 'http: send a request and check the answer; tcp: only open a connection.',
      }),
    ),
    path: Type.Optional(Type.String({ pattern: '^/\\S*$', default: H.path, description: 'Request target of an http check.', 'x-usher-expected': 'a path starting with "/"' })),
    method: Type.Optional(stringEnum(['GET', 'HEAD'] as const, { default: H.method, description: 'Method of an http check.' })),
    host: Type.Optional(
      Type.String({ pattern: '^\\S+$', description: 'Host header of an http check. Default: the server\'s own host[:port].', 'x-usher-expected': 'a host name without spaces' }),
    ),
    expect_status: Type.Optional(
      Type.Array(
        Type.Union([Type.Integer({ minimum: 100, maximum: 599 }), Type.String({ pattern: STATUS_RANGE_PATTERN })], {
          'x-usher-expected': 'a status code like 200 or a range like "200-399"',
        }),
        { minItems: 1, default: H.expect_status, description: 'Statuses that count as healthy: codes (204) or inclusive ranges ("200-399").' },
      ),
    ),
    expect_body: Type.Optional(
      Type.String({ minLength: 1, description: 'A regular expression (JavaScript syntax) the first 64 KiB of the body must match, e.g. "\\"status\\":\\s*\\"ok\\"".' }),
    ),
    interval: Type.Optional(duration('Time between two checks of one server.', H.interval)),
    jitter: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 100, default: H.jitter, description: 'Each interval is varied at random by up to this percent, so checks do not arrive in lockstep.' }),
    ),
    timeout: Type.Optional(duration('Time a check may take (connect and answer); longer counts as failed ("timeout").', H.timeout)),
    rise: Type.Optional(Type.Integer({ minimum: 1, default: H.rise, description: 'Consecutive passed checks that make an unhealthy server healthy again.' })),
    fall: Type.Optional(Type.Integer({ minimum: 1, default: H.fall, description: 'Consecutive failed checks that make a healthy server unhealthy.' })),
  },
  {
    description:
      'Active health checks: usher probes every server on its own timer, apart from client traffic. A server that fails `fall` checks in a row gets no requests until it passes `rise` in a row. Servers start healthy. Each change is logged with its reason (status, timeout, refused, body mismatch). Omit to rely on passive detection only.',
  },
);

const O = UPSTREAM_DEFAULTS.outlier_detection;
export const OutlierDetection = object(
  {
    enabled: Type.Optional(
      Type.Boolean({
        default: O.enabled,
        description:
          'On by default, as in nginx (max_fails=1 fail_timeout=10s): without it a dead server stays in rotation forever — measured with one of three servers down, 46% of requests paid a failed first try and a retry, and a server answering 503 let 3.4% of all responses through as 503 once the retry budget ran out. `false` keeps every server in rotation whatever its requests show.',
      }),
    ),
    consecutive_5xx: Type.Optional(
      Type.Integer({
        minimum: 1,
        default: O.consecutive_5xx,
        description: 'Consecutive 5xx answers (or resets and timeouts after connecting) that eject a server. Default 3: one 5xx may be the fault of one request, three in a row are the server\'s; and the retries of three fit in the retry budget\'s min_retries (3), so no 503 reaches a client while a failing server is being ejected (with 5, 2 of 30 did in test/integration/health-defaults.test.ts).',
      }),
    ),
    consecutive_connect_failures: Type.Optional(
      Type.Integer({
        minimum: 1,
        default: O.consecutive_connect_failures,
        description: 'Consecutive failed connection attempts (refused, unreachable, connect timeout) that eject a server. Default 1, as nginx\'s max_fails=1: a server that refuses a connection is almost always down, and every request sent to it until it is ejected pays a failed try first.',
      }),
    ),
    base_ejection_time: Type.Optional(
      duration(
        'How long the first ejection lasts; the n-th ejection of the same server lasts n times as long (up to max_ejection_time). Default 10s, nginx\'s fail_timeout: short, so a server that was only restarting is back soon, and a passing active check (readmit_on_check) ends it sooner.',
        O.base_ejection_time,
      ),
    ),
    max_ejection_time: Type.Optional(duration('Longest an ejection lasts.', O.max_ejection_time)),
    max_ejection_percent: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 100,
        default: O.max_ejection_percent,
        description: 'Most servers ejected at once, in percent of the upstream (at least one server may always be ejected). Default 50: evidence from requests never takes out the whole upstream.',
      }),
    ),
    readmit_on_check: Type.Optional(
      Type.Boolean({
        default: O.readmit_on_check,
        description: 'With `health_check`, an ejected server returns as soon as an active check passes, as in HAProxy, instead of waiting out its ejection while it is already serving again. `false`: only the ejection time ends an ejection.',
      }),
    ),
  },
  {
    description:
      'Passive health (outlier detection), on by default: servers are ejected on the evidence of real requests and return when the ejection time is over, or earlier when an active check passes. `enabled: false` turns it off.',
  },
);

const R = UPSTREAM_DEFAULTS.retry;
export const Retry = object(
  {
    attempts: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 10, default: R.attempts, description: 'Most retries of one request after its first try, each on a different server. 0: never retry.' }),
    ),
    on: Type.Optional(
      Type.Array(
        Type.Union([Type.Integer({ minimum: 500, maximum: 599 }), stringEnum(['reset'] as const, {})], {
          'x-usher-expected': 'a 5xx status like 503, or "reset"',
        }),
        {
          default: R.on,
          description:
            'After the request reached a server, retry only idempotent requests (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) whose body could be replayed, and only on these: 5xx statuses (a timeout counts as 504) and "reset" (the connection closed before a response). A failed connection is always retried on another server, whatever this says: nothing was sent. Never once response headers went to the client.',
        },
      ),
    ),
    per_try_timeout: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1, maximum: MAX_DURATION_MS }), Type.String({ pattern: DURATION_PATTERN }), Type.Null()], {
        default: R.per_try_timeout,
        description: 'Time one try may take until the response head arrives; then it is abandoned and retried (as a 504) if `on` has 504. While a request body is still streaming from the client to a connected server the clock waits, and starts again once the body has all arrived. Default 15s (the request timeout Envoy applies by default): a server that accepts connections but hangs costs a request 15 s before another server is tried, not the 60 s of timeouts.response_header. null: only timeouts.response_header applies (for long polling).',
        'x-usher-kind': 'duration',
      }),
    ),
    backoff: Type.Optional(
      object(
        {
          base: Type.Optional(duration('Delay before the first retry after a response or reset; it doubles per retry, and each delay is drawn at random below it (full jitter). Connection failures are retried at once.', R.backoff.base)),
          max: Type.Optional(duration('Cap of the backoff delay.', R.backoff.max)),
        },
        { description: 'Backoff between tries.' },
      ),
    ),
    budget: Type.Optional(
      object(
        {
          percent: Type.Optional(
            Type.Integer({ minimum: 0, maximum: 100, default: R.budget.percent, description: 'Retries may be at most this percent of the requests of the last 5-10 seconds, so retries cannot multiply the load of an upstream in trouble.' }),
          ),
          min_retries: Type.Optional(
            Type.Integer({ minimum: 0, default: R.budget.min_retries, description: 'Retries allowed in that window whatever the percent says (for quiet upstreams).' }),
          ),
        },
        { description: 'Retry budget (connection failures are not counted: they load no server).' },
      ),
    ),
    buffer_body: Type.Optional(
      size('Request bodies of idempotent requests up to this size (with a Content-Length) are read completely before they are sent, so that they can be replayed on a retry; larger or chunked bodies stream and are not retried once sent. 0: never buffer.', R.buffer_body),
    ),
  },
  { description: 'Retries on another server.' },
);

const C = UPSTREAM_DEFAULTS.circuit_breaker;
export const CircuitBreaker = object(
  {
    max_requests: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Most requests in flight to this upstream as a whole. Default: no limit (per-server limits: `servers[].max_requests`).' }),
    ),
    max_pending: Type.Optional(
      Type.Integer({ minimum: 0, default: C.max_pending, description: 'Requests that may wait for capacity when the limits are reached; beyond that: 503 upstream_overloaded at once.' }),
    ),
    queue_timeout: Type.Optional(duration('Longest a request waits for capacity; then 503 upstream_overloaded.', C.queue_timeout)),
  },
  {
    description:
      'Circuit breaking: limits on requests in flight (with `servers[].max_requests` per server, and `pool.max_connections` for connections per server) and a bounded queue. Over the limits usher answers 503 upstream_overloaded at once instead of piling requests up.',
  },
);

const D = UPSTREAM_DEFAULTS.dns;
export const Dns = object(
  {
    refresh: Type.Optional(duration('How often the names are resolved again.', D.refresh)),
    family: Type.Optional(
      stringEnum(['any', 'ipv4', 'ipv6'] as const, { default: D.family, description: 'Which records to use: any (A and AAAA), ipv4 (A) or ipv6 (AAAA).' }),
    ),
    srv: Type.Optional(
      Type.Boolean({
        default: D.srv,
        description:
          'The names are SRV records (RFC 2782), e.g. "http://_http._tcp.api.internal": every target\'s addresses become servers with the record\'s port and weight, and lower SRV priorities come first (as `priority` groups).',
      }),
    ),
    servers: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        default: D.servers,
        description: 'DNS servers to ask ("10.0.0.2", "10.0.0.2:5353", "[::1]:53"). Default: the system\'s resolvers (/etc/resolv.conf).',
      }),
    ),
  },
  {
    description:
      'DNS discovery: every server whose URL has a host name (not an IP address) is resolved every `refresh`, and each address becomes a server of its own with the same options; the pool follows the answers without dropping requests in flight (removed servers finish theirs). A failed lookup keeps the last addresses. Until the first answer, the name is used as is. Omit to resolve names only when connecting.',
  },
);

const ServerObject = object(
  {
    url: Type.String({
      minLength: 1,
      description: 'Origin of the server: http:// or https://, host and optional port, no path (e.g. "http://127.0.0.1:3001").',
    }),
    weight: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        default: SERVER_DEFAULTS.weight,
        description: 'Relative share of requests this server gets from the balancer (1..1000).',
      }),
    ),
    backup: Type.Optional(
      Type.Boolean({
        default: SERVER_DEFAULTS.backup,
        description:
          'A backup server takes traffic only when no priority group has healthy capacity (see `priority`), and gives it back when they recover.',
      }),
    ),
    max_requests: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'Circuit breaker for this server: most requests in flight on it; at the limit the balancer skips it (see `circuit_breaker`). Default: no limit.',
      }),
    ),
    priority: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 100,
        default: SERVER_DEFAULTS.priority,
        description:
          'Priority group (0 is first). Requests go to the first group that has healthy capacity — at least `panic_threshold` percent of its servers healthy, or any healthy server when panic_threshold is 0 — e.g. one region per priority. Backup servers come after every group.',
      }),
    ),
  },
  { description: 'A server with options.' },
);

const Server = Type.Union([Type.String({ minLength: 1, description: 'Just the URL, weight 1.' }), ServerObject], {
  description: 'One upstream server: a URL string, or a mapping with `url` and `weight`.',
  'x-usher-expected': 'a server URL string or a mapping with "url"',
});

export const UpstreamSchema = object(
  {
    servers: Type.Array(Server, { minItems: 1, description: 'The servers requests are balanced over (at least one).' }),
    protocol: Type.Optional(
      stringEnum(UPSTREAM_PROTOCOLS, {
        default: 'http1',
        description:
          'Protocol spoken to the servers. http1: HTTP/1.1 (default). h2: HTTP/2 over TLS (https:// servers, negotiated by ALPN). h2c: cleartext HTTP/2 with prior knowledge (http:// servers) — what gRPC servers usually speak.',
      }),
    ),
    engine: Type.Optional(
      stringEnum(UPSTREAM_ENGINES, {
        default: 'native',
        description:
          'The HTTP/1.1 client that talks to the servers (protocol http1 only). native (default): usher\'s own client on net/tls sockets (src/upstream/h1), built for proxying: one head write per request, no re-validation of the fields usher already checked, a strict response parser (RFC 9112). undici: the undici library (HTTP/2 upstreams always use it). The environment variable USHER_UPSTREAM_ENGINE=undici makes undici the default of http1 upstreams that do not say (the test suite runs both).',
      }),
    ),
    balance: Type.Optional(
      stringEnum(BALANCERS, {
        default: UPSTREAM_DEFAULTS.balance,
        description:
          'How a server is picked for each request, in proportion to weight. round_robin: in turn (smooth weighted, as nginx). least_request: the less busy of two random picks (power of two choices, as Envoy). least_conn: the server with the fewest requests in flight per weight (as nginx). random: at random. hash: consistent hashing (Maglev) on `hash.key`, so a key keeps its server and removing one of N servers moves about 1/N of the keys. sticky: round robin, then a signed cookie (`sticky.cookie`) keeps a client on its server while that server is available.',
      }),
    ),
    hash: Type.Optional(
      object(
        {
          key: Type.Optional(
            Type.String({
              pattern: '^(client_ip|path|header:[!#$%&\'*+.^_`|~0-9A-Za-z-]+|cookie:[!#$%&\'*+.^_`|~0-9A-Za-z-]+|query:[^\\s&=#]+)$',
              default: UPSTREAM_DEFAULTS.hash.key,
              description:
                'What `balance: hash` hashes: "client_ip", "path" (without the query), "header:NAME", "cookie:NAME" or "query:NAME". Requests without the header, cookie or parameter are spread by weight.',
              'x-usher-expected': '"client_ip", "path", "header:NAME", "cookie:NAME" or "query:NAME"',
            }),
          ),
        },
        { description: 'Settings of `balance: hash`.' },
      ),
    ),
    sticky: Type.Optional(
      object(
        {
          cookie: Type.Optional(
            Type.String({
              pattern: TOKEN_PATTERN,
              default: UPSTREAM_DEFAULTS.sticky.cookie,
              description: 'Name of the cookie that names the server (its value is an opaque signed token, not the address).',
              'x-usher-expected': 'a cookie name (letters, digits and !#$%&\'*+.^_`|~-)',
            }),
          ),
          secret: Type.Optional(
            Type.String({
              minLength: 16,
              description:
                'Key that signs the cookie tokens (at least 16 characters; use ${ENV} to keep it out of the file). Without it a random key is made at start, so sessions do not survive a restart and several usher instances disagree.',
            }),
          ),
          max_age: Type.Optional(
            Type.Union([Type.Integer({ minimum: 0, maximum: MAX_DURATION_MS }), Type.String({ pattern: DURATION_PATTERN })], {
              description: 'Lifetime of the cookie (Max-Age, rounded down to seconds); omit for a session cookie. A duration: milliseconds as a number, or a string with units ms, s, m, h ("30m", "12h").',
              'x-usher-kind': 'duration',
            }),
          ),
        },
        { description: 'Settings of `balance: sticky`.' },
      ),
    ),
    slow_start: Type.Optional(
      duration(
        'Slow start window: a server that becomes healthy again (after a failed health check or an ejection) ramps from 10% to its full weight over this time. 0s: off. Not used by balance: hash.',
        UPSTREAM_DEFAULTS.slow_start,
      ),
    ),
    health_check: Type.Optional(HealthCheck),
    retry: Type.Optional(Retry),
    circuit_breaker: Type.Optional(CircuitBreaker),
    dns: Type.Optional(Dns),
    outlier_detection: Type.Optional(OutlierDetection),
    panic_threshold: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 100,
        default: UPSTREAM_DEFAULTS.panic_threshold,
        description:
          'Percent of healthy servers below which a priority group "panics" when no group has enough healthy servers: usher then balances over all of that group\'s servers, healthy or not, rather than overload the few survivors (a failed connection is still retried elsewhere). 0 disables panic: only healthy servers get traffic, and none healthy means 503 no_upstream_server. Envoy\'s default is 50.',
      }),
    ),
    host_header: Type.Optional(
      Type.String({
        pattern: '^\\S+$',
        default: UPSTREAM_DEFAULTS.host_header,
        description:
          'Host header sent upstream. "preserve": the client\'s Host as received; "upstream": the picked server\'s own host[:port]; anything else is sent as written.',
        'x-usher-expected': '"preserve", "upstream" or a host name without spaces',
      }),
    ),
    pool: Type.Optional(
      object(
        {
          max_connections: Type.Optional(
            Type.Integer({
              minimum: 1,
              default: UPSTREAM_DEFAULTS.pool.max_connections,
              description: 'Most open connections to each server; further requests wait for a free one.',
            }),
          ),
          keep_alive_timeout: Type.Optional(
            duration('How long an idle upstream connection is kept for reuse.', UPSTREAM_DEFAULTS.pool.keep_alive_timeout),
          ),
        },
        { description: 'Connection pool kept to each server of this upstream.' },
      ),
    ),
    timeouts: Type.Optional(
      object(
        {
          connect: Type.Optional(duration('Time allowed to open a connection (and finish TLS) to a server.', UPSTREAM_DEFAULTS.timeouts.connect)),
          response_header: Type.Optional(
            duration('Time from sending the request to receiving the response head; on expiry the client gets 504.', UPSTREAM_DEFAULTS.timeouts.response_header),
          ),
          body_idle: Type.Optional(duration('Longest gap between chunks of the response body.', UPSTREAM_DEFAULTS.timeouts.body_idle)),
        },
        { description: 'Timeouts for talking to this upstream\'s servers.' },
      ),
    ),
    tls: Type.Optional(UpstreamTls),
  },
  { description: 'A named group of servers that routes send requests to.' },
);
