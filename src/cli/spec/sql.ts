/** What `quackscale sql` accepts: a DuckDB shell with QuackScale's functions installed. */
import { defineCommand } from '../command.js';

export const SQL = defineCommand({
  name: 'sql',
  summary: "a DuckDB shell with QuackScale's SQL functions (tailscale_up, quack_uri(), …)",
  usage: '[DATABASE] [-c SQL]... [options]',
  description:
    'The counterpart of `duckdb -unsigned` followed by `LOAD quackscale`. With -c it runs the SQL ' +
    '(several statements, or a dot command) and exits: status 1 on the first error. Without, an ' +
    'interactive shell (history in ~/.quackscale_history). On exit the tailnet node is taken down.\n\n' +
    "DuckDB's own httpfs, quack and ducklake extensions are loaded by path from the cache that " +
    '`quackscale extensions fetch` fills (or --extensions DIR); without them INSTALL/LOAD work as usual.',
  args: [{ name: 'DATABASE', help: 'a DuckDB database file (default: in-memory)' }],
  options: {
    command: {
      type: 'string',
      short: 'c',
      multiple: true,
      value: 'SQL',
      help: 'run SQL (or a dot command) and exit',
    },
    'control-url': {
      type: 'string',
      value: 'URL',
      help: 'control server when tailscale_up gives no control_url',
    },
    'state-dir': {
      type: 'string',
      value: 'DIR',
      help: 'state directory when tailscale_up gives no state_dir',
    },
    'derp-http': {
      type: 'boolean',
      help:
        'reach DERP relays over plain HTTP instead of TLS, for relays that only speak HTTP (env ' +
        'TS_DEBUG_USE_DERP_HTTP=1)',
    },
    extensions: {
      type: 'string',
      value: 'DIR',
      help: 'LOAD httpfs, quack and ducklake from DIR',
      default: 'env QUACKSCALE_EXTENSIONS, else the cache of `quackscale extensions fetch` when present',
    },
    'no-extensions': { type: 'boolean', help: 'load none of them automatically' },
  },
  examples: [
    'quackscale sql',
    "quackscale sql -c \"CALL tailscale_up('analyst', authkey => 'tskey-…')\" -c 'FROM tailscale_peers()'",
    'quackscale sql lake.duckdb --control-url http://127.0.0.1:8080',
  ],
});
