import { readFileSync } from 'node:fs';
import { formatIssues, loadConfigFile } from '../config/index.js';
import { loadConfigFileOffThread, loadConfigObjectOffThread } from '../config/load-off-thread.js';
import { closest } from '../config/suggest.js';
import type { LoadResult, UsherConfig } from '../config/types.js';
import { demoConfig, startDemoUpstreams, type DemoPool } from '../demo/upstreams.js';
import cluster from 'node:cluster';
import { Usher } from '../server/usher.js';
import { tuneV8ForServing } from '../server/v8-tuning.js';
import { workerCount, parseWorkers } from '../server/workers/count.js';
import { Primary } from '../server/workers/primary.js';
import { runWorker } from '../server/workers/worker.js';
import { commandHelp, commandNamed, findCommand, overview, parseCommand, UsageError } from './commands.js';
import { bashCompletion, zshCompletion } from './completion.js';
import { actionSummary, explain, pathSummary } from './explain.js';
import { watchConfig } from './watch.js';
import { purgeRemote, remote } from './remote.js';

/** Exit codes (documented in the README and `usher --help`). */
export const EXIT = Object.freeze({ ok: 0, invalidConfig: 1, usage: 2, cannotStart: 3, internal: 70 });

export async function main(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(err.text());
    return EXIT.usage;
  }
}

