#!/usr/bin/env bash
# npm run test:sanitize [-- unit|device|core ...] (default: all three): the test suites against the
# AddressSanitizer + UndefinedBehaviorSanitizer build of the addon (CMakeLists.txt, build-asan/), then
# clang-tidy (scripts/lint-native.sh). Fails on any failing test and on any sanitizer report, from any process
# (node test runners, the child processes tests spawn, workers): every report goes to a file under
# tmp/sanitize/ (log_path; PIDs in the names), and the run fails if one exists afterwards.
#   core    the C core's test program (test/native/core_test.cc) built with the sanitizers, leak check on
#   unit    the unit suite on this host
#   device  the device suite inside the Soft-RoCE VM (sanitizer environment passed into the guest)
# Not part of `npm test`: the sanitized VM run takes about 1.4 times as long as the plain one (more on a busy host).
set -euo pipefail
cd "$(dirname "$0")/.."
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(core unit device lint)

bash scripts/setup.sh sanitize
npx --no-install tsc -p .
bash scripts/native-build.sh asan

logs=$PWD/tmp/sanitize
rm -rf "$logs"
mkdir -p "$logs"
# Node is not built with ASan: the runtime must come first in the process (LD_PRELOAD), before the addon
# that needs it is dlopen()ed. Child processes inherit it (and RDMA_NODE_ADDON) through the environment.
runtime=$(gcc -print-file-name=libasan.so)
[ -f "$runtime" ] || { echo "sanitize: gcc's libasan.so not found ($runtime)" >&2; exit 1; }
addon=$PWD/build-asan/Debug/rdma_native.node
# detect_leaks=0 in Node: Node and V8 free much of their memory only at exit or never, and every allocation
# the addon makes is under a frame of node's (a JS call), so a suppression of node's frames would also
# suppress every leak of the addon's. Leaks of the C core are checked by the core stage (a plain C++
# program, leak check on); the addon's objects by the tests' own handle and resource counts and by
# scripts/memcheck.sh. UBSan reports and continues (CMakeLists.txt): every report is counted here.
# quarantine_size_mb: freed memory held back to catch use after free, 256 MiB by default in every process
# (the collectives tests start a dozen node processes and mpirun's): 64 MiB each still fits the VM.
asan_options="log_path=$logs/asan:detect_leaks=0:quarantine_size_mb=64"
ubsan_options="log_path=$logs/ubsan:print_stacktrace=1"
sanitized=(env "LD_PRELOAD=$runtime" "ASAN_OPTIONS=$asan_options" "UBSAN_OPTIONS=$ubsan_options" "RDMA_NODE_ADDON=$addon")

failed=()
for stage in "${stages[@]}"; do
  echo "# sanitize: $stage"
  case $stage in
    core)
      # The core test needs no preload: it is linked with the sanitizers itself.
      env "ASAN_OPTIONS=log_path=$logs/asan:detect_leaks=1" "UBSAN_OPTIONS=$ubsan_options" build-asan/core_test || failed+=(core)
      ;;
    unit)
      "${sanitized[@]}" node dist/lib/cli/main.js test unit || failed+=(unit)
      ;;
    device)
      # On the host only the VM runs (qemu must not get the preload); inside, the sanitized test run.
      node dist/lib/cli/main.js vm --timeout 7200 --memory 6144 -- "${sanitized[@]}" RDMA_NODE_IN_VM=1 node dist/lib/cli/main.js test device ${RDMA_NODE_SANITIZE_FILTER:+--filter "$RDMA_NODE_SANITIZE_FILTER"} || failed+=(device)
      ;;
    lint)
      bash scripts/lint-native.sh || failed+=(lint)
      ;;
    *) echo "sanitize: unknown stage $stage (core, unit, device, lint)" >&2; exit 2 ;;
  esac
done

# A report is an ASan/LSan error or a UBSan "runtime error"; the runtime also logs warnings (ASan on a
# stack switch: swapcontext in npm's processes), printed here but not failing the run.
files=$(find "$logs" -type f -size +0 | sort)  # a process may open its log and write nothing
reports=$( [ -z "$files" ] || grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' $files || true)
for f in $files; do
  case " $(echo $reports) " in *" $f "*) continue ;; esac
  echo "# sanitize: runtime notes, not reports: $f" >&2; cat "$f" >&2
done
if [ -n "$reports" ]; then
  echo "# sanitize: $(echo "$reports" | wc -l) sanitizer report(s):" >&2
  for f in $reports; do echo "## $f" >&2; cat "$f" >&2; done
  failed+=(reports)
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "# sanitize: FAILED (${failed[*]})" >&2
  exit 1
fi
echo "# sanitize: clean (${stages[*]})"
