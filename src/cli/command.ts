/**
 * What a `quackscale` command accepts, written once: node:util's parseArgs reads the arguments
 * from it, and `--help` / `-h` prints it (what the command does, each option with its meaning and
 * default, examples), as `tailscale up --help` does. A wrong option is a {@link UsageError} that
 * the CLI reports with a pointer to the command's help.
 */
import { parseArgs } from 'node:util';
import { UsageError } from './log.js';

/** One option: parseArgs' descriptor, plus what help shows. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** May be given more than once; the values arrive as an array. */
  readonly multiple?: boolean;
  /** The value's placeholder in help, as in `--addr HOST:PORT`. */
  readonly value?: string;
  /** What the option does. */
  readonly help: string;
  /** The default as help shows it. The command applies it: parseArgs is given none. */
  readonly default?: string;
  /** A usage error when absent. */
  readonly required?: boolean;
}

/** A positional argument, for help. */
export interface ArgumentSpec {
  readonly name: string;
  readonly help: string;
}

/** A command: `quackscale <name> <usage>`. */
export interface CommandSpec {
  /** The words after `quackscale`, e.g. `derp serve`. */
  readonly name: string;
  /** One line: what it does. */
  readonly summary: string;
  /** The synopsis after the name, e.g. `--addr HOST:PORT [flags]`. */
  readonly usage: string;
  /** Paragraphs after the synopsis. */
  readonly description?: string;
  /** Positional arguments; a command without them refuses any. */
  readonly args?: readonly ArgumentSpec[];
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Command lines a user can copy (a `# comment` may follow). */
  readonly examples: readonly string[];
}

type ValueOf<O extends OptionSpec> = O['multiple'] extends true
  ? (O['type'] extends 'string' ? string : boolean)[]
  : O['type'] extends 'string'
    ? string
    : boolean;
type Options<S extends CommandSpec> = S['options'];

/** The parsed values of a command's options, typed from its spec (required ones always present). */
export type Values<S extends CommandSpec> = {
  -readonly [K in keyof Options<S> as Options<S>[K]['required'] extends true ? K : never]: ValueOf<
    Options<S>[K]
  >;
} & {
  -readonly [K in keyof Options<S> as Options<S>[K]['required'] extends true ? never : K]?: ValueOf<
    Options<S>[K]
  >;
};

/** A command's arguments after parsing. */
export interface Parsed<S extends CommandSpec> {
  values: Values<S>;
  positionals: string[];
}

/**
 * Declares a command; `const` keeps the option types literal so {@link Values} can type them.
 *
 * @example
 * const PING = defineCommand({ name: 'ping', summary: 'ping a peer', usage: 'HOST', args: [{ name: 'HOST', help: 'a peer' }],
 *   options: { count: { type: 'string', short: 'c', value: 'N', help: 'pings to send', default: '1' } }, examples: ['quackscale ping a'] });
 */
export function defineCommand<const S extends CommandSpec>(spec: S): S {
  return spec;
}

const HELP_OPTION: OptionSpec = { type: 'boolean', short: 'h', help: 'show this help and exit' };

/** parseArgs' error codes for arguments that do not fit the spec. */
function isParseArgsError(err: unknown): err is TypeError & { code: string } {
  return err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS');
}

/**
 * Parses `argv` for `spec`. With `--help` or `-h` it prints the help to `out` and returns
 * undefined (the command then exits 0); arguments that do not fit throw a {@link UsageError}.
 *
 * @example
 * const args = parseCommand(PING, ['alpha', '-c', '3']);
 * if (!args) return 0;
 */
