#!/usr/bin/env bash
# The library's unit tests (wireguard, netstack, derp, control, tailnet, platform, and two of SQL) under each runtime of the
# matrix: vitest started by that runtime, whose workers it forks with the same runtime. QS_RUNTIME tells
# test/platform/runtime.test.ts which runtime and version must be the one running the tests.
# The interop leg (our node in each runtime next to tailscaled on Headscale) is test/interop/runtimes.test.ts.
#
#   scripts/test-runtimes.sh [name...]       # default: every runtime scripts/fetch-runtimes.sh lists
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The library's layers, and two SQL files that load DuckDB's node addon and run a node in a worker thread.
DIRS=(test/platform test/wireguard test/netstack test/derp test/control test/tailnet
  test/sql/functions.test.ts test/sql/login-local.test.ts)
mapfile -t LINES < <(scripts/fetch-runtimes.sh --list)
WANT=("$@")
failed=()
for line in "${LINES[@]}"; do
  read -r name version bin <<<"$line"
  if ((${#WANT[@]})) && [[ " ${WANT[*]} " != *" $name "* ]]; then continue; fi
  case $name in
    node*) cmd=("$bin") expect="node $version" ;;
    bun) cmd=("$bin") expect="bun $version" ;;
    deno) cmd=("$bin" run -A --node-modules-dir=manual) expect="deno $version" ;;
  esac
  printf '\n---- unit tests under %s\n' "$expect"
  start=$SECONDS
  if QS_RUNTIME=$expect "${cmd[@]}" node_modules/vitest/vitest.mjs run --project unit "${DIRS[@]}"; then
    printf -- '---- %s: passed in %ds\n' "$expect" $((SECONDS - start))
  else
    failed+=("$name")
  fi
done
if ((${#LINES[@]} == 0)); then
  echo 'no runtimes in the cache: run scripts/fetch-runtimes.sh' >&2
  exit 1
fi
if ((${#failed[@]})); then
  echo "unit tests failed under: ${failed[*]}" >&2
  exit 1
fi
