#!/bin/bash
# Every C++ file of the tree is formatted as .clang-format says (clang-format-16): the house style is checked,
# not hoped for. Prints each file that differs and the first lines of the difference; exit 1 if any does.
# Fix with: clang-format-16 -i FILE...
set -euo pipefail
src=${1:?usage: check_format.sh SOURCE_DIR}
formatter=${CLANG_FORMAT:-clang-format-16}
if ! command -v "$formatter" >/dev/null; then
    echo "SKIP: $formatter is not installed (tests/run-all installs it)"
    exit 77
fi
cd "$src"
if [ -d .git ] || git rev-parse --git-dir >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h')
else
    mapfile -t files < <(find common roles image installer firstboot iso tests -name '*.cpp' -o -name '*.hpp' -o -name '*.h')
fi
diff_out=$(mktemp)
trap 'rm -f "$diff_out"' EXIT
bad=0
for file in "${files[@]}"; do
    if ! diff -u "$file" <("$formatter" --style=file "$file") >"$diff_out" 2>&1; then
        echo "not formatted: $file"
        head -20 "$diff_out"
        bad=$((bad + 1))
    fi
done
echo "${#files[@]} files checked, $bad not formatted ($formatter $("$formatter" --version | grep -o '[0-9][0-9.]*' | head -1))"
((bad == 0))
