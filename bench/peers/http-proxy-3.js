// http-proxy-3, the maintained TypeScript rewrite of node-http-proxy, configured exactly like
// peers/http-proxy.js: a shared keep-alive http.Agent upstream, websockets via proxy.ws().
// (http-proxy-3 2.x needs Node 22; bench/package.json pins 1.23.x for Node 20.)
import http from 'node:http';
import { createProxyServer } from 'http-proxy-3';
import { announce, createServer, peerOptions, replyBadGateway } from './common.js';

const { port, upstream, tls } = peerOptions();
const agent = new http.Agent({ keepAlive: true });
const proxy = createProxyServer({ target: upstream, agent });
proxy.on('error', replyBadGateway);

const server = createServer(tls, (req, res) => proxy.web(req, res));
server.on('upgrade', (req, socket, head) => proxy.ws(req, socket, head));
server.listen(port, '127.0.0.1', () => announce('http-proxy-3', port));
