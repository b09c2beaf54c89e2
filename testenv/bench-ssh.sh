#!/usr/bin/env bash
# `provision plan --all` of a converged two-host deployment over real
# OpenSSH with multiplexed connections, against the same check done by
# Ansible over SSH (testenv/ansible/deployment.yml, --check --diff), in the
# same run; printed as a Markdown table (for the README). On two fresh
# servers (testenv/freshserver) with the real JupyterHub image and an admin
# namespace of its own (testenv/sshadmin). No timed assertions: figures.
#
# Usage (as root): testenv/bench-ssh.sh [-runs N] [-facts N]
# Takes about 4 minutes with the cached root file system and image, 10 runs.
# Installs Debian's ansible when ansible-playbook is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "bench-ssh boots systemd-nspawn servers: run it as root." >&2
  exit 1
fi
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/usr/bin:/bin
if ! command -v ansible-playbook >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ansible
fi
dir=$(mktemp -d /tmp/provision-bench-ssh.XXXXXX)
trap 'rm -rf "$dir"' EXIT
CGO_ENABLED=0 go build -trimpath -o "$dir/provision" ./cmd/provision
go build -o "$dir/benchssh" ./testenv/e2e/benchssh
"$dir/benchssh" -provision "$dir/provision" "$@"
