// The admin API's endpoints (README "Admin API" has an example of each). Every answer is JSON
// except /metrics (Prometheus text format).
import { createHash } from 'node:crypto';
import { VERSION } from '../util/version.js';
import { formatIssue } from '../config/index.js';
import { loadConfigTextOffThread } from '../config/load-off-thread.js';
import type { ConfigIssue, UsherConfig } from '../config/types.js';
import type { Cluster } from '../upstream/cluster.js';
import type { Endpoint } from '../upstream/endpoint.js';
import type { AdminHost, WorkerView } from './host.js';
import { planConfig } from './plan.js';
import { certificatesView } from './certificates.js';
import { purgeShared, type PurgeRequest } from '../cache/purge.js';

export interface Reply {
  status: number;
  body: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}


const notFound = (message: string): Reply => ({ status: 404, body: { error: 'not_found', message } });
const bad = (message: string): Reply => ({ status: 400, body: { error: 'bad_request', message } });
/** A worker process did not answer (it is restarting, or busy past the wait): what the others did is in `detail`. */
const unavailable = (message: string, detail: Record<string, unknown> = {}): Reply => ({ status: 503, body: { error: 'worker_unavailable', message, ...detail } });

export async function handle(host: AdminHost, method: string, rawUrl: string, body: string): Promise<Reply> {
  const url = new URL(rawUrl, 'http://admin');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const parts = path.split('/').slice(1).map(decodeURIComponent);
  const only = (allowed: string, run: () => Reply | Promise<Reply>): Reply | Promise<Reply> =>
    method === allowed || (allowed === 'GET' && method === 'HEAD') ? run() : { status: 405, body: { error: 'method_not_allowed', message: `${path} takes ${allowed}` }, headers: { allow: allowed } };
  switch (path) {
    case '/':
      return only('GET', () => ({ status: 200, body: { endpoints: ENDPOINTS } }));
    case '/status':
      return only('GET', async () => ({ status: 200, body: await status(host) }));
    case '/routes':
      return only('GET', () => ({ status: 200, body: routes(host) }));
    case '/upstreams':
      return only('GET', () => ({ status: 200, body: upstreams(host) }));
    case '/certificates':
      return only('GET', async () => {
        let inventory: Awaited<ReturnType<AdminHost['certificateInventory']>>;
        try {
          inventory = await host.certificateInventory();
        } catch (err) {
          return unavailable(`no worker told its listeners' certificates: ${(err as Error).message}`);
        }
        return { status: 200, body: certificatesView(inventory.served, inventory.pending) };
      });
    case '/metrics':
      return only('GET', async () => {
        if (host.fleet !== undefined) {
          if (host.runtime.config.admin?.metrics !== true) return notFound('metrics are off (admin.metrics: false)');
          return { status: 200, body: await host.fleet.metricsText(), contentType: PROMETHEUS_TEXT };
        }
        const m = host.metrics;
        if (m === null) return notFound('metrics are off (admin.metrics: false)');
        return { status: 200, body: await m.text(), contentType: m.contentType };
      });
    case '/reopen-logs':
      return only('POST', async () => {
        const { reopened, workers } = await host.reopenLogs();
        const missed = workers?.filter((w) => w.error !== undefined) ?? [];
        if (missed.length > 0) return unavailable(`worker ${missed.map((w) => `${w.id} (${w.error})`).join(', ')} did not reopen its log files: retry`, { reopened, workers });
        if (reopened.length === 0) return notFound('usher writes its process log and access log to stdout (no log.access_log_file): there are no log files to reopen');
        return { status: 200, body: workers === undefined ? { reopened } : { reopened, workers } };
      });
    case '/config/plan':
      return only('POST', () => plan(host, body, url.searchParams.get('file')));
    case '/config/apply':
      return only('POST', () => apply(host, body, url.searchParams.get('file')));
    case '/cache/purge':
      return only('POST', async () => purgeCache(host, body));
  }
  // /upstreams/NAME/servers/ID/(drain|enable|weight)
  if (parts.length === 5 && parts[0] === 'upstreams' && parts[2] === 'servers') {
    const [, name, , id, op] = parts as [string, string, string, string, string];
    const cluster = host.runtime.clusters.get(name);
    if (cluster === undefined) return notFound(`no upstream named ${JSON.stringify(name)}`);
    const e = findServer(cluster, id);
    if (e === undefined) return notFound(`upstream ${JSON.stringify(name)} has no server ${JSON.stringify(id)} (servers: ${cluster.endpoints.map((x) => x.id).join(', ')})`);
    switch (op) {
      case 'drain':
      case 'enable':
        return only('POST', () => {
          cluster.setDrained(e, op === 'drain');
          host.fleet?.serverChanged(name, e.id, { drained: op === 'drain' });
          host.logger.info({ upstream: name, server: e.id }, op === 'drain' ? 'admin: server drained' : 'admin: server enabled');
          return { status: 200, body: serverView(cluster, e) };
        });
      case 'weight':
        return only('PUT', () => {
          let weight: unknown;
          try {
            weight = (JSON.parse(body) as { weight?: unknown }).weight;
          } catch {
            return bad('expected a JSON body like {"weight": 5} (or {"weight": null} for the configured weight)');
          }
          if (weight !== null && !(Number.isInteger(weight) && (weight as number) >= 1 && (weight as number) <= 1000)) {
            return bad(`expected "weight" to be an integer from 1 to 1000, or null, got ${JSON.stringify(weight)}`);
          }
          cluster.setWeight(e, weight as number | null);
          host.fleet?.serverChanged(name, e.id, { weight: weight as number | null });
          host.logger.info({ upstream: name, server: e.id, weight }, 'admin: server weight set');
          return { status: 200, body: serverView(cluster, e) };
        });
    }
  }
  return notFound(`no admin endpoint ${method} ${path}; GET / lists them`);
}

