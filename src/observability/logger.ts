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
