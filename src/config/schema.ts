// The user-facing config schema (snake_case, as written in usher.yaml). The descriptions here
// ARE the user documentation: scripts/gen-docs.js renders docs/config.md and
// docs/usher.schema.json from this file and the parts it imports. This file assembles the
// top level: listeners, routes, downstream timeouts, limits, proxy, log; the sections of a
// feature live beside the feature, with their defaults: src/upstream/config/schema.ts (an
// upstream, its health, retries, circuit breaking and DNS), src/tls/config/schema.ts (TLS and
// ACME), src/router/config.ts (the matchers of a route) and src/filters/<name>/config.ts (the
// section of each route filter). schema-parts.ts holds the defaults of the parts here and
// schema-kit.ts the helpers. Defaults live in DEFAULTS (or a section's own *_DEFAULTS) so the
// schema (for docs and editors) and the normalizer (normalize.ts) cannot disagree.
//
// Three annotation keywords, registered with ajv in validate.ts and ignored by editors:
//   x-usher-kind:     "duration" | "size" — validated by parseDuration/parseSize (units.ts).
//   x-usher-expected: what a pattern/union expects, in words, for error messages.
//   x-usher-key:      what the keys of a map are called ("upstream name"), for error messages.
import { Type, type Static } from '@sinclair/typebox';
import { DEFAULTS, duration, headerName, LOG_LEVELS, object, size, stringEnum, TOKEN_PATTERN, VIA_EXPECTED } from './schema-parts.js';
import { AccessSchema } from '../filters/access/config.js';
import { AuthSchema } from '../filters/auth/config.js';
import { CachesSchema, RouteCacheSchema } from '../filters/cache/config.js';
import { RouteWafSchema, WafSchema } from '../filters/waf/config.js';
import { CompressSchema, RouteCompressSchema } from '../filters/compress/config.js';
import { CorsSchema } from '../filters/cors/config.js';
import { SecurityHeadersSchema } from '../filters/security-headers/config.js';
import { HeaderRulesSchema } from '../filters/headers/config.js';
import { MirrorSchema } from '../filters/mirror/config.js';
import { RateLimitsSchema, RouteRateLimitsSchema } from '../filters/rate-limit/config.js';
import { RedirectSchema } from '../filters/redirect/config.js';
import { RewriteSchema } from '../filters/rewrite/config.js';
import { SplitSchema, StickyKeySchema } from '../filters/split/config.js';
import { RouteMatchSchema } from '../router/config.js';
import { Acme, ListenerTls, RedirectHttps } from '../tls/config/schema.js';
import { UPSTREAM_NAME_PATTERN, UpstreamSchema } from '../upstream/config/schema.js';
import { SIZE_PATTERN } from './units.js';
import { AdminSchema } from '../admin/config.js';
import { TracingSchema } from '../observability/tracing/config.js';
import { TEMPLATE_FIELDS } from '../observability/access-format.js';
import { DrainSchema } from '../server/drain/config.js';

const ACCESS_FIELDS = `${TEMPLATE_FIELDS.map((f) => `{${f}}`).join(', ')}, {header.NAME}`;

export { DEFAULTS, LOG_LEVELS } from './schema-parts.js';

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
    access: Type.Optional(AccessSchema),
    security_headers: Type.Optional(SecurityHeadersSchema),
  },
  { description: 'One address to accept client (downstream) connections on.' },
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
    access: Type.Optional(AccessSchema),
    auth: Type.Optional(AuthSchema),
    cors: Type.Optional(CorsSchema),
    security_headers: Type.Optional(SecurityHeadersSchema),
    rate_limits: Type.Optional(RouteRateLimitsSchema),
    compress: Type.Optional(RouteCompressSchema),
    cache: Type.Optional(RouteCacheSchema),
    waf: Type.Optional(RouteWafSchema),
    drain: Type.Optional(DrainSchema),
  },
  { description: 'One route. The most specific route that matches handles the request (see `priority`).' },
);