const ENDPOINTS = [
  'GET / (a browser, Accept: text/html: the live dashboard)',
  'GET /events',
  'GET /status',
  'GET /routes',
  'GET /upstreams',
  'GET /certificates',
  'GET /metrics',
  'POST /upstreams/NAME/servers/ID/drain',
  'POST /upstreams/NAME/servers/ID/enable',
  'PUT /upstreams/NAME/servers/ID/weight',
  'POST /config/plan',
  'POST /config/apply',
  'POST /reopen-logs',
  'POST /cache/purge',
];

/**
 * {"url"|"prefix"|"tag": ..., "store"?: NAME}: removes the stored responses it names, in every
 * store or the one named. With workers, each holds its own stores: every serving worker purges,
 * and the counts are summed (with each worker's in `workers`).
 */
async function purgeCache(host: AdminHost, body: string): Promise<Reply> {
  let req: PurgeRequest;
  try {
    req = JSON.parse(body) as PurgeRequest;
  } catch {
    req = null as unknown as PurgeRequest;
  }
  if (typeof req !== 'object' || req === null || Array.isArray(req)) return bad('expected a JSON body like {"url": "https://example.com/a"}, {"prefix": "https://example.com/blog/"} or {"tag": "product-42"}, with "store" to name one store');
  const what = { url: req.url, prefix: req.prefix, tag: req.tag, store: req.store };
  if (host.fleet === undefined) {
    const r = await purgeShared(host.runtime.caches, req);
    if (!r.ok) return r.status === 404 ? notFound(r.message) : bad(r.message);
    host.logger.info({ ...what, purged: r.purged }, 'admin: cache purged');
    return { status: 200, body: { purged: r.purged, stores: r.stores } };
  }
  const each = await host.fleet.purge(req);
  if (each.length === 0) return unavailable('no worker is serving (they are starting or being replaced): nothing was purged; retry');
  // The workers share the config: a request one refuses, all refuse.
  for (const w of each) if ('result' in w && !w.result.ok) return w.result.status === 404 ? notFound(w.result.message) : bad(w.result.message);
  type Each = { id: number; purged: number; stores: Record<string, number> } | { id: number; error: string };
  const workers = each.map((w): Each => ('error' in w ? { id: w.id, error: w.error } : w.result.ok ? { id: w.id, purged: w.result.purged, stores: w.result.stores } : { id: w.id, error: w.result.message }));
  let purged = 0;
  const stores: Record<string, number> = {};
  for (const w of workers) {
    if (!('purged' in w)) continue;
    purged += w.purged;
    for (const [name, n] of Object.entries(w.stores)) stores[name] = (stores[name] ?? 0) + n;
  }
  const missed = workers.filter((w) => 'error' in w);
  if (missed.length > 0) {
    host.logger.warn({ ...what, purged, workers }, 'admin: cache purge did not reach every worker');
    return unavailable(`worker ${missed.map((w) => w.id).join(', ')} did not answer: its stores were not purged; retry`, { purged, stores, workers });
  }
  host.logger.info({ ...what, purged, workers: workers.length }, 'admin: cache purged');
  return { status: 200, body: { purged, stores, workers } };
}

