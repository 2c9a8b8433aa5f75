# Sourced by the integration scripts: counted checks that print ok/FAILED and keep going.
# The caller sets work (a scratch dir), checks=0 and failures=0.
# shellcheck shell=bash
check() {  # check "what" command...
    local what=$1
    shift
    checks=$((checks + 1))
    if "$@" >"$work/check.out" 2>&1; then
        echo "ok: $what"
    else
        echo "FAILED: $what"
        sed 's/^/    /' "$work/check.out" | tail -20
        failures=$((failures + 1))
    fi
}
check_fails() {  # check_fails "what" "expected message regex" command...
    local what=$1 pattern=$2
    shift 2
    checks=$((checks + 1))
    if "$@" >"$work/check.out" 2>&1; then
        echo "FAILED: $what (it succeeded)"
        failures=$((failures + 1))
    elif grep -Eqi "$pattern" "$work/check.out"; then
        echo "ok: $what: $(grep -Eim1 "$pattern" "$work/check.out")"
    else
        echo "FAILED: $what: no message matching '$pattern'"
        sed 's/^/    /' "$work/check.out" | tail -20
        failures=$((failures + 1))
    fi
}
