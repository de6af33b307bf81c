/** Where a device's diagnostics go. Messages never contain key material. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

/** Discards everything: the default, so a library user's process stays quiet. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {} };
