#include "memory/segment_channel.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "addon/errors.h"

namespace rdma {

// XPMEM's check (xpmem_check_permit_mode): the owner's bits for its user, the group's for its group, the
// others' for the rest; root is let in as it is by file permissions.
static bool Permitted(uint32_t mode, uid_t owner_uid, gid_t owner_gid, uid_t uid, gid_t gid, bool write) {
  if (uid == 0) return true;
  uint32_t bits = uid == owner_uid ? mode >> 6 : gid == owner_gid ? mode >> 3 : mode;
  return (bits & 4) != 0 && (!write || (bits & 2) != 0);
}

// A descriptor of the same memfd opened read-only (through /proc/self/fd, which reopens the file itself);
// -1 with errno.
static int ReopenReadOnly(int memfd) {
  return open(("/proc/self/fd/" + std::to_string(memfd)).c_str(), O_RDONLY | O_CLOEXEC);
}

// The process's segment server: one thread and one abstract-namespace socket, made on the first export
// (again in a forked child, which has no thread of its parent's).
class SegmentServer {
 public:
  static SegmentServer& Instance(Napi::Env env) {
    static std::mutex start;
    static SegmentServer* server = nullptr;
    std::lock_guard<std::mutex> lock(start);
    if (server == nullptr || server->pid_ != getpid()) {
      auto* fresh = new SegmentServer();  // a forked child's old server (of its parent) is left alone
      int err = fresh->Start();
      if (err != 0) {
        delete fresh;
        ThrowVerb(env, "segment server", err);
      }
      server = fresh;
    }
    return *server;
  }

  const std::string& name() const { return name_; }
  // False in a forked child: the server (and its thread) were the parent's.
  bool ours() const { return pid_ == getpid(); }

  uint64_t Add(std::shared_ptr<ExportedSegment> segment) {
    std::lock_guard<std::mutex> lock(mu_);
    segment->server = this;
    segment->number = ++last_number_;
    segments_[segment->number] = std::move(segment);
    return last_number_;
  }

  // No new gets; every peer that has it hears "removed", then the connection's end.
  void Remove(uint64_t number) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = segments_.find(number);
    if (it == segments_.end()) return;
    for (int peer : it->second->peers) {
      send(peer, "removed", 7, MSG_DONTWAIT | MSG_NOSIGNAL);
      close(peer);
    }
    segments_.erase(it);
    Wake();
  }

 private:
  int Start() {
    pid_ = getpid();
    std::random_device random;
    char nonce[17];
    snprintf(nonce, sizeof nonce, "%08x%08x", random(), random());
    name_ = "rdma-node-seg:" + std::to_string(pid_) + ":" + nonce;
    listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) return errno;
    sockaddr_un address = {};
    address.sun_family = AF_UNIX;
    memcpy(address.sun_path + 1, name_.data(), name_.size());  // abstract: sun_path[0] is 0
    socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name_.size());
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 || listen(listen_fd_, 64) != 0) {
      int err = errno;
      close(listen_fd_);
      return err;
    }
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) return errno;
    std::thread([this] { Run(); }).detach();
    return 0;
  }

  void Wake() {
    uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof one) < 0) return;  // a wake-up already pending is as good
  }

  // Serves gets and watches the peers' connections for their end (a peer released or exited).
  void Run() {
    for (;;) {
      std::vector<pollfd> fds = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& [number, segment] : segments_) {
          for (int peer : segment->peers) fds.push_back({peer, POLLIN | POLLRDHUP, 0});
        }
      }
      if (poll(fds.data(), fds.size(), -1) < 0) continue;
      if (fds[1].revents) {
        uint64_t count;
        if (read(wake_fd_, &count, sizeof count) < 0) continue;
      }
      for (size_t i = 2; i < fds.size(); i++) {
        if (fds[i].revents) DropPeer(fds[i].fd);
      }
      if (fds[0].revents & POLLIN) Serve();
    }
  }

  void DropPeer(int fd) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [number, segment] : segments_) {
      auto& peers = segment->peers;
      for (auto it = peers.begin(); it != peers.end(); ++it) {
        if (*it != fd) continue;
        peers.erase(it);
        close(fd);
        return;
      }
    }
  }

  // One get: "get <number> <r|w>" → "ok <size>" with the memfd, or "err <errno>".
  void Serve() {
    int peer = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (peer < 0) return;
    timeval timeout = {1, 0};  // a peer that connects and says nothing does not hold the server
    setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    char request[64] = {};
    ucred cred = {};
    socklen_t cred_length = sizeof cred;
    unsigned long long number = 0;
    char access = 0;
    ssize_t got = recv(peer, request, sizeof request - 1, 0);
    if (got <= 0 || getsockopt(peer, SOL_SOCKET, SO_PEERCRED, &cred, &cred_length) != 0 ||
        sscanf(request, "get %llu %c", &number, &access) != 2 || (access != 'r' && access != 'w')) {
      Reply(peer, EINVAL, -1, 0);
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = segments_.find(number);
    if (it == segments_.end()) {
      Reply(peer, ENOENT, -1, 0);
      return;
    }
    const ExportedSegment& segment = *it->second;
    if (!Permitted(segment.mode, segment.uid, segment.gid, cred.uid, cred.gid, access == 'w')) {
      Reply(peer, EACCES, -1, 0);
      return;
    }
    int fd = access == 'w' ? segment.memfd : ReopenReadOnly(segment.memfd);
    if (fd < 0) {
      Reply(peer, errno, -1, 0);
    } else if (Reply(peer, 0, fd, segment.size, segment.page)) {
      it->second->peers.push_back(peer);
    }
    if (fd >= 0 && fd != segment.memfd) close(fd);
  }

  // Sends the answer (and the fd); true when the peer got the segment and its connection stays open.
  static bool Reply(int peer, int err, int fd, uint64_t size, uint64_t page = 0) {
    std::string text = err == 0 ? "ok " + std::to_string(size) + " " + std::to_string(page) : std::string("err ") + std::to_string(err);
    iovec data = {text.data(), text.size()};
    msghdr message = {};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (fd >= 0) {
      message.msg_control = control;
      message.msg_controllen = sizeof control;
      cmsghdr* header = CMSG_FIRSTHDR(&message);
      header->cmsg_level = SOL_SOCKET;
      header->cmsg_type = SCM_RIGHTS;
      header->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(header), &fd, sizeof fd);
    }
    bool sent = sendmsg(peer, &message, MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
    if (err != 0 || !sent) close(peer);
    return err == 0 && sent;
  }

  pid_t pid_ = 0;
  std::string name_;
  int listen_fd_ = -1, wake_fd_ = -1;
  std::mutex mu_;
  uint64_t last_number_ = 0;
  std::map<uint64_t, std::shared_ptr<ExportedSegment>> segments_;
};

