#!/bin/bash
# Benchmark of `stormctl install` (issue 5). Run on demand, as root:
#   tests/bench/install_bench.sh BUILD_DIR REPO PUBLIC_KEY [REF]
# (e.g. BUILD_DIR/system-artifacts/{repo,pub.asc}). On one sparse disk image behind a loop device:
# the whole install (partition, format, GPG-verified pull, deploy, bootloader), then a raw copy of the
# same tree bytes (a tar of one checkout, fsync'ed) to the same device; prints both and their ratio.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(cd "${1:?usage: install_bench.sh BUILD_DIR REPO PUBLIC_KEY [REF]}" && pwd)
repo=$(cd "${2:?usage: install_bench.sh BUILD_DIR REPO PUBLIC_KEY [REF]}" && pwd)
key=${3:?usage: install_bench.sh BUILD_DIR REPO PUBLIC_KEY [REF]}
ref=${4:-stormnode/bookworm/x86_64/node}
work=$(mktemp -d /var/tmp/stormnode-install-bench.XXXXXX)
loop=
cleanup() {
    [ -z "$loop" ] || { partx --delete "$loop" 2>/dev/null || true; losetup --detach "$loop"; }
    rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }

truncate -s 12G "$work/disk.img"
loop=$(losetup --find --show "$work/disk.img")
printf 'console=ttyS0\n' >"$work/cmdline"
sync; echo 3 >/proc/sys/vm/drop_caches
t0=$(now)
"$bin/bin/stormctl" install --disk "$loop" --answers "$src/tests/system/data/quorum-answers.yaml" \
    --source-repo "$repo" --ref "$ref" --gpg-key "$key" --catalog "$src/roles/catalog" \
    --cmdline-file "$work/cmdline" --yes >"$work/install.log" 2>&1
t1=$(now)
partx --delete "$loop" 2>/dev/null || true

ostree checkout --repo="$repo" "$ref" "$work/checkout"
tree=$(du -sb "$work/checkout" | cut -f1)
sync; echo 3 >/proc/sys/vm/drop_caches
t2=$(now)
tar -C "$work/checkout" -cf - . | dd of="$loop" bs=4M conv=fsync status=none
t3=$(now)

echo "tree: $(awk -v b="$tree" 'BEGIN {printf "%.1f MiB", b / 1048576}')"
echo "stormctl install:  $(secs "$t0" "$t1") s"
echo "raw copy (tar|dd): $(secs "$t2" "$t3") s"
awk -v a="$(secs "$t0" "$t1")" -v b="$(secs "$t2" "$t3")" 'BEGIN {printf "install / raw copy: %.2f\n", a / b}'
