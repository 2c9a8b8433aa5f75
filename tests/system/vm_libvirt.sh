#!/bin/bash
# stormctl vm through a real libvirtd (qemu driver, TCG): a tiny grub-mkrescue ISO whose grub.cfg prints
# a marker on the serial port is booted with BIOS and with UEFI (Secure Boot off); the marker is read
# from the serial log libvirt keeps for the domain's pty; vm list shows the VM; vm destroy removes the
# domain, its disk and its UEFI variables. Exit 77 when libvirt's daemon cannot be installed.
set -euo pipefail
bin=${STORMNODE_BINARY_DIR:?}
stormctl="$bin/bin/stormctl"
uri=qemu:///system
marker="STORMNODE-VM-MARKER-$$"

if ! command -v libvirtd >/dev/null; then
    echo "vm_libvirt: installing libvirt's daemon"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libvirt-daemon \
        libvirt-daemon-driver-qemu libvirt-clients libvirt-daemon-system >/dev/null; then
        echo "SKIP: libvirt-daemon cannot be installed here"; exit 77
    fi
fi

# libvirt must be able to read the files: not a 0700 temp dir.
work=/var/lib/stormnode/vm-systest-$$
mkdir -p "$work/state"
chmod 0755 /var/lib/stormnode "$work" "$work/state"
started_libvirtd=""
started_virtlogd=""
cleanup() {
    for vm in "bios-$$" "uefi-$$"; do
        "$stormctl" vm --connect "$uri" destroy "$vm" >/dev/null 2>&1 || true
    done
    [ -f "$work/rack.yaml" ] && "$stormctl" vm --connect "$uri" --state-dir "$work/state" rack \
        --inventory "$work/rack.yaml" --name "r$$" --destroy >/dev/null 2>&1 || true
    # Only the daemons this test started, by their pid files.
    [ -n "$started_libvirtd" ] && kill "$(cat "$work/libvirtd.pid")" 2>/dev/null || true
    [ -n "$started_virtlogd" ] && kill "$(cat "$work/virtlogd.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Test setup, not product code: without udev /dev/kvm is not root:kvm 0660, and libvirt then re-probes
# qemu on every lookup (a define takes over a minute).
if [ -e /dev/kvm ] && getent group kvm >/dev/null; then
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi
if ! timeout 20 virsh -c "$uri" version >/dev/null 2>&1; then
    # No systemd to start them: virtlogd (serial logs) first, then libvirtd; -d returns once listening.
    virtlogd -d --pid-file "$work/virtlogd.pid"; started_virtlogd=1
    libvirtd -d --pid-file "$work/libvirtd.pid"; started_libvirtd=1
    # Calls wait until the drivers are initialised (~12 s with the /dev/kvm fix).
    timeout 180 virsh -c "$uri" version >/dev/null
fi

# The ISO: GRUB prints the marker on the serial port (BIOS and UEFI alike), then powers off.
mkdir -p "$work/iso/boot/grub"
cat >"$work/iso/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_output serial console
echo "$marker \$grub_platform"
halt
CFG
grub-mkrescue -o "$work/tiny.iso" "$work/iso" -- -volid STORMTINY >/dev/null 2>&1
chmod 0644 "$work/tiny.iso"

failures=0
for mode in bios uefi; do
    name="$mode-$$"
    flags=()
    [ "$mode" = uefi ] && flags=(--uefi)
    platform=pc
    [ "$mode" = uefi ] && platform=efi
    started=$(date +%s.%N)
    if ! "$stormctl" vm --connect "$uri" --state-dir "$work/state" run "$work/tiny.iso" --name "$name" \
        --memory 256 --disk-size 1 --console "${flags[@]}" >"$work/run.out" 2>"$work/run.err"; then
        echo "FAILED: $mode: vm run:"; cat "$work/run.err"; failures=$((failures + 1)); continue
    fi
    grep -q "^console /dev/pts/" "$work/run.out" || { echo "FAILED: $mode: no console pty in:"; cat "$work/run.out"; failures=$((failures + 1)); }
    log="$work/state/$name/serial.log"
    # tail -F follows the log as virtlogd writes it (inotify), grep ends at the marker: no polling.
    # (tail ends with this script at the latest.)
    if timeout 180 grep -q -m1 "$marker $platform" <(tail --pid=$$ -F "$log" 2>/dev/null); then
        ended=$(date +%s.%N)
        echo "ok: $mode: serial marker after $(awk "BEGIN { printf \"%.1f\", $ended - $started }") s"
    else
        echo "FAILED: $mode: no '$marker $platform' in $log:"; cat "$log" 2>/dev/null || true; failures=$((failures + 1))
    fi
    "$stormctl" vm --connect "$uri" list | grep -q "^$name	" || { echo "FAILED: $mode: not in vm list"; failures=$((failures + 1)); }
    [ "$mode" = uefi ] && { [ -s "$work/state/$name/uefi-vars.fd" ] || { echo "FAILED: uefi: no UEFI variables file"; failures=$((failures + 1)); }; }
    "$stormctl" vm --connect "$uri" destroy "$name"
    if virsh -c "$uri" dominfo "$name" >/dev/null 2>&1 || [ -e "$work/state/$name" ]; then
        echo "FAILED: $mode: domain or its files left after destroy"; failures=$((failures + 1))
    else
        echo "ok: $mode: destroyed with its disk and files"
    fi
done

# vm rack: an isolated network (the inventory's bridge and server address, no DHCP of libvirt's) and one
# network-booting domain per node with its inventory MAC; --destroy removes all of it. Nothing serves
# the network here (pxe serve is system.pxe_rack's): the VMs are defined, started and destroyed.
# libvirtd started by hand (no systemd-tmpfiles) lacks the directory its network driver writes each
# network's MAC list to when a domain joins it.
mkdir -p /var/lib/libvirt/dnsmasq
bridge="snr$$"
bridge=${bridge:0:15}
cat >"$work/rack.yaml" <<YAML
network:
  interface: $bridge
  subnet: 10.231.0.0/24
  server: 10.231.0.1
  range: [10.231.0.100, 10.231.0.199]
defaults:
  disk: {min_size: 1G}
  wipe: true
nodes:
  "52:54:00:7a:00:01":
    hostname: quorum-1
    roles: [quorum]
  "52:54:00:7a:00:02":
    hostname: spare-1
    roles: []
YAML
rack_ok=1
if ! "$stormctl" vm --connect "$uri" --state-dir "$work/state" rack --inventory "$work/rack.yaml" \
    --name "r$$" --memory 256 --disk-size 1 --catalog "${STORMNODE_SOURCE_DIR:?}/roles/catalog" \
    >"$work/rack.out" 2>"$work/rack.err"; then
    echo "FAILED: vm rack:"; cat "$work/rack.err"; rack_ok=0
fi
cat "$work/rack.out"
net_xml=$(virsh -c "$uri" net-dumpxml "stormnode-r$$" 2>&1 || true)
grep -q "<bridge name='$bridge'" <<<"$net_xml" || { echo "FAILED: rack network has no bridge $bridge: $net_xml"; rack_ok=0; }
grep -q "<dhcp" <<<"$net_xml" && { echo "FAILED: the rack network runs libvirt's DHCP"; rack_ok=0; }
ip -4 addr show dev "$bridge" 2>/dev/null | grep -q "inet 10.231.0.1/24" || { echo "FAILED: $bridge lacks 10.231.0.1/24"; rack_ok=0; }
for vm in "r$$-quorum-1:52:54:00:7a:00:01" "r$$-spare-1:52:54:00:7a:00:02"; do
    name=${vm%%:*} mac=${vm#*:}
    state=$(virsh -c "$uri" domstate --reason "$name" 2>&1 || true)
    grep -q running <<<"$state" || {
        echo "FAILED: $name is not running: $state"; tail -5 "/var/log/libvirt/qemu/$name.log" 2>/dev/null; rack_ok=0
    }
    nics=$(virsh -c "$uri" domiflist "$name" 2>&1 || true)
    grep -q "stormnode-r$$ .*$mac" <<<"$nics" || { echo "FAILED: $name has no NIC $mac on the rack network: $nics"; rack_ok=0; }
done
"$stormctl" vm --connect "$uri" --state-dir "$work/state" rack --inventory "$work/rack.yaml" --name "r$$" \
    --catalog "$STORMNODE_SOURCE_DIR/roles/catalog" --destroy || rack_ok=0
if virsh -c "$uri" net-info "stormnode-r$$" >/dev/null 2>&1 || virsh -c "$uri" dominfo "r$$-quorum-1" >/dev/null 2>&1 \
    || [ -e "$work/state/r$$-quorum-1" ] || ip link show "$bridge" >/dev/null 2>&1; then
    echo "FAILED: vm rack --destroy left the network, a domain, its files or the bridge"; rack_ok=0
fi
[ "$rack_ok" = 1 ] && echo "ok: rack: network, 2 network-booting VMs with their MACs, destroyed" || failures=$((failures + 1))

echo "$((3 - failures < 0 ? 0 : 3 - failures)) of 3 checks passed (bios, uefi, rack), $failures failures"
[ "$failures" = 0 ]
