import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { rawStatus } from './client.js';

/** A raw TCP client for conversations that take several steps (partial heads, stalls, bodies in pieces). */
export class RawConnection {
  readonly socket: Socket;
  /** Everything the server sent so far (latin1). */
  received = '';
  /** The server closed its side (FIN) or the connection is gone. */
  ended = false;
  /** The connection was reset or failed. */
  error: Error | undefined;
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (c: Buffer) => (this.received += c.toString('latin1')));
    this.socket.on('end', () => (this.ended = true));
    this.socket.on('error', (err) => (this.error = err));
    this.closed = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.ended = true;
        resolve();
      }),
    );
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * Resolves with `promise`, or fails the test after `ms`. A bound that keeps a test from hanging
 * and that fails it when a configured timeout was not applied (the defaults are far longer).
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms}ms`)), ms);
  });
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** The number of HTTP/1.x status lines in a raw reply (a second one would be a spliced response). */
export function responseCount(reply: string): number {
  return (reply.match(/HTTP\/1\.[01] \d{3} /g) ?? []).length;
}

/**
 * Asserts that a raw reply is exactly one local reply from usher: `status`, the body line
 * "reason: <reason>", and an x-request-id header equal to the body's request_id.
 */
export function assertLocalReply(reply: string, status: number, reason: string, what = ''): void {
  const label = what === '' ? '' : `${what}: `;
  assert.equal(rawStatus(reply), status, `${label}status (reply: ${JSON.stringify(reply.slice(0, 400))})`);
  assert.equal(responseCount(reply), 1, `${label}exactly one response on the connection (reply: ${JSON.stringify(reply)})`);
  const end = reply.indexOf('\r\n\r\n');
  assert.ok(end > 0, `${label}a complete head`);
  const head = reply.slice(0, end);
  const body = reply.slice(end + 4);
  assert.match(body, new RegExp(`^reason: ${reason}$`, 'm'), `${label}reason (body: ${JSON.stringify(body)})`);
  const headerId = /^x-request-id: *(\S+)\s*$/im.exec(head)?.[1];
  const bodyId = /^request_id: (\S+)$/m.exec(body)?.[1];
  assert.ok(headerId !== undefined && headerId !== '', `${label}an x-request-id header`);
  assert.equal(bodyId, headerId, `${label}the body's request_id is the x-request-id header`);
}
