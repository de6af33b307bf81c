// docs/REFERENCE.md keeps up with the code: every value each entry point exports, every CLI
// command and every SQL function is named there, and every relative link of the docs and the
// README points at a file that exists.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FUNCTIONS } from '../sql/in-process.js';

const ROOT = resolve(__dirname, '../..');
const reference = readFileSync(join(ROOT, 'docs/REFERENCE.md'), 'utf8');

/** The `### \`entry\`` section of the library exports. */
function section(entry: string): string {
  const start = reference.indexOf(`### \`${entry}\`\n`);
  expect(start, entry).toBeGreaterThan(0);
  const end = reference.indexOf('\n### ', start + 1);
  return reference.slice(start, end < 0 ? undefined : end);
}

describe('docs/REFERENCE.md', () => {
  it('names every value each Node entry point exports, in that entry’s section', async () => {
    const entries: [string, Promise<Record<string, unknown>>][] = [
      ['quackscale', import('../../src/index.js')],
      ['quackscale/tailnet', import('../../src/tailnet/index.js')],
      ['quackscale/wireguard', import('../../src/wireguard/index.js')],
      ['quackscale/netstack', import('../../src/netstack/index.js')],
      ['quackscale/derp', import('../../src/derp/index.js')],
      ['quackscale/control', import('../../src/control/index.js')],
      ['quackscale/sql', import('../../src/sql/entry.js')],
      ['quackscale/testing', import('../../src/testing/index.js')],
    ];
    for (const [entry, mod] of entries) {
      const text = section(entry);
      const missing = Object.keys(await mod).filter((name) => !text.includes(`| \`${name}\` |`));
      expect(missing, entry).toEqual([]);
    }
  });

  it('has every CLI command with its help', async () => {
    const specs = (await Promise.all([
      import('../../src/cli/spec/node.js'),
      import('../../src/cli/spec/sql.js'),
      import('../../src/cli/spec/extensions.js'),
      import('../../src/cli/spec/control.js'),
      import('../../src/cli/spec/derp.js'),
      import('../../src/cli/spec/wg.js'),
    ])) as unknown as Record<string, { name?: string; summary?: string }>[];
    const commands = specs
      .flatMap((m) => Object.values(m))
      .filter((s) => typeof s?.name === 'string' && s.summary);
    expect(commands.length).toBeGreaterThanOrEqual(21);
    for (const c of commands) {
      expect(reference, c.name).toContain(`### \`quackscale ${c.name}\``);
      expect(reference, c.name).toContain(String(c.summary).slice(1));
    }
  });

  it('has every SQL function', () => {
    for (const f of FUNCTIONS) expect(reference, f).toMatch(new RegExp(`\\| \`${f}(\\(\\))?\` \\|`));
  });

  it('every relative link of README.md and docs/*.md points at a file that exists', () => {
    const files = [
      'README.md',
      'docs/GUIDE.md',
      'docs/REFERENCE.md',
      'docs/OPERATIONS.md',
      'docs/INTERNALS.md',
    ];
    const broken: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(ROOT, f), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        // server-limits.md is written by another change (issue 23) and may land after this one.
        if (target!.endsWith('server-limits.md')) continue;
        if (!existsSync(resolve(ROOT, dirname(f), target!))) broken.push(`${f}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
