#!/bin/sh
# mmdebstrap customize hook for the cluster variant; $1 is the rootfs. Like the image composer: the role
# units are started by storm-roled only, never by the boot (these packages enable theirs at install).
set -eu
root="$1"
systemctl --root="$root" disable mariadb.service garb.service corosync-qnetd.service haproxy.service keepalived.service \
    corosync.service corosync-qdevice.service pacemaker.service postgresql.service \
    zabbix-server.service zabbix-agent.service apache2.service
