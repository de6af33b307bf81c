/**
 * The interactive shell of `quackscale sql`, shaped like DuckDB's CLI: prompt `D `, `· ` while a
 * statement continues over several lines (until a `;`), dot commands at the start of input,
 * history in ~/.quackscale_history (0600), Ctrl-C to drop the current input or interrupt the
 * running statement, Ctrl-D or `.quit` to leave. Piped (non-terminal) input runs the same way
 * without prompts, going on after errors, with exit status 1 if any statement failed.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { endsStatement } from './sql-input.js';
import type { SqlSession } from './sql-session.js';

export const PROMPT = 'D ';
export const CONTINUATION = '· ';
const HISTORY_SIZE = 1000;

export interface ShellOptions {
  input: Readable;
  output: Writable;
  /** A terminal: prompts, line editing, history and Ctrl-C handling. */
  interactive: boolean;
  /** History file for interactive use (none: no history kept). */
  historyFile?: string;
}

/** History lines, newest first as readline wants them; a missing file is an empty history. */
function loadHistory(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .slice(-HISTORY_SIZE)
    .reverse();
}

function saveHistory(file: string, newestFirst: readonly string[]): void {
  writeFileSync(file, `${[...newestFirst].reverse().join('\n')}\n`, { mode: 0o600 });
  // The mode above only applies when the file is created; an older file may be wider.
  chmodSync(file, 0o600);
}

/** Reads and runs input until Ctrl-D, end of input or `.quit`; resolves with the exit status. */
export async function runShell(session: SqlSession, opts: ShellOptions): Promise<number> {
  const history = opts.interactive && opts.historyFile ? loadHistory(opts.historyFile) : [];
  const rl = createInterface({
    input: opts.input,
    output: opts.interactive ? opts.output : undefined,
    terminal: opts.interactive,
    prompt: PROMPT,
    history,
    historySize: opts.interactive ? HISTORY_SIZE : 0,
    removeHistoryDuplicates: true,
  });
  const historyFile = opts.interactive ? opts.historyFile : undefined;
  if (historyFile) {
    rl.on('history', (h: string[]) => {
      try {
        saveHistory(historyFile, h);
      } catch (err) {
        opts.output.write(
          `warning: cannot write ${historyFile}: ${err instanceof Error ? err.message : String(err)}\n`,
        );
      }
    });
  }

  let buffer = '';
  let failed = false;
  const prompt = () => {
    if (!opts.interactive) return;
    rl.setPrompt(buffer ? CONTINUATION : PROMPT);
    rl.prompt();
  };
  rl.on('SIGINT', () => {
    if (session.busy) {
      session.interrupt();
      return;
    }
    // Like DuckDB's CLI: Ctrl-C drops what has been typed so far and starts a new statement.
    buffer = '';
    opts.output.write('^C\n');
    rl.setPrompt(PROMPT);
    if (rl.line) {
      // Deleting the typed text makes readline redraw the line, prompt included.
      rl.write(null, { ctrl: true, name: 'e' });
      rl.write(null, { ctrl: true, name: 'u' });
    } else {
      rl.prompt();
    }
  });

  prompt();
  let quit = false;
  for await (const line of rl) {
    if (!buffer && line.trim().startsWith('.')) {
      const r = await session.dotCommand(line);
      if (r === 'quit') {
        quit = true;
        break;
      }
      if (r === 'error') failed = true;
    } else if (buffer || line.trim()) {
      buffer = buffer ? `${buffer}\n${line}` : line;
      if (endsStatement(buffer)) {
        const sql = buffer;
        buffer = '';
        if (!(await session.runSql(sql))) failed = true;
      }
    }
    prompt();
  }
  // Input ended in the middle of a statement: run what there is, as DuckDB does at end of file.
  if (!quit && buffer.trim() && !opts.interactive && !(await session.runSql(buffer))) failed = true;
  rl.close();
  if (opts.interactive && !quit) opts.output.write('\n');
  if (session.exitCode) return session.exitCode;
  return !opts.interactive && failed ? 1 : 0;
}
