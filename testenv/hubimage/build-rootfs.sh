#!/bin/sh
# build-rootfs.sh builds the base root file system of the JupyterHub stand-in
# image: Debian bookworm (debootstrap minbase) with Debian's JupyterHub 3.0,
# configurable-http-proxy, the classic notebook server and tornado.
#
# It builds into a temporary directory next to DEST and renames it into
# place, so an interrupted build never leaves a half root file system. A
# lock on DEST.lock serialises concurrent builders; the second finds DEST.
# The chroot runs in a private mount namespace (unshare -m), so its /proc
# mount goes away with it even when the build is killed. policy-rc.d
# refuses to start daemons inside the chroot.
#
# Usage: build-rootfs.sh DEST MIRROR
# MIRROR is the Debian mirror URI, read from this machine's apt sources.
set -eu

dest=$1
mirror=$2
mkdir -p "$(dirname "$dest")"

exec 9>"$dest.lock"
flock 9

if [ -e "$dest/.complete" ]; then
	exit 0
fi
# A killed build (no trap ran) leaves its temporary directory; holding the
# lock, no one else is building.
rm -rf "$dest".build.*

tmp=$(mktemp -d "$dest.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"

debootstrap --variant=minbase bookworm "$tmp" "$mirror"

printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
chmod 755 "$tmp/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$tmp/etc/resolv.conf"

unshare --mount --propagation private -- sh -eu -c '
	mount -t proc proc "$1/proc"
	export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
	chroot "$1" apt-get update -q
	chroot "$1" apt-get install -y -q --no-install-recommends \
		jupyterhub node-configurable-http-proxy python3-notebook \
		python3-tornado ca-certificates adduser
	chroot "$1" apt-get clean
' build "$tmp"

# Keep the image small and free of this machine's settings.
rm -rf "$tmp/var/lib/apt/lists/"* "$tmp/var/cache/apt/"* "$tmp/var/cache/debconf/"*-old \
	"$tmp/var/log/"*.log "$tmp/var/log/apt/"* "$tmp/usr/sbin/policy-rc.d"
: >"$tmp/etc/resolv.conf"
echo jupyterhub >"$tmp/etc/hostname"
touch "$tmp/.complete"

rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
