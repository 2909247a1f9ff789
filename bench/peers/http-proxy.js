// node-http-proxy (npm "http-proxy"), configured as a user would for a keep-alive reverse proxy:
// one shared keep-alive http.Agent for the upstream (without an agent http-proxy sends
// "Connection: close" upstream), websocket upgrades forwarded with proxy.ws().
import http from 'node:http';
import httpProxy from 'http-proxy';
import { announce, createServer, peerOptions, replyBadGateway } from './common.js';

const { port, upstream, tls } = peerOptions();
const agent = new http.Agent({ keepAlive: true });
const proxy = httpProxy.createProxyServer({ target: upstream, agent });
proxy.on('error', replyBadGateway);

const server = createServer(tls, (req, res) => proxy.web(req, res));
server.on('upgrade', (req, socket, head) => proxy.ws(req, socket, head));
server.listen(port, '127.0.0.1', () => announce('http-proxy', port));
