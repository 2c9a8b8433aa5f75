#!/bin/bash
# Integration (root, network namespaces): `stormctl pxe serve` on a bridge in a namespace of its own,
# and a client machine (a veth with an inventory MAC) in another: a real DHCP client (busybox udhcpc)
# gets the inventory's address and the BIOS boot file, fetches it over TFTP, then the per-MAC boot
# config, answer file and artifacts over HTTP, and reports its state; the node table shows it all with
# the bytes served. Then: Ctrl-C stops dnsmasq too; a second DHCP server on the network makes serve
# refuse unless --proxy-dhcp; bad inventories and a missing interface are refused with clear messages.
# Env: STORMNODE_BINARY_DIR, STORMNODE_SOURCE_DIR (set by ctest).
set -uo pipefail

bin=${STORMNODE_BINARY_DIR:?}
src=${STORMNODE_SOURCE_DIR:?}
stormctl="$bin/bin/stormctl"
export STORMNODE_CATALOG_DIR="$src/roles/catalog"
failures=0
checks=0

if [ "$(id -u)" != 0 ]; then
    echo "needs root (network namespaces)"
    exit 77
fi
for tool in ip dnsmasq busybox curl grub-mknetdir; do
    if ! command -v "$tool" >/dev/null; then
        echo "missing $tool (tests/run-all installs the test dependencies: dnsmasq-base busybox curl grub)"
        exit 77
    fi
done

