import type { Socket } from 'node:net';
import type { Exchange } from './exchange.js';

/**
 * The undici dispatch handler of one try of an exchange. A try that usher abandons (a per-try
 * timeout, a 5xx it retries) may still report later — undici tears the connection down
 * asynchronously — so each try has its own handler, and a handler that is no longer the
 * exchange's current one drops everything (and aborts if it only now gets a connection).
 */
/**
 * What a try abandoned before it had a connection throws when undici hands it one at last.
 * undici (client-h1 writeH1) catches it and fails that request alone: its handler's onError,
 * which is ignored here, and the request leaves the queue unsent. Calling abort() instead would
 * also destroy the request body — the downstream request stream, which the retry may be
 * streaming to another server at that moment — and the fresh connection. Pinned by
 * test/integration/retry-safety.test.ts.
 */
const ABANDONED = new Error('usher: try abandoned before it was sent');

export class Attempt {
  readonly ex: Exchange;

  constructor(ex: Exchange) {
    this.ex = ex;
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.ex.current !== this) throw ABANDONED;
    this.ex.onConnect(abort);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    return this.ex.current === this ? this.ex.onHeaders(statusCode, rawHeaders, resume) : false;
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[], socket: Socket): void {
    if (this.ex.current === this) this.ex.onUpgrade(statusCode, rawHeaders, socket);
    else socket.destroy();
  }

  onData(chunk: Buffer): boolean {
    return this.ex.current === this ? this.ex.onData(chunk) : false;
  }

  onComplete(trailers: readonly (Buffer | string)[] | null): void {
    if (this.ex.current === this) this.ex.onComplete(trailers);
  }

  onError(err: Error): void {
    if (this.ex.current === this) this.ex.onError(err);
  }
}
