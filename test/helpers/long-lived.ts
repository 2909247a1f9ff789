// Long-lived connections for the reload tests: a WebSocket echo server that also streams SSE,
// a WebSocket client that records what it gets, an SSE client.
import { createServer, get as httpGet, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { waitFor } from './usher.js';

export interface LiveUpstream {
  url: string;
  closes: { code: number; reason: string }[];
  /** SSE responses open now. */
  streams: Set<ServerResponse>;
  /** Bytes of the big frame sent so far. */
  bigSent: () => number;
  close(): Promise<void>;
}

/** A WebSocket echo server (ws) that also serves SSE on /events: an event every 20 ms, numbered. */
export async function startLiveUpstream(name: string): Promise<LiveUpstream> {
  const streams = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/events') !== true) return void res.end(name);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    streams.add(res);
    let n = 0;
    const timer = setInterval(() => res.write(`id: ${++n}\ndata: ${name} ${n}\n\n`), 20);
    res.on('close', () => {
      clearInterval(timer);
      streams.delete(res);
    });
  });
  const closes: { code: number; reason: string }[] = [];
  let bigSent = 0;
  const wss = new WebSocketServer({ server, maxPayload: 16 * 1024 * 1024 });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '' : (data as Buffer).toString();
      // "big:N": N bytes in one binary message (a long frame a close frame must not cut into).
      if (text.startsWith('big:')) {
        // One binary frame of N bytes written in 64 KiB pieces 5 ms apart, on the socket itself:
        // the frame is still arriving while the test reloads.
        const n = Number(text.slice(4));
        const socket = (ws as unknown as { _socket: Socket })._socket;
        const head = Buffer.from([0x82, 127, 0, 0, 0, 0, 0, 0, 0, 0]);
        head.writeBigUInt64BE(BigInt(n), 2);
        socket.write(head);
        // ws answers a close frame at once, with its own frame: held back until this one is whole.
        const close = ws.close.bind(ws);
        let deferred: Parameters<typeof ws.close> | null = null;
        ws.close = (...args: Parameters<typeof ws.close>) => void (deferred = args);
        let sent = 0;
        const timer = setInterval(() => {
          const piece = Math.min(65536, n - sent);
          socket.write(Buffer.alloc(piece, 7));
          sent += piece;
          bigSent = sent;
          if (sent < n) return;
          clearInterval(timer);
          ws.close = close;
          if (deferred !== null) close(...deferred);
        }, 5);
        socket.once('close', () => clearInterval(timer));
      }
      else ws.send(data as Buffer, { binary: isBinary });
    });
    ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    closes,
    streams,
    bigSent: () => bigSent,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

export interface Client {
  ws: WebSocket;
  messages: Buffer[];
  closed: Promise<{ code: number; reason: string }>;
  errors: Error[];
}

export function open(url: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: 16 * 1024 * 1024 });
    const messages: Buffer[] = [];
    const errors: Error[] = [];
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.on('message', (d) => messages.push(d as Buffer));
    ws.once('open', () => {
      ws.off('error', reject);
      ws.on('error', (e) => errors.push(e));
      resolve({ ws, messages, closed, errors });
    });
    ws.once('error', reject);
  });
}

/** Sends `text` and waits for its echo (generous bound: a loaded machine). */
export async function echo(c: Client, text: string): Promise<void> {
  const before = c.messages.length;
  c.ws.send(text);
  await waitFor(() => c.messages.slice(before).some((m) => m.toString() === text), 20_000, `the echo of ${text}`);
}

/** An SSE stream through usher: the events so far, and whether the response ended cleanly. */
export function sse(url: string): Promise<{ events: string[]; ended: () => boolean; aborted: () => boolean; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    httpGet(url, (res) => {
      const events: string[] = [];
      let ended = false;
      let aborted = false;
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          events.push(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      });
      res.on('end', () => (ended = true));
      res.on('aborted', () => (aborted = true));
      res.on('error', () => (aborted = true));
      resolve({ events, ended: () => ended, aborted: () => aborted, res });
    }).once('error', reject);
  });
}

