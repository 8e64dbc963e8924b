#!/usr/bin/env bash
# Installs the system packages the test suite needs on a fresh Debian 12 machine.
# Used by .ci/run; run it once by hand (as root) on a new development machine.
set -euo pipefail
packages=(
  # TLS roots for cargo's registry access.
  ca-certificates
  # The web client's end-to-end tests: headless Chromium, run inside a private network
  # namespace (unshare from util-linux, ip from iproute2).
  chromium
  iproute2
  util-linux
  # Real VP8 / Opus test media for the WebRTC tests (and ffprobe for recordings).
  ffmpeg
  # The side-by-side peer of the benchmarks (VideoRoom, AudioBridge); the bench's Janus smoke
  # test runs it.
  janus
  # The MCU's Opus decode / encode (the opus crate links the system libopus).
  libopus-dev
  pkg-config
  # The webm crate (recording) builds libwebm's C++ muxer with cc.
  g++
  # The web SDK's unit tests (node --test, no npm packages).
  nodejs
)
if [ "$(id -u)" -ne 0 ]; then
  echo "run as root (apt-get install)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${packages[@]}"
# The downloaded .debs are not needed once installed; the build needs the disk.
apt-get clean