// --- the socket channel: a peer's request

// Asks the owner's server for the segment; returns the connection and the memfd, or throws.
static FetchedSegment Request(Napi::Env env, const std::string& server, uint64_t number, bool writable) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowVerb(env, "socket", errno);
  timeval timeout = {5, 0};  // an owner that is stopped does not hang its peers
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_un address = {};
  address.sun_family = AF_UNIX;
  memcpy(address.sun_path + 1, server.data(), server.size());
  socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + server.size());
  std::string request = "get " + std::to_string(number) + (writable ? " w" : " r");
  char reply[64] = {};
  iovec data = {reply, sizeof reply - 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message = {};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  int err = 0;
  ssize_t got = -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 || send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0 ||
      (got = recvmsg(fd, &message, MSG_CMSG_CLOEXEC)) < 0) {
    err = errno;
  } else if (got == 0) {
    err = ECONNRESET;  // the owner went away between accepting and answering
  }
  unsigned long long value = 0, page_size = 0;
  if (err == 0 && sscanf(reply, "err %llu", &value) == 1) err = static_cast<int>(value);
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  if (err == 0 && (sscanf(reply, "ok %llu %llu", &value, &page_size) != 2 || header == nullptr || header->cmsg_type != SCM_RIGHTS)) err = EPROTO;
  if (err != 0) {
    close(fd);
    if (err == ECONNREFUSED) ThrowVerb(env, "getSegment", ESRCH, "its owner is not running (or the id is from another host)");
    ThrowVerb(env, "getSegment", err);
  }
  FetchedSegment fetched;
  memcpy(&fetched.memfd, CMSG_DATA(header), sizeof(int));
  fetched.size = value;
  fetched.page = page_size;
  fetched.connection = fd;
  return fetched;
}


// --- the pidfd channel

static int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
static int PidfdGetfd(int pidfd, int fd) { return static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, 0)); }

static bool Readable(int fd) {
  pollfd probe = {fd, POLLIN, 0};
  return poll(&probe, 1, 0) == 1 && (probe.revents & POLLIN) != 0;
}

static bool IsEventfd(int fd) {
  char link[64] = {};
  ssize_t length = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), link, sizeof link - 1);
  return length > 0 && strcmp(link, "anon_inode:[eventfd]") == 0;
}

