#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time and prints libFuzzer's exec counts.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60; the security review used 600)
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP lets the stable toolchain provide them.
# Sanitizers are off (-s none): the targets are safe Rust, and coverage guidance still works.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in envelope sdp; do
  mkdir -p "corpus/$target" "artifacts/$target"
  echo "== $target: ${seconds}s"
  mkdir -p "corpus-run/$target"
  # New inputs go to corpus-run/ (git-ignored); corpus/ holds the committed seeds.
  cargo fuzz run -s none "$target" "corpus-run/$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=16384 2>&1 \
    | tee "/tmp/taoyao-fuzz-$target.log" | grep -E "^#[0-9]+ +(DONE|pulse)|ERROR|panicked" | tail -3
done
