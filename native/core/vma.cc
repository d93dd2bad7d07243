#include "core/vma.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

namespace rdma {

// PROCMAP_QUERY (Linux 6.11, include/uapi/linux/fs.h), which Debian 12's headers predate.
struct ProcmapQuery {
  uint64_t size, query_flags, query_addr, vma_start, vma_end, vma_flags, vma_page_size, vma_offset, inode;
  uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
  uint64_t vma_name_addr, build_id_addr;
};
static_assert(sizeof(ProcmapQuery) == 104, "the kernel's struct procmap_query");
constexpr unsigned long kProcmapQuery = _IOWR('f', 17, ProcmapQuery);
constexpr uint64_t kVmaShared = 0x08;

// 1: all private, 0: not, -1: the kernel has no PROCMAP_QUERY.
static int QueryPrivate(int fd, uintptr_t start, uintptr_t end) {
  for (uintptr_t at = start; at < end;) {
    ProcmapQuery query = {};
    query.size = sizeof query;
    query.query_addr = at;
    if (ioctl(fd, kProcmapQuery, &query) != 0) return errno == ENOENT ? 0 : -1;  // ENOENT: a hole
    if (query.vma_flags & kVmaShared) return 0;
    at = query.vma_end;
  }
  return 1;
}

// The same from the text of /proc/self/maps: "start-end perms ..." lines, perms like "rw-p" or "rw-s".
static bool ParsePrivate(int fd, uintptr_t start, uintptr_t end) {
  std::string text;
  char chunk[16384];
  for (ssize_t n; (n = read(fd, chunk, sizeof chunk)) > 0;) text.append(chunk, static_cast<size_t>(n));
  uintptr_t covered = start;
  for (size_t line = 0; line < text.size() && covered < end;) {
    char* rest;
    uintptr_t from = std::strtoull(text.c_str() + line, &rest, 16);
    uintptr_t to = std::strtoull(rest + 1, &rest, 16);
    if (to > covered && from < end) {
      if (from > covered || rest[4] != 'p') return false;  // a hole, or shared
      covered = to;
    }
    size_t next = text.find('\n', line);
    line = next == std::string::npos ? text.size() : next + 1;
  }
  return covered >= end;
}

bool PrivatelyMapped(uintptr_t start, uintptr_t end) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  int answer = QueryPrivate(fd, start, end);
  bool is_private = answer >= 0 ? answer == 1 : ParsePrivate(fd, start, end);
  close(fd);
  return is_private;
}

}  // namespace rdma
