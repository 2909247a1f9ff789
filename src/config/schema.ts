// The user-facing config schema (snake_case, as written in usher.yaml). The descriptions here
// ARE the user documentation: scripts/gen-docs.js renders docs/config.md and
// docs/usher.schema.json from this file and the parts it imports (schema-parts.ts: defaults and
// patterns; schema-kit.ts: helpers; schema-upstream.ts:
// health, retries, circuit breaking and DNS of an upstream; src/tls/config/schema.ts: TLS and ACME;
// src/router/config.ts: the matchers of a route; and src/filters/<name>/config.ts: the
// section of each route filter, with its defaults). Defaults
// live in DEFAULTS (or a section's own *_DEFAULTS) so the schema (for docs and editors) and the
// normalizer (normalize.ts) cannot disagree.
//
// Three annotation keywords, registered with ajv in validate.ts and ignored by editors:
//   x-usher-kind:     "duration" | "size" — validated by parseDuration/parseSize (units.ts).
//   x-usher-expected: what a pattern/union expects, in words, for error messages.
//   x-usher-key:      what the keys of a map are called ("upstream name"), for error messages.
import { Type, type Static } from '@sinclair/typebox';
import { BALANCERS, DEFAULTS, duration, headerName, LOG_LEVELS, object, size, stringEnum, TOKEN_PATTERN, UPSTREAM_NAME_PATTERN, UPSTREAM_PROTOCOLS, VIA_EXPECTED } from './schema-parts.js';
import { HeaderRulesSchema } from '../filters/headers/config.js';
import { MirrorSchema } from '../filters/mirror/config.js';
import { RedirectSchema } from '../filters/redirect/config.js';
import { RewriteSchema } from '../filters/rewrite/config.js';
import { SplitSchema, StickyKeySchema } from '../filters/split/config.js';
import { RouteMatchSchema } from '../router/config.js';
import { Acme, ListenerTls, RedirectHttps, UpstreamTls } from '../tls/config/schema.js';
import { CircuitBreaker, Dns, HealthCheck, OutlierDetection, Retry } from './schema-upstream.js';
import { DURATION_PATTERN, MAX_DURATION_MS, SIZE_PATTERN } from './units.js';

export { BALANCERS, DEFAULTS, LOG_LEVELS, UPSTREAM_PROTOCOLS } from './schema-parts.js';

const Http2Options = object(
  {
    max_concurrent_streams: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10000,
        default: DEFAULTS.http2.max_concurrent_streams,
        description: 'Most streams (requests) a client may have open at once on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS, RFC 9113 §6.5.2).',
      }),
    ),
    max_header_list_size: Type.Optional(
      size(
        'Largest decoded request header list on HTTP/2 (SETTINGS_MAX_HEADER_LIST_SIZE): bounds HPACK bombs and CONTINUATION floods; a larger header block resets the stream or closes the connection.',
        DEFAULTS.http2.max_header_list_size,
      ),
    ),
    max_session_memory: Type.Optional(
      size('Memory one HTTP/2 connection may hold (HPACK tables, buffered frames) before new streams are refused; rounded up to whole megabytes.', DEFAULTS.http2.max_session_memory),
    ),
    max_resets: Type.Optional(
      Type.Integer({
        minimum: 1,
        default: DEFAULTS.http2.max_resets,
        description:
          'Rapid Reset defence (CVE-2023-44487): a connection on which more than this many streams are reset (by the client or by usher) within `reset_window`, and at least half of the streams opened in that window, gets GOAWAY (ENHANCE_YOUR_CALM) and is closed.',
      }),
    ),
    reset_window: Type.Optional(duration('Time window over which `max_resets` is counted.', DEFAULTS.http2.reset_window)),
  },
  {
    description:
      'Accept HTTP/2 on this listener as well as HTTP/1.1. With `tls`: negotiated by ALPN ("h2", falling back to "http/1.1"). Without `tls`: cleartext h2c with prior knowledge (RFC 9113 §3.3), told apart from HTTP/1.1 by the connection preface. `http2: {}` enables it with the defaults.',
  },
);

