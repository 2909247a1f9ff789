// The user-facing config schema (snake_case, as written in usher.yaml). The descriptions here
// ARE the user documentation: scripts/gen-docs.js renders docs/config.md and
// docs/usher.schema.json from this file. Defaults live in DEFAULTS so the schema (for docs and
// editors) and the normalizer (normalize.ts) cannot disagree.
//
// Three annotation keywords, registered with ajv in validate.ts and ignored by editors:
//   x-usher-kind:     "duration" | "size" — validated by parseDuration/parseSize (units.ts).
//   x-usher-expected: what a pattern/union expects, in words, for error messages.
//   x-usher-key:      what the keys of a map are called ("upstream name"), for error messages.
import { Type, type Static, type TSchema, type SchemaOptions } from '@sinclair/typebox';
import { SIZE_PATTERN } from './units.js';
import { duration, stringEnum } from './schema-kit.js';
import { Acme, ListenerTls, RedirectHttps, TLS_DEFAULTS, UpstreamTls } from './schema-tls.js';

export const DEFAULTS = {
  server: { weight: 1 },
  upstream: {
    balance: 'round_robin',
    host_header: 'preserve',
    pool: { max_connections: 128, keep_alive_timeout: '60s' },
    timeouts: { connect: '5s', response_header: '60s', body_idle: '60s' },
  },
  respond: { status: 200, body: '', headers: {} as Record<string, string> },
  timeouts: { request_header: '10s', body_idle: '30s', keep_alive: '5s', graceful_shutdown: '10s' },
  limits: { request_line: '8kb', header_size: '16kb', header_count: 100, body: null },
  proxy: {
    trusted_proxies: [] as string[],
    hide_headers: ['server', 'x-powered-by'],
    via: 'usher',
    drop_underscore_headers: true,
    request_id_header: 'x-request-id',
  },
  log: { level: 'info', access_log: false },
  tls: TLS_DEFAULTS,
} as const;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const BALANCERS = ['round_robin'] as const;

/** RFC 9110 §5.6.2 token: what a header name may contain. */
const TOKEN_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
const UPSTREAM_NAME_PATTERN = '^[A-Za-z0-9_.-]+$';
/** A host name or IP literal, optionally "*."-prefixed and with a port. */
const HOST_EXPECTED = 'a host name like "example.com" or "*.example.com", optionally with ":port"';
const MATCH_HOST_PATTERN =
  '^((\\*\\.)?[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*\\.?|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?$';

const VIA_EXPECTED = "a name without spaces (letters, digits and !#$%&'*+.^_`|~-)";


function size(description: string, dflt: string | number) {
  return Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: SIZE_PATTERN })], {
    description: `${description} A size: bytes as a number, or a string like "512", "16kb", "10mb", "1gb"; as in nginx, kb/mb/gb are powers of 1024 (k, m, g, kib, mib, gib also accepted).`,
    default: dflt,
    'x-usher-kind': 'size',
  });
}

function object<T extends Record<string, TSchema>>(properties: T, options: SchemaOptions) {
  return Type.Object(properties, { additionalProperties: false, ...options });
}

const headerName = (description: string, options: SchemaOptions = {}) =>
  Type.String({
    pattern: TOKEN_PATTERN,
    description,
    'x-usher-expected': 'a header name (letters, digits and !#$%&\'*+.^_`|~-)',
    ...options,
  });

const Listener = object(
  {
    address: Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0, maximum: 65535 })], {
      description:
        'Where to accept connections: "host:port", "[ipv6]:port", ":port" (all IPv4 interfaces, 0.0.0.0) or a bare port number (same as ":port"). Port 0 picks a free port.',
      'x-usher-expected': 'an address like "127.0.0.1:8080", "[::1]:8080", ":8080" or a port number',
    }),
    tls: Type.Optional(ListenerTls),
    redirect_https: Type.Optional(RedirectHttps),
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
    tls: Type.Optional(UpstreamTls),
  },
  { description: 'A named group of servers that routes send requests to.' },
);

const RouteMatch = object(
  {
    host: Type.Optional(
      Type.Union(
        [
          Type.String({ pattern: MATCH_HOST_PATTERN, 'x-usher-expected': HOST_EXPECTED }),
          Type.Array(Type.String({ pattern: MATCH_HOST_PATTERN, 'x-usher-expected': HOST_EXPECTED }), { minItems: 1 }),
        ],
        {
          description:
            'Host name(s) to match, case-insensitively: one string or a list. "*.example.com" matches names under example.com. Without a port, any port matches.',
          'x-usher-expected': 'a host name like "example.com" or "*.example.com", or a list of them',
        },
      ),
    ),
    path: Type.Optional(
      Type.String({
        pattern: '^/[^\\s?#]*$',
        description: 'Path prefix to match on a segment boundary: "/api" matches "/api" and "/api/x", not "/apix". Must start with "/".',
        'x-usher-expected': 'a path starting with "/" (no spaces, "?" or "#")',
      }),
    ),
  },
  { description: 'What a request must look like for this route to apply. All given conditions must hold; omit to match every request.' },
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
    upstream: Type.Optional(Type.String({ minLength: 1, description: 'Name of the upstream (under `upstreams`) to proxy to. Exactly one of `upstream` and `respond`.' })),
    respond: Type.Optional(Respond),
  },
  { description: 'One route. Routes are tried in order; the first that matches handles the request.' },
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
    acme: Type.Optional(Acme),
  },
  {
    title: 'usher configuration',
    description: 'Configuration file of usher, a reverse proxy for Node.js (usher.yaml or usher.json).',
  },
);

/** The config as a user writes it (the argument of defineConfig). */
export type ConfigInput = Static<typeof ConfigSchema>;
