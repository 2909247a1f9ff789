// The `admin:` section: the admin listener (JSON API and /metrics). Off unless configured. It
// is its own listener, never one of `listeners`, so nothing a proxy listener routes can reach
// it; beyond loopback it requires a bearer token (issue #15).
import { Type } from '@sinclair/typebox';
import { parseListenAddress } from '../config/address.js';
import { isRec, type ErrorFn, type Rec } from '../config/check-kit.js';
import { object } from '../config/schema-kit.js';

export const ADMIN_DEFAULTS = Object.freeze({ metrics: true });

export const AdminSchema = object(
  {
    address: Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 0, maximum: 65535 })], {
      description:
        'Where the admin API listens: "127.0.0.1:9901", "[::1]:9901", or any address when `token` is set. Never the address of a proxy listener. A reload may change it: the admin listener then moves (the old one closes once the new one is bound).',
      'x-usher-expected': 'an address like "127.0.0.1:9901", "[::1]:9901" or ":9901"',
    }),
    token: Type.Optional(
      Type.String({
        minLength: 16,
        description:
          'Bearer token every admin request must carry (`Authorization: Bearer TOKEN`). Required when `address` is not a loopback address; optional on loopback (where, when set, it is required too). Write it as `${ADMIN_TOKEN}` to keep it out of the file.',
      }),
    ),
    metrics: Type.Optional(
      Type.Boolean({
        default: ADMIN_DEFAULTS.metrics,
        description: 'Serve Prometheus metrics at GET /metrics and count per-route requests for GET /routes. false: nothing is counted or computed on the request path.',
      }),
    ),
  },
  { description: 'The admin listener: status, routes, upstreams and their servers (drain, enable, weight), config plan and apply, Prometheus metrics. Off unless configured.' },
);

export interface AdminConfig {
  /** As written. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly token: string | null;
  readonly metrics: boolean;
}

export interface AdminInput {
  address: string | number;
  token?: string;
  metrics?: boolean;
}

export function normalizeAdmin(input: AdminInput): AdminConfig {
  const a = parseListenAddress(input.address);
  if (!a.ok) throw new Error(`admin.address: ${a.message}`); // the check reported it first
  return { address: String(input.address), host: a.host, port: a.port, token: input.token ?? null, metrics: input.metrics ?? ADMIN_DEFAULTS.metrics };
}

/** Loopback: 127.0.0.0/8, ::1 (and ::ffff:127.x). "localhost" may resolve elsewhere: not trusted as loopback. */
export function isLoopback(host: string): boolean {
  return /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1' || /^::ffff:127\./i.test(host);
}

export function checkAdmin(data: Rec, error: ErrorFn): void {
  const admin = data.admin;
  if (!isRec(admin) || (typeof admin.address !== 'string' && typeof admin.address !== 'number')) return;
  const r = parseListenAddress(admin.address);
  if (!r.ok) return error(['admin', 'address'], r.message, r.hint);
  if (!isLoopback(r.host) && admin.token === undefined) {
    error(
      ['admin', 'address'],
      `admin.address ${JSON.stringify(String(admin.address))} is not a loopback address: the admin API changes what usher serves, so beyond loopback it needs a bearer token`,
      'add `token: ${ADMIN_TOKEN}` (16 characters or more) under admin, or listen on 127.0.0.1',
    );
  }
  if (r.port === 0) return;
  const listeners = Array.isArray(data.listeners) ? data.listeners : [];
  listeners.forEach((l, i) => {
    if (!isRec(l) || (typeof l.address !== 'string' && typeof l.address !== 'number')) return;
    const p = parseListenAddress(l.address);
    if (p.ok && p.port === r.port && (p.host === r.host || p.host === '0.0.0.0' || p.host === '::' || r.host === '0.0.0.0' || r.host === '::')) {
      error(['admin', 'address'], `admin.address ${JSON.stringify(String(admin.address))} is the address of listeners[${i}]: the admin API has a listener of its own`, 'pick another port for admin');
    }
  });
}