export function parseCommand<S extends CommandSpec>(
  spec: S,
  argv: readonly string[],
  out: (text: string) => void = (t) => process.stdout.write(t),
): Parsed<S> | undefined {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, o] of Object.entries({ ...spec.options, help: HELP_OPTION })) {
    options[name] = {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
    };
  }
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: spec.args !== undefined, strict: true });
  } catch (err) {
    // Help wins over a mistake elsewhere on the line, as in Go's flag package.
    if (argv.includes('--help') || argv.includes('-h')) {
      out(helpText(spec));
      return undefined;
    }
    if (isParseArgsError(err))
      throw new UsageError(err.message.replace(/\. To specify a positional.*$/s, ''));
    throw err;
  }
  if (parsed.values.help) {
    out(helpText(spec));
    return undefined;
  }
  delete parsed.values.help;
  for (const [name, o] of Object.entries(spec.options)) {
    if (o.required && parsed.values[name] === undefined)
      throw new UsageError(`--${name}${o.value ? ` ${o.value}` : ''} is required`);
  }
  return parsed as unknown as Parsed<S>;
}

const WIDTH = 100;

function wrap(text: string, indent: number, first: number): string[] {
  const lines: string[] = [];
  let line = '';
  let room = WIDTH - first;
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line && line.length + 1 + word.length > room) {
      lines.push(line);
      line = word;
      room = WIDTH - indent;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** Two columns: a term, and its text wrapped beside it (below it when no space would be left between). */
function table(rows: readonly [string, string][]): string {
  const col = Math.min(28, Math.max(...rows.map(([t]) => t.length)) + 4);
  const out: string[] = [];
  for (const [term, text] of rows) {
    const body = wrap(text, col, col);
    if (term.length + 3 > col) {
      out.push(`  ${term}`);
      for (const l of body) out.push(`${' '.repeat(col)}${l}`);
    } else {
      out.push(`  ${term.padEnd(col - 2)}${body[0] ?? ''}`);
      for (const l of body.slice(1)) out.push(`${' '.repeat(col)}${l}`);
    }
  }
  return out.join('\n');
}

function optionTerm(name: string, o: OptionSpec): string {
  const long = `--${name}${o.value ? ` ${o.value}` : ''}`;
  return o.short ? `-${o.short}, ${long}` : long;
}

function optionText(o: OptionSpec): string {
  const notes: string[] = [];
  if (o.required) notes.push('required');
  if (o.multiple) notes.push('repeatable');
  if (o.default !== undefined) notes.push(`default: ${o.default}`);
  return notes.length ? `${o.help} (${notes.join('; ')})` : o.help;
}

/**
 * The help of a command: summary, synopsis, description, arguments, options and examples.
 *
 * @example
 * process.stdout.write(helpText(PING));
 */
export function helpText(spec: CommandSpec): string {
  const parts = [
    `quackscale ${spec.name}: ${spec.summary}`,
    `USAGE\n  quackscale ${spec.name} ${spec.usage}`,
  ];
  if (spec.description)
    parts.push(
      spec.description
        .split('\n\n')
        .map((p) => wrap(p, 0, 0).join('\n'))
        .join('\n\n'),
    );
  if (spec.args?.length) parts.push(`ARGUMENTS\n${table(spec.args.map((a) => [a.name, a.help]))}`);
  const opts = Object.entries({ ...spec.options, help: HELP_OPTION });
  parts.push(`OPTIONS\n${table(opts.map(([n, o]) => [optionTerm(n, o), optionText(o)]))}`);
  parts.push(`EXAMPLES\n${spec.examples.map((e) => `  ${e}`).join('\n')}`);
  return `${parts.join('\n\n')}\n`;
}

/** A group of commands (`wg`, `derp`, `control`, …) as its help lists them. */
export interface GroupSpec {
  readonly name: string;
  readonly summary: string;
  readonly commands: readonly CommandSpec[];
}

/**
 * The help of a group: its summary and each command's synopsis and summary.
 *
 * @example
 * process.stdout.write(groupHelpText(DERP_GROUP));
 */
export function groupHelpText(group: GroupSpec): string {
  const rows = group.commands.map((c): [string, string] => [c.name, c.summary]);
  return (
    `quackscale ${group.name}: ${group.summary}\n\nCOMMANDS\n${table(rows)}\n\n` +
    `Run 'quackscale ${group.name} COMMAND --help' for a command's options and examples.\n`
  );
}
