#!/bin/sh
# mmdebstrap customize hook; $1 is the rootfs. Like the image composer: role units are started only by
# storm-roled, so nothing a package enabled for a role runs at boot.
set -eu
root="$1"
systemctl --root="$root" disable corosync-qnetd.service
# The container has no real consoles or hardware: units that only slow the boot down.
systemctl --root="$root" mask systemd-networkd-wait-online.service getty@tty1.service
# storm-roled keeps its state here; the directory exists in the image as on a node.
mkdir -p "$root/var/lib/stormnode" "$root/etc/stormnode"
