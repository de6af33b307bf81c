/** The CLI's logger: timestamped lines on stderr, debug only with --verbose. */
import type { Logger } from '../wireguard/logger.js';

export function cliLogger(verbose: boolean): Logger {
  const line = (level: string, msg: string) =>
    process.stderr.write(`${new Date().toISOString()} ${level} ${msg}\n`);
  return {
    debug: (m) => verbose && line('debug', m),
    info: (m) => line('info', m),
    warn: (m) => line('warn', m),
  };
}

/** A usage or configuration problem: the CLI prints it and exits with status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