/** A server by its id (its URL, URL-encoded in the path) or its host:port. */
function findServer(cluster: Cluster, id: string): Endpoint | undefined {
  return cluster.endpoints.find((e) => e.id === id || e.authority === id);
}

const hashes = new WeakMap<UsherConfig, string>();

/** sha256 of the normalised config (the file name aside): equal configs, equal hashes. Computed once per config. */
export function configHash(config: UsherConfig): string {
  let h = hashes.get(config);
  if (h === undefined) {
    const { file: _file, ...rest } = config;
    hashes.set(config, (h = createHash('sha256').update(JSON.stringify(rest)).digest('hex')));
  }
  return h;
}

const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

export async function status(host: AdminHost): Promise<unknown> {
  const config = host.runtime.config;
  const last = [...host.reloads].reverse().find((r) => r.result === 'success');
  // With worker processes: each one's state, and the totals over those that answered.
  const workers = host.fleet === undefined ? undefined : await host.fleet.views();
  const sum = (f: (w: WorkerView) => number | null) => workers!.reduce((n, w) => n + (f(w) ?? 0), 0);
  return {
    version: VERSION,
    node: process.version,
    pid: process.pid,
    started_at: new Date(host.startedAt).toISOString(),
    uptime_seconds: Math.round((Date.now() - host.startedAt) / 1000),
    config: { source: config.file, hash: configHash(config), loaded_at: last?.at ?? new Date(host.startedAt).toISOString(), routes: config.routes.length, upstreams: Object.keys(config.upstreams).length },
    listeners: host.listenerInfo(),
    inflight: workers === undefined ? host.inflight : sum((w) => w.inflight),
    requests: workers === undefined ? host.stats.requests : sum((w) => w.requests),
    connections: workers === undefined ? host.stats.connections : sum((w) => w.connections),
    metrics: workers === undefined ? host.metrics !== null : config.admin?.metrics === true,
    // With workers the workers write the access log and export the spans: their counts, summed (the primary's own are 0).
    access_log: host.accessLog === null ? null : { format: host.accessLog.settings.format, file: host.accessLog.settings.file ?? 'stdout', ...(workers === undefined ? host.accessLog.counts : sumCounts(workers.map((w) => w.access_log), ['lines', 'dropped', 'errors', 'sampled_out'])) },
    tracing: host.tracer === null ? null : { endpoint: host.tracer.config.endpoint, sample_ratio: host.tracer.config.sample_ratio, spans: workers === undefined ? host.tracer.counts : sumCounts(workers.map((w) => w.tracing), ['exported', 'dropped', 'failed', 'retried', 'queued']) },
    reloads: host.reloads,
    ...(workers === undefined ? {} : { workers_mechanism: host.fleet?.mechanism, workers }),
  };
}

/** The sum of each of `keys` over the workers that answered. */
function sumCounts<K extends string>(each: readonly (Readonly<Record<K, number>> | null)[], keys: readonly K[]): Record<K, number> {
  const out = Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
  for (const c of each) if (c !== null) for (const k of keys) out[k] += c[k];
  return out;
}

function routes(host: AdminHost): unknown {
  const m = host.metrics;
  return {
    routes: host.runtime.routes.map((r) => {
      const c = r.config;
      const action = c.upstream !== undefined ? 'upstream' : c.respond !== undefined ? 'respond' : c.split !== undefined ? 'split' : c.redirect !== undefined ? 'redirect' : 'other';
      return {
        name: r.name,
        index: r.index,
        source: `${r.source.file}:${r.source.line}:${r.source.column}`,
        match: c.match,
        action,
        upstream: c.upstream ?? null,
        split: c.split ?? null,
        filters: r.filters.map((f) => f.name),
        counters: m === null ? null : m.routeCounts(r),
      };
    }),
  };
}

