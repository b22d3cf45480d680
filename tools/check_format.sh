#!/usr/bin/env bash
# Fails when a tracked C++ file differs from what .clang-format asks for (run by CTest).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp' 'bench/*.h')
if ! clang-format --dry-run --Werror $files; then
  echo "check_format: run clang-format -i on the files above" >&2
  exit 1
fi
echo "check_format: $(echo "$files" | wc -w) files formatted"