export const ConfigSchema = object(
  {
    $schema: Type.Optional(Type.String({ description: 'Ignored by usher; lets editors find this JSON Schema.' })),
    listeners: Type.Array(Listener, { minItems: 1, description: 'Addresses usher accepts connections on (at least one).' }),
    upstreams: Type.Optional(
      Type.Record(Type.String({ pattern: UPSTREAM_NAME_PATTERN }), UpstreamSchema, {
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
    compress: Type.Optional(CompressSchema),
    caches: Type.Optional(CachesSchema),
    waf: Type.Optional(WafSchema),
    timeouts: Type.Optional(
      object(
        {
          request_header: Type.Optional(
            duration('Time for a client to send the whole request head (protects against slowloris); on expiry: 408.', DEFAULTS.timeouts.request_header),
          ),
          body_idle: Type.Optional(duration('Longest gap between chunks of a request body; on expiry: 408.', DEFAULTS.timeouts.body_idle)),
          keep_alive: Type.Optional(duration('How long an idle client connection is kept open between requests.', DEFAULTS.timeouts.keep_alive)),
          graceful_shutdown: Type.Optional(
            duration('On SIGTERM, how long in-flight requests may take to finish before connections are closed. Long-lived connections (WebSockets, SSE streams, gRPC calls) are closed gracefully at its start: a WebSocket close 1001, the end of the stream, grpc-status 14.', DEFAULTS.timeouts.graceful_shutdown),
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
            Type.Boolean({ default: DEFAULTS.log.access_log, description: 'Write one line per request (to stdout unless `access_log_file` is set), whatever the log level.' }),
          ),
          access_log_format: Type.Optional(
            Type.String({
              minLength: 1,
              default: DEFAULTS.log.access_log_format,
              description: `The access log's lines. json: one JSON object per line (time, request_id, client, client_address, method, host, path, status, bytes_in, bytes_out, duration_ms, route, upstream, attempts, reason, trace_id). combined or common: as nginx writes them. Anything else is a template of named fields, e.g. "{client} {request} {status} {duration_ms} {trace_id}": ${ACCESS_FIELDS}; "{{" is a literal "{". A missing value is "-".`,
              'x-usher-expected': 'json, combined, common, or a template of {fields}',
            }),
          ),
          access_log_file: Type.Optional(
            Type.String({
              minLength: 1,
              description:
                'Write the access log to this file (appended; relative to the config file\'s directory) instead of stdout. SIGUSR1 or POST /reopen-logs reopens it by its path: rotate it by renaming, then signalling (no copytruncate needed).',
            }),
          ),
          access_log_sample: Type.Optional(
            Type.Number({
              minimum: 0,
              maximum: 1,
              default: DEFAULTS.log.access_log_sample,
              description:
                'The share of successful requests (status below 400, no reason code) that get an access-log line, at random: 0.1 writes about one in ten. Every other request — a 4xx or 5xx, a local refusal, an upstream failure, a client that left — is always written. Counters and metrics see every request whatever this is.',
            }),
          ),
          access_log_buffer: Type.Optional(
            size('Most access-log bytes held in memory while the destination lags or fails (a full disk, a stdout nobody reads); lines beyond it are dropped and counted, and serving goes on.', DEFAULTS.log.access_log_buffer),
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
    rate_limits: Type.Optional(RateLimitsSchema),
    admin: Type.Optional(AdminSchema),
    tracing: Type.Optional(TracingSchema),
    workers: Type.Optional(
      Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 1, maximum: 256 })], {
        default: DEFAULTS.workers,
        'x-usher-expected': '"auto" or a number of processes from 1 to 256',
        description:
          'Worker processes of `usher serve` that share the listeners (see `workers_mechanism`). auto: one per available CPU (os.availableParallelism, capped by a cgroup CPU quota). 1: a single process, no primary. With more than one, a primary process loads the config, watches the file, runs the active health checks, DNS discovery, ACME and the admin listener, and feeds the results to every worker; local rate limits, concurrency limits and `rate_limits.connections_per_client` are counted in the primary, and each worker takes a fixed share of an upstream\'s `circuit_breaker.max_requests` / `max_pending`, `servers[].max_requests` and `retry.budget.min_retries`, so that these limits hold per usher instance (README: Limits with N workers). Changed by a reload: takes effect at the next restart. The built-in demo runs 1; `usher serve --workers` overrides the file.',
      }),
    ),
    workers_mechanism: Type.Optional(
      stringEnum(['auto', 'reuse_port', 'cluster'] as const, {
        default: DEFAULTS.workers_mechanism,
        description:
          'How the worker processes share a listener\'s port. reuse_port: each worker binds it itself with SO_REUSEPORT and the kernel spreads new connections over the workers (a hash of the addresses and ports, not load-aware), nothing in between; needs Node >= 22.12 (or >= 23.1) on Linux, elsewhere usher logs a warning and uses cluster. cluster: node:cluster round-robin, the primary accepts every connection and hands it to a worker (one accept and one IPC message per connection). auto: reuse_port where available, cluster otherwise. A listener on port 0 always uses cluster (with SO_REUSEPORT each worker would get its own port). With reuse_port another process of the same user that binds the port with SO_REUSEPORT shares it instead of failing with "address in use". Changed by a reload: takes effect at the next restart (README: Workers).',
      }),
    ),
  },
  {
    title: 'usher configuration',
    description: 'Configuration file of usher, a reverse proxy for Node.js (usher.yaml or usher.json).',
  },
);

/** The config as a user writes it (the argument of defineConfig). */
export type ConfigInput = Static<typeof ConfigSchema>;
