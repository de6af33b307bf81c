#!/usr/bin/env bash
# Fetches DuckDB's own httpfs, quack and ducklake extensions (1.5.5, the version @duckdb/node-api
# 1.5.5-r.x is built on) from PyPI's duckdb-extension-* wheels, once, into a cache directory, and
# prints one `name<TAB>path` line per extension. Tests and CI load them by path (LOAD '<path>'),
# so nothing downloads extensions at run time.
#
# Usage: scripts/fetch-duckdb-extensions.sh [CACHE_DIR]   (default: .cache/duckdb-extensions,
#        or $QUACKSCALE_DUCKDB_EXTENSIONS). Set WHEEL_DIR to reuse already downloaded wheels.
# Needs python3; pip is used when it has it, else the wheel comes from PyPI's simple index
# ($PIP_INDEX_URL if set) and is checked against the index's sha256.
set -euo pipefail

VERSION=1.5.5
NAMES=(httpfs quack ducklake)
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${1:-${QUACKSCALE_DUCKDB_EXTENSIONS:-$ROOT/.cache/duckdb-extensions}}"
PYTHON="${PYTHON:-python3}"

ext_path() { echo "$CACHE/duckdb_extension_$1/extensions/v$VERSION/$1.duckdb_extension"; }

missing=()
for n in "${NAMES[@]}"; do [[ -f "$(ext_path "$n")" ]] || missing+=("$n"); done

if ((${#missing[@]})); then
  mkdir -p "$CACHE/wheels"
  for n in "${missing[@]}"; do
    # A wheel already at hand (WHEEL_DIR, or the cache from an earlier run) saves the download.
    found=$(ls "${WHEEL_DIR:-/nonexistent}"/duckdb_extension_"$n"-"$VERSION"-*.whl \
      "$CACHE"/wheels/duckdb_extension_"$n"-"$VERSION"-*.whl 2>/dev/null | head -n1 || true)
    if [[ -z "$found" ]]; then
      if "$PYTHON" -m pip --version >/dev/null 2>&1; then
        "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -d "$CACHE/wheels" \
          "duckdb-extension-$n==$VERSION" >&2
      else
        # No pip (Debian's python3 comes without it): the same wheel from PyPI's simple index.
        "$PYTHON" - "$n" "$VERSION" "$CACHE/wheels" <<'PY' >&2
import hashlib, os, platform, re, sys, urllib.request
name, version, dest = sys.argv[1:4]
tags = {('Linux', 'x86_64'): 'manylinux2014_x86_64', ('Linux', 'aarch64'): 'manylinux2014_aarch64',
        ('Darwin', 'arm64'): 'macosx_11_0_arm64', ('Darwin', 'x86_64'): 'macosx_11_0_x86_64'}
tag = tags.get((platform.system(), platform.machine()))
if not tag:
    sys.exit(f'fetch-duckdb-extensions: no wheel for {platform.system()} {platform.machine()}')
index = os.environ.get('PIP_INDEX_URL', 'https://pypi.org/simple').rstrip('/')
page = urllib.request.urlopen(f'{index}/duckdb-extension-{name}/').read().decode()
want = f'duckdb_extension_{name}-{version}-py3-none-{tag}.whl'
for url, digest in re.findall(r'href="([^"#]+)#sha256=([0-9a-f]{64})"', page):
    if url.rsplit('/', 1)[-1] == want:
        data = urllib.request.urlopen(url).read()
        if hashlib.sha256(data).hexdigest() != digest:
            sys.exit(f'fetch-duckdb-extensions: {want}: sha256 does not match the index')
        with open(os.path.join(dest, want), 'wb') as f:
            f.write(data)
        break
else:
    sys.exit(f'fetch-duckdb-extensions: {want} not in {index}')
PY
      fi
      found=$(ls "$CACHE"/wheels/duckdb_extension_"$n"-"$VERSION"-*.whl | head -n1)
    fi
    # A wheel is a zip; python's zipfile avoids depending on unzip being installed.
    "$PYTHON" -m zipfile -e "$found" "$CACHE/"
    # Older repacks shipped gzipped binaries; gunzip keeps DuckDB's signature footer intact.
    find "$CACHE/duckdb_extension_$n" -name '*.duckdb_extension.gz' -exec gunzip -f {} +
    [[ -f "$(ext_path "$n")" ]] || { echo "fetch-duckdb-extensions: $n not found in $found" >&2; exit 1; }
  done
fi

for n in "${NAMES[@]}"; do printf '%s\t%s\n' "$n" "$(ext_path "$n")"; done
