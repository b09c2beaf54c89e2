#!/usr/bin/env bash
# Performance figures of issue 7, printed as a Markdown table (for the
# README): on fresh servers (testenv/freshserver), the median of several
# runs of `provision plan` and of a no-op `provision apply` on a converged
# server, the first converge of a fresh server with the image already
# loaded, a 1 GiB image tar loaded by provision vs `docker load`, plan with
# that tar loaded, and provision's peak RSS. No timed assertions: figures.
#
# Usage (as root): testenv/bench.sh [-runs N] [-converges N] [-big BYTES]
# Takes about 3 minutes with the cached root file system; needs ~3 GiB in
# /var/tmp for the big image.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "bench boots systemd-nspawn servers: run it as root." >&2
  exit 1
fi
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/usr/bin:/bin
dir=$(mktemp -d /tmp/provision-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
CGO_ENABLED=0 go build -trimpath -o "$dir/provision" ./cmd/provision
go build -o "$dir/bench" ./testenv/e2e/bench
"$dir/bench" -provision "$dir/provision" "$@"
