// The `compress:` section, at the top level (the default of every proxied route) or of a route
// (its fields over the top level's; `false`: off for the route): its schema part, defaults,
// normalised form and checks. The filter (index.ts) reads the normalised CompressConfig.
import { Type, type Static } from '@sinclair/typebox';
import { checkProxiedOnly, isRec, type ErrorFn, type RouteCheck } from '../../config/check-kit.js';
import type { Segment } from '../../config/issues.js';
import { object, size, stringEnum } from '../../config/schema-kit.js';
import { parseSize } from '../../config/units.js';

export const ALGORITHMS = ['zstd', 'br', 'gzip'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/**
 * Levels measured for CPU per byte on 100 KiB of text (README, docs, JSON, JS; Node 20, one
 * core): gzip 1 ratio 0.372 at 11 ns/B, 5: 0.328 at 21 ns/B, 6: 0.327 at 23, 9: 0.326 at 27;
 * brotli 3: 0.325 at 10 ns/B, 4: 0.317 at 15, 5: 0.298 at 25, 9: 280 ns/B. gzip 5 and brotli 4
 * are the knees (the next level costs more than it saves); zstd 3 is zstd's own default.
 */
export const COMPRESS_DEFAULTS = {
  algorithms: ['zstd', 'br', 'gzip'] as Algorithm[],
  gzip_level: 5,
  br_level: 4,
  zstd_level: 3,
  min_size: 256,
  types: [
    'text/*',
    'application/json',
    'application/javascript',
    'application/xml',
    'application/xhtml+xml',
    'application/rss+xml',
    'application/atom+xml',
    'application/ld+json',
    'application/manifest+json',
    'application/geo+json',
    'application/graphql-response+json',
    'application/wasm',
    'image/svg+xml',
    'font/ttf',
    'font/otf',
  ],
  event_stream: 'flush' as 'flush' | 'off',
};

const TYPE_PATTERN = "^([!#$%&'*+.^_`|~0-9A-Za-z-]+/(\\*|[!#$%&'*+.^_`|~0-9A-Za-z-]+)|\\*)$";

const CompressFields = object(
  {
    algorithms: Type.Optional(
      Type.Array(stringEnum(ALGORITHMS, {}), {
        minItems: 1,
        uniqueItems: true,
        default: COMPRESS_DEFAULTS.algorithms,
        description:
          'The codings usher may use, in its order of preference: the client\'s Accept-Encoding q-values decide, and among equal q-values the first here wins. zstd is used only where the running Node\'s zlib has it (Node 22.15 and later); elsewhere it is skipped.',
      }),
    ),
    gzip_level: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 9, default: COMPRESS_DEFAULTS.gzip_level, description: 'gzip level (1..9). 5: measured as the knee of CPU per byte against size (level 6 costs 10% more CPU for 0.3% smaller output).' }),
    ),
    br_level: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 11, default: COMPRESS_DEFAULTS.br_level, description: 'Brotli quality (0..11). 4: smaller than gzip 9 at half its CPU; from 5 on the CPU grows faster than the output shrinks (9 costs 18× the CPU of 4).' }),
    ),
    zstd_level: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 19, default: COMPRESS_DEFAULTS.zstd_level, description: 'zstd level (1..19); 3 is zstd\'s own default.' }),
    ),
    min_size: Type.Optional(
      size(
        'Responses whose Content-Length is smaller are sent as they are (a few hundred bytes gain nothing). A response without a Content-Length (streamed) is compressed, as nginx\'s gzip_min_length does.',
        COMPRESS_DEFAULTS.min_size,
      ),
    ),
    types: Type.Optional(
      Type.Array(Type.String({ pattern: TYPE_PATTERN }), {
        default: COMPRESS_DEFAULTS.types,
        description:
          'The media types compressed (the Content-Type without its parameters, case-insensitive): "text/html" exactly, "text/*" a whole type, "*" everything. A response without a Content-Type is not compressed. Default: text, JSON, JavaScript, XML, SVG, WebAssembly and uncompressed fonts.',
        'x-usher-expected': 'a media type like "text/html", "text/*" or "*"',
      }),
    ),
    event_stream: Type.Optional(
      stringEnum(['flush', 'off'] as const, {
        default: COMPRESS_DEFAULTS.event_stream,
        description:
          'text/event-stream (server-sent events) when "text/*" or it is in `types`: flush (compressed, with the compressor flushed after every chunk the upstream sends, so no event is held back) or off (sent as it is).',
      }),
    ),
  },
  {
    description:
      'Compress responses (gzip, brotli, zstd) for clients that accept it. Only responses with a body, of a type in `types` and at least `min_size`, to a request without Range; never a response the upstream already encoded or marked Cache-Control: no-transform. A compressed response loses its Content-Length, a strong ETag becomes weak (W/), and Vary: Accept-Encoding is added. At the top level, the default of every proxied route; on a route, its fields override the top level\'s. Local replies (respond, redirects, errors) are not compressed.',
  },
);

export const CompressSchema = CompressFields;

export const RouteCompressSchema = Type.Union([CompressFields, Type.Literal(false)], {
  description: `${CompressFields.description} false: no compression on this route, whatever the top level says.`,
  'x-usher-expected': 'a compress section or false',
});

export type CompressInput = Static<typeof CompressFields>;

export interface CompressConfig {
  /** In preference order; zstd kept even where unsupported (the filter skips it). */
  algorithms: Algorithm[];
  gzip_level: number;
  br_level: number;
  zstd_level: number;
  min_size: number; // bytes
  /** Lower-case: exact types, and "type/" prefixes for "type/*"; `any` for "*". */
  types: string[];
  event_stream: 'flush' | 'off';
}

/** The route's effective section: its own fields over the top level's over the defaults; undefined: off. */
export function normalizeCompress(route: CompressInput | false | undefined, top: CompressInput | undefined): CompressConfig | undefined {
  if (route === false) return undefined;
  if (route === undefined && top === undefined) return undefined;
  const pick = <K extends keyof CompressInput>(k: K): CompressInput[K] => route?.[k] ?? top?.[k];
  const d = COMPRESS_DEFAULTS;
  return {
    algorithms: [...(pick('algorithms') ?? d.algorithms)],
    gzip_level: pick('gzip_level') ?? d.gzip_level,
    br_level: pick('br_level') ?? d.br_level,
    zstd_level: pick('zstd_level') ?? d.zstd_level,
    min_size: parseSize(pick('min_size') ?? d.min_size),
    types: [...new Set((pick('types') ?? d.types).map((t) => t.toLowerCase()))],
    event_stream: pick('event_stream') ?? d.event_stream,
  };
}

function checkSection(s: unknown, at: Segment[], error: ErrorFn): void {
  if (!isRec(s) || !Array.isArray(s.types)) return;
  s.types.forEach((t, i) => {
    if (typeof t === 'string' && t.includes('*') && t !== '*' && !t.endsWith('/*')) error([...at, 'types', i], `expected a media type like "text/html" or "text/*", got ${JSON.stringify(t)}`);
  });
}

/** The top-level section (check.ts). */
export function checkTopCompress(s: unknown, error: ErrorFn): void {
  checkSection(s, ['compress'], error);
}

export const checkCompress: RouteCheck = (route, path, { error }) => {
  if (route.compress === false) return;
  checkProxiedOnly(route, path, 'compress', error);
  checkSection(route.compress, [...path, 'compress'], error);
};