srv=snpxe-s$$
cli=snpxe-c$$
work=$(mktemp -d /tmp/stormnode-pxe-it.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    ip netns del "$srv" 2>/dev/null
    ip netns del "$cli" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

check() {  # check "what" command...
    local what=$1
    shift
    checks=$((checks + 1))
    if "$@"; then
        echo "ok: $what"
    else
        echo "FAIL: $what"
        failures=$((failures + 1))
    fi
}

# Waits until a line matching the regex $2 appears in file $1: reads the file as it grows (tail -F),
# gives up when process $3 ends or after 30 s.
wait_for_line() {
    local file=$1 pattern=$2 pid=$3 line fd found=1
    exec {fd}< <(exec timeout 30 tail -n +1 --pid="$pid" -F "$file" 2>/dev/null)
    local reader=$!
    while IFS= read -r -u "$fd" line; do
        if [[ $line =~ $pattern ]]; then
            found=0
            break
        fi
    done
    kill "$reader" 2>/dev/null
    exec {fd}<&-
    return "$found"
}

# --- the network: server bridge 10.10.0.1/24, client veth with db-1's MAC --------------------------
ip netns add "$srv"
ip netns add "$cli"
ip -n "$srv" link set lo up
ip -n "$cli" link set lo up
ip -n "$srv" link add br0 type bridge
ip -n "$srv" link set br0 up
ip -n "$srv" addr add 10.10.0.1/24 dev br0
ip -n "$srv" link add veth-s type veth peer name veth-c netns "$cli"
ip -n "$srv" link set veth-s master br0 up
ip -n "$cli" link set veth-c address 52:54:00:00:00:01 up

# --- artifacts: real GRUB netboot images and configs, small stand-ins for kernel, initrd, squashfs ----
art="$work/artifacts"
mkdir -p "$art"
"$stormctl" pxe build --boot-only -o "$art" >"$work/build.out" 2>&1
check "pxe build --boot-only makes core.0, core.efi, grub.cfg and boot.ipxe" \
    test -s "$art/grub/i386-pc/core.0" -a -s "$art/grub/x86_64-efi/core.efi" -a -s "$art/grub/grub.cfg" -a -s "$art/boot.ipxe"
head -c 3000000 /dev/urandom >"$art/vmlinuz"
head -c 5000000 /dev/urandom >"$art/initrd.img"
head -c 16000000 /dev/urandom >"$art/squashfs.img"
chmod 0644 "$art"/*

inventory="$src/tests/data/inventory/good/rack.yaml"
run="$work/run"

start_serve() {  # start_serve OUT ERR extra-args...
    local out=$1 err=$2
    shift 2
    ip netns exec "$srv" "$stormctl" pxe serve --inventory "$inventory" --interface br0 --artifacts "$art" \
        --run-dir "$run" --dhcp-probe-ms 1500 "$@" >"$out" 2>"$err" &
    serve_pid=$!
    pids+=("$serve_pid")
}

start_serve "$work/serve.out" "$work/serve.err"
check "pxe serve announces it is ready" wait_for_line "$work/serve.err" "ready:" "$serve_pid"

# --- the client: DHCP, TFTP, HTTP ----------------------------------------------------------------------
cat >"$work/udhcpc.sh" <<SCRIPT
#!/bin/sh
# busybox udhcpc calls this with bound/renew: keep what the server said and configure the link.
if [ "\$1" = bound ] || [ "\$1" = renew ]; then
    printf 'ip=%s\nboot_file=%s\nsiaddr=%s\nhostname=%s\n' "\$ip" "\$boot_file" "\$siaddr" "\$hostname" >"$work/lease"
    ip addr add "\$ip/\$mask" dev "\$interface"
fi
SCRIPT
chmod +x "$work/udhcpc.sh"
ip netns exec "$cli" busybox udhcpc -i veth-c -f -q -n -t 5 -T 2 -s "$work/udhcpc.sh" >"$work/udhcpc.out" 2>&1
check "a DHCP client with db-1's MAC gets a lease" test -s "$work/lease"
cat "$work/lease" 2>/dev/null
check "it gets db-1's inventory address" grep -qx "ip=10.10.0.11" "$work/lease"
check "it gets the BIOS boot file" grep -qx "boot_file=grub/i386-pc/core.0" "$work/lease"
check "next-server is the server" grep -qx "siaddr=10.10.0.1" "$work/lease"

ip netns exec "$cli" curl -sS --max-time 20 -o "$work/core.0" tftp://10.10.0.1/grub/i386-pc/core.0
check "TFTP serves the boot file unchanged" cmp -s "$work/core.0" "$art/grub/i386-pc/core.0"

http() {  # http PATH OUTFILE [curl args]: prints the bytes received
    local path=$1 out=$2
    shift 2
    ip netns exec "$cli" curl -sS --max-time 20 -o "$out" -w '%{size_download}' "$@" "http://10.10.0.1$path"
}
http /boot/grub/52:54:00:00:00:01.cfg "$work/db1.cfg" >/dev/null
check "db-1's GRUB config installs with its answer file" \
    grep -q "stormnode.install=unattended stormnode.answers=http://10.10.0.1/answers/52:54:00:00:00:01.yaml" "$work/db1.cfg"
http /boot/ipxe/52:54:00:00:00:99.ipxe "$work/unknown.ipxe" >/dev/null
check "an unknown MAC boots live, without install" \
    bash -c "grep -q 'root=live:http://10.10.0.1/squashfs.img' '$work/unknown.ipxe' && ! grep -q stormnode.install '$work/unknown.ipxe'"
http /answers/52:54:00:00:00:01.yaml "$work/answers.yaml" >/dev/null
check "db-1's answer file names it and its role" \
    bash -c "grep -qx 'hostname: db-1' '$work/answers.yaml' && grep -q 'roles: \[db\]' '$work/answers.yaml'"
code=$(ip netns exec "$cli" curl -s -o /dev/null -w '%{http_code}' http://10.10.0.1/answers/52:54:00:00:00:99.yaml)
check "an unknown MAC has no answer file (404)" test "$code" = 404
code=$(ip netns exec "$cli" curl -s -o /dev/null -w '%{http_code}' "http://10.10.0.1/../../etc/passwd" --path-as-is)
check "nothing outside the artifacts is served" test "$code" = 404

fetched=0
for f in vmlinuz initrd.img squashfs.img; do
    n=$(http "/$f" "$work/$f")
    fetched=$((fetched + n))
done
check "the artifacts come back byte for byte" \
    bash -c "cmp -s '$work/vmlinuz' '$art/vmlinuz' && cmp -s '$work/initrd.img' '$art/initrd.img' && cmp -s '$work/squashfs.img' '$art/squashfs.img'"
ip netns exec "$cli" "$stormctl" pxe report installing --url http://10.10.0.1/report --mac 52:54:00:00:00:01 \
    --detail "integration test"
check "a node's report is accepted" test $? = 0
code=$(ip netns exec "$cli" curl -s -o /dev/null -w '%{http_code}' -d 'mac=52:54:00:00:00:01&state=dancing' http://10.10.0.1/report)
check "a report with an unknown state is refused (400)" test "$code" = 400

check "the node table shows db-1 installing with its address" \
    wait_for_line "$work/serve.out" "^52:54:00:00:00:01  db-1 .*10.10.0.11 .*installing" "$serve_pid"
row=$(grep "^52:54:00:00:00:01" "$work/serve.out" | tail -1)
echo "last table row: $row"
mb=$(echo "$row" | awk '{print $5}')
expected_mb=$(awk -v b="$fetched" -v c="$(stat -c %s "$work/db1.cfg")" 'BEGIN { printf "%.1f", b / 1e6 }')
echo "figure: HTTP bytes served to db-1 (artifacts): $fetched bytes; table says $mb MB (artifacts $expected_mb MB)"
check "the table counts the HTTP bytes served to db-1" test "$mb" = "$expected_mb"
# GET /nodes: the same table for programs, exact bytes (tab-separated).
ip netns exec "$cli" curl -sS --max-time 20 -o "$work/nodes.tsv" http://10.10.0.1/nodes
check "GET /nodes has db-1 installing with the exact bytes served" \
    grep -qP "^52:54:00:00:00:01\tdb-1\t10.10.0.11\tyes\tinstalling\t$fetched\t" "$work/nodes.tsv"
check "dnsmasq's DHCPACK for db-1 is in its log" grep -q "DHCPACK(br0) 10.10.0.11 52:54:00:00:00:01" "$run/dnsmasq.log"
check "TFTP sent the boot file (dnsmasq log)" grep -q "sent .*core.0 to 10.10.0.11" "$run/dnsmasq.log"

dnsmasq_pid=$(pgrep -f -- "--conf-file=$run/dnsmasq.conf" | head -1)
kill -INT "$serve_pid"
wait "$serve_pid"
status=$?
check "Ctrl-C stops pxe serve cleanly (exit 0)" test "$status" = 0
check "and the dnsmasq it started" bash -c "! kill -0 '$dnsmasq_pid' 2>/dev/null"

# --- a second DHCP server on the network ---------------------------------------------------------------
ip -n "$cli" addr flush dev veth-c
ip -n "$cli" addr add 10.10.0.2/24 dev veth-c
ip netns exec "$cli" dnsmasq --keep-in-foreground --port=0 --interface=veth-c --bind-interfaces --pid-file= \
    --user=root --dhcp-leasefile="$work/rogue.leases" --dhcp-range=10.10.0.50,10.10.0.60,1h \
    --log-facility="$work/rogue.log" --log-dhcp &
rogue_pid=$!
pids+=("$rogue_pid")
check "a second DHCP server runs on the network" wait_for_line "$work/rogue.log" "DHCP, IP range" "$rogue_pid"
# the default probe time: dnsmasq pings an address for ~3 s before it offers it
timeout 60 ip netns exec "$srv" "$stormctl" pxe serve --inventory "$inventory" --interface br0 --artifacts "$art" \
    --run-dir "$run" >"$work/serve2.out" 2>"$work/serve2.err"
status=$?
cat "$work/serve2.err"
check "pxe serve refuses to be a second DHCP server (exit 1)" test "$status" = 1
check "and says why" grep -q "another DHCP server (10.10.0.2) answers on br0" "$work/serve2.err"
check "it never became ready" bash -c "! grep -q 'ready:' '$work/serve2.err'"

rm -f "$run/dnsmasq.log"
start_serve "$work/serve3.out" "$work/serve3.err" --proxy-dhcp
check "with --proxy-dhcp it starts beside the other server" wait_for_line "$work/serve3.err" "ready: proxy-DHCP" "$serve_pid"
check "dnsmasq runs as proxy-DHCP" grep -q "^dhcp-range=10.10.0.0,proxy,255.255.255.0" "$run/dnsmasq.conf"
kill -TERM "$serve_pid"
wait "$serve_pid"
check "SIGTERM stops it (exit 0)" test $? = 0

# --- refusals ------------------------------------------------------------------------------------------
"$stormctl" pxe validate "$src/tests/data/inventory/bad/duplicate-mac.yaml" >"$work/v.out" 2>&1
status=$?
cat "$work/v.out"
check "a duplicate MAC is refused with exit 2" test "$status" = 2
check "naming file:line:col" grep -q "duplicate-mac.yaml:13:3: duplicate MAC 52:54:00:00:00:0a (first at line 11)" "$work/v.out"
"$stormctl" pxe serve --inventory "$src/tests/data/inventory/bad/unknown-role.yaml" --interface lo --artifacts "$art" \
    --run-dir "$run" >"$work/v2.out" 2>&1
status=$?
check "pxe serve refuses an inventory with an unknown role (exit 2)" test "$status" = 2
check "naming the role and where" grep -q "unknown-role.yaml:10:21: unknown role 'webserver'" "$work/v2.out"
ip netns exec "$srv" "$stormctl" pxe serve --inventory "$inventory" --interface nosuch0 --artifacts "$art" \
    --run-dir "$run" >"$work/v3.out" 2>&1
status=$?
cat "$work/v3.out"
check "an interface that does not exist is refused (exit 2)" test "$status" = 2
check "and named" grep -q "interface 'nosuch0' does not exist" "$work/v3.out"
# lo exists, but the inventory's server address is on br0: nodes could not reach the server there.
ip netns exec "$srv" "$stormctl" pxe serve --inventory "$inventory" --interface lo --artifacts "$art" \
    --run-dir "$run" >"$work/v4.out" 2>&1
status=$?
cat "$work/v4.out"
check "an interface without the server's address is refused (exit 2)" test "$status" = 2
check "saying which address" grep -q "server address 10.10.0.1 is not on interface 'lo'" "$work/v4.out"

echo "$checks checks, $failures failed"
[ "$failures" = 0 ]
