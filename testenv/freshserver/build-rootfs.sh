#!/bin/sh
# build-rootfs.sh builds the cached Debian bookworm root file system that
# freshserver boots throwaway copies of. It builds into a temporary directory
# next to the cache and renames it into place, so an interrupted build never
# leaves a half root file system behind. Safe to run concurrently: a lock
# serialises builders and the second one finds the cache ready.
#
# libpam-systemd is listed because debootstrap cannot resolve polkitd's
# virtual dependency on default-logind by itself.
#
# Usage: build-rootfs.sh [CACHE_DIR]   (default /var/cache/provision-test/rootfs-bookworm)
set -eu

dest=${1:-/var/cache/provision-test/rootfs-bookworm}
parent=$(dirname "$dest")
mkdir -p "$parent"

exec 9>"$dest.lock"
flock 9

if [ -x "$dest/lib/systemd/systemd" ]; then
	exit 0
fi

tmp=$(mktemp -d "$dest.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

debootstrap --variant=minbase \
	--include=systemd,systemd-sysv,libpam-systemd,dbus,firewalld,nftables,iptables,docker.io,iproute2,curl,ca-certificates,busybox-static \
	bookworm "$tmp" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# A fresh server: no root password prompt, a known hostname, no apt cache.
echo freshserver >"$tmp/etc/hostname"
rm -rf "$tmp/var/cache/apt/archives/"*.deb
# The journal must be persistent so the host can read it with journalctl -D.
mkdir -p "$tmp/var/log/journal"

rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
