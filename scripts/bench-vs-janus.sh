#!/usr/bin/env bash
# taoyao and Janus side by side, same machine, same run: installs Janus (Debian package) if it
# is missing, builds release binaries, then inside a private network namespace (Janus gathers no
# ICE candidates on loopback interfaces, so 127.0.0.2 sits on a bridge; see docs/benchmarks.md)
# starts Janus with scripts/janus/*.jcfg and taoyao-server, and runs each scenario against
# taoyao and Janus alternately. Prints the figures and the taoyao/Janus ratios; everything lands
# in $OUT (target/bench-vs-janus by default). Run as root (apt-get, unshare -n).
#
# Sizes and windows can be changed from the environment:
#   BENCH_SECONDS=10 FANOUT="5 10 20 40" MEETING="3 5 8" MCU="4 8 16" JOINS=30 SIGNAL="1000"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$TARGET_DIR/bench-vs-janus}

if [ "${1:-}" != "--inside" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "run as root (apt-get install janus, unshare -n)" >&2
    exit 1
  fi
  if ! command -v janus >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq janus >/dev/null
  fi
  for tool in ffmpeg unshare ip; do
    command -v "$tool" >/dev/null || { echo "$tool missing: scripts/install-test-deps.sh" >&2; exit 1; }
  done
  (cd "$ROOT" && cargo build --release -p taoyao-server -p taoyao-bench)
  # Private copies: a shared target directory may be rebuilt by someone else meanwhile.
  BIN=$(mktemp -d)
  cp "$TARGET_DIR/release/taoyao-server" "$TARGET_DIR/release/taoyao-bench" "$BIN/"
  mkdir -p "$OUT"
  rm -f "$OUT"/*.json
  exec unshare -n "$0" --inside "$BIN"
fi

BIN=$2
SECS=${BENCH_SECONDS:-10}
FANOUT=${FANOUT:-5 10 20 40}
MEETING=${MEETING:-3 5 8}
MCU=${MCU:-4 8 16}
JOINS=${JOINS:-30}
SIGNAL=${SIGNAL:-1000}

ip link set lo up
ip link add janus0 type bridge
ip addr add 127.0.0.2/32 dev janus0
ip link set janus0 up

janus -F "$ROOT/scripts/janus" -o >"$OUT/janus.log" 2>&1 &
JANUS=$!
# The bench's taoyao: defaults, but rooms and clients big enough for the largest sizes.
TAOYAO__ROOMS__MAX_MEMBERS=1000 TAOYAO__SIGNAL__MAX_CLIENTS=20000 \
  TAOYAO__SIGNAL__MAX_CONNECTIONS=22000 TAOYAO__LOG__LEVEL=warn \
  "$BIN/taoyao-server" --listen 127.0.0.1:8888 >"$OUT/taoyao.log" 2>&1 &
TAOYAO=$!
trap 'kill $JANUS $TAOYAO 2>/dev/null; wait 2>/dev/null; rm -rf "$BIN"' EXIT
ulimit -n 65536 || true

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 100); do
  if up 8188 && up 8888; then break; fi
  sleep 0.1
done
up 8188 || { echo "Janus did not start:" >&2; tail "$OUT/janus.log" >&2; exit 1; }
up 8888 || { echo "taoyao did not start:" >&2; tail "$OUT/taoyao.log" >&2; exit 1; }

echo "machine: $(nproc) CPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "janus $(janus --version 2>/dev/null | head -1 | awk '{print $NF}') pid $JANUS, taoyao pid $TAOYAO"

bench() {
  "$BIN/taoyao-bench" --quiet --bind-ip 127.0.0.2 --media-dir "$TARGET_DIR/bench-media" "$@"
}
side_by_side() {
  local scenario=$1 flag=$2 sizes=$3
  for n in $sizes; do
    for target in taoyao janus; do
      local pid=$TAOYAO
      [ "$target" = janus ] && pid=$JANUS
      echo "== $scenario $flag $n on $target"
      bench --target "$target" --server-pid "$pid" --json "$OUT/$scenario-$n-$target.json" \
        "$scenario" "$flag" "$n" --seconds "$SECS" | tail -n +3 | grep -v '^wrote' ||
        echo "   (failed: see above)"
    done
  done
}

side_by_side sfu-fanout --subscribers "$FANOUT"
side_by_side meeting --members "$MEETING"
side_by_side mcu --members "$MCU"
echo "== join x$JOINS on taoyao"
bench --server-pid "$TAOYAO" --json "$OUT/join-taoyao.json" join --joins "$JOINS" | tail -n +3 | grep -v '^wrote' ||
  echo "   (failed: see above)"
for n in $SIGNAL; do
  echo "== signal $n clients on taoyao"
  bench --server-pid "$TAOYAO" --json "$OUT/signal-$n-taoyao.json" signal --clients "$n" \
    --seconds "$SECS" | tail -n +3 | grep -v '^wrote' || echo "   (failed: see above)"
done

echo
echo "== all figures and taoyao/Janus ratios (cost: server CPU per forwarded packet; mcu: per mixed participant)"
bench compare "$OUT"/*.json --chart "$OUT/chart.svg" | tee "$OUT/summary.md"
