#!/bin/bash
# Benchmark of `stormctl image build` (issue 4). Run on demand, as root, with network to Debian's mirror:
#   tests/bench/image_bench.sh BUILD_DIR [MANIFEST...]      (default: image/minimal.yaml)
# For each manifest: a cold compose (empty .deb cache, no cached rootfs) next to a bare mmdebstrap of the
# same package set in the same run; a recompose after adding one package (warm .deb cache); the static
# delta's size against the full commit. Prints figures; asserts nothing.
#   tests/bench/image_bench.sh --cold-only BUILD_DIR image/default.yaml
#       only the cold compose next to the bare mmdebstrap (issue 4's "default cold <= 1.2x bare" figure;
#       25+ minutes of both cores: not on a shared machine)
#   tests/bench/image_bench.sh --dry-run [--cold-only] BUILD_DIR [MANIFEST...]
#       prints the package set and the commands each step would run, runs none of them
# Env: STORMNODE_DEB (the stormnode .deb; default: cpack in BUILD_DIR), BENCH_EXTRA_PACKAGE (default: less).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
cold_only=0
dry_run=0
while [ $# -gt 0 ]; do
    case "$1" in
        --cold-only) cold_only=1; shift ;;
        --dry-run) dry_run=1; shift ;;
        --*) echo "image_bench.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
bin=$(cd "${1:?usage: image_bench.sh [--cold-only] [--dry-run] BUILD_DIR [MANIFEST...]}" && pwd)
shift
manifests=("$@")
[ ${#manifests[@]} -gt 0 ] || manifests=("$src/image/minimal.yaml")
extra=${BENCH_EXTRA_PACKAGE:-less}
stormctl="$bin/bin/stormctl"
work=$(mktemp -d /var/tmp/stormnode-image-bench.XXXXXX)
trap 'gpgconf --homedir "$work/gpg" --kill gpg-agent 2>/dev/null || true; rm -rf "$work"' EXIT

if [ "$dry_run" = 1 ]; then
    for manifest in "${manifests[@]}"; do
        mapfile -t packages < <("$stormctl" image packages "$manifest" --catalog "$src/roles/catalog")
        [ ${#packages[@]} -gt 0 ] || { echo "image_bench.sh: no packages for $manifest" >&2; exit 1; }
        include=$(IFS=,; echo "${packages[*]}")
        echo "== $(basename "$manifest" .yaml): ${#packages[@]} packages"
        echo "bare:  mmdebstrap --mode=root --variant=minbase --format=tar --include=$include --include=STORMNODE_DEB" \
             "--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount bookworm WORK/bare.tar"
        echo "cold:  $stormctl image build $manifest --repo WORK/repo --catalog $src/roles/catalog --cache WORK/cache" \
             "--gpg-homedir WORK/gpg --gpg-key FPR --deb STORMNODE_DEB"
        [ "$cold_only" = 1 ] || echo "warm:  the same with extra_packages: [$extra], then again unchanged; image diff"
    done
    exit 0
fi

deb=${STORMNODE_DEB:-}
if [ -z "$deb" ]; then
    (cd "$bin" && cpack -G DEB -B "$work/pkg" >/dev/null)
    deb=$(ls "$work"/pkg/stormnode_*.deb)
fi
mkdir -m 0700 "$work/gpg"
gpg --homedir "$work/gpg" --batch --pinentry-mode loopback --passphrase '' \
    --quick-gen-key "stormnode bench <bench@stormnode.invalid>" rsa2048 sign never 2>/dev/null
fpr=$(gpg --homedir "$work/gpg" --batch --with-colons --list-secret-keys | awk -F: '/^fpr/ {print $10; exit}')

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }

for manifest in "${manifests[@]}"; do
    name=$(basename "$manifest" .yaml)
    echo "== $name ($manifest)"
    mapfile -t packages < <("$stormctl" image packages "$manifest" --catalog "$src/roles/catalog")
    include=$(IFS=,; echo "${packages[*]}")

    # Bare mmdebstrap of the same package set, cold (its own empty apt cache).
    t0=$(now)
    mmdebstrap --mode=root --variant=minbase --format=tar --include="$include" --include="$deb" \
        --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount bookworm "$work/bare-$name.tar" \
        >/dev/null 2>"$work/bare.err"
    t1=$(now)
    bare=$(secs "$t0" "$t1")
    echo "bare mmdebstrap:       ${bare} s, tar $(mib "$(stat -c %s "$work/bare-$name.tar")")"
    rm -f "$work/bare-$name.tar"

    # Cold compose: empty cache dir, new repo.
    cache="$work/cache-$name"
    repo="$work/repo-$name"
    t0=$(now)
    "$stormctl" image build "$manifest" --repo "$repo" --catalog "$src/roles/catalog" --cache "$cache" \
        --gpg-homedir "$work/gpg" --gpg-key "$fpr" --deb "$deb" >"$work/cold.out" 2>"$work/cold.err"
    t1=$(now)
    cold=$(secs "$t0" "$t1")
    objects=$(find "$repo/objects" -type f | wc -l)
    size=$(du -sb "$repo" | cut -f1)
    echo "cold compose:          ${cold} s ($(awk -v c="$cold" -v b="$bare" 'BEGIN {printf "%.2f", c / b}')x bare)," \
         "repo $(mib "$size"), $objects objects"
    grep -E "done in" "$work/cold.err" | sed 's/^/    /'
    [ "$cold_only" = 1 ] && continue

    # Recompose with one more package (warm .deb cache; the rootfs differs, so mmdebstrap runs again).
    cp "$manifest" "$work/$name-plus.yaml"
    sed -i "s/^extra_packages:.*//" "$work/$name-plus.yaml"
    echo "extra_packages: [$extra]" >>"$work/$name-plus.yaml"
    t0=$(now)
    "$stormctl" image build "$work/$name-plus.yaml" --repo "$repo" --catalog "$src/roles/catalog" \
        --cache "$cache" --gpg-homedir "$work/gpg" --gpg-key "$fpr" --deb "$deb" >"$work/warm.out" 2>"$work/warm.err"
    t1=$(now)
    echo "recompose (+$extra):   $(secs "$t0" "$t1") s, $(grep -E '^objects written' "$work/warm.out")"
    grep -E "done in" "$work/warm.err" | sed 's/^/    /'
    delta=$(awk '/^delta from/ {print $4}' "$work/warm.out")
    echo "static delta:          $(mib "${delta:-0}") = $(awk -v d="${delta:-0}" -v s="$size" 'BEGIN {printf "%.2f", 100 * d / s}')% of the first commit's repo"

    # Recompose with the same inputs: cached rootfs, import only.
    t0=$(now)
    "$stormctl" image build "$work/$name-plus.yaml" --repo "$repo" --catalog "$src/roles/catalog" \
        --cache "$cache" --gpg-homedir "$work/gpg" --gpg-key "$fpr" --deb "$deb" >"$work/same.out" 2>"$work/same.err"
    t1=$(now)
    echo "rebuild, same inputs:  $(secs "$t0" "$t1") s (cached rootfs), $(grep -E '^objects written' "$work/same.out")"
    "$stormctl" image diff --repo "$repo" "$(awk '/^commit/ {print $2}' "$work/cold.out")" \
        "$(awk '/^commit/ {print $2}' "$work/warm.out")" | sed 's/^/    /'
done
