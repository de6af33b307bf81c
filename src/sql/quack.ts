// The Quack helpers of sql-surface.md: quack_uri() and quack_token() (scalars) and
// quack_discover(), describing this node as a Quack endpoint on the tailnet. quack_serve,
// ATTACH 'quack:…' and quack_query belong to DuckDB's own quack extension.
import { BIGINT, type DuckDBConnection, DuckDBScalarFunction, INTEGER, VARCHAR } from '@duckdb/node-api';
import { QUACK_PORT } from './connectivity.js';
import type { NodeState } from './protocol.js';
import type { NodeSession } from './session.js';
import { portArg, registerWithMacro } from './table.js';

/** One way to reach this node's Quack server. */
export interface QuackEndpoint {
  listenUri: string;
  host: string;
  port: number;
  via: 'magicdns' | 'tailnet_ip';
}

/** `quack:host:port`, with IPv6 literals bracketed as in a URI authority (RFC 3986 §3.2.2). */
export function quackUri(host: string, port: number): string {
  return `quack:${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** This node's endpoints: its MagicDNS name first, then each tailnet address; none before up. */
export function quackEndpoints(state: NodeState, port: number): QuackEndpoint[] {
  if (!state.running) return [];
  const out: QuackEndpoint[] = [];
  if (state.dnsName)
    out.push({ listenUri: quackUri(state.dnsName, port), host: state.dnsName, port, via: 'magicdns' });
  for (const ip of state.tailnetIps)
    out.push({ listenUri: quackUri(ip, port), host: ip, port, via: 'tailnet_ip' });
  return out;
}

/**
 * The shared Quack token from `QUACK_TAILNET_TOKEN`, else `QUACK_TOKEN`. quack_serve refuses
 * tokens shorter than 4 characters, so those are refused here too, and the token itself never
 * appears in the error.
 */
export function quackToken(env: NodeJS.ProcessEnv = process.env): string {
  const name = env.QUACK_TAILNET_TOKEN ? 'QUACK_TAILNET_TOKEN' : env.QUACK_TOKEN ? 'QUACK_TOKEN' : undefined;
  const help =
    'quack_token(): set QUACK_TAILNET_TOKEN (or QUACK_TOKEN) to the shared Quack token of this tailnet';
  if (!name) throw new Error(`${help}; neither is set`);
  const token = env[name] as string;
  if (token.length < 4)
    throw new Error(`${help}; ${name} is shorter than the 4 characters quack_serve requires`);
  return token;
}

/** A scalar function of no arguments whose value (or error) `compute` gives. */
function constantScalar(connection: DuckDBConnection, name: string, compute: () => string): void {
  connection.registerScalarFunction(
    DuckDBScalarFunction.create({
      name,
      returnType: VARCHAR,
      // Not volatile: DuckDB only folds non-volatile calls into constants, and a table
      // function's arguments must fold (quack_serve(…, token => quack_token())).
      mainFunction: (info, input, out) => {
        let value: string;
        try {
          value = compute();
        } catch (err) {
          info.setError(err instanceof Error ? err.message : String(err));
          return;
        }
        for (let r = 0; r < input.rowCount; r++) out.setItem(r, value);
        out.flush();
      },
    }),
  );
}

/** Registers quack_uri, quack_token and quack_discover on `connection`. */
export async function registerQuack(connection: DuckDBConnection, session: NodeSession): Promise<void> {
  constantScalar(connection, 'quack_uri', () => {
    const [best] = quackEndpoints(session.status(), QUACK_PORT);
    if (!best) throw new Error('Tailscale is not up: call tailscale_up() first');
    return best.listenUri;
  });

  constantScalar(connection, 'quack_token', () => quackToken());

  await registerWithMacro<QuackEndpoint>(
    connection,
    'quack_discover',
    [
      { name: 'listen_uri', type: VARCHAR, value: (e) => e.listenUri },
      { name: 'host', type: VARCHAR, value: (e) => e.host },
      { name: 'port', type: INTEGER, value: (e) => e.port },
      { name: 'via', type: VARCHAR, value: (e) => e.via },
    ],
    { port: BIGINT },
    (bind) => quackEndpoints(session.status(), portArg(bind, 'port', QUACK_PORT)),
  );
}
