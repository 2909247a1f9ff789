// The `split:` and `sticky_key:` sections of a route: their schema parts, defaults, normalised
// forms and checks. The factory (index.ts) reads the normalised SplitTarget[] and StickyKey.
import { Type, type Static } from '@sinclair/typebox';
import { isRec, list, type RouteCheck } from '../../config/check-kit.js';
import { object, TOKEN_PATTERN } from '../../config/schema-kit.js';

export const SPLIT_DEFAULTS = { weight: 1 } as const;

const SplitTargetSchema = object(
  {
    upstream: Type.String({ minLength: 1, description: 'Name of the upstream for this side.' }),
    weight: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 10000, default: SPLIT_DEFAULTS.weight, description: 'Relative share of requests (0..10000; 0 sends none).' }),
    ),
  },
  { description: 'One side of a traffic split.' },
);

export const SplitSchema = Type.Array(SplitTargetSchema, {
  minItems: 1,
  description:
    'Send requests to several upstreams by weight (canary, A/B: [{ upstream: stable, weight: 95 }, { upstream: canary, weight: 5 }]). Without `sticky_key` the shares are exact over every run of requests; with one, a client always lands on the same side while the weights are unchanged.',
});

export const StickyKeySchema = Type.Union(
  [
    Type.Literal('client_ip'),
    object({ cookie: Type.String({ pattern: TOKEN_PATTERN, description: 'Cookie name.' }) }, { description: 'The value of a cookie.' }),
    object({ header: Type.String({ pattern: TOKEN_PATTERN, description: 'Header name.' }) }, { description: 'The value of a request header.' }),
  ],
  {
    description:
      'What keeps a client on one side of a `split`: "client_ip", { cookie: NAME } or { header: NAME }. The key is hashed (FNV-1a) onto the weights, so the same key always gets the same side while the weights stay; changing 95/5 to 90/10 moves only the keys between the old and new boundary. Requests without the key are shared out by weight.',
    'x-usher-expected': '"client_ip", or a mapping with "cookie" or "header"',
  },
);

export interface SplitTarget {
  upstream: string;
  weight: number; // default 1
}

export type StickyKey = { kind: 'client_ip' } | { kind: 'cookie'; name: string } | { kind: 'header'; name: string };

export function normalizeSplit(split: Static<typeof SplitSchema>): SplitTarget[] {
  return split.map((s) => ({ upstream: s.upstream, weight: s.weight ?? SPLIT_DEFAULTS.weight }));
}

export function normalizeStickyKey(k: Static<typeof StickyKeySchema>): StickyKey {
  if (k === 'client_ip') return { kind: 'client_ip' };
  if ('cookie' in k) return { kind: 'cookie', name: k.cookie };
  return { kind: 'header', name: k.header.toLowerCase() };
}

export const checkSplit: RouteCheck = (route, path, { error, upstream }) => {
  const split = list(route.split);
  split.forEach((s, j) => {
    if (isRec(s)) upstream(s.upstream, [...path, 'split', j, 'upstream']);
  });
  if (split.length > 0 && split.every((s) => isRec(s) && s.weight === 0)) error([...path, 'split'], 'every side of the split has weight 0: no request could be sent', 'give at least one side a weight above 0');
  if (route.sticky_key !== undefined && route.split === undefined) error([...path, 'sticky_key'], '"sticky_key" only applies to a "split"', 'remove it, or add "split:"', 'key');
};
