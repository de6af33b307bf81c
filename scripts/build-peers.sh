#!/usr/bin/env bash
# Builds the Go-built real peers the interop tests talk to (derper, derpprobe, tailscaled, tailscale,
# headscale) from the Go module proxy, once per pinned version: a binary already present with the right
# version stamp is reused. Versions are pinned here and nowhere else.
set -euo pipefail

TAILSCALE_VERSION=${TAILSCALE_VERSION:-v1.102.3}
HEADSCALE_VERSION=${HEADSCALE_VERSION:-v0.29.2}
PEERS_BIN=${PEERS_BIN:-/opt/tsbin}

mkdir -p "$PEERS_BIN"
export GOBIN=$PEERS_BIN GOFLAGS=-trimpath GOTOOLCHAIN=${GOTOOLCHAIN:-auto}

stamp() { echo "$PEERS_BIN/.$1.version"; }
have() { [ -x "$PEERS_BIN/$1" ] && [ "$(cat "$(stamp "$1")" 2>/dev/null)" = "$2" ]; }

build_tailscale() {
  local cmds=() c
  for c in derper derpprobe tailscaled tailscale; do have "$c" "$TAILSCALE_VERSION" || cmds+=("tailscale.com/cmd/$c@$TAILSCALE_VERSION"); done
  if ((${#cmds[@]} == 0)); then echo "tailscale $TAILSCALE_VERSION: reusing $PEERS_BIN"; return; fi
  echo "building ${cmds[*]}"
  go install "${cmds[@]}"
  for c in derper derpprobe tailscaled tailscale; do echo "$TAILSCALE_VERSION" >"$(stamp "$c")"; done
}

build_headscale() {
  if have headscale "$HEADSCALE_VERSION"; then echo "headscale $HEADSCALE_VERSION: reusing $PEERS_BIN"; return; fi
  # `go install …@version` is refused here (the proxy does not serve headscale's version list), so
  # download that exact version and build it inside the module cache (research/real-peers.md §1).
  go mod download "github.com/juanfont/headscale@$HEADSCALE_VERSION"
  (cd "$(go env GOMODCACHE)/github.com/juanfont/headscale@$HEADSCALE_VERSION" &&
    CGO_ENABLED=0 go build -o "$PEERS_BIN/headscale" ./cmd/headscale)
  echo "$HEADSCALE_VERSION" >"$(stamp headscale)"
}

build_tailscale
build_headscale
ls -l "$PEERS_BIN"
