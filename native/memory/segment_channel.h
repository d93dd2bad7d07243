// How a segment's memfd travels from its owner to a peer, on one of two channels the segment id names:
//   socket  rdma-seg:rdma-node-seg:<pid>:<nonce>:<number>
//           The owner's segment server, a thread serving a Unix socket in the abstract namespace, checks
//           the caller's credentials (SO_PEERCRED) against the permit as XPMEM does and hands the memfd
//           over with SCM_RIGHTS. The connection stays open: remove() is said on it, the owner's exit
//           shows as its end. Works between any users the permit lets in.
//   pidfd   rdma-seg:pidfd:<pid>:<memfd>:<notice fd>:<inode>
//           The peer takes the owner's descriptors itself with pidfd_getfd, which the kernel allows only to
//           processes that may ptrace the owner (the same user, or CAP_SYS_PTRACE; Yama scope 1 also
//           wants the owner to name the peer with PR_SET_PTRACER). The permit is the memfd's own mode,
//           checked by the peer; remove() is an eventfd the owner makes readable; the owner's exit is its
//           pidfd becoming readable. No thread, no socket.
// Either way a peer that asked for 'rdonly' holds a descriptor opened O_RDONLY: it can neither map the
// memory writable nor punch holes in it.
#pragma once
#include <napi.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rdma {

class SegmentServer;

enum class SegmentChannel : uint32_t { kSocket = 0, kPidfd = 1 };

// What the owner exports. Shared by its Segment and, on the socket channel, the server thread.
struct ExportedSegment {
  SegmentChannel channel = SegmentChannel::kSocket;
  SegmentServer* server = nullptr;  // socket channel
  uint64_t number = 0;              // socket channel: the server's name for it
  int notice_fd = -1;               // pidfd channel: an eventfd, readable once removed
  int memfd = -1;
  uint64_t size = 0;
  uint64_t page = 4096;  // 2 MiB for hugetlb segments
  uint32_t mode = 0600;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<int> peers;  // socket channel: connections of the processes that got it, told of its removal
};

// Publishes `segment` on its channel (throws when that cannot be done); its id.
void Export(Napi::Env env, const std::shared_ptr<ExportedSegment>& segment);
std::string SegmentId(const ExportedSegment& segment);
// No new gets; peers that have it are told. Idempotent; a forked child's copy is left alone.
void Unexport(ExportedSegment& segment);

// What a peer got: the memfd (read-only unless asked writable), and what to watch for the owner's news:
// the socket channel's connection, or the pidfd channel's notice eventfd and the owner's pidfd.
struct FetchedSegment {
  int memfd = -1;
  uint64_t size = 0;
  uint64_t page = 4096;
  int connection = -1;
  int notice = -1;
  int owner = -1;
};

// Gets the segment `segid` names from its owner; throws RdmaErrors: EINVAL (not an id), EACCES (the
// permit, or on the pidfd channel the kernel's ptrace check), ENOENT (removed or stale), ESRCH (the owner
// is not running, or the id is from another host).
FetchedSegment Fetch(Napi::Env env, const std::string& segid, bool writable);

}  // namespace rdma
