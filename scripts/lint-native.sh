#!/usr/bin/env bash
# npm run lint:native: clang-tidy with the checks of .clang-tidy over every native source, through the
# compile database of the debug cmake-js build (build-debug/compile_commands.json, made here). Fails on any
# finding (.clang-tidy: WarningsAsErrors). Needs clang-tidy (bash scripts/setup.sh sanitize).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh sanitize
bash scripts/native-build.sh debug >/dev/null
# run-clang-tidy: one clang-tidy per file of the database, in parallel (non-zero if any found something).
# Its output without the counts of warnings suppressed in headers outside native/ (node's, napi.h).
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
run-clang-tidy -quiet -p build-debug -j "$(nproc)" "$PWD/(native|test/native)/" >"$out" 2>&1 || status=$?
grep -v -e '^[0-9]* warnings\? generated\.$' -e '^Suppressed [0-9]* warnings' -e '^Use -header-filter' "$out" || true
[ $status -eq 0 ] || { echo "lint:native: clang-tidy FAILED" >&2; exit 1; }
echo "lint:native: clang-tidy found nothing in $(grep -c '"file"' build-debug/compile_commands.json) files"
