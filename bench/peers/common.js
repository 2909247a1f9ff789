// Shared command line of the Node peers:
//   node bench/peers/NAME.js --port PORT --upstream http://127.0.0.1:PORT [--cert FILE --key FILE]
// Each peer is one process (no cluster), listening on 127.0.0.1, TLS when --cert is given.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { parseArgs } from 'node:util';

export function peerOptions() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      upstream: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
    },
  });
  if (!values.port || !values.upstream) throw new Error('usage: --port PORT --upstream URL [--cert FILE --key FILE]');
  const tls = values.cert ? { cert: fs.readFileSync(values.cert), key: fs.readFileSync(values.key) } : null;
  return { port: Number(values.port), upstream: values.upstream, tls };
}

/** An http or https server for `handler`, per the options. */
export function createServer(tls, handler) {
  return tls ? https.createServer(tls, handler) : http.createServer(handler);
}

/** Answer a proxy error with 502 when headers are still unsent, else drop the connection. */
export function replyBadGateway(err, res) {
  if (res && typeof res.writeHead === 'function' && !res.headersSent) {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`bad gateway: ${err.code ?? err.message}\n`);
  } else {
    res?.destroy?.();
  }
}

export function announce(name, port) {
  console.log(`${name} listening on 127.0.0.1:${port}`);
}
