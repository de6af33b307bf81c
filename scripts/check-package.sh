#!/usr/bin/env bash
# What a user's `npm i quackscale` gets, checked on the packed tarball in an empty project (after
# `npm run build`):
#  1. installed alone, no native addon arrives (DuckDB is an optional peer), every entry but
#     quackscale/sql imports, quackscale/sql and `quackscale sql` say how to add DuckDB, and a
#     strict TypeScript file (skipLibCheck false) compiles against the published types;
#  2. with @duckdb/node-api added, quackscale/sql imports and its types compile too.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d /tmp/qs-pack.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"

version() { node -p "require('$root/package.json').$1"; }
TS_VERSION=$(version 'devDependencies.typescript')
NODE_TYPES=$(version 'devDependencies["@types/node"]')
DUCKDB=$(version 'peerDependencies["@duckdb/node-api"]')

tarball=$(cd "$root" && npm pack --silent --pack-destination "$work" | tail -n 1)
echo "packed $tarball ($(du -h "$work/$tarball" | cut -f1))"

mkdir app && cd app
npm init -y >/dev/null
npm pkg set type=module
npm install --no-audit --no-fund --silent "$work/$tarball" "typescript@$TS_VERSION" "@types/node@$NODE_TYPES"

addons=$(find node_modules -name '*.node' -type f)
if [ -n "$addons" ] || [ -d node_modules/@duckdb ]; then
  echo "FAIL: installing quackscale alone brought native code:" >&2
  echo "$addons" >&2
  exit 1
fi
echo 'no native addon installed'

ENTRIES=(quackscale quackscale/wireguard quackscale/netstack quackscale/derp quackscale/control quackscale/tailnet)
node --input-type=module -e "
for (const e of process.argv.slice(1)) {
  const m = await import(e);
  if (Object.keys(m).length === 0) throw new Error(e + ' exports nothing');
  console.log('import ' + e + ': ' + Object.keys(m).length + ' exports');
}" "${ENTRIES[@]}"

expect_duckdb_hint() { # $1: what failed, $2: its output
  if ! grep -q "npm install @duckdb/node-api@$DUCKDB" <<<"$2"; then
    echo "FAIL: $1 without DuckDB did not say how to install it:" >&2
    echo "$2" >&2
    exit 1
  fi
  echo "$1 without DuckDB: $(grep -o 'needs DuckDB.*' <<<"$2" | head -n 1)"
}
out=$(node --input-type=module -e "await import('quackscale/sql')" 2>&1 || true)
expect_duckdb_hint 'import quackscale/sql' "$out"
out=$(npx --no-install quackscale sql -c 'SELECT 1' 2>&1 || true)
expect_duckdb_hint 'quackscale sql' "$out"
npx --no-install quackscale --help >/dev/null

cat >tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022", "lib": ["ES2023"], "module": "NodeNext", "moduleResolution": "NodeNext",
    "strict": true, "skipLibCheck": false, "noEmit": true, "types": ["node"]
  },
  "include": ["*.ts"]
}
JSON
cat >use.ts <<'TS'
import http from 'node:http';
import { Tailnet, type TailnetOptions, startLocalTailnet } from 'quackscale';
import { WebSocketConn } from 'quackscale/derp';
import { ControlClient } from 'quackscale/control';
import { Stack, TcpSocket } from 'quackscale/netstack';
import { type TailnetNet, Socks5Server } from 'quackscale/tailnet';
import { Device } from 'quackscale/wireguard';

const opts: TailnetOptions = { hostname: 'x', stateDir: '/tmp/x' };
const tn = new Tailnet(opts);
const net: TailnetNet = tn.net;
const sock: TcpSocket = new net.Socket().connect(5432, 'db');
const agent: http.Agent = tn.httpAgent();
void [sock, agent, startLocalTailnet, WebSocketConn, ControlClient, Stack, Socks5Server, Device];
TS
npx --no-install tsc -p .
echo 'a strict TypeScript file compiles against the types (skipLibCheck: false)'

npm install --no-audit --no-fund --silent "@duckdb/node-api@$DUCKDB"
node --input-type=module -e "
const sql = await import('quackscale/sql');
if (typeof sql.installQuackscale !== 'function') throw new Error('no installQuackscale');
console.log('with @duckdb/node-api: import quackscale/sql: ' + Object.keys(sql).length + ' exports');"
cat >sql.ts <<'TS'
import { DuckDBInstance } from '@duckdb/node-api';
import { installQuackscale, type QuackscaleOptions } from 'quackscale/sql';

const options: QuackscaleOptions = { extensions: false };
const instance = await DuckDBInstance.create(':memory:');
await installQuackscale(await instance.connect(), options);
TS
npx --no-install tsc -p .
echo 'with @duckdb/node-api: quackscale/sql types compile'
echo 'package check passed'
