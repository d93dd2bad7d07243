#!/usr/bin/env bash
# The developer builds of the addon with cmake-js (CMakeLists.txt), beside node-gyp's build/ that users get:
#   native-build.sh asan    AddressSanitizer + UBSan: build-asan/Debug/rdma_native.node (and core_test)
#   native-build.sh debug   -O0 -g: build-debug/Debug/rdma_native.node, build-debug/compile_commands.json
# Load one with RDMA_NODE_ADDON=$PWD/build-asan/Debug/rdma_native.node (the asan one needs the runtime
# preloaded: scripts/sanitize.sh). Needs cmake (bash scripts/setup.sh sanitize).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  asan) sanitize=ON ;;
  debug) sanitize=OFF ;;
  *) echo "usage: native-build.sh asan|debug" >&2; exit 2 ;;
esac
# -D: the Debug configuration (-g, asserts on); the asan flavour adds -O1 for speed. -m: make, as node-gyp.
npx --no-install cmake-js build -D -m --out "build-$1" --parallel "$(nproc)" --CDRDMA_NODE_SANITIZE=$sanitize --log-level warn
