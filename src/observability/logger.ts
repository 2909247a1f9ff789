import { pino, type Logger } from 'pino';
import type { LogSettings } from '../config/types.js';

export type { Logger };

/** The process logger: JSON lines on stdout, where log shippers expect them. */
export function createLogger(settings: Pick<LogSettings, 'level'>, destination?: NodeJS.WritableStream, fields: Record<string, unknown> = {}): Logger {
  return pino(
    { level: settings.level, base: { pid: process.pid, ...fields }, timestamp: pino.stdTimeFunctions.isoTime },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** The access log: one line per request, independent of the process log level. */
export function createAccessLogger(destination?: NodeJS.WritableStream, fields?: Record<string, unknown>): Logger {
  return pino(
    { level: 'info', base: fields ?? null, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'msg' },
    // Several worker processes share stdout: only a write of whole lines up to PIPE_BUF (4 KiB) is
    // atomic on a pipe, and the buffered destination writes up to 16 KiB at once, cutting lines.
    destination ?? pino.destination({ dest: 1, sync: fields !== undefined }),
  );
}
