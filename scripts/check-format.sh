#!/usr/bin/env bash
# The C sources and headers the project tracks are formatted as .clang-format says.
#
#   scripts/check-format.sh          list the files that drift (exit 1 if any)
#   scripts/check-format.sh --fix    format them in place
#
# Formatting differs between clang-format releases: the check uses release 14 (Debian 12's
# clang-format-14 package, which scripts/install-deps.sh installs), or CLANG_FORMAT if set.
set -euo pipefail
cd "$(dirname "$0")/.."

cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
    if command -v clang-format-14 >/dev/null 2>&1; then
        cf=clang-format-14
    elif clang-format --version 2>/dev/null | grep -q 'version 14\.'; then
        cf=clang-format
    else
        echo "format: clang-format 14 not found (apt-get install clang-format-14, or" \
            "scripts/install-deps.sh)"
        exit 1
    fi
fi

mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "${1:-}" = "--fix" ]; then
    "$cf" -i "${files[@]}"
    echo "format: ${#files[@]} files formatted"
    exit 0
fi

bad=()
for f in "${files[@]}"; do
    if ! "$cf" --dry-run --Werror "$f" >/dev/null 2>&1; then
        bad+=("$f")
    fi
done
if [ ${#bad[@]} -ne 0 ]; then
    printf 'format: %s is not formatted as .clang-format says\n' "${bad[@]}"
    echo "format: ${#bad[@]} of ${#files[@]} files drift (scripts/check-format.sh --fix," \
        "or $cf -i FILE; then review the diff)"
    exit 1
fi
echo "format: all ${#files[@]} C files formatted as .clang-format says ($cf)"
