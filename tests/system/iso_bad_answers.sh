#!/bin/bash
# Bad input: stormctl iso build with a malformed answer file names file:line:col, exits 2 and writes no
# ISO (it is refused before the image is even read, so no repo is needed).
set -euo pipefail
src=${STORMNODE_SOURCE_DIR:?}
bin=${STORMNODE_BINARY_DIR:?}
work=$(mktemp -d /tmp/stormnode-iso-bad.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
for name in unknown-keys syntax-error unknown-role; do
    answers="$src/tests/data/answers/bad/$name.yaml"
    status=0
    "$bin/bin/stormctl" iso build --repo "$work/no-repo" -o "$work/out.iso" --answers "$answers" \
        --catalog "$src/roles/catalog" >"$work/out" 2>"$work/err" || status=$?
    if [ "$status" != 2 ]; then
        echo "FAILED: $name: exit $status, expected 2"; failures=$((failures + 1))
    elif ! grep -Eq "$name\.yaml:[0-9]+:[0-9]+: " "$work/err"; then
        echo "FAILED: $name: no file:line:col in:"; cat "$work/err"; failures=$((failures + 1))
    elif ls "$work"/out.iso* >/dev/null 2>&1; then
        echo "FAILED: $name: something was written"; failures=$((failures + 1))
    else
        echo "ok: $name: $(grep -Em1 "$name\.yaml:[0-9]+:[0-9]+: " "$work/err")"
    fi
done
echo "$((3 - failures)) passed, $failures failed"
[ "$failures" = 0 ]
