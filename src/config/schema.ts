// The user-facing config schema (snake_case, as written in usher.yaml). The descriptions here
// ARE the user documentation: scripts/gen-docs.js renders docs/config.md and
// docs/usher.schema.json from this file and the parts it imports (schema-parts.ts: defaults and
// helpers; schema-routing.ts: matchers and actions of a route). Defaults live in DEFAULTS so the
// schema (for docs and editors) and the normalizer (normalize.ts) cannot disagree.
//
// Three annotation keywords, registered with ajv in validate.ts and ignored by editors:
//   x-usher-kind:     "duration" | "size" — validated by parseDuration/parseSize (units.ts).
//   x-usher-expected: what a pattern/union expects, in words, for error messages.
//   x-usher-key:      what the keys of a map are called ("upstream name"), for error messages.
import { Type, type Static } from '@sinclair/typebox';
import { BALANCERS, DEFAULTS, duration, headerName, LOG_LEVELS, object, size, stringEnum, TOKEN_PATTERN, UPSTREAM_NAME_PATTERN, VIA_EXPECTED } from './schema-parts.js';
import { HeaderRules, Mirror, Redirect, Rewrite, RouteMatch, SplitTarget, StickyKey } from './schema-routing.js';
import { SIZE_PATTERN } from './units.js';

export { BALANCERS, DEFAULTS, LOG_LEVELS } from './schema-parts.js';

const Listener = object(
  {
    address: Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0, maximum: 65535 })], {
      description:
        'Where to accept connections: "host:port", "[ipv6]:port", ":port" (all IPv4 interfaces, 0.0.0.0) or a bare port number (same as ":port"). Port 0 picks a free port.',
      'x-usher-expected': 'an address like "127.0.0.1:8080", "[::1]:8080", ":8080" or a port number',
    }),
    tls: Type.Optional(
      object(
        {
          cert: Type.String({ minLength: 1, description: 'Certificate chain file (PEM). Relative paths are resolved against the config file\'s directory.' }),
          key: Type.String({ minLength: 1, description: 'Private key file (PEM). Relative paths are resolved against the config file\'s directory.' }),
        },
        { description: 'Terminate TLS on this listener with a certificate and key from files. Omit for plain HTTP.' },
      ),
    ),
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
    balance: Type.Optional(
      stringEnum(BALANCERS, {
        default: DEFAULTS.upstream.balance,
        description: 'How a server is picked for each request. round_robin: in turn, in proportion to weight.',
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
    match: Type.Optional(RouteMatch),
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
    split: Type.Optional(
      Type.Array(SplitTarget, {
        minItems: 1,
        description:
          'Send requests to several upstreams by weight (canary, A/B: [{ upstream: stable, weight: 95 }, { upstream: canary, weight: 5 }]). Without `sticky_key` the shares are exact over every run of requests; with one, a client always lands on the same side while the weights are unchanged.',
      }),
    ),
    sticky_key: Type.Optional(StickyKey),
    respond: Type.Optional(Respond),
    redirect: Type.Optional(Redirect),
    rewrite: Type.Optional(Rewrite),
    request_headers: Type.Optional(HeaderRules('Edits to the request headers sent upstream.')),
    response_headers: Type.Optional(HeaderRules('Edits to the response headers sent to the client (upstream responses only).')),
    mirror: Type.Optional(Mirror),
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
              description: 'Name usher gives itself in the Via header ("1.1 usher"). null: send no Via header.',
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
  },
  {
    title: 'usher configuration',
    description: 'Configuration file of usher, a reverse proxy for Node.js (usher.yaml or usher.json).',
  },
);

/** The config as a user writes it (the argument of defineConfig). */
export type ConfigInput = Static<typeof ConfigSchema>;
