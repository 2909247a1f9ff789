// The floor of any Node proxy: accept a connection, connect to the origin, pipe bytes both ways.
// No HTTP at all, so it shows what the sockets alone cost in Node (the event loop, libuv, the
// read/write system calls, stream backpressure). With --cert/--key it terminates TLS with
// node:tls and pipes the plaintext to the origin, as the proxies do in the `tls` scenario.
// Every scenario works through it unchanged: keep-alive, Connection: close (the origin closes,
// the close is passed on), WebSocket upgrades (just more bytes).
//   node bench/peers/tcp-pipe.js --port PORT --upstream http://127.0.0.1:PORT [--cert F --key F]
import net from 'node:net';
import tls from 'node:tls';
import { announce, peerOptions } from './common.js';

const { port, upstream, tls: tlsOptions } = peerOptions();
const target = new URL(upstream);

function onConnection(client) {
  // nginx and Node's http server turn Nagle off too (tcp_nodelay, noDelay).
  client.setNoDelay(true);
  const origin = net.connect({ host: target.hostname, port: Number(target.port), noDelay: true });
  client.pipe(origin).pipe(client);
  // A reset or error on either side ends both: nothing to answer, nobody to tell.
  const destroyBoth = () => {
    client.destroy();
    origin.destroy();
  };
  client.on('error', destroyBoth);
  origin.on('error', destroyBoth);
  client.on('close', () => origin.destroy());
  origin.on('close', () => client.end());
}

const server = tlsOptions ? tls.createServer(tlsOptions, onConnection) : net.createServer({ noDelay: true }, onConnection);
server.on('tlsClientError', () => {}); // a failed handshake closes that socket; nothing else to do
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => announce('tcp-pipe', port));
