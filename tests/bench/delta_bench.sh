#!/bin/bash
# Benchmark of an update over HTTP with a static delta (issue 7: HTTP bytes for an update <= 1.1 x the
# delta). Run on demand, as root (the image repo's files are root's):
#   tests/bench/delta_bench.sh BUILD_DIR [ARTIFACTS]
# ARTIFACTS: the system tests' image fixture (repo, gpg, image.env, pub.asc); default
# BUILD_DIR/system-artifacts. A copy of its repo under a temp dir (hard links: OSTree never changes an
# object in place) gets commit B = the image's commit A + one extra file, signed with the fixture's
# key, the static delta A -> B and the signed summary, as image build makes them; a bare-user repo
# with A stands for a node. BUILD_DIR/tests/bench/delta-pull serves the server's copy with pxe serve's HTTP
# server on loopback and pulls B into the node's copy with GPG verification. Prints figures.
# Env: BENCH_EXTRA_FILE (default /usr/bin/qemu-img, ~2 MB: a package-sized binary).
set -euo pipefail
bin=$(cd "${1:?usage: delta_bench.sh BUILD_DIR [ARTIFACTS]}" && pwd)
art=$(cd "${2:-$bin/system-artifacts}" && pwd)
extra_file=${BENCH_EXTRA_FILE:-/usr/bin/qemu-img}
# shellcheck source=/dev/null
. "$art/image.env"  # REF FPR
work=$(mktemp -d /tmp/delta-bench.XXXXXX)
cleanup() {
    gpgconf --homedir "$work/gpg" --kill gpg-agent 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cp -a "$art/gpg" "$work/gpg"
cp -al "$art/repo" "$work/server"
cp --remove-destination "$art/repo/config" "$work/server/config"  # rewritten by ostree, not in place
# The node: a bare-user repo with A, as a node's sysroot repo (libostree uses no static delta for an
# archive repo). Its remote, the bench's server, is added by delta-pull.
ostree init --repo="$work/node" --mode=bare-user
ostree pull-local --repo="$work/node" "$work/server" "$REF" >/dev/null

# A: what the ref holds now (image.env's COMMIT may be older, when the fixture was rebuilt).
from=$(ostree rev-parse --repo="$work/server" "$REF")
mkdir -p "$work/extra/usr/lib/stormnode-bench"
cp "$extra_file" "$work/extra/usr/lib/stormnode-bench/"
start=$(date +%s.%N)
ostree commit --repo="$work/server" --branch="$REF" --tree=ref="$from" --tree=dir="$work/extra" \
    --subject="bench: one extra file ($(basename "$extra_file"))" \
    --gpg-sign="$FPR" --gpg-homedir="$work/gpg" >/dev/null
mid=$(date +%s.%N)
ostree static-delta generate --repo="$work/server" --from="$from" --to="$REF" >/dev/null
ostree summary --repo="$work/server" -u --gpg-sign="$FPR" --gpg-homedir="$work/gpg"
end=$(date +%s.%N)
echo "extra file:            $extra_file, $(stat -c %s "$extra_file") bytes"
awk -v a="$start" -v b="$mid" -v c="$end" 'BEGIN {printf "commit %.1f s, static delta + summary %.1f s\n", b - a, c - b}'
"$bin/tests/bench/delta-pull" "$work/server" "$REF" "$work/node" "$art/pub.asc"
