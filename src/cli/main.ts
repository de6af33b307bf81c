#!/usr/bin/env node
/** The `quackscale` command. Exit status: 0 success, 1 failure, 2 bad usage or configuration. */
import { CONTROL_USAGE, controlCommand } from './control.js';
import { DERP_USAGE, derpCommand } from './derp.js';
import { UsageError } from './log.js';
import { NODE_USAGE, nodeCommand } from './node.js';
import { SQL_USAGE, sqlCommand } from './sql.js';
import { WG_USAGE, wgCommand } from './wg.js';

const USAGE = `quackscale — a Tailscale-compatible node in TypeScript

${NODE_USAGE}
${WG_USAGE}
${DERP_USAGE}
${CONTROL_USAGE}
${SQL_USAGE}`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    console.log(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === 'up' || cmd === 'status' || cmd === 'ping' || cmd === 'down') return nodeCommand(cmd, rest);
  if (cmd === 'wg') return wgCommand(rest);
  if (cmd === 'derp') return derpCommand(rest);
  if (cmd === 'control') return controlCommand(rest);
  if (cmd === 'sql') return sqlCommand(rest);
  throw new UsageError(`unknown command '${cmd}'\n\n${USAGE}`);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (
      err instanceof UsageError ||
      (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      console.error(`quackscale: ${err.message}`);
      process.exitCode = 2;
      return;
    }
    console.error(`quackscale: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
