/**
 * Every `quackscale` command: its spec (what it accepts, for parsing and help) and its
 * implementation, loaded only when that command runs, so that `quackscale up` never loads
 * DuckDB and `--help` answers at once. {@link runCli} dispatches and reports errors.
 */
import { type CommandSpec, type GroupSpec, groupHelpText, parseCommand } from './command.js';
import { UsageError } from './log.js';
import {
  CONTROL_APPROVE,
  CONTROL_APPROVE_ROUTES,
  CONTROL_AUTHKEY,
  CONTROL_LOGIN,
  CONTROL_LOGOUT,
  CONTROL_NETMAP,
  CONTROL_PENDING,
  CONTROL_REJECT,
  CONTROL_ROUTES,
  CONTROL_SERVE,
} from './spec/control.js';
import { DERP_PROBE, DERP_SERVE } from './spec/derp.js';
import { EXTENSIONS_FETCH } from './spec/extensions.js';
import { DOWN, NETCHECK, PING, STATUS, UP } from './spec/node.js';
import { SQL } from './spec/sql.js';
import { WG_EXPOSE, WG_FORWARD, WG_PING, WG_UP } from './spec/wg.js';

/** Runs a command on its arguments (after the command's words); resolves with the exit status. */
export type Runner = (argv: string[]) => Promise<number>;

/** A command and how to load its implementation. */
export interface CommandEntry {
  readonly spec: CommandSpec;
  readonly load: () => Promise<Runner>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { spec: UP, load: async () => (await import('./node.js')).up },
  { spec: STATUS, load: async () => (await import('./node.js')).status },
  { spec: PING, load: async () => (await import('./node.js')).ping },
  { spec: DOWN, load: async () => (await import('./node.js')).down },
  { spec: NETCHECK, load: async () => (await import('./node.js')).netcheck },
  { spec: WG_UP, load: async () => (await import('./wg.js')).wgUp },
  { spec: WG_PING, load: async () => (await import('./wg.js')).wgPing },
  { spec: WG_FORWARD, load: async () => (await import('./wg-proxy.js')).wgForward },
  { spec: WG_EXPOSE, load: async () => (await import('./wg-proxy.js')).wgExpose },
  { spec: DERP_SERVE, load: async () => (await import('./derp.js')).derpServe },
  { spec: DERP_PROBE, load: async () => (await import('./derp.js')).derpProbe },
  { spec: CONTROL_SERVE, load: async () => (await import('./control.js')).controlServe },
  { spec: CONTROL_AUTHKEY, load: async () => (await import('./control.js')).controlAuthkey },
  { spec: CONTROL_APPROVE, load: async () => (await import('./control.js')).controlApprove },
  { spec: CONTROL_REJECT, load: async () => (await import('./control.js')).controlReject },
  { spec: CONTROL_PENDING, load: async () => (await import('./control.js')).controlPending },
  { spec: CONTROL_ROUTES, load: async () => (await import('./control-routes.js')).controlRoutes },
  {
    spec: CONTROL_APPROVE_ROUTES,
    load: async () => (await import('./control-routes.js')).controlApproveRoutes,
  },
  { spec: CONTROL_LOGIN, load: async () => (await import('./control.js')).controlLogin },
  { spec: CONTROL_NETMAP, load: async () => (await import('./control.js')).controlNetmap },
  { spec: CONTROL_LOGOUT, load: async () => (await import('./control.js')).controlLogout },
  { spec: SQL, load: async () => (await import('./sql.js')).sqlCommand },
  { spec: EXTENSIONS_FETCH, load: async () => (await import('./extensions.js')).extensionsFetch },
];

export const GROUPS: readonly GroupSpec[] = [
  {
    name: 'wg',
    summary: 'a plain WireGuard peer in userspace, from a wg-quick file (no control plane)',
    commands: [WG_UP, WG_PING, WG_FORWARD, WG_EXPOSE],
  },
  { name: 'derp', summary: 'a DERP relay and a probe for one', commands: [DERP_SERVE, DERP_PROBE] },
  {
    name: 'control',
    summary: 'the embedded control server and a control client',
    commands: [
      CONTROL_SERVE,
      CONTROL_AUTHKEY,
      CONTROL_APPROVE,
      CONTROL_REJECT,
      CONTROL_PENDING,
      CONTROL_ROUTES,
      CONTROL_APPROVE_ROUTES,
      CONTROL_LOGIN,
      CONTROL_NETMAP,
      CONTROL_LOGOUT,
    ],
  },
  { name: 'extensions', summary: "DuckDB's own extensions for quackscale sql", commands: [EXTENSIONS_FETCH] },
];

/** The help of `quackscale` itself: every command with its summary. */
export function topHelpText(): string {
  const rows = COMMANDS.map((c) => c.spec);
  const width = Math.max(...rows.map((s) => s.name.length)) + 4;
  return (
    'quackscale: a Tailscale-compatible node in TypeScript, with a DuckDB SQL layer\n\n' +
    `USAGE\n  quackscale COMMAND [options]\n\nCOMMANDS\n${rows.map((s) => `  ${s.name.padEnd(width - 2)}${s.summary}`).join('\n')}\n\n` +
    "Run 'quackscale COMMAND --help' for a command's options and examples.\n" +
    'Exit status: 0 success, 1 failure, 2 bad usage or configuration.\n'
  );
}

/** The command whose words start `argv`, and the arguments after them. */
function findCommand(argv: readonly string[]): { entry: CommandEntry; rest: string[] } | undefined {
  for (const entry of COMMANDS) {
    const words = entry.spec.name.split(' ');
    if (words.every((w, i) => argv[i] === w)) return { entry, rest: argv.slice(words.length) };
  }
  return undefined;
}

const isHelp = (a: string | undefined) => a === '--help' || a === '-h';

/** Output of {@link runCli}; defaults to the process's stdout and stderr. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
}

const processIO: CliIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/**
 * Runs `quackscale ARGV…`; resolves with the exit status: 0 success, 1 failure, 2 bad usage
 * (then the error names the command's help).
 *
 * @example
 * process.exitCode = await runCli(process.argv.slice(2));
 */
export async function runCli(argv: readonly string[], io: CliIO = processIO): Promise<number> {
  let where = '';
  try {
    const [first, second] = argv;
    if (first === undefined) {
      io.err(topHelpText());
      return 2;
    }
    if (isHelp(first) || (first === 'help' && argv.length === 1)) {
      io.out(topHelpText());
      return 0;
    }
    if (first === 'help') return runCli([...argv.slice(1), '--help'], io);
    const found = findCommand(argv);
    if (found) {
      where = ` ${found.entry.spec.name}`;
      // Help and argument mistakes are answered from the spec, before the implementation loads.
      if (!parseCommand(found.entry.spec, found.rest, io.out)) return 0;
      return await (await found.entry.load())(found.rest);
    }
    const group = GROUPS.find((g) => g.name === first);
    if (group) {
      where = ` ${group.name}`;
      if (isHelp(second)) {
        io.out(groupHelpText(group));
        return 0;
      }
      if (second === undefined) {
        io.err(groupHelpText(group));
        return 2;
      }
      throw new UsageError(`unknown command '${first} ${second}'`);
    }
    throw new UsageError(`unknown command '${first}'`);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`quackscale${where}: ${err.message}\nRun 'quackscale${where} --help' for usage.\n`);
      return 2;
    }
    io.err(`quackscale${where}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
