// `usher plan` and `usher apply`: send a config file to a running usher's admin API
// (POST /config/plan, /config/apply) and print what it answers. The file is checked here first
// (the same check as `usher validate`); its `admin` section says where the running usher's admin
// listener is unless --admin does.
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { extname, resolve } from 'node:path';
import { formatIssues, loadConfigFile } from '../config/index.js';
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
  const address = (values.admin as string | undefined) ?? (local.config.admin === undefined ? '127.0.0.1:9901' : `${local.config.admin.host.includes(':') ? `[${local.config.admin.host}]` : local.config.admin.host}:${local.config.admin.port}`);
  const token = (values.token as string | undefined) ?? process.env.USHER_ADMIN_TOKEN ?? local.config.admin?.token ?? undefined;
  const base = /^https?:\/\//.test(address) ? address : `http://${address.startsWith(':') ? `127.0.0.1${address}` : address}`;
  const text = await readFile(file, 'utf8');
  let reply: { status: number; body: PlanBody };
  try {
    reply = await post(`${base.replace(/\/$/, '')}/config/${which}?file=${encodeURIComponent(resolve(file))}`, text, token);
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

function post(url: string, body: string, token: string | undefined): Promise<{ status: number; body: PlanBody }> {
  return new Promise((resolvePost, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/yaml' };
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
