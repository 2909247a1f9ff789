// The `mirror:` section of a route: its schema part, defaults, normalised form and checks. The
// factory (index.ts) reads the normalised MirrorAction.
import { Type, type Static } from '@sinclair/typebox';
import { checkProxiedOnly, isRec, type RouteCheck } from '../../config/check-kit.js';
import { duration, object, size } from '../../config/schema-kit.js';
import { parseDuration, parseSize } from '../../config/units.js';

export const MIRROR_DEFAULTS = { percent: 100, max_body: '64kb', max_concurrent: 16, timeout: '5s' } as const;

export const MirrorSchema = object(
  {
    upstream: Type.String({ minLength: 1, description: 'The shadow upstream that gets a copy of the request.' }),
    percent: Type.Optional(
      Type.Number({ minimum: 0, maximum: 100, default: MIRROR_DEFAULTS.percent, description: 'Share of requests copied (0..100), spread evenly.' }),
    ),
    max_body: Type.Optional(size('Largest request body copied; a request with a larger body is not mirrored.', MIRROR_DEFAULTS.max_body)),
    max_concurrent: Type.Optional(
      Type.Integer({
        minimum: 1,
        default: MIRROR_DEFAULTS.max_concurrent,
        description: 'Most mirrored requests in flight for this route; further copies are dropped, so a slow shadow cannot hold memory.',
      }),
    ),
    timeout: Type.Optional(duration('A mirrored request still unanswered after this long is abandoned.', MIRROR_DEFAULTS.timeout)),
  },
  {
    description:
      'Copy requests to a shadow upstream. The shadow\'s response is read and discarded; it never delays, fails or changes the client\'s response.',
  },
);

export interface MirrorAction {
  upstream: string;
  percent: number; // 0..100, default 100
  max_body: number; // bytes, default 64 KiB
  max_concurrent: number; // default 16
  timeout: number; // ms, default 5000
}

export function normalizeMirror(m: Static<typeof MirrorSchema>): MirrorAction {
  return {
    upstream: m.upstream,
    percent: m.percent ?? MIRROR_DEFAULTS.percent,
    max_body: parseSize(m.max_body ?? MIRROR_DEFAULTS.max_body),
    max_concurrent: m.max_concurrent ?? MIRROR_DEFAULTS.max_concurrent,
    timeout: parseDuration(m.timeout ?? MIRROR_DEFAULTS.timeout),
  };
}

export const checkMirror: RouteCheck = (route, path, { error, upstream }) => {
  checkProxiedOnly(route, path, 'mirror', error);
  if (isRec(route.mirror)) upstream(route.mirror.upstream, [...path, 'mirror', 'upstream']);
};
