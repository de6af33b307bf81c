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

/** Resolves on SIGINT or SIGTERM (once), removing its handlers. */
export function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}
