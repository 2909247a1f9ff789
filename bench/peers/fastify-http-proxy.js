// @fastify/http-proxy on fastify with its defaults: the upstream is reached through
// @fastify/reply-from's undici pool (keep-alive, 128 connections, no pipelining), request
// bodies stream through untouched, websockets are relayed with `websocket: true`. No logger.
import Fastify from 'fastify';
import fastifyHttpProxy from '@fastify/http-proxy';
import { announce, peerOptions } from './common.js';

const { port, upstream, tls } = peerOptions();
const app = Fastify({ logger: false, ...(tls ? { https: tls } : {}) });
await app.register(fastifyHttpProxy, { upstream, websocket: true });
await app.listen({ port, host: '127.0.0.1' });
announce('@fastify/http-proxy', port);
