import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatIssues, loadConfigFile, loadConfigObject } from '../config/index.js';
import type { LoadResult, UsherConfig } from '../config/types.js';
import { demoConfig, startDemoUpstreams, type DemoPool } from '../demo/upstreams.js';
import { Usher } from '../server/usher.js';
import { actionSummary, explain } from './explain.js';
import { watchConfig } from './watch.js';

/** Exit codes (documented in the README and `usher --help`). */
export const EXIT = Object.freeze({ ok: 0, invalidConfig: 1, usage: 2, cannotStart: 3, internal: 70 });

const HELP = `usher — a reverse proxy and load balancer

Usage:
  usher serve [--config FILE]     start serving (without --config: a built-in demo on 127.0.0.1:8080)
  usher validate --config FILE    check a config file; prints every problem with file:line:col
  usher explain --config FILE METHOD URL [-H "name: value"]... [--client-ip IP] [--json]
                                  which route takes this request, why, and what goes upstream
  usher --help                    this text
  usher --version                 the version

Options:
  -c, --config FILE   YAML (.yaml/.yml), JSON (.json) or JavaScript (.js/.mjs, default export)
  --listen ADDRESS    with the built-in demo only: listen on ADDRESS instead of 127.0.0.1:8080

Signals (serve):
  SIGTERM, SIGINT     graceful shutdown: stop accepting, finish in-flight requests, exit
  SIGHUP              reload the config file (so does saving it); an invalid file keeps the old config

Exit codes:
  0   success (validate: the config is valid)
  1   the config is invalid (validate, or serve at start-up)
  2   usage error (unknown command or option)
  3   usher could not start (e.g. the address is in use)
  70  internal error
`;

export async function main(argv: string[]): Promise<number> {
  // explain takes METHOD URL and repeated -H: it parses its own arguments.
  if (argv[0] === 'explain') return explain(argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        listen: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    process.stderr.write(`usher: ${(err as Error).message}\n\n${HELP}`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  const command = positionals[0];
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(HELP);
    return values.help || command === 'help' ? EXIT.ok : EXIT.usage;
  }
  if (positionals.length > 1) {
    process.stderr.write(`usher: unexpected argument "${positionals[1]}"\n\n${HELP}`);
    return EXIT.usage;
  }
  switch (command) {
    case 'serve':
      if (values.listen !== undefined && values.config !== undefined) {
        process.stderr.write('usher serve: --listen applies to the built-in demo; set listeners in the config file instead\n');
        return EXIT.usage;
      }
      return serve(values.config, values.listen);
    case 'validate':
      if (values.config === undefined) {
        process.stderr.write('usher validate: --config FILE is required\n');
        return EXIT.usage;
      }
      return validate(values.config);
    default:
      process.stderr.write(`usher: unknown command "${command}"\n\n${HELP}`);
      return EXIT.usage;
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return `usher ${pkg.version} (node ${process.version})`;
}

function report(result: LoadResult): void {
  const issues = result.ok ? result.warnings : [...result.errors, ...result.warnings];
  if (issues.length > 0) process.stderr.write(`${formatIssues(issues)}\n`);
}

async function validate(file: string): Promise<number> {
  const result = await loadConfigFile(file);
  report(result);
  if (!result.ok) {
    process.stderr.write(`${file}: invalid (${result.errors.length} error${result.errors.length === 1 ? '' : 's'})\n`);
    return EXIT.invalidConfig;
  }
  process.stdout.write(`${file}: valid (${result.config.routes.length} routes, ${Object.keys(result.config.upstreams).length} upstreams)\n`);
  return EXIT.ok;
}

async function serve(file: string | undefined, listen?: string): Promise<number> {
  let demo: DemoPool | undefined;
  let result: LoadResult;
  if (file === undefined) {
    demo = await startDemoUpstreams(3);
    result = loadConfigObject(demoConfig(demo.urls, listen), '<built-in demo>');
  } else {
    result = await loadConfigFile(file);
  }
  report(result);
  if (!result.ok) {
    await demo?.close();
    return EXIT.invalidConfig;
  }
  const usher = new Usher(result.config);
  try {
    await usher.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    const where = e.address !== undefined ? `${e.address}:${e.port}` : '';
    const why = e.code === 'EADDRINUSE' ? `address ${where} is already in use` : e.code === 'EACCES' ? `no permission to listen on ${where}` : e.message;
    process.stderr.write(`usher: cannot start: ${why}\n`);
    await demo?.close();
    return EXIT.cannotStart;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const watch = file === undefined ? undefined : watchConfig(file, () => void reload());
    // Reloads run one after another, so the file read last is the config applied last.
    let reloading: Promise<void> = Promise.resolve();
    const reload = (): Promise<void> => (reloading = reloading.then(reloadNow));
    const reloadNow = async () => {
      if (stopping) return;
      const next = await loadConfigFile(file!);
      if (!next.ok) {
        usher.logger.error({ file, errors: formatIssues(next.errors).split('\n') }, 'reload rejected: the new config is invalid; still serving the previous one');
        return;
      }
      try {
        await usher.reload(next.config);
      } catch (err) {
        usher.logger.error({ err }, 'reload failed; still serving the previous config');
      }
    };
    const stop = (signal: string) => {
      if (stopping) {
        usher.logger.warn({ signal }, 'second signal: exiting now');
        process.exit(EXIT.ok);
      }
      stopping = true;
      usher.logger.info({ signal, inflight: usher.inflight }, 'shutting down');
      watch?.close();
      void usher
        .close()
        .then(() => demo?.close())
        .then(() => {
          process.off('SIGHUP', onHup);
          resolve(EXIT.ok);
        });
    };
    const onHup = () => {
      if (file === undefined) usher.logger.info('SIGHUP: the built-in demo config has no file to reload');
      else {
        watch?.sync();
        void reload();
      }
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', onHup);
    // Only now: the banner tells supervisors (and tests) that usher is ready, signals included;
    // a SIGHUP that arrived before its handler would kill the process.
    printBanner(usher, result.config, demo !== undefined);
  });
}

function printBanner(usher: Usher, config: UsherConfig, demo: boolean): void {
  const lines: string[] = [];
  lines.push(demo ? 'usher: serving the built-in demo (no --config given)' : `usher: serving ${config.file}`);
  for (const a of usher.addresses()) lines.push(`  listening on ${a.tls ? 'https' : 'http'}://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`);
  for (const r of config.routes) {
    const m = r.match;
    const when = `${m.hosts.length ? m.hosts.join(',') : '*'}${m.path ?? '/'}`;
    const then =
      r.upstream !== undefined
        ? `→ ${r.upstream} (${config.upstreams[r.upstream]!.servers.map((s) => s.url).join(', ')})`
        : r.respond !== undefined
          ? `→ respond ${r.respond.status}`
          : actionSummary(r);
    lines.push(`  route ${r.name}: ${when} ${then}`);
  }
  const first = usher.addresses()[0];
  if (demo && first) lines.push(`  try: curl http://${first.host}:${first.port}/   (repeat it to see the load spread)`);
  process.stderr.write(`${lines.join('\n')}\n`);
  usher.logger.info({ listeners: usher.addresses(), routes: config.routes.length, file: config.file }, 'usher started');
}
