// The machinery of the semantic checks (the checks a schema cannot express), shared by
// check.ts, check-routing.ts and the checks of the sections beside their features
// (src/filters/<name>/config.ts). Checks run even when the schema reported errors, so one run
// shows everything: they read the data defensively and skip whatever has the wrong shape.
import type { Issues, Segment } from './issues.js';
import { parseTemplate } from './template.js';

export type Rec = Record<string, unknown>;
export const isRec = (v: unknown): v is Rec => v !== null && typeof v === 'object' && !Array.isArray(v);
export const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Reports an error at `path`, unless one was already reported at exactly that path (by the schema). */
export type ErrorFn = (path: Segment[], message: string, hint?: string, at?: 'key' | 'value') => void;

/** What the check of a route's config section gets besides the route. */
export interface RouteCheckContext {
  readonly error: ErrorFn;
  /** For warnings. */
  readonly issues: Issues;
  /** A reference to an upstream by name: counts it as used, and is an error when there is none. */
  readonly upstream: (name: unknown, at: Segment[]) => void;
  /** A path written in the config (an htpasswd file, a key file), resolved against the config file's directory. */
  readonly resolve: (path: string) => string;
}

/** The check of one section of a route: `route` is the route as written, `path` where it is. */
export type RouteCheck = (route: Rec, path: Segment[], ctx: RouteCheckContext) => void;

export function checkRegex(source: string, at: Segment[], error: ErrorFn): void {
  try {
    new RegExp(source);
  } catch (err) {
    error(at, `invalid regular expression ${JSON.stringify(source)}: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
  }
}

/** A text with {placeholders} (template.ts). */
export function checkTemplate(text: string, at: Segment[], error: ErrorFn): void {
  const t = parseTemplate(text);
  if (!t.ok) error(at, t.message, t.hint);
}

/** `key` changes requests proxied to an upstream: an error on a route that answers them itself. */
export function checkProxiedOnly(route: Rec, path: Segment[], key: string, error: ErrorFn): void {
  const proxied = route.upstream !== undefined || route.split !== undefined;
  if (route[key] !== undefined && !proxied && (route.respond !== undefined || route.redirect !== undefined)) {
    error([...path, key], `"${key}" applies to requests proxied to an upstream; this route answers them itself`, 'move it to a route with "upstream" or "split"', 'key');
  }
}
