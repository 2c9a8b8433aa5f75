#!/bin/bash
# Benchmark of rack provisioning (issue 7): one node, then four at once, from one `pxe serve`, each a
# TCG VM of a virtual rack (stormctl vm rack on a libvirtd of the test's own). Runs the system test's
# binary (tests/system/test_pxe_rack.cpp) with the rack's shape set, and prints its figures: time to
# role healthy, HTTP bytes per node against the boot artifacts, pxe serve's CPU per node against the
# node's own install. Run on demand, as root, on a machine with nothing else running (every VM is
# CPU-bound under TCG):
#   tests/bench/pxe_bench.sh BUILD_DIR [ARTIFACTS]
# ARTIFACTS: the system tests' image fixture (repo, image.env); default BUILD_DIR/system-artifacts.
# The update with a static delta is tests/bench/delta_bench.sh.
set -euo pipefail
bin=$(cd "${1:?usage: pxe_bench.sh BUILD_DIR [ARTIFACTS]}" && pwd)
art=$(cd "${2:-$bin/system-artifacts}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
tests="$bin/tests/system/pxe-rack-tests"
[ -x "$tests" ] || { echo "pxe_bench.sh: $tests is not built (cmake --build $bin --target pxe-rack-tests)" >&2; exit 2; }
[ -f "$art/image.env" ] || { echo "pxe_bench.sh: no image fixture in $art (ctest -R system.image)" >&2; exit 2; }
log=$(mktemp -d /tmp/pxe-bench.XXXXXX)
for nodes in 1 4; do
    echo "== $nodes node(s) at once"
    status=0
    STORMNODE_SOURCE_DIR="$src" STORMNODE_BINARY_DIR="$bin" STORMNODE_SYSTEM_ARTIFACTS="$art" \
        STORMNODE_CATALOG_DIR="$src/roles/catalog" STORMNODE_PXE_RACK_KNOWN=$nodes STORMNODE_PXE_RACK_UNKNOWN=0 \
        "$tests" >"$log/rack-$nodes.out" 2>&1 || status=$?
    grep -E "^(pxe rack:|pxe build:|libvirtd ready:)" "$log/rack-$nodes.out" | sed 's/^/    /'
    if [ "$status" != 0 ]; then
        echo "pxe_bench.sh: the $nodes-node rack failed (exit $status); its output: $log/rack-$nodes.out" >&2
        exit 1
    fi
done
rm -rf "$log"
