#!/bin/sh
# build-rootfs.sh builds the cached Debian bookworm root file system that
# freshserver boots throwaway copies of. It builds into a temporary directory
# next to the cache and renames it into place, so an interrupted build never
# leaves a half root file system behind. Safe to run concurrently: a lock
# serialises builders and the second one finds the cache ready.
#
# The cache invalidates itself: the build writes the sha256 of this script
# (ROOTFS_STAMP, which freshserver passes since it runs the script from
# standard input; else computed from the file) to /etc/provision-test-rootfs,
# and a cache with another stamp is rebuilt. The old copy is renamed away and
# deleted once no overlay mount (a running fresh server, the demo's) may
# still use it as its lower dir.
#
# libpam-systemd is listed because debootstrap cannot resolve polkitd's
# virtual dependency on default-logind by itself. openssh-server is there for
# tests that reach servers over SSH; its service stays disabled and the root
# file system holds no host keys (a test's EnableSSH makes a key per server).
# python3-docker is for Ansible's docker modules in the comparison benchmark.
#
# The Debian mirror is DEBIAN_MIRROR or, by default, the one this machine's
# apt already uses: the first non-security URIs: line of
# /etc/apt/sources.list.d/*.sources, else the first deb line of
# /etc/apt/sources.list. No mirror host is written into the repository.
#
# Usage: build-rootfs.sh [CACHE_DIR]   (default /var/cache/provision-test/rootfs-bookworm)
set -eu

if [ -z "${ROOTFS_STAMP:-}" ]; then
	ROOTFS_STAMP=$(sha256sum "$0")
fi
stamp=${ROOTFS_STAMP%% *}

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

# reap deletes old copies once no overlay mount names the cache (or an old
# copy) as its lower dir: mountinfo shows the path given at mount time, so a
# server booted before the rename shows $dest too. Holding the lock, no one
# else is building, so build directories left by a killed builder go too.
reap() {
	rm -rf "$dest".build.*
	if ! grep -qF -e "lowerdir=$dest," -e "lowerdir=$dest:" -e "lowerdir=$dest.old." /proc/self/mountinfo; then
		rm -rf "$dest".old.*
	fi
}
reap

if [ "$(cat "$dest/etc/provision-test-rootfs" 2>/dev/null)" = "$stamp" ]; then
	exit 0
fi

echo "build-rootfs.sh: building $dest with debootstrap (takes a few minutes)" >&2
tmp=$(mktemp -d "$dest.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

debootstrap --variant=minbase \
	--include=systemd,systemd-sysv,libpam-systemd,dbus,firewalld,nftables,iptables,docker.io,iproute2,curl,ca-certificates,busybox-static,openssh-server,python3-docker \
	bookworm "$tmp" "$mirror"

# A fresh server: no root password prompt, a known hostname, no apt cache.
echo freshserver >"$tmp/etc/hostname"
rm -rf "$tmp/var/cache/apt/archives/"*.deb
# The journal must be persistent so the host can read it with journalctl -D.
mkdir -p "$tmp/var/log/journal"
# Every server boots a copy of this tree: host keys made here would be shared
# by all of them, and sshd without keys fails at boot.
rm -f "$tmp"/etc/ssh/ssh_host_*
systemctl --root="$tmp" --quiet disable ssh.service ssh.socket
echo "$stamp" >"$tmp/etc/provision-test-rootfs"

if [ -e "$dest" ]; then
	mv "$dest" "$(mktemp -u "$dest.old.XXXXXX")"
fi
mv "$tmp" "$dest"
trap - EXIT
reap