const Listener = object(
  {
    address: Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0, maximum: 65535 })], {
      description:
        'Where to accept connections: "host:port", "[ipv6]:port", ":port" (all IPv4 interfaces, 0.0.0.0) or a bare port number (same as ":port"). Port 0 picks a free port.',
      'x-usher-expected': 'an address like "127.0.0.1:8080", "[::1]:8080", ":8080" or a port number',
    }),
    tls: Type.Optional(ListenerTls),
    redirect_https: Type.Optional(RedirectHttps),
    http2: Type.Optional(Http2Options),
  },
  { description: 'One address to accept client (downstream) connections on.' },
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
        default: DEFAULTS.server.weight,
        description: 'Relative share of requests this server gets from the balancer (1..1000).',
      }),
    ),
    backup: Type.Optional(
      Type.Boolean({
        default: DEFAULTS.server.backup,
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
        default: DEFAULTS.server.priority,
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

const Upstream = object(
  {
    servers: Type.Array(Server, { minItems: 1, description: 'The servers requests are balanced over (at least one).' }),
    protocol: Type.Optional(
      stringEnum(UPSTREAM_PROTOCOLS, {
        default: 'http1',
        description:
          'Protocol spoken to the servers. http1: HTTP/1.1 (default). h2: HTTP/2 over TLS (https:// servers, negotiated by ALPN). h2c: cleartext HTTP/2 with prior knowledge (http:// servers) — what gRPC servers usually speak.',
      }),
    ),
    balance: Type.Optional(
      stringEnum(BALANCERS, {
        default: DEFAULTS.upstream.balance,
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
              default: DEFAULTS.upstream.hash.key,
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
              default: DEFAULTS.upstream.sticky.cookie,
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
        DEFAULTS.upstream.slow_start,
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
        default: DEFAULTS.upstream.panic_threshold,
        description:
          'Percent of healthy servers below which a priority group "panics" when no group has enough healthy servers: usher then balances over all of that group\'s servers, healthy or not, rather than overload the few survivors (a failed connection is still retried elsewhere). 0 disables panic: only healthy servers get traffic, and none healthy means 503 no_upstream_server. Envoy\'s default is 50.',
      }),
    ),
    host_header: Type.Optional(
      Type.String({
        pattern: '^\\S+$',
        default: DEFAULTS.upstream.host_header,
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
              default: DEFAULTS.upstream.pool.max_connections,
              description: 'Most open connections to each server; further requests wait for a free one.',
            }),
          ),
          keep_alive_timeout: Type.Optional(
            duration('How long an idle upstream connection is kept for reuse.', DEFAULTS.upstream.pool.keep_alive_timeout),
          ),
        },
        { description: 'Connection pool kept to each server of this upstream.' },
      ),
    ),
    timeouts: Type.Optional(
      object(
        {
          connect: Type.Optional(duration('Time allowed to open a connection (and finish TLS) to a server.', DEFAULTS.upstream.timeouts.connect)),
          response_header: Type.Optional(
            duration('Time from sending the request to receiving the response head; on expiry the client gets 504.', DEFAULTS.upstream.timeouts.response_header),
          ),
          body_idle: Type.Optional(duration('Longest gap between chunks of the response body.', DEFAULTS.upstream.timeouts.body_idle)),
        },
        { description: 'Timeouts for talking to this upstream\'s servers.' },
      ),
    ),
    tls: Type.Optional(UpstreamTls),
  },
  { description: 'A named group of servers that routes send requests to.' },
);

const Respond = object(
  {
    status: Type.Optional(
      Type.Integer({ minimum: 200, maximum: 599, default: DEFAULTS.respond.status, description: 'HTTP status code (200..599).' }),
    ),
    body: Type.Optional(Type.String({ default: DEFAULTS.respond.body, description: 'Response body, sent as is.' })),
    headers: Type.Optional(
      Type.Record(Type.String({ pattern: TOKEN_PATTERN }), Type.String(), {
        additionalProperties: false,
        default: DEFAULTS.respond.headers,
        description: 'Response headers, name: value. Content-Length is computed from the body.',
        'x-usher-key': 'header name',
        'x-usher-expected': 'letters, digits and !#$%&\'*+.^_`|~-',
      }),
    ),
  },
  { description: 'Answer the request directly instead of proxying it.' },
);

