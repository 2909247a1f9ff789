// Runs the OWASP CRS's own regression tests (the ftw YAML files of a CRS source checkout: never
// committed here, the operator points at them) against a WAF and reports how many pass (issue 14).
//
//   node bench/waf/crs-regression.js --tests ~/src/coreruleset/tests/regression/tests [--target T]
//       T is modsecurity (the default): starts nginx + ModSecurity + the installed CRS set up as
//       the CRS's tests assume (paranoia level 4, DetectionOnly, the tx variables their README
//       names); usher: starts usher in this process with the same CRS and the same setup
//       (waf.mode detection_only, the tx variables as waf.rules), its access log in a temp file;
//       both: the two at once, each count and the tests one passes and the other fails.
//       Needs npm run build. --crs DIR: the CRS (default /usr/share/modsecurity-crs).
//   node bench/waf/crs-regression.js --tests DIR --url http://127.0.0.1:8080 --log FILE --log-format F
//       any running target: F is modsec-audit (a ModSecurity JSON audit log, SecAuditEngine On)
//       or usher-access (usher's JSON access log, rule ids in waf_rules)
//   options: --filter TEXT (only tests whose file or title contains it), --json OUT (every
//       result), --verbose (each failure as it happens), --paranoia N, --timeout-ms N
//
// Each test's stages are sent in order, one at a time. After each request a marker request
// (GET /?crs-regression-marker=<uuid>) follows, and the target's log is read up to the marker's
// line: what came before it is the test request's. A stage passes when every check it names
// holds: status (one or a list), log_contains / no_log_contains (regexes over `[id "N"]` for
// each matched rule, as they would read over ModSecurity's error log), expect_error (no HTTP
// answer). The ftw "magic": data given as a list is joined with CRLF; unless stop_magic, a body
// gets Content-Type: application/x-www-form-urlencoded and Content-Length when the test sets
// none, and the request Connection: close when the test sets no Connection. (ftw also
// re-encodes a urlencoded body that is not encoded yet; not done here: ARGS are the same.)
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import YAML from 'yaml';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const { values } = parseArgs({
  options: {
    tests: { type: 'string' },
    url: { type: 'string' },
    log: { type: 'string' },
    'log-format': { type: 'string', default: 'modsec-audit' },
    paranoia: { type: 'string', default: '4' },
    target: { type: 'string', default: 'modsecurity' },
    crs: { type: 'string', default: '/usr/share/modsecurity-crs' },
    filter: { type: 'string' },
    json: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    'timeout-ms': { type: 'string', default: '5000' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help || !values.tests) {
  console.error(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\nimport ')[0].replace(/^\/\/ ?/gm, ''));
  process.exit(values.help ? 0 : 2);
}
const TIMEOUT_MS = Number(values['timeout-ms']);
const TARGETS = { modsecurity: ['modsecurity'], usher: ['usher'], both: ['modsecurity', 'usher'] }[values.target];
if (TARGETS === undefined) {
  console.error(`crs-regression: --target is usher, modsecurity or both, not ${values.target}`);
  process.exit(2);
}
// What tests/regression/README.md and tests/docker-compose.yml of CRS 3.3 set up.
const TEST_TX = { crs_validate_utf8_encoding: 1, arg_name_length: 100, arg_length: 400, combined_file_sizes: 65535 };

/** Every test of every enabled YAML file under `dir`, with its file; disabled files counted apart. */
function loadTests(dir) {
  const tests = [];
  let disabled = 0;
  const walk = (d) => {
    for (const name of fs.readdirSync(d).sort()) {
      const file = path.join(d, name);
      if (fs.statSync(file).isDirectory()) walk(file);
      else if (name.endsWith('.yaml') || name.endsWith('.yml')) {
        const doc = YAML.parse(fs.readFileSync(file, 'utf8'));
        const list = doc?.tests ?? [];
        if (doc?.meta?.enabled === false) {
          disabled += list.length;
          continue;
        }
        for (const t of list) tests.push({ file: path.relative(dir, file), title: String(t.test_title), stages: (t.stages ?? []).map((s) => s.stage) });
      }
    }
  };
  walk(dir);
  return { tests, disabled };
}

/** A string as bytes: latin1 when every character fits (the YAML's \xNN escapes mean bytes), else UTF-8. */
function bytes(s) {
  // eslint-disable-next-line no-control-regex
  return Buffer.from(s, /^[\u0000-\u00ff]*$/.test(s) ? 'latin1' : 'utf8');
}

/** The request bytes of one stage input, as ftw builds them. */
function buildRequest(input) {
  if (input.encoded_request) return Buffer.from(input.encoded_request, 'base64');
  if (input.raw_request) return bytes(Array.isArray(input.raw_request) ? input.raw_request.join('\r\n') : input.raw_request);
  const magic = input.stop_magic !== true;
  const headers = Object.entries(input.headers ?? {}).map(([k, v]) => [k, String(v)]);
  const has = (name) => headers.some(([k]) => k.toLowerCase() === name);
  const data = input.data === undefined || input.data === null ? '' : Array.isArray(input.data) ? input.data.join('\r\n') : String(input.data);
  const body = bytes(data);
  if (magic && body.length > 0 && !has('content-type')) headers.push(['Content-Type', 'application/x-www-form-urlencoded']);
  if (magic && body.length > 0 && !has('content-length')) headers.push(['Content-Length', String(body.length)]);
  if (magic && !has('connection')) headers.push(['Connection', 'close']);
  const version = input.version === undefined ? 'HTTP/1.1' : String(input.version);
  const line = `${input.method ?? 'GET'} ${input.uri ?? '/'}${version === '' ? '' : ` ${version}`}`;
  return Buffer.concat([bytes(`${line}\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`), body]);
}

/** Sends `request`, reads one answer (by Content-Length, chunked end, or close); status 0 when none came. */
function exchange(port, host, request) {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    let buf = Buffer.alloc(0);
    let settled = false;
    const done = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const text = buf.toString('latin1');
      const m = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(text);
      resolve(m ? { status: Number(m[1]) } : { status: 0, error: error ?? 'no HTTP answer' });
    };
    const timer = setTimeout(() => done('timeout'), TIMEOUT_MS);
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const text = buf.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = text.slice(0, end);
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (length && buf.length - end - 4 >= Number(length[1])) done();
      else if (/\r\ntransfer-encoding: *chunked/i.test(head) && text.endsWith('0\r\n\r\n')) done();
      else if (/^HTTP\/\d(?:\.\d)? (?:1\d\d|204|304)/.test(head)) done();
    });
    socket.on('end', () => done());
    socket.on('close', () => done());
    socket.on('error', (err) => done(err.code ?? err.message));
  });
}

