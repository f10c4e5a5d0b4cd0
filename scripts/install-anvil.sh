#!/usr/bin/env bash
# Install Foundry's anvil dev node (a static binary from the npm registry) into .tools/anvil.
# Usage: scripts/install-anvil.sh [--global]   (--global also copies it to /usr/local/bin)
set -euo pipefail
VERSION="${ANVIL_VERSION:-1.7.1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.tools/anvil"
if [ -x "$dest" ] && "$dest" --version 2>/dev/null | grep -q "$VERSION"; then
  echo "anvil $VERSION already at $dest" >&2
else
  if command -v anvil >/dev/null 2>&1 && anvil --version 2>/dev/null | grep -q "$VERSION"; then
    mkdir -p "$root/.tools" && cp "$(command -v anvil)" "$dest"
  else
    command -v npm >/dev/null 2>&1 || { echo "npm is needed to fetch anvil (apt-get install npm)" >&2; exit 1; }
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "@foundry-rs/anvil-linux-amd64@$VERSION" >/dev/null && tar xzf ./*.tgz)
    mkdir -p "$root/.tools"
    cp "$tmp/package/bin/anvil" "$dest"
  fi
  chmod +x "$dest"
  echo "installed $("$dest" --version | head -1) at $dest" >&2
fi
if [ "${1:-}" = "--global" ] && [ ! -x /usr/local/bin/anvil ]; then
  cp "$dest" /usr/local/bin/anvil 2>/dev/null || echo "could not copy to /usr/local/bin (tests use .tools/anvil)" >&2
fi
