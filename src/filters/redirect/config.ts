// The `redirect:` section of a route: its schema part, defaults, normalised form and checks.
// The factory (index.ts) reads the normalised RedirectAction.
import { Type, type Static } from '@sinclair/typebox';
import { checkTemplate, isRec, type RouteCheck } from '../../config/check-kit.js';
import { object } from '../../config/schema-kit.js';
import { PLACEHOLDERS } from '../../config/template.js';

export const REDIRECT_DEFAULTS = { status: 301 } as const;

export const RedirectSchema = object(
  {
    to: Type.Optional(Type.String({ minLength: 1, description: `Where to send the client (the Location header). ${PLACEHOLDERS}` })),
    https: Type.Optional(
      Type.Boolean({ description: 'Redirect to the same host and request URI over https (the usual http → https upgrade). Instead of `to`.' }),
    ),
    https_port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'With `https`: the port to send the client to (default: 443, not written).' })),
    status: Type.Optional(
      Type.Unsafe<301 | 302 | 303 | 307 | 308>({
        type: 'integer',
        enum: [301, 302, 303, 307, 308],
        default: REDIRECT_DEFAULTS.status,
        description: 'Status: 301 or 308 (permanent), 302, 303 or 307 (temporary); 307 and 308 keep the method and body.',
      }),
    ),
  },
  { description: 'Answer with a redirect instead of proxying. One of `to` or `https: true`.' },
);

export interface RedirectAction {
  /** Location template with {placeholders}; absent when https is set. */
  to?: string;
  https: boolean;
  https_port?: number;
  status: 301 | 302 | 303 | 307 | 308; // default 301
}

export function normalizeRedirect(d: Static<typeof RedirectSchema>): RedirectAction {
  const out: RedirectAction = { https: d.https ?? false, status: d.status ?? REDIRECT_DEFAULTS.status };
  if (d.to !== undefined) out.to = d.to;
  if (d.https_port !== undefined) out.https_port = d.https_port;
  return out;
}

export const checkRedirect: RouteCheck = (route, path, { error }) => {
  const d = route.redirect;
  if (!isRec(d)) return;
  const at = [...path, 'redirect'];
  if ((d.to === undefined) === (d.https !== true)) error(at, 'a redirect takes exactly one of "to" or "https: true"');
  if (d.https_port !== undefined && d.https !== true) error([...at, 'https_port'], '"https_port" only applies with "https: true"', undefined, 'key');
  if (typeof d.to === 'string') checkTemplate(d.to, [...at, 'to'], error);
};