const Route = object(
  {
    name: Type.Optional(
      Type.String({ minLength: 1, description: 'Name shown in logs and errors. Default: "routes[N]" by position.' }),
    ),
    match: Type.Optional(RouteMatchSchema),
    priority: Type.Optional(
      Type.Integer({
        default: DEFAULTS.route.priority,
        description:
          'Higher priority routes are tried first, before the most-specific-wins order (exact host, wildcard host, any host; then exact path, regex, longest prefix) that decides among routes of equal priority; ties go to file order.',
      }),
    ),
    upstream: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Name of the upstream (under `upstreams`) to proxy to. Exactly one of `upstream`, `split`, `respond` and `redirect`.',
      }),
    ),
    split: Type.Optional(SplitSchema),
    sticky_key: Type.Optional(StickyKeySchema),
    respond: Type.Optional(Respond),
    redirect: Type.Optional(RedirectSchema),
    rewrite: Type.Optional(RewriteSchema),
    request_headers: Type.Optional(HeaderRulesSchema('Edits to the request headers sent upstream.')),
    response_headers: Type.Optional(HeaderRulesSchema('Edits to the response headers sent to the client (upstream responses only).')),
    mirror: Type.Optional(MirrorSchema),
  },
  { description: 'One route. The most specific route that matches handles the request (see `priority`).' },
);

