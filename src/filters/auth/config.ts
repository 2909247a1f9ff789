// The `auth:` section of a route: one of `basic`, `jwt` or `forward`. Each kind keeps its
// schema part, defaults, normalised type, normaliser and check in its own file beside this one;
// this file assembles them into the route's section. The filters (index.ts) read AuthConfig.
import { Type, type Static } from '@sinclair/typebox';
import { isRec, type RouteCheck } from '../../config/check-kit.js';
import { object } from '../../config/schema-kit.js';
import { BasicAuthSchema, checkBasic, normalizeBasic, type BasicAuthConfig } from './basic-config.js';
import { checkForward, ForwardAuthSchema, normalizeForward, type ForwardAuthConfig } from './forward-config.js';
import { checkJwt, JwtAuthSchema, normalizeJwt, type JwtAuthConfig } from './jwt-config.js';

export type { BasicAuthConfig } from './basic-config.js';
export type { ForwardAuthConfig } from './forward-config.js';
export type { JwtAuthConfig, JwtKey } from './jwt-config.js';

const KINDS = ['basic', 'jwt', 'forward'] as const;

export const AuthSchema = object(
  {
    basic: Type.Optional(BasicAuthSchema),
    jwt: Type.Optional(JwtAuthSchema),
    forward: Type.Optional(ForwardAuthSchema),
  },
  {
    description:
      'Authentication of the route\'s requests, one kind per route. Every refusal is a local reply with its reason code (logged, counted, and given the route\'s CORS and security headers).',
  },
);

export type AuthInput = Static<typeof AuthSchema>;

export type AuthConfig =
  | { basic: BasicAuthConfig; jwt?: never; forward?: never }
  | { jwt: JwtAuthConfig; basic?: never; forward?: never }
  | { forward: ForwardAuthConfig; basic?: never; jwt?: never };

/** `filePath` resolves a path of the config (an htpasswd file) against the config file's directory. */
export function normalizeAuth(a: AuthInput, filePath: (p: string) => string): AuthConfig {
  if (a.jwt !== undefined) return { jwt: normalizeJwt(a.jwt, filePath) };
  if (a.forward !== undefined) return { forward: normalizeForward(a.forward) };
  return { basic: normalizeBasic(a.basic!, filePath) };
}

export const checkAuth: RouteCheck = (route, path, ctx) => {
  const { error, resolve } = ctx;
  const a = route.auth;
  if (!isRec(a)) return;
  const at = [...path, 'auth'];
  const present = KINDS.filter((k) => a[k] !== undefined);
  if (present.length === 0) error(at, `"auth" needs one of ${KINDS.map((k) => `"${k}"`).join(', ')}`);
  if (present.length > 1) error(at, `a route takes one kind of auth, found ${present.map((k) => `"${k}"`).join(' and ')}`, 'split the route, or keep one');
  checkBasic(a.basic, [...at, 'basic'], error, resolve);
  checkJwt(a.jwt, [...at, 'jwt'], ctx);
  checkForward(a.forward, [...at, 'forward'], ctx);
};
