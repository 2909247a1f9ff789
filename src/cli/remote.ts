// `usher plan` and `usher apply`: send a config file to a running usher's admin API
// (POST /config/plan, /config/apply) and print what it answers. The file is checked here first
// (the same check as `usher validate`); its `admin` section says where the running usher's admin
// listener is unless --admin does.
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { extname, resolve } from 'node:path';
import { formatIssues, loadConfigFile } from '../config/index.js';
import type { UsherConfig } from '../config/types.js';
import { UsageError } from './commands.js';

interface PlanBody {
  ok: boolean;
  changes?: {
    routes: { added: string[]; removed: string[]; changed: string[]; order_changed: boolean };
    upstreams: { added: string[]; removed: string[]; changed: string[] };
    listeners: { added: string[]; removed: string[]; changed: string[] };
    settings: string[];
    ends: string[];
    unchanged: boolean;
  };
  errors?: { text: string }[];
  error?: string;
  message?: string;
}

export async function remote(which: 'plan' | 'apply', file: string, values: Record<string, unknown>): Promise<number> {
  const ext = extname(file).toLowerCase();
  if (ext === '.js' || ext === '.mjs' || ext === '.cjs' || ext === '.ts') {
    throw new UsageError(which, 'the admin API takes the config as text: give a YAML or JSON file');
  }
  const local = await loadConfigFile(file);
  if (!local.ok) {
    process.stderr.write(`${formatIssues([...local.errors, ...local.warnings])}\n${file}: invalid (${local.errors.length} error${local.errors.length === 1 ? '' : 's'}); nothing was sent\n`);
    return 1;
  }
  const { base, token } = adminTarget(values, local.config);
  const text = await readFile(file, 'utf8');
  let reply: { status: number; body: PlanBody };
  try {
    reply = await post(`${base}/config/${which}?file=${encodeURIComponent(resolve(file))}`, text, token, 'application/yaml');
  } catch (err) {
    process.stderr.write(`usher ${which}: cannot reach the admin API at ${base}: ${(err as Error).message}\n(is usher running with an admin section? --admin ADDRESS names another)\n`);
    return 3;
  }
  const b = reply.body;
  if (values.json === true) process.stdout.write(`${JSON.stringify(b, null, 2)}\n`);
  if (reply.status === 401) {
    process.stderr.write(`usher ${which}: the admin API refused the token (give --token or USHER_ADMIN_TOKEN)\n`);
    return 3;
  }
  if (!b.ok) {
    if (values.json !== true) process.stderr.write(`${(b.errors ?? []).map((e) => e.text).join('\n') || b.message || `status ${reply.status}`}\n`);
    process.stderr.write(which === 'apply' ? `${file}: not applied; usher still serves the previous config\n` : `${file}: invalid\n`);
    return 1;
  }
  if (values.json !== true) process.stdout.write(describe(b.changes!, which));
  return 0;
}

/** The admin API's base URL and token: --admin / --token, $USHER_ADMIN_TOKEN, the config's admin section, 127.0.0.1:9901. */
function adminTarget(values: Record<string, unknown>, config: UsherConfig | undefined): { base: string; token: string | undefined } {
  const a = config?.admin;
  const address = (values.admin as string | undefined) ?? (a === undefined ? '127.0.0.1:9901' : `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`);
  const token = (values.token as string | undefined) ?? process.env.USHER_ADMIN_TOKEN ?? a?.token ?? undefined;
  const base = /^https?:\/\//.test(address) ? address : `http://${address.startsWith(':') ? `127.0.0.1${address}` : address}`;
  return { base: base.replace(/\/$/, ''), token };
}

/** `usher purge`: POST /cache/purge on a running usher (--config only says where its admin API is). */
export async function purgeRemote(values: Record<string, unknown>): Promise<number> {
  let config: UsherConfig | undefined;
  const file = values.config as string | undefined;
  if (file !== undefined) {
    const local = await loadConfigFile(file);
    if (!local.ok) {
      process.stderr.write(`${formatIssues(local.errors)}\n${file}: invalid; nothing was sent\n`);
      return 1;
    }
    config = local.config;
  }
  const given = (['url', 'prefix', 'tag'] as const).filter((k) => values[k] !== undefined);
  if (given.length !== 1) throw new UsageError('purge', 'give exactly one of --url, --prefix or --tag');
  const body: Record<string, unknown> = { [given[0]!]: values[given[0]!] };
  if (values.store !== undefined) body.store = values.store;
  const { base, token } = adminTarget(values, config);
  let reply: { status: number; body: PlanBody & { purged?: number; stores?: Record<string, number> } };
  try {
    reply = await post(`${base}/cache/purge`, JSON.stringify(body), token, 'application/json');
  } catch (err) {
    process.stderr.write(`usher purge: cannot reach the admin API at ${base}: ${(err as Error).message}\n(is usher running with an admin section? --admin ADDRESS names another)\n`);
    return 3;
  }
  const b = reply.body;
  if (values.json === true) process.stdout.write(`${JSON.stringify(b, null, 2)}\n`);
  if (reply.status === 401) {
    process.stderr.write('usher purge: the admin API refused the token (give --token or USHER_ADMIN_TOKEN)\n');
    return 3;
  }
  if (reply.status !== 200) {
    process.stderr.write(`usher purge: ${b.message ?? `status ${reply.status}`}\n`);
    return 1;
  }
  if (values.json !== true) {
    const per = Object.entries(b.stores ?? {}).map(([n, c]) => `${n}: ${c}`);
    process.stdout.write(`purged ${b.purged} stored response${b.purged === 1 ? '' : 's'}${per.length > 0 ? ` (${per.join(', ')})` : ''}\n`);
  }
  return 0;
}

function describe(c: NonNullable<PlanBody['changes']>, which: 'plan' | 'apply'): string {
  const head = which === 'apply' ? 'applied' : 'would change';
  if (c.unchanged) return `${which === 'apply' ? 'applied: ' : ''}no changes\n`;
  const lines = [`${head}:`];
  const section = (name: string, d: { added: string[]; removed: string[]; changed: string[] }) => {
    for (const n of d.added) lines.push(`  + ${name} ${n}`);
    for (const n of d.removed) lines.push(`  - ${name} ${n}`);
    for (const n of d.changed) lines.push(`  ~ ${name} ${n}`);
  };
  section('route', c.routes);
  if (c.routes.order_changed) lines.push('  ~ the order of routes');
  section('upstream', c.upstreams);
  section('listener', c.listeners);
  for (const s of c.settings) lines.push(`  ~ ${s}`);
  if (c.ends.length > 0) lines.push(which === 'apply' ? 'ended:' : 'would end:', ...c.ends.map((e) => `  ${e}`));
  return `${lines.join('\n')}\n`;
}

function post(url: string, body: string, token: string | undefined, type: string): Promise<{ status: number; body: PlanBody }> {
  return new Promise((resolvePost, reject) => {
    const headers: Record<string, string> = { 'content-type': type };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const req = request(url, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolvePost({ status: res.statusCode ?? 0, body: JSON.parse(text) as PlanBody });
        } catch {
          reject(new Error(`not an admin API answer (status ${res.statusCode}): ${text.slice(0, 200)}`));
        }
      });
    });
    req.setTimeout(60_000, () => req.destroy(new Error('no answer within 60 s')));
    req.on('error', reject);
    req.end(body);
  });
}
