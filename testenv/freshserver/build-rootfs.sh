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
# The Debian mirror is DEBIAN_MIRROR or, by default, the one this machine's
# apt already uses: the first non-security URIs: line of
# /etc/apt/sources.list.d/*.sources, else the first deb line of
# /etc/apt/sources.list. No mirror host is written into the repository.
#
# Usage: build-rootfs.sh [CACHE_DIR]   (default /var/cache/provision-test/rootfs-bookworm)
set -eu

mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(sed -En 's/^URIs:[[:space:]]*([^[:space:]]+).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v -- '-security' | head -n 1)
fi
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list ]; then
	mirror=$(sed -En 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' /etc/apt/sources.list | grep -v -- '-security' | head -n 1)
fi
if [ -z "$mirror" ]; then
	echo "build-rootfs.sh: no Debian mirror in this machine's apt sources; set DEBIAN_MIRROR" >&2
	exit 1
fi

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
	bookworm "$tmp" "$mirror"

# A fresh server: no root password prompt, a known hostname, no apt cache.
echo freshserver >"$tmp/etc/hostname"
rm -rf "$tmp/var/cache/apt/archives/"*.deb
# The journal must be persistent so the host can read it with journalctl -D.
mkdir -p "$tmp/var/log/journal"

rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
