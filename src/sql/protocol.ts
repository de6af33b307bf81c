// The messages between the SQL thread (where DuckDB calls our table functions) and the worker
// thread that owns the tailnet node. Plain data only: they cross threads by structured clone.

/** What `tailscale_up` asks the worker for. */
export interface UpRequest {
  op: 'up';
  hostname: string | undefined;
  authKey: string | undefined;
  controlURL: string | undefined;
  stateDir: string;
  ephemeral: boolean;
  /** Start the loopback HTTP proxy that DuckDB's `http_proxy` setting will point to. */
  httpRoute: boolean;
  derpHttp: boolean | undefined;
  endpoints: string[] | undefined;
}

export type Request = UpRequest | { op: 'status' } | { op: 'down' };

/** The node as the lifecycle functions report it. */
export interface NodeState {
  running: boolean;
  hostname: string | null;
  tailnetIps: string[];
}

/** Where the worker's proxy listens, with its Basic credentials (never shown in results). */
export interface ProxyEndpoint {
  host: string;
  port: number;
  username: string;
  password: string;
}

export type Reply = { ok: true; state: NodeState; proxy?: ProxyEndpoint } | { ok: false; error: string };

/** A request tagged with its sequence number, so a late answer to a timed-out call is recognised. */
export interface Envelope<T> {
  id: number;
  body: T;
}

/** Slot 0 of the shared Int32Array: bumped (and notified) by the worker after each reply is posted. */
export const SIGNAL_SLOT = 0;

/** Error text without secrets: auth keys must never reach SQL results, errors or logs. */
export function redact(err: unknown, secrets: readonly (string | undefined)[]): string {
  let text = err instanceof Error ? err.message : String(err);
  for (const s of secrets) if (s) text = text.split(s).join('<redacted>');
  return text;
}
