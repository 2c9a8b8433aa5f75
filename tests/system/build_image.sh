#!/bin/bash
# Fixture: build image/minimal.yaml ONCE per test run into a shared place that the integration image
# test and the system tests read: ARTIFACTS/repo (archive, signed), ARTIFACTS/gpg (the test key, kept
# outside the image), ARTIFACTS/pub.asc, ARTIFACTS/build.out, ARTIFACTS/image.env (REF, COMMIT, FPR).
# Usage: build_image.sh ARTIFACTS
# Env: STORMNODE_SOURCE_DIR, STORMNODE_BINARY_DIR (set by ctest); STORMNODE_DEB to use a prebuilt
# stormnode .deb; STORMNODE_CACHE (default /var/cache/stormnode).
set -euo pipefail
src=${STORMNODE_SOURCE_DIR:?}
bin=${STORMNODE_BINARY_DIR:?}
out=${1:?usage: build_image.sh ARTIFACTS}
cache=${STORMNODE_CACHE:-/var/cache/stormnode}
stormctl="$bin/bin/stormctl"
ref=stormnode/bookworm/x86_64/node

for tool in mmdebstrap ostree gpg cpack; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: composing an image needs root"; exit 77; }

rm -rf "$out/repo" "$out/pkg" "$out/image.env"
mkdir -p "$out"
if [ ! -d "$out/gpg" ]; then
    mkdir -m 0700 "$out/gpg"
    gpg --homedir "$out/gpg" --batch --pinentry-mode loopback --passphrase '' \
        --quick-gen-key "stormnode system test <test@stormnode.invalid>" rsa2048 sign never 2>/dev/null
fi
fpr=$(gpg --homedir "$out/gpg" --batch --with-colons --list-secret-keys | awk -F: '/^fpr/ {print $10; exit}')
gpg --homedir "$out/gpg" --batch --armor --export "$fpr" >"$out/pub.asc"

deb=${STORMNODE_DEB:-}
if [ -z "$deb" ]; then
    (cd "$bin" && cpack -G DEB -B "$out/pkg" >"$out/cpack.log" 2>&1) || {
        echo "cpack could not build the stormnode .deb:"
        tail -20 "$out/cpack.log"
        exit 1
    }
    deb=$(ls "$out"/pkg/stormnode_*.deb)
fi

echo "building image/minimal.yaml (cache $cache)"
start=$(date +%s)
if ! "$stormctl" image build "$src/image/minimal.yaml" --repo "$out/repo" --catalog "$src/roles/catalog" \
        --cache "$cache" --gpg-homedir "$out/gpg" --gpg-key "$fpr" --deb "$deb" \
        >"$out/build.out" 2>"$out/build.err"; then
    echo "FAILED: stormctl image build"
    tail -40 "$out/build.err"
    exit 1
fi
commit=$(awk '/^commit / {print $2}' "$out/build.out")
echo "built $commit in $(($(date +%s) - start)) s"
printf 'REF=%s\nCOMMIT=%s\nFPR=%s\n' "$ref" "$commit" "$fpr" >"$out/image.env"
