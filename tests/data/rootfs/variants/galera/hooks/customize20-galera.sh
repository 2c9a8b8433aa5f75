#!/bin/sh
# mmdebstrap customize hook for the galera variant; $1 is the rootfs. Like the image composer: the role
# units are started by storm-roled only, never by the boot (mariadb-server and galera-arbitrator-4
# enable theirs).
set -eu
root="$1"
systemctl --root="$root" disable mariadb.service garb.service