// Takes the owner's memfd and notice fd. Descriptor numbers are reused, so what was taken is checked to be
// the segment: the memfd by its inode and seals, the notice fd by its kind. The notice fd is taken first
// and the owner closes the memfd first (Destroy), so a memfd that checks out proves the notice fd taken
// before it was still the segment's.
static FetchedSegment TakeFromOwner(Napi::Env env, pid_t pid, int memfd_number, int notice_number, uint64_t inode, bool writable) {
  FetchedSegment fetched;
  fetched.owner = PidfdOpen(pid);
  if (fetched.owner < 0) {
    if (errno == ESRCH) ThrowVerb(env, "getSegment", ESRCH, "its owner is not running (or the id is from another host)");
    ThrowVerb(env, "pidfd_open", errno);
  }
  int err = 0;
  struct stat file = {};
  fetched.notice = PidfdGetfd(fetched.owner, notice_number);
  if (fetched.notice >= 0) fetched.memfd = PidfdGetfd(fetched.owner, memfd_number);
  if (fetched.memfd < 0) {
    err = errno == EPERM ? EACCES : errno == EBADF ? ENOENT : errno;
  } else if (fstat(fetched.memfd, &file) != 0 || file.st_ino != inode || (fcntl(fetched.memfd, F_GET_SEALS) & F_SEAL_SHRINK) == 0 ||
             !IsEventfd(fetched.notice) || Readable(fetched.notice)) {
    err = ENOENT;  // stale (the descriptors are something else now) or removed
  } else if (!Permitted(file.st_mode & 0777, file.st_uid, file.st_gid, geteuid(), getegid(), writable)) {
    err = EACCES;
  } else if (!writable) {
    int read_only = ReopenReadOnly(fetched.memfd);
    if (read_only < 0) err = errno;
    close(fetched.memfd);
    fetched.memfd = read_only;
  }
  if (err != 0) {
    for (int fd : {fetched.owner, fetched.notice, fetched.memfd}) {
      if (fd >= 0) close(fd);
    }
    ThrowVerb(env, "getSegment", err, err == EACCES && file.st_ino == 0 ? "pidfd_getfd: this process may not ptrace the owner" : "");
  }
  fetched.size = static_cast<uint64_t>(file.st_size);
  fetched.page = static_cast<uint64_t>(file.st_blksize);  // hugetlbfs: the huge page size
  return fetched;
}

// --- both channels

void Export(Napi::Env env, const std::shared_ptr<ExportedSegment>& segment) {
  if (segment->channel == SegmentChannel::kSocket) {
    SegmentServer::Instance(env).Add(segment);
    return;
  }
  // The permit travels as the memfd's mode, where the peer checks it.
  segment->notice_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (segment->notice_fd < 0 || fchmod(segment->memfd, segment->mode) != 0) ThrowVerb(env, "segment pidfd channel", errno);
}

std::string SegmentId(const ExportedSegment& segment) {
  if (segment.channel == SegmentChannel::kSocket) return "rdma-seg:" + segment.server->name() + ":" + std::to_string(segment.number);
  struct stat file = {};
  fstat(segment.memfd, &file);
  return "rdma-seg:pidfd:" + std::to_string(getpid()) + ":" + std::to_string(segment.memfd) + ":" + std::to_string(segment.notice_fd) + ":" +
         std::to_string(file.st_ino);
}

void Unexport(ExportedSegment& segment) {
  if (segment.channel == SegmentChannel::kSocket) {
    if (segment.server != nullptr && segment.server->ours()) segment.server->Remove(segment.number);
    return;
  }
  uint64_t one = 1;
  if (segment.notice_fd >= 0 && write(segment.notice_fd, &one, sizeof one) < 0) return;  // already readable
}

// Splits "a:b:c" at ':' into unsigned decimal numbers; false unless exactly `count` of them.
static bool ParseNumbers(const std::string& text, size_t count, std::vector<uint64_t>* numbers) {
  size_t at = 0;
  for (size_t i = 0; i < count; i++) {
    size_t end = i + 1 < count ? text.find(':', at) : text.size();
    if (end == std::string::npos || end == at || end - at > 19 || text.find_first_not_of("0123456789", at) < end) return false;
    numbers->push_back(std::stoull(text.substr(at, end - at)));
    at = end + 1;
  }
  return true;
}

FetchedSegment Fetch(Napi::Env env, const std::string& id, bool writable) {
  const std::string socket_prefix = "rdma-seg:rdma-node-seg:", pidfd_prefix = "rdma-seg:pidfd:";
  std::vector<uint64_t> numbers;
  if (id.compare(0, pidfd_prefix.size(), pidfd_prefix) == 0 && ParseNumbers(id.substr(pidfd_prefix.size()), 4, &numbers) &&
      numbers[0] > 0 && numbers[0] <= INT32_MAX && numbers[1] <= INT32_MAX && numbers[2] <= INT32_MAX) {
    return TakeFromOwner(env, static_cast<pid_t>(numbers[0]), static_cast<int>(numbers[1]), static_cast<int>(numbers[2]), numbers[3], writable);
  }
  // rdma-seg:<server name, itself rdma-node-seg:<pid>:<nonce>>:<number>
  size_t last = id.rfind(':');
  if (id.compare(0, socket_prefix.size(), socket_prefix) != 0 || last == std::string::npos || last + 1 >= id.size() ||
      !ParseNumbers(id.substr(last + 1), 1, &numbers) || last - 9 > sizeof(sockaddr_un::sun_path) - 2) {
    ThrowVerb(env, "getSegment", EINVAL, "not a segment id");
  }
  return Request(env, id.substr(9, last - 9), numbers[0], writable);
}

}  // namespace rdma