async function run(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === undefined) {
    process.stderr.write(overview());
    return EXIT.usage;
  }
  if (first === '--help' || first === '-h') {
    process.stdout.write(overview());
    return EXIT.ok;
  }
  if (first === '--version' || first === '-v') {
    process.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  if (first.startsWith('-')) {
    // `usher -c x.yaml validate` worked before commands had options of their own: the command
    // may still come after options.
    const at = argv.findIndex((a) => commandNamed(a) !== undefined);
    if (at > 0) return run([argv[at]!, ...argv.slice(0, at), ...argv.slice(at + 1)]);
    const meant = closest(first, ['--help', '--version']);
    throw new UsageError(undefined, `unknown option ${first}${meant !== undefined ? ` (did you mean ${meant}?)` : ''}; a command comes first, as in: usher serve --config FILE`);
  }
  const command = findCommand(first);
  const { values, positionals } = parseCommand(command, argv.slice(1));
  if (values.help === true) {
    process.stdout.write(commandHelp(command));
    return EXIT.ok;
  }
  const config = values.config as string | undefined;
  switch (command.name) {
    case 'serve': {
      tuneV8ForServing();
      // A worker process runs this same command line (node:cluster forks process.argv): it takes its config from the primary.
      if (cluster.isWorker && process.env.USHER_WORKER !== undefined) return runWorker();
      if (values.listen !== undefined && config !== undefined) {
        throw new UsageError('serve', '--listen applies to the built-in demo; set listeners in the config file instead');
      }
      let workers: 'auto' | number | undefined;
      if (values.workers !== undefined) {
        workers = parseWorkers(values.workers as string);
        if (workers === undefined) throw new UsageError('serve', `--workers takes "auto" or a number from 1 to 256, got ${JSON.stringify(values.workers)}`);
      }
      return serve(config, values.listen as string | undefined, workers);
    }
    case 'validate':
      if (config === undefined) throw new UsageError('validate', '--config FILE is required');
      return validate(config);
    case 'explain':
      return explain(values, positionals);
    case 'plan':
    case 'apply':
      if (config === undefined) throw new UsageError(command.name, '--config FILE is required');
      return remote(command.name, config, values);
    case 'purge':
      return purgeRemote(values);
    case 'completion': {
      const shell = positionals[0]!;
      if (shell !== 'bash' && shell !== 'zsh') {
        const meant = closest(shell, ['bash', 'zsh']);
        throw new UsageError('completion', `no completion for ${JSON.stringify(shell)}: bash or zsh${meant !== undefined ? ` (did you mean "${meant}"?)` : ''}`);
      }
      process.stdout.write(shell === 'bash' ? bashCompletion() : zshCompletion());
      return EXIT.ok;
    }
    default: {
      // help [COMMAND]
      const topic = positionals[0];
      process.stdout.write(topic === undefined ? overview() : commandHelp(findCommand(topic)));
      return EXIT.ok;
    }
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return `usher ${pkg.version} (node ${process.version})`;
}

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

function report(result: LoadResult): void {
  const issues = result.ok ? result.warnings : [...result.errors, ...result.warnings];
  if (issues.length > 0) process.stderr.write(`${formatIssues(issues)}\n`);
}

async function validate(file: string): Promise<number> {
  const result = await loadConfigFile(file);
  report(result);
  if (!result.ok) {
    process.stderr.write(`${file}: invalid (${count(result.errors.length, 'error')})\n`);
    return EXIT.invalidConfig;
  }
  process.stdout.write(`${file}: valid (${count(result.config.routes.length, 'route')}, ${count(Object.keys(result.config.upstreams).length, 'upstream')})\n`);
  return EXIT.ok;
}

async function serve(file: string | undefined, listen?: string, workersOption?: 'auto' | number): Promise<number> {
  let demo: DemoPool | undefined;
  let result: LoadResult;
  if (file === undefined) {
    demo = await startDemoUpstreams(3);
    result = await loadConfigObjectOffThread(demoConfig(demo.urls, listen), '<built-in demo>');
  } else {
    // Off the serving thread, as reloads are: see load-off-thread.ts for why it matters at start too.
    result = await loadConfigFileOffThread(file);
  }
  report(result);
  if (!result.ok) {
    await demo?.close();
    return EXIT.invalidConfig;
  }
  const workers = workerCount(workersOption ?? result.config.workers);
  // One process, or a primary (this one) and its workers: the reload, watch and signal handling
  // below is the same; the primary's Usher sends each reload to the workers first.
  let usher: Usher;
  let primary: Primary | undefined;
  if (workers === 1) usher = new Usher(result.config);
  else {
    const p = (primary = new Primary(workers, () => usher.logger));
    usher = new Usher(result.config, { role: 'primary', fleet: p, publish: p, logFields: { worker: 'primary' } });
  }
  try {
    await primary?.start(usher, result.config);
    await usher.start();
  } catch (err) {
    await primary?.stop(0);
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
      // Parsed and checked off the serving thread: 20k routes held it for seconds (issue #11).
      const next = await loadConfigFileOffThread(file!);
      if (!next.ok) {
        const errors = formatIssues(next.errors).split('\n');
        usher.reloadRejected('file', file!, errors);
        usher.logger.error({ file, errors }, 'reload rejected: the new config is invalid; still serving the previous one');
        return;
      }
      try {
        await usher.reload(next.config, 'file');
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
      void (primary?.stop(usher.runtime.config.timeouts.graceful_shutdown) ?? Promise.resolve())
        .then(() => usher.close())
        .then(() => demo?.close())
        .then(() => {
          process.off('SIGHUP', onHup);
          process.off('SIGUSR1', onUsr1);
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
    // nginx's USR1: reopen the log files by their paths (logrotate renamed them). A listener
    // replaces node's default for SIGUSR1 (starting the inspector), as a log-rotating server must.
    // With workers, the primary asks each of them: they write the access log.
    const onUsr1 = () =>
      void usher.reopenLogs().then(({ reopened, workers }) => {
        const missed = workers?.filter((w) => w.error !== undefined) ?? [];
        if (missed.length > 0) usher.logger.warn({ workers: missed }, 'SIGUSR1: some workers did not reopen their log files');
        else if (reopened.length === 0) usher.logger.info('SIGUSR1: no log files to reopen (the logs go to stdout)');
      });
    process.on('SIGUSR1', onUsr1);
    // Only now: the banner tells supervisors (and tests) that usher is ready, signals included;
    // a SIGHUP that arrived before its handler would kill the process.
    printBanner(usher, result.config, demo !== undefined, workers);
  });
}

function printBanner(usher: Usher, config: UsherConfig, demo: boolean, workers: number): void {
  const lines: string[] = [];
  lines.push(demo ? 'usher: serving the built-in demo (no --config given)' : `usher: serving ${config.file}`);
  if (workers > 1) lines.push(`  ${workers} worker processes (pid ${process.pid} is the primary; listeners shared by ${usher.fleet?.mechanism === 'reuse_port' ? 'SO_REUSEPORT' : 'node:cluster round-robin'})`);
  for (const a of usher.addresses()) lines.push(`  listening on ${a.tls ? 'https' : 'http'}://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`);
  if (usher.admin !== null && config.admin !== undefined) {
    const host = config.admin.host;
    lines.push(`  admin API on http://${host.includes(':') ? `[${host}]` : host}:${usher.admin.address().port}${config.admin.token === null ? '' : ' (bearer token)'}`);
  }
  for (const r of config.routes) {
    const m = r.match;
    const when = `${m.hosts.length ? m.hosts.join(',') : '*'}${pathSummary(r)}`;
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
  usher.logger.info({ listeners: usher.addresses(), routes: config.routes.length, file: config.file, workers }, 'usher started');
}
