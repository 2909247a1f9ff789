// wrk command lines and the parsing of wrk's `--latency` report.
import fs from 'node:fs';
import path from 'node:path';

/** wrk arguments for one run; `tmp` holds the generated Lua script for request bodies. */
export function wrkArgs({ url, connections, durationS, scenario, tmp }) {
  const args = ['-t', '1', '-c', String(connections), '-d', `${durationS}s`, '--timeout', '5s', '--latency'];
  if (scenario.close) args.push('-H', 'Connection: close');
  if (scenario.acceptEncoding) args.push('-H', `Accept-Encoding: ${scenario.acceptEncoding}`);
  if (scenario.authorization) args.push('-H', `Authorization: ${scenario.authorization}`);
  for (const [name, value] of scenario.headers ?? []) args.push('-H', `${name}: ${value}`);
  if (scenario.method === 'POST') args.push('-s', scenario.body !== undefined ? bodyScript(tmp, scenario) : postScript(tmp, scenario.bodyBytes));
  args.push(url);
  return args;
}

function postScript(tmp, bytes) {
  const file = path.join(tmp, `post-${bytes}.lua`);
  if (!fs.existsSync(file)) {
    fs.writeFileSync(
      file,
      [
        'wrk.method = "POST"',
        `wrk.body = string.rep("x", ${bytes})`,
        'wrk.headers["Content-Type"] = "application/octet-stream"',
        '',
      ].join('\n'),
    );
  }
  return file;
}

/** A POST with the scenario's own body and Content-Type (a Lua long string holds it verbatim). */
function bodyScript(tmp, scenario) {
  const file = path.join(tmp, `post-${scenario.id}.lua`);
  if (scenario.body.includes(']==]')) throw new Error(`${scenario.id}: the body cannot be quoted for wrk`);
  if (!fs.existsSync(file)) {
    fs.writeFileSync(
      file,
      ['wrk.method = "POST"', `wrk.body = [==[${scenario.body}]==]`, `wrk.headers["Content-Type"] = "${scenario.contentType}"`, ''].join('\n'),
    );
  }
  return file;
}

const TIME_UNITS = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

/** Milliseconds from wrk's "1.23ms" / "850.00us" / "1.02s". */
function parseTime(text) {
  const match = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  if (!match) throw new Error(`unrecognised wrk time "${text}"`);
  return Number(match[1]) * TIME_UNITS[match[2]];
}

/**
 * { requests, durationS, rps, p50Ms, p99Ms, errors } from wrk's output. `requests` counts
 * successful (2xx/3xx) responses only, so an erroring proxy does not look fast or cheap;
 * `errors` counts socket errors (connect, read, write, timeout) and non-2xx/3xx responses.
 */
export function parseWrk(output) {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m),/.exec(output);
  if (!total) throw new Error(`unrecognised wrk output: ${output.trim().split('\n').slice(-3).join(' / ')}`);
  const percentile = (p) => {
    const match = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(output);
    return match ? parseTime(match[1]) : null;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
  const durationS = parseTime(`${total[2]}${total[3]}`) / 1e3;
  const requests = Number(total[1]) - non2xx;
  return {
    requests,
    durationS,
    rps: requests / durationS,
    p50Ms: percentile(50),
    p99Ms: percentile(99),
    errors: socketErrors + non2xx,
    errorDetail: [socket?.[0], non2xx ? `${non2xx} non-2xx/3xx responses` : null].filter(Boolean).join('; '),
  };
}