/** Reads a JSON-lines log as it grows; `until(marker)` returns the lines before the marker's. */
class LogTail {
  constructor(file, rulesOf) {
    Object.assign(this, { file, rulesOf, offset: fs.existsSync(file) ? fs.statSync(file).size : 0, partial: '', pending: [] });
  }

  readNew() {
    if (!fs.existsSync(this.file)) return;
    const size = fs.statSync(this.file).size;
    if (size <= this.offset) return;
    const fd = fs.openSync(this.file, 'r');
    const chunk = Buffer.alloc(size - this.offset);
    fs.readSync(fd, chunk, 0, chunk.length, this.offset);
    fs.closeSync(fd);
    this.offset = size;
    const lines = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    this.pending.push(...lines.filter((l) => l.trim() !== ''));
  }

  async until(marker) {
    const deadline = Date.now() + 10_000;
    for (;;) {
      this.readNew();
      const i = this.pending.findIndex((l) => l.includes(marker));
      if (i >= 0) {
        const before = this.pending.slice(0, i);
        this.pending = this.pending.slice(i + 1);
        return before.flatMap((l) => {
          try {
            return this.rulesOf(JSON.parse(l));
          } catch {
            return []; // not a JSON record (a target's other output in the same file)
          }
        });
      }
      if (Date.now() > deadline) throw new Error(`the marker ${marker} never reached ${this.file}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

const RULES_OF = {
  'modsec-audit': (rec) => (rec.transaction?.messages ?? []).map((m) => String(m.details?.ruleId)),
  'usher-access': (rec) => (rec.waf_rules ?? rec.waf?.rules ?? []).map((r) => String(typeof r === 'object' ? r.id : r)),
};

function check(output, response, rules) {
  const log = rules.map((id) => `[id "${id}"]`).join(' ');
  const failures = [];
  if (output.expect_error) {
    if (response.status !== 0) failures.push(`expected no HTTP answer, got ${response.status}`);
    return failures;
  }
  if (output.status !== undefined) {
    const allowed = [output.status].flat().map(Number);
    if (!allowed.includes(response.status)) failures.push(`status ${response.status}${response.error ? ` (${response.error})` : ''}, expected ${allowed.join(' or ')}`);
  }
  if (output.log_contains !== undefined && !new RegExp(output.log_contains).test(log)) failures.push(`log lacks /${output.log_contains}/ (rules: ${rules.join(',') || 'none'})`);
  if (output.no_log_contains !== undefined && new RegExp(output.no_log_contains).test(log)) failures.push(`log has /${output.no_log_contains}/`);
  return failures;
}

/** A backend that answers anything, as the CRS's own setup used httpbin. */
async function startBackend() {
  const backend = http.createServer({ insecureHTTPParser: true }, (req, res) => {
    req.resume();
    req.on('end', () => res.end('ok\n'));
  });
  await new Promise((r) => backend.listen(0, '127.0.0.1', r));
  return backend;
}

async function importBuilt(file) {
  try {
    return await import(path.join(REPO, 'dist', file));
  } catch (err) {
    throw new Error(`run npm run build first (${err.code ?? err.message})`);
  }
}

async function startReference(backend) {
  const modsec = await importBuilt(path.join('test', 'helpers', 'modsecurity-crs.js'));
  const ref = await modsec.startModSecurity({
    upstreamPort: backend.address().port,
    paranoia: Number(values.paranoia),
    detectionOnly: true,
    responseBodyAccess: true,
    tx: TEST_TX,
  });
  return { name: 'modsecurity', host: '127.0.0.1', port: ref.port, log: ref.auditLogFile, format: 'modsec-audit', stop: () => ref.stop() };
}

/** usher in this process, with the installed CRS set up as startReference sets up ModSecurity. */
async function startUsherTarget(backend) {
  const [{ loadConfigObject }, { Usher }] = await Promise.all([importBuilt(path.join('src', 'config', 'index.js')), importBuilt(path.join('src', 'server', 'usher.js'))]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usher-crs-regression-'));
  const log = path.join(dir, 'access.log');
  const tx = Object.entries(TEST_TX).map(([k, v]) => `setvar:tx.${k}=${v}`);
  const loaded = loadConfigObject(
    {
      listeners: [{ address: '127.0.0.1:0' }],
      log: { level: 'error', access_log: true },
      upstreams: { origin: { servers: [`http://127.0.0.1:${backend.address().port}`] } },
      routes: [{ upstream: 'origin' }],
      waf: {
        crs: values.crs,
        paranoia_level: Number(values.paranoia),
        mode: 'detection_only',
        // the first requests after a load run cold, and the machine may be shared
        time_budget: '10s',
        // read after the CRS: phase 1 ends with them, before the phase-2 rules that read them
        rules: [`SecAction "id:900150,phase:1,nolog,pass,t:none,${tx.join(',')}"`],
      },
    },
    '<crs-regression>',
  );
  if (!loaded.ok) throw new Error(`usher config: ${JSON.stringify(loaded.errors)}`);
  const out = fs.createWriteStream(log);
  const usher = new Usher(loaded.config, { accessLogDestination: out });
  await usher.start();
  return {
    name: 'usher',
    host: '127.0.0.1',
    port: usher.addresses()[0].port,
    log,
    format: 'usher-access',
    stop: async () => {
      await usher.close(1000);
      await new Promise((r) => out.end(r));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every test against one target, one stage at a time; the results in test order. */
async function runTests(target, tests) {
  const rulesOf = RULES_OF[target.format];
  if (!rulesOf) throw new Error(`unknown --log-format ${target.format} (known: ${Object.keys(RULES_OF).join(', ')})`);
  const tail = new LogTail(target.log, rulesOf);
  const results = [];
  for (const [n, t] of tests.entries()) {
    const failures = [];
    for (const stage of t.stages) {
      const response = await exchange(target.port, target.host, buildRequest(stage.input ?? {}));
      const marker = randomUUID();
      const markerRequest = `GET /?crs-regression-marker=${marker} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: ModSecurity CRS 3 Tests\r\nAccept: */*\r\nConnection: close\r\n\r\n`;
      const m = await exchange(target.port, target.host, Buffer.from(markerRequest));
      if (m.status === 0) throw new Error(`${target.name}: the marker request got no answer (${m.error}): is the target up?`);
      const rules = [...new Set(await tail.until(marker))];
      failures.push(...check(stage.output ?? {}, response, rules));
    }
    results.push({ file: t.file, title: t.title, pass: failures.length === 0, failures });
    if (values.verbose && failures.length) console.error(`FAIL[${target.name}] ${t.title} (${t.file}): ${failures.join('; ')}`);
    if ((n + 1) % 200 === 0) console.error(`${target.name}: ${n + 1}/${tests.length} ...`);
  }
  return results;
}

function summary(name, results, disabled, seconds) {
  const passed = results.filter((r) => r.pass).length;
  const byFile = {};
  for (const r of results) {
    const f = (byFile[r.file.split(path.sep)[0]] ??= { passed: 0, total: 0 });
    f.total++;
    if (r.pass) f.passed++;
  }
  console.log(`CRS regression tests, ${name}: ${passed} of ${results.length} passed (${((100 * passed) / Math.max(1, results.length)).toFixed(1)}%)${disabled ? `; ${disabled} more in disabled files, not run` : ''}; ${seconds} s`);
  for (const [dir, f] of Object.entries(byFile)) console.log(`  ${dir.padEnd(44)} ${String(f.passed).padStart(5)} / ${f.total}`);
  const failed = results.filter((r) => !r.pass);
  if (failed.length) console.log(`failed (${name}):\n${failed.map((r) => `  ${r.title}: ${r.failures.join('; ')}`).join('\n')}`);
  return passed;
}

async function main() {
  const { tests: all, disabled } = loadTests(values.tests);
  const tests = values.filter ? all.filter((t) => t.file.includes(values.filter) || t.title.includes(values.filter)) : all;
  const targets = [];
  let backend;
  try {
    if (values.url) {
      if (!values.log) throw new Error('--url needs --log (the file the target logs matched rules to)');
      const u = new URL(values.url);
      targets.push({ name: values.url, host: u.hostname, port: Number(u.port || 80), log: values.log, format: values['log-format'], stop: async () => {} });
    } else {
      backend = await startBackend();
      for (const name of TARGETS) targets.push(await (name === 'usher' ? startUsherTarget(backend) : startReference(backend)));
    }
    const started = Date.now();
    // the targets at once (each its own requests in order): one run's wall time for both
    const runs = await Promise.all(targets.map((t) => runTests(t, tests)));
    const seconds = Math.round((Date.now() - started) / 1000);
    const counts = {};
    for (const [i, t] of targets.entries()) counts[t.name] = summary(t.name, runs[i], disabled, seconds);
    if (targets.length === 2) {
      const [a, b] = runs;
      const only = (x, y) => x.filter((r, i) => r.pass && !y[i].pass).map((r) => `  ${r.title} (${r.file})`);
      const aOnly = only(a, b);
      const bOnly = only(b, a);
      console.log(`\n${targets[0].name}: ${counts[targets[0].name]}, ${targets[1].name}: ${counts[targets[1].name]} of ${tests.length}`);
      if (aOnly.length) console.log(`passed by ${targets[0].name} only (${aOnly.length}):\n${aOnly.join('\n')}`);
      if (bOnly.length) console.log(`passed by ${targets[1].name} only (${bOnly.length}):\n${bOnly.join('\n')}`);
    }
    if (values.json) {
      const out = { total: tests.length, disabled, targets: Object.fromEntries(targets.map((t, i) => [t.name, { passed: counts[t.name], results: runs[i] }])) };
      fs.writeFileSync(values.json, JSON.stringify(out, null, 2));
    }
  } finally {
    for (const t of targets) await t.stop();
    if (backend) await new Promise((r) => backend.close(r));
  }
  return 0;
}

main().then(
  (code) => (process.exitCode = code),
  (err) => {
    console.error(`crs-regression: ${err.message}`);
    process.exitCode = 1;
  },
);
