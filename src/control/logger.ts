/** The logging seam of the control layer; silent by default. Never pass key material to it. */
export interface ControlLogger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
}

/** Discards everything. */
export const silentLogger: ControlLogger = { debug: () => {}, info: () => {}, warn: () => {} };
