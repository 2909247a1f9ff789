// Command line of bench/run.js.
import { parseArgs } from 'node:util';

export const USAGE = `Usage: npm run bench -- [options]

  --proxies LIST      comma-separated, default all: direct,usher,nginx,haproxy,caddy,tcp-pipe,
                      http-proxy,http-proxy-3,fastify
  --scenarios LIST    comma-separated, default all: small,100k,post10k,tls,close,ws
  --reps N            repetitions, interleaved between proxies; medians reported (default 3)
  --duration T        measured time per run, e.g. 4s or 1m (default 4s)
  --warmup T          warm-up load before each measured run (default 1s)
  --connections N     concurrent connections (default 50)
  --quick             1 rep of 2s (explicit options still win)
  --workers N         usher's worker processes (usher serve --workers; default 1). With N > 1
                      usher runs on cores 0..N-1, which it then shares with the load generator
                      (core 0); CPU µs/req sums the primary and every worker
  --loadgen NAME      wrk (default when installed) or autocannon
  --rate N|auto       open-loop mode: every proxy at a fixed N req/s (tools/open-loop.js),
                      reporting p50/p99/p99.9; auto = half of usher's saturation req/s,
                      measured per scenario at the start of the same run
  --compare OLD.json  after the run, flag regressions against a previous result
  --against NEW.json  with --compare: compare two result files, run nothing
  --threshold PCT     noise band for --compare (default 20)
  --list              list proxies and scenarios
  --help`;

/** Whole seconds from "4s", "4", "1m". */
function seconds(text, name) {
  const match = /^(\d+)(s|m)?$/.exec(text);
  if (!match || Number(match[1]) <= 0) throw new Error(`--${name} wants whole seconds like 4s or 1m, got "${text}"`);
  return Number(match[1]) * (match[2] === 'm' ? 60 : 1);
}

function positive(text, name) {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} wants a positive integer, got "${text}"`);
  return n;
}

const list = (text) => (text ? text.split(',').map((s) => s.trim()).filter(Boolean) : null);

export function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      proxies: { type: 'string' },
      scenarios: { type: 'string' },
      reps: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      quick: { type: 'boolean', default: false },
      loadgen: { type: 'string' },
      workers: { type: 'string' },
      rate: { type: 'string' },
      compare: { type: 'string' },
      against: { type: 'string' },
      threshold: { type: 'string', default: '20' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.loadgen && !['wrk', 'autocannon'].includes(values.loadgen)) {
    throw new Error(`--loadgen is wrk or autocannon, got "${values.loadgen}"`);
  }
  if (values.against && !values.compare) throw new Error('--against needs --compare OLD.json');
  return {
    proxies: list(values.proxies),
    scenarios: list(values.scenarios),
    reps: values.reps ? positive(values.reps, 'reps') : values.quick ? 1 : 3,
    durationS: values.duration ? seconds(values.duration, 'duration') : values.quick ? 2 : 4,
    warmupS: values.warmup ? seconds(values.warmup, 'warmup') : 1,
    connections: values.connections ? positive(values.connections, 'connections') : 50,
    quick: values.quick,
    loadgen: values.loadgen ?? null,
    workers: values.workers ? positive(values.workers, 'workers') : 1,
    rate: values.rate === undefined ? null : values.rate === 'auto' ? 'auto' : positive(values.rate, 'rate (or auto)'),
    compare: values.compare ?? null,
    against: values.against ?? null,
    thresholdPct: Number(values.threshold),
    list: values.list,
    help: values.help,
  };
}
