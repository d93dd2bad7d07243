// Linked into the sanitizer build only (CMakeLists.txt, RDMA_NODE_SANITIZE): makes UBSan honour the
// log_path of UBSAN_OPTIONS, as ASan does with ASAN_OPTIONS's, so that scripts/sanitize.sh finds every
// report in files. GCC's UBSan runtime (libubsan.so.1) is a library of its own beside ASan's, with its own
// copy of the sanitizer common code; started next to ASan it leaves its report path unset and writes to
// stderr, which the test suites and the processes they spawn capture or drop. Its own copy of
// __sanitizer_set_report_path is found through its handle (the plain name resolves to ASan's copy).
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <string>

__attribute__((constructor)) static void UbsanLogPath() {
  const char* options = std::getenv("UBSAN_OPTIONS");
  const char* at = options != nullptr ? std::strstr(options, "log_path=") : nullptr;
  void* ubsan = dlopen("libubsan.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (at == nullptr || ubsan == nullptr) return;
  at += std::strlen("log_path=");
  std::string path(at, std::strcspn(at, ":"));
  auto set = reinterpret_cast<void (*)(const char*)>(dlsym(ubsan, "__sanitizer_set_report_path"));
  if (set != nullptr) set(path.c_str());
}