export function upstreams(host: AdminHost): unknown {
  return {
    upstreams: [...host.runtime.clusters.values()].map((c) => ({
      name: c.name,
      balance: c.config.balance,
      panic_threshold: c.config.panic_threshold,
      active_checks: c.config.health_check !== null,
      outlier_detection: c.config.outlier_detection !== null,
      servers: c.endpoints.map((e) => serverView(c, e)),
    })),
  };
}

/** One server's state: health verdict and why, last active check, ejections, in-flight, weight, priority group. */
function serverView(c: Cluster, e: Endpoint): unknown {
  const h = e.health;
  const verdict = e.drained ? 'drained' : !h.activeUp ? 'down' : h.ejected ? 'ejected' : 'up';
  const groups = [...new Set(c.endpoints.map((x) => (x.server.backup ? Number.MAX_SAFE_INTEGER : x.server.priority)))].sort((a, b) => a - b);
  const key = e.server.backup ? Number.MAX_SAFE_INTEGER : e.server.priority;
  return {
    id: e.id,
    address: e.authority,
    verdict,
    healthy: e.healthyNow(),
    drained: e.drained,
    active: c.config.health_check === null ? null : h.activeUp ? 'up' : 'down',
    last_check: h.lastCheck === null ? null : { at: new Date(h.lastCheck.at).toISOString(), ok: h.lastCheck.ok, detail: h.lastCheck.detail, latency_ms: h.lastCheck.latencyMs === null ? null : Math.round(h.lastCheck.latencyMs * 1000) / 1000 },
    ejected: h.ejected,
    ejected_until: h.ejected ? new Date(h.ejectedUntil).toISOString() : null,
    ejections: h.ejections,
    reason: h.reason,
    changed_at: new Date(h.changedAt).toISOString(),
    inflight: e.inflight,
    weight: { configured: e.configuredWeight, effective: e.weight, overridden: e.baseWeight !== e.configuredWeight },
    slow_start: e.slowStart.active,
    priority: e.server.priority,
    backup: e.server.backup,
    group: groups.indexOf(key),
  };
}

interface Loaded {
  config?: UsherConfig;
  reply?: Reply;
}

function issueView(i: ConfigIssue): unknown {
  return { file: i.file, line: i.line ?? null, column: i.column ?? null, path: i.path, message: i.message, hint: i.hint ?? null, text: formatIssue(i) };
}

/** The candidate: YAML or JSON text, named `file` (default: the running config's file, whose directory relative paths resolve against). */
/** Off the serving thread, as every config usher serves is loaded (src/config/load-off-thread.ts says why). */
async function load(host: AdminHost, body: string, file: string | null): Promise<Loaded> {
  if (body.trim() === '') return { reply: bad('expected the candidate config (YAML or JSON) as the request body') };
  const name = file ?? host.runtime.config.file;
  const result = await loadConfigTextOffThread(body, name);
  if (!result.ok) {
    return { reply: { status: 422, body: { ok: false, file: name, errors: result.errors.map(issueView), warnings: result.warnings.map(issueView) } } };
  }
  return { config: result.config };
}

async function plan(host: AdminHost, body: string, file: string | null): Promise<Reply> {
  const { config, reply } = await load(host, body, file);
  if (config === undefined) return reply!;
  return { status: 200, body: { ok: true, file: config.file, hash: configHash(config), changes: planConfig(host.runtime.config, config) } };
}

async function apply(host: AdminHost, body: string, file: string | null): Promise<Reply> {
  const { config, reply } = await load(host, body, file);
  if (config === undefined) {
    const errors = (reply!.body as { errors?: { text: string }[] }).errors;
    if (errors !== undefined) host.reloadRejected('admin', file ?? host.runtime.config.file, errors.map((e) => e.text));
    return reply!;
  }
  const changes = planConfig(host.runtime.config, config);
  try {
    await host.reload(config, 'admin');
  } catch (err) {
    return { status: 409, body: { ok: false, file: config.file, errors: [{ text: `the config could not be applied: ${(err as Error).message}; still serving the previous one` }] } };
  }
  return { status: 200, body: { ok: true, file: config.file, hash: configHash(config), changes } };
}
