import { Transform, type TransformCallback } from 'node:stream';

/**
 * Counts a request body with no Content-Length on its way to the upstream, and calls
 * `onExceeded` (once) when it grows past `limit`. Only used when limits.body is set and the
 * body is chunked; a Content-Length body is checked before it is read. A Transform rather than
 * a 'data' listener: a listener would set the request flowing before undici reads it.
 */
export class BodyLimit extends Transform {
  private bytes = 0;
  private readonly limit: number;
  private readonly onExceeded: () => void;
  private exceeded = false;

  constructor(limit: number, onExceeded: () => void) {
    super();
    this.limit = limit;
    this.onExceeded = onExceeded;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.exceeded) return callback();
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      this.exceeded = true;
      callback();
      this.onExceeded();
      return;
    }
    callback(null, chunk);
  }
}