export const ConfigSchema = object(
  {
    $schema: Type.Optional(Type.String({ description: 'Ignored by usher; lets editors find this JSON Schema.' })),
    listeners: Type.Array(Listener, { minItems: 1, description: 'Addresses usher accepts connections on (at least one).' }),
    upstreams: Type.Optional(
      Type.Record(Type.String({ pattern: UPSTREAM_NAME_PATTERN }), Upstream, {
        additionalProperties: false,
        default: {},
        description: 'Named groups of servers, referenced by routes. Names use letters, digits, "_", "." and "-".',
        'x-usher-key': 'upstream name',
        'x-usher-expected': 'letters, digits, "_", "." and "-"',
      }),
    ),
    routes: Type.Optional(
      Type.Array(Route, {
        default: [],
        description: 'Routes, tried in order. A request that matches none gets 404.',
      }),
    ),
    timeouts: Type.Optional(
      object(
        {
          request_header: Type.Optional(
            duration('Time for a client to send the whole request head (protects against slowloris); on expiry: 408.', DEFAULTS.timeouts.request_header),
          ),
          body_idle: Type.Optional(duration('Longest gap between chunks of a request body; on expiry: 408.', DEFAULTS.timeouts.body_idle)),
          keep_alive: Type.Optional(duration('How long an idle client connection is kept open between requests.', DEFAULTS.timeouts.keep_alive)),
          graceful_shutdown: Type.Optional(
            duration('On SIGTERM, how long in-flight requests may take to finish before connections are closed.', DEFAULTS.timeouts.graceful_shutdown),
          ),
        },
        { description: 'Timeouts for client (downstream) connections.' },
      ),
    ),
    limits: Type.Optional(
      object(
        {
          request_line: Type.Optional(size('Longest request line (method, target, version); longer: 414.', DEFAULTS.limits.request_line)),
          header_size: Type.Optional(size('Largest request head (request line and all headers); larger: 431.', DEFAULTS.limits.header_size)),
          header_count: Type.Optional(
            Type.Integer({ minimum: 1, default: DEFAULTS.limits.header_count, description: 'Most request headers; more: 431.' }),
          ),
          body: Type.Optional(
            Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: SIZE_PATTERN }), Type.Null()], {
              description:
                'Largest request body; larger: 413. null: unlimited. A size: bytes as a number, or a string like "512", "16kb", "10mb", "1gb"; as in nginx, kb/mb/gb are powers of 1024 (k, m, g, kib, mib, gib also accepted).',
              default: DEFAULTS.limits.body,
              'x-usher-kind': 'size',
            }),
          ),
        },
        { description: 'Limits on client requests.' },
      ),
    ),
    proxy: Type.Optional(
      object(
        {
          trusted_proxies: Type.Optional(
            Type.Array(Type.String(), {
              default: DEFAULTS.proxy.trusted_proxies,
              description:
                'IP addresses or CIDR ranges ("10.0.0.0/8", "::1/128") of proxies in front of usher. Only from these are X-Forwarded-*, Forwarded and X-Request-Id believed.',
            }),
          ),
          hide_headers: Type.Optional(
            Type.Array(headerName('A header name; case does not matter.'), {
              default: DEFAULTS.proxy.hide_headers,
              description: 'Response headers removed from upstream responses before they reach the client.',
            }),
          ),
          via: Type.Optional(
            Type.Union([Type.String({ pattern: TOKEN_PATTERN, 'x-usher-expected': VIA_EXPECTED }), Type.Null()], {
              default: DEFAULTS.proxy.via,
              description: 'Name usher gives itself in the Via header ("1.1 usher", or "2 usher" for a message received over HTTP/2). null: send no Via header.',
              'x-usher-expected': `${VIA_EXPECTED}, or null`,
            }),
          ),
          drop_underscore_headers: Type.Optional(
            Type.Boolean({
              default: DEFAULTS.proxy.drop_underscore_headers,
              description: 'Drop request headers whose name contains "_", as nginx does: some servers read "X_Auth" as "X-Auth", so they could be smuggled past filters.',
            }),
          ),
          request_id_header: Type.Optional(
            headerName('Header that carries the request id, taken from trusted proxies or generated, and sent upstream and in the response.', {
              default: DEFAULTS.proxy.request_id_header,
            }),
          ),
        },
        { description: 'How requests and responses are rewritten on the way through.' },
      ),
    ),
    upgrade: Type.Optional(
      object(
        {
          protocols: Type.Optional(
            Type.Array(Type.String({ pattern: TOKEN_PATTERN, 'x-usher-expected': 'a protocol name like "websocket"' }), {
              default: DEFAULTS.upgrade.protocols,
              description:
                'Protocols a client may switch to with an HTTP/1.1 Upgrade (RFC 9110 §7.8), case-insensitively. Other upgrades (h2c included) are refused with 400 upgrade_not_allowed.',
            }),
          ),
          idle_timeout: Type.Optional(
            duration('An upgraded connection (a WebSocket tunnel) with no bytes in either direction for this long is closed.', DEFAULTS.upgrade.idle_timeout),
          ),
        },
        { description: 'Connection upgrades (WebSockets): routed and balanced like any request, then tunnelled byte for byte once the upstream answers 101.' },
      ),
    ),
    log: Type.Optional(
      object(
        {
          level: Type.Optional(stringEnum(LOG_LEVELS, { default: DEFAULTS.log.level, description: 'Lowest level of log lines written.' })),
          access_log: Type.Optional(
            Type.Boolean({ default: DEFAULTS.log.access_log, description: 'Write one JSON line per request to stdout.' }),
          ),
        },
        { description: 'Logging.' },
      ),
    ),
    routing: Type.Optional(
      object(
        {
          encoded_slashes: Type.Optional(
            stringEnum(['reject', 'keep'] as const, {
              default: DEFAULTS.routing.encoded_slashes,
              description:
                'A request path with an encoded "/" or "\\" (%2F, %5C). reject: answer 400 (unsafe_path), since a server that decodes it would see other segments than usher routed on. keep: treat it as an ordinary character of its segment and send it upstream as is (for APIs with encoded ids).',
            }),
          ),
        },
        { description: 'How request paths are normalised for routing (and sent upstream).' },
      ),
    ),
    acme: Type.Optional(Acme),
  },
  {
    title: 'usher configuration',
    description: 'Configuration file of usher, a reverse proxy for Node.js (usher.yaml or usher.json).',
  },
);

/** The config as a user writes it (the argument of defineConfig). */
export type ConfigInput = Static<typeof ConfigSchema>;
