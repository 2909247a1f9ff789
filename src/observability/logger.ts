import { pino, type Logger } from 'pino';
import type { LogSettings } from '../config/types.js';

export type { Logger };

/** The process logger: JSON lines on stdout, where log shippers expect them. */
export function createLogger(settings: Pick<LogSettings, 'level'>, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level: settings.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
