// The admin API from a test: JSON requests to a running usher's admin listener.
import { request, type Reply } from './client.js';
import type { TestUsher } from './usher.js';

export interface AdminReply extends Reply {
  json: Record<string, unknown> & { [k: string]: any }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function adminUrl(u: TestUsher): string {
  const admin = u.usher.admin;
  if (admin === null) throw new Error('usher has no admin listener');
  return `http://127.0.0.1:${admin.address().port}`;
}

export async function admin(u: TestUsher | string, method: string, path: string, options: { body?: string; token?: string } = {}): Promise<AdminReply> {
  const base = typeof u === 'string' ? u : adminUrl(u);
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const r = await request(`${base}${path}`, { method, headers, body: options.body });
  let json: AdminReply['json'] = {};
  if ((r.headers['content-type'] ?? '').startsWith('application/json')) json = JSON.parse(r.body) as AdminReply['json'];
  return { ...r, json };
}
