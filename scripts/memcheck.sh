#!/usr/bin/env bash
# npm run test:memcheck: valgrind memcheck over the debug cmake-js build (build-debug/, no sanitizers):
#   core    the C core's test program (test/native/core_test.cc) on this host, leaks included
#   device  a short device scenario inside the Soft-RoCE VM: test/device/post.test.ts run by one node under
#           valgrind, with the debug addon (RDMA_NODE_ADDON)
# Each fails on any error valgrind reports (--error-exitcode) and on any definite leak; the suppressions
# (scripts/memcheck-node.supp) cover Node and V8 internals only.
set -euo pipefail
cd "$(dirname "$0")/.."
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(core device)
bash scripts/setup.sh sanitize
npx --no-install tsc -p .
bash scripts/native-build.sh debug >/dev/null

# --smc-check: V8 writes and rewrites machine code in anonymous memory (the default only watches stacks).
memcheck=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite
  --errors-for-leak-kinds=definite --num-callers=30 --smc-check=all-non-file
  --suppressions="$PWD/scripts/memcheck-node.supp")
failed=()
for stage in "${stages[@]}"; do
  echo "# memcheck: $stage"
  case $stage in
    core)
      # valgrind has no userfaultfd (3.19: ENOSYS): the program then skips its monitor checks and exits
      # 77 after the rest (the interval tree, mapping kinds); the monitor runs under ASan (sanitize.sh core).
      status=0
      "${memcheck[@]}" build-debug/core_test || status=$?
      [ $status -eq 0 ] || [ $status -eq 77 ] || failed+=(core)
      ;;
    device)
      # One test file run by node itself (not node --test, which would start it in a child valgrind does not follow).
      node dist/lib/cli/main.js vm --timeout 3600 -- env RDMA_NODE_IN_VM=1 "RDMA_NODE_ADDON=$PWD/build-debug/Debug/rdma_native.node" \
        "${memcheck[@]}" node --expose-gc dist/test/device/post.test.js || failed+=(device)
      ;;
    *) echo "memcheck: unknown stage $stage (core, device)" >&2; exit 2 ;;
  esac
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "# memcheck: FAILED (${failed[*]})" >&2
  exit 1
fi
echo "# memcheck: clean (${stages[*]})"
