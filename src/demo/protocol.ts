/**
 * The messages between the demo's narrator (main.ts) and its two DuckDB node processes
 * (node.ts): one JSON object per line, requests on the child's stdin, replies on its stdout.
 */

/** What the narrator asks a node process to do. */
export type DemoRequest =
  | { id: number; kind: 'sql'; sql: string }
  /** Serve the files of `dir` over node:http on 127.0.0.1 (any free port). */
  | { id: number; kind: 'serve-files'; dir: string }
  /** Close DuckDB and the file server; the process then ends by itself. */
  | { id: number; kind: 'exit' };

/** A reply: for `sql`, the result as the CLI prints it plus its first rows as JSON text. */
export type DemoReply =
  | { id: number; ok: true; text: string; rows: string[][]; ms: number; port?: number }
  | { id: number; ok: false; error: string; ms: number };
