// What kind of mappings hold a range of this process's memory, as far as the registration cache cares.
#pragma once
#include <cstdint>

namespace rdma {

// True when [start, end) is wholly mapped by private mappings. Shared ones (memfd, tmpfs, MAP_SHARED
// anonymous memory) can lose or change their pages through a file descriptor (truncate, hole punching)
// without any userfaultfd event, so the monitor cannot vouch for them. Costs a system call or two (an
// ioctl per mapping on Linux 6.11+, /proc/self/maps read before): for cache misses only.
bool PrivatelyMapped(uintptr_t start, uintptr_t end);

}  // namespace rdma
