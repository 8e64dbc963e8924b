#!/usr/bin/env bash
# The test command: the whole workspace's tests (unit, integration over real sockets, and, as
# they land, real WebRTC peers and headless Chromium), then the web SDK's unit tests
# (node --test, no browser). Installs missing system packages first when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
# Tools the tests run (see scripts/install-test-deps.sh).
for tool in chromium ip unshare ffmpeg pkg-config janus g++ node; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
# The MCU's Opus codec links the system libopus.
pkg-config --exists opus 2>/dev/null || missing+=("libopus-dev")
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    bash scripts/install-test-deps.sh
  else
    echo "missing test tools: ${missing[*]}; run scripts/install-test-deps.sh as root" >&2
    exit 1
  fi
fi
cargo test --workspace --locked "$@"
node --test web/js/sdk/test/
