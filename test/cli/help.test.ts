// Every command answers --help and -h (what it does, each option, an example) with status 0, and a
// wrong option names the command's help with status 2: walked over the command table itself.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { COMMANDS, GROUPS, runCli } from '../../src/cli/commands.js';

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

describe('help on every command', () => {
  for (const { spec } of COMMANDS) {
    const words = spec.name.split(' ');
    it(`quackscale ${spec.name}`, async () => {
      const long = await cli([...words, '--help']);
      expect(long.code).toBe(0);
      expect(long.err).toBe('');
      expect(long.out).toContain(`quackscale ${spec.name}: ${spec.summary}`);
      expect(long.out).toContain(`USAGE\n  quackscale ${spec.name} `);
      const flat = long.out.replace(/\s+/g, ' ');
      for (const [name, o] of Object.entries(spec.options)) {
        expect(o.help.length, `--${name} has a meaning`).toBeGreaterThan(8);
        expect(long.out).toContain(`--${name}`);
        if (o.default !== undefined) expect(flat).toContain(`default: ${o.default}`);
      }
      for (const a of spec.args ?? []) expect(long.out).toContain(`  ${a.name}  `);
      expect(spec.examples.length).toBeGreaterThan(0);
      for (const e of spec.examples) {
        expect(e).toMatch(/^(\S+=\S+ )*(KEY=\$\()?quackscale /);
        expect(long.out).toContain(e);
      }
      // -h is the same, and help wins over other arguments (even wrong ones).
      expect(await cli([...words, '-h'])).toEqual(long);
      expect((await cli([...words, '--no-such-flag', '-h'])).code).toBe(0);
      expect(await cli(['help', ...words])).toEqual(long);

      const wrong = await cli([...words, '--no-such-flag']);
      expect(wrong.code).toBe(2);
      expect(wrong.out).toBe('');
      expect(wrong.err).toContain("Unknown option '--no-such-flag'");
      expect(wrong.err).toContain(`Run 'quackscale ${spec.name} --help' for usage.`);
    });
  }

  it('each group lists its commands; a wrong subcommand names the group help', async () => {
    for (const g of GROUPS) {
      const help = await cli([g.name, '--help']);
      expect(help.code).toBe(0);
      for (const c of g.commands) expect(help.out).toContain(`${c.name}  `);
      expect((await cli([g.name])).code).toBe(2);
      const wrong = await cli([g.name, 'nonesuch']);
      expect(wrong.code).toBe(2);
      expect(wrong.err).toContain(`Run 'quackscale ${g.name} --help'`);
    }
    const grouped = new Set(GROUPS.flatMap((g) => g.commands.map((c) => c.name)));
    for (const { spec } of COMMANDS)
      if (spec.name.includes(' ')) expect(grouped.has(spec.name), spec.name).toBe(true);
  });

  it('quackscale --help lists every command; no command is an error', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    for (const { spec } of COMMANDS) expect(top.out).toContain(`  ${spec.name} `);
    expect(await cli(['-h'])).toEqual(top);
    expect(await cli(['help'])).toEqual(top);
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.err).toBe(top.out);
    const wrong = await cli(['nonesuch']);
    expect(wrong.code).toBe(2);
    expect(wrong.err).toContain("Run 'quackscale --help'");
  });

  it('a missing required option names it and the help', async () => {
    const r = await cli(['derp', 'serve']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--addr HOST:PORT is required');
    expect(r.err).toContain("Run 'quackscale derp serve --help'");
  });
});

const BIN = resolve(__dirname, '../../dist/cli/main.js');
it.skipIf(!existsSync(BIN) && process.env.CI !== 'true')(
  'the built command exits 0 on --help and 2 on a wrong option',
  async () => {
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 20_000 }).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    const help = await run(['up', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--control-url URL');
    const wrong = await run(['derp', 'serve', '--bogus']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("Run 'quackscale derp serve --help' for usage.");
  },
);
