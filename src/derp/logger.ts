/**
 * Where the DERP layer's diagnostics go. Structurally the same as the wireguard layer's
 * Logger, so one object serves both; messages never contain keys, only fingerprints.
 */
export interface DerpLogger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

/** Discards everything (the default). */
export const silentDerpLogger: DerpLogger = { debug() {}, info() {}, warn() {} };
