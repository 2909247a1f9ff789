// The system (Debian) packages the tests need, and the one step that makes sure they are there.
// `npm test` and `.ci/run` run it first. A package is present when every binary the tests run
// from it is on PATH (or, for a package of data, its file exists), so it works wherever those
// binaries come from. When some are missing: as root with apt-get (a fresh CI machine), it
// installs them and says so; otherwise it stops at once and prints the command to run.
// No test is skipped for a missing package (issue 11).
//
//   node scripts/system-deps.js           check, install what is missing when allowed
//   node scripts/system-deps.js --list    print the package names, one a line
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** One line per Debian package: what the tests run from it, and which tests. */
const PACKAGES = [
  { name: 'nginx', files: ['/usr/sbin/nginx'], for: 'the reference WAF, nginx + ModSecurity (test/helpers/modsecurity-crs.ts, test/helpers/modsecurity.ts, test/integration/waf-modsecurity-reference.test.ts, waf-detect-modsecurity.test.ts)' },
  {
    name: 'libnginx-mod-http-modsecurity',
    files: ['/usr/lib/nginx/modules/ngx_http_modsecurity_module.so'],
    for: 'ModSecurity v3 (with libinjection) in nginx, the reference WAF and the detectors\' oracle (test/helpers/modsecurity-crs.ts, test/helpers/modsecurity.ts)',
  },
  { name: 'pebble', bins: ['pebble', 'pebble-challtestsrv'], for: 'ACME tests (test/integration/acme-pebble.test.ts)' },
  { name: 'curl', bins: ['curl'], for: 'HTTP/2 and TLS tests (test/integration/http2.test.ts, tls-termination.test.ts)' },
  { name: 'openssl', bins: ['openssl'], for: 'test certificates (test/helpers/certs.ts)' },
  { name: 'redis-server', bins: ['redis-server', 'redis-cli'], for: 'shared rate limits and ACME state over Redis, Redis Sentinel and Redis Cluster (test/integration/ratelimit-redis.test.ts, ratelimit-redis-ha.test.ts, acme-redis.test.ts; redis-server runs the Sentinels too, in --sentinel mode)' },
  { name: 'modsecurity-crs', files: ['/usr/share/modsecurity-crs/rules/REQUEST-901-INITIALIZATION.conf'], for: 'the OWASP Core Rule Set the WAF and its reference load (test/unit/waf-crs.test.ts, test/integration/waf.test.ts, test/helpers/modsecurity-crs.ts)' },
  { name: 'chromium', bins: ['chromium'], for: 'the dashboard in a real browser, driven by playwright-core (test/integration/dashboard-browser.test.ts)' },
  { name: 'ca-certificates', files: ['/etc/ssl/certs/ca-certificates.crt'], for: 'the system trust store curl and openssl load' },
];

function onPath(bin) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, bin);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

function present(pkg) {
  return (pkg.bins ?? []).every(onPath) && (pkg.files ?? []).every((f) => existsSync(f));
}

function run(cmd, args, env) {
  const prefix = Object.entries(env).map(([k, v]) => `${k}=${v} `).join('');
  console.log(`system-deps: $ ${prefix}${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  return r.status === 0;
}

function main() {
  if (process.argv.includes('--list')) {
    for (const p of PACKAGES) console.log(p.name);
    return 0;
  }
  const missing = PACKAGES.filter((p) => !present(p));
  if (missing.length === 0) return 0;
  const names = missing.map((p) => p.name);
  const why = missing.map((p) => `  ${p.name}: ${p.for}`).join('\n');
  const install = ['install', '-y', '--no-install-recommends', ...names];
  const root = process.getuid?.() === 0;
  const apt = onPath('apt-get');
  if (!root || !apt) {
    const command = apt
      ? `sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get ${install.join(' ')}`
      : `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get ${install.join(' ')}   (Debian names; elsewhere install what provides ${missing.flatMap((p) => p.bins ?? p.files).join(', ')})`;
    console.error(`system-deps: the tests need these system packages, missing here:\n${why}\nInstall them, then run npm test again:\n  ${command}`);
    return 1;
  }
  console.log(`system-deps: installing the Debian packages the tests need that are missing here:\n${why}`);
  if (!run('apt-get', ['update'], {}) || !run('apt-get', install, { DEBIAN_FRONTEND: 'noninteractive' })) {
    console.error('system-deps: apt-get failed (output above)');
    return 1;
  }
  const still = missing.filter((p) => !present(p));
  if (still.length > 0) {
    console.error(`system-deps: installed, but still missing: ${still.map((p) => `${p.name} (${(p.bins ?? p.files).join(', ')})`).join('; ')}`);
    return 1;
  }
  console.log(`system-deps: installed ${names.join(' ')}`);
  return 0;
}

process.exitCode = main();
