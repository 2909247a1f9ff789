// nginx + ModSecurity v3 (Debian's libnginx-mod-http-modsecurity, which links libinjection) as an
// oracle for usher's own @detectSQLi / @detectXSS (src/waf/detect, issue #14 point 3). It runs in
// its own temp prefix with a config written here: two locations, each with one rule only, so a
// 403 from /sqli is libinjection's SQLi verdict on the argument and a 403 from /xss its XSS
// verdict. nginx listens on a unix socket in that prefix: no port to pick, none to collide on.
// Used by bench/waf/detect-compare.js and test/integration/waf-detect-modsecurity.test.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MODSECURITY_MODULE = '/usr/lib/nginx/modules/ngx_http_modsecurity_module.so';
export const NGINX = '/usr/sbin/nginx';

export interface Verdict {
  sqli: boolean;
  xss: boolean;
  /** libinjection's SQLi fingerprint (from the rule's logdata, TX.0), when `sqli`. */
  fingerprint?: string;
}

export interface ModSecurityOracle {
  /** The verdicts for many values, each sent as the query argument `q`, a few requests in flight at once, in order. */
  verdicts(values: readonly string[], inFlight?: number): Promise<Verdict[]>;
  close(): Promise<void>;
}

function config(prefix: string): string {
  return `load_module ${MODSECURITY_MODULE};
daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp;
  proxy_temp_path ${prefix}/tmp;
  fastcgi_temp_path ${prefix}/tmp;
  uwsgi_temp_path ${prefix}/tmp;
  scgi_temp_path ${prefix}/tmp;
  server {
    listen unix:${prefix}/nginx.sock;
    root ${prefix}/www;
    modsecurity on;
    # A static file, not "return 200": nginx's return answers in the rewrite phase, before the
    # connector hands the request to ModSecurity.
    location /sqli {
      modsecurity_rules '
        SecRuleEngine On
        SecRule ARGS "@detectSQLi" "id:1,phase:2,deny,status:403,log,capture,logdata:%{TX.0}"
      ';
      try_files /ok.txt =404;
    }
    location /xss {
      modsecurity_rules '
        SecRuleEngine On
        SecRule ARGS "@detectXSS" "id:2,phase:2,deny,status:403,log"
      ';
      try_files /ok.txt =404;
    }
  }
}
`;
}

/** True when nginx and the ModSecurity module are installed (scripts/system-deps.js installs them). */
export function modSecurityAvailable(): boolean {
  return existsSync(NGINX) && existsSync(MODSECURITY_MODULE);
}

function get(socketPath: string, agent: Agent, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, agent, path, method: 'GET', headers: { host: 'oracle' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitFor(file: string, child: ChildProcess, log: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (existsSync(file)) return;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const errors = existsSync(log) ? readFileSync(log, 'utf8') : '';
  throw new Error(`nginx+ModSecurity did not start (exit ${child.exitCode}): ${errors.slice(-2000)}`);
}

/** Starts nginx with the ModSecurity module and the two rules; `close()` stops it and removes its prefix. */
export async function startModSecurity(): Promise<ModSecurityOracle> {
  const prefix = mkdtempSync(join(tmpdir(), 'usher-modsec-'));
  mkdirSync(join(prefix, 'www'));
  mkdirSync(join(prefix, 'tmp'));
  writeFileSync(join(prefix, 'www', 'ok.txt'), 'ok\n');
  writeFileSync(join(prefix, 'nginx.conf'), config(prefix));
  const child = spawn(NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.on('error', (err) => (stderr += String(err)));
  const socketPath = join(prefix, 'nginx.sock');
  try {
    await waitFor(socketPath, child, join(prefix, 'error.log'));
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(prefix, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const status = async (path: string): Promise<boolean> => {
    const s = await get(socketPath, agent, path);
    if (s === 403) return true;
    if (s === 200) return false;
    throw new Error(`nginx+ModSecurity answered ${s} to ${path}`);
  };
  let seq = 0;
  const verdict = async (id: number, value: string): Promise<Verdict> => {
    const q = `/${id}?q=${encodeURIComponent(value)}`;
    const [sqli, xss] = await Promise.all([status(`/sqli${q}`), status(`/xss${q}`)]);
    return { sqli, xss };
  };
  const log = join(prefix, 'error.log');
  return {
    async verdicts(values, inFlight = 4) {
      const first = seq;
      seq += values.length;
      const out: Verdict[] = new Array(values.length);
      let next = 0;
      const worker = async () => {
        while (next < values.length) {
          const i = next++;
          out[i] = await verdict(first + i, values[i]!);
        }
      };
      await Promise.all(Array.from({ length: inFlight }, worker));
      // The error log names the request (/sqli/N) and the rule's logdata: the fingerprint.
      const seen = new Map<number, string>();
      for (const m of readFileSync(log, 'utf8').matchAll(/\[data "([^"]*)"\].*?\[uri "\/sqli\/(\d+)"\]/g)) seen.set(Number(m[2]), m[1]!);
      for (let i = 0; i < out.length; i++) {
        const f = seen.get(first + i);
        if (out[i]!.sqli && f !== undefined) out[i]!.fingerprint = f;
      }
      return out;
    },
    async close() {
      agent.destroy();
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
