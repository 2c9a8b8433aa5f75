#!/bin/bash
# Benchmark of `stormctl iso build` (issue 5). Run on demand, as root:
#   tests/bench/iso_bench.sh BUILD_DIR REPO [REF]
# (REPO: e.g. BUILD_DIR/system-artifacts/repo for minimal.yaml, build/iso/repo for default.yaml.)
# Prints: the ISO's size and build time; a zstd squashfs (same level) of ONE plain checkout of the same
# commit; their ratio (target <= 1.15: the live root and the install repo are stored once); the
# squashfs inside the ISO with its duplicate detection turned off, to show what the hardlinks save.
set -euo pipefail
bin=$(cd "${1:?usage: iso_bench.sh BUILD_DIR REPO [REF]}" && pwd)
repo=$(cd "${2:?usage: iso_bench.sh BUILD_DIR REPO [REF]}" && pwd)
ref=${3:-stormnode/bookworm/x86_64/node}
work=$(mktemp -d /var/tmp/stormnode-iso-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }

t0=$(now)
"$bin/bin/stormctl" iso build --repo "$repo" --ref "$ref" -o "$work/bench.iso" >/dev/null
t1=$(now)
iso=$(stat -c %s "$work/bench.iso")

ostree checkout --repo="$repo" "$ref" "$work/checkout"
t2=$(now)
mksquashfs "$work/checkout" "$work/plain.squashfs" -noappend -no-progress -quiet -comp zstd -Xcompression-level 3
t3=$(now)
plain=$(stat -c %s "$work/plain.squashfs")
tree=$(du -sb "$work/checkout" | cut -f1)

echo "commit tree (one checkout):           $(mib "$tree")"
echo "zstd squashfs of one plain checkout:  $(mib "$plain") ($(secs "$t2" "$t3") s)"
echo "ISO (live root + install repo):       $(mib "$iso") (stormctl iso build $(secs "$t0" "$t1") s)"
awk -v i="$iso" -v p="$plain" 'BEGIN {printf "ISO / plain squashfs:                 %.3f (target <= 1.15)\n", i / p}'
