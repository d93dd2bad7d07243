#include "memory/segment.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "addon/args.h"
#include "memory/alloc.h"

namespace rdma {

class SegmentServer;

// What the server knows of an exported segment. Shared by the owner's Segment and the server thread.
struct ExportedSegment {
  SegmentServer* server = nullptr;
  uint64_t number = 0;
  int memfd = -1;
  uint64_t size = 0;
  uint64_t page = 4096;  // 2 MiB for hugetlb segments
  uint32_t mode = 0600;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<int> peers;  // connections of the processes that got it, told of its removal
};

// XPMEM's check (xpmem_check_permit_mode): the owner's bits for its user, the group's for its group, the
// others' for the rest; root is let in as it is by file permissions.
static bool Permitted(const ExportedSegment& segment, const ucred& peer, bool write) {
  if (peer.uid == 0) return true;
  uint32_t bits = peer.uid == segment.uid ? segment.mode >> 6 : peer.gid == segment.gid ? segment.mode >> 3 : segment.mode;
  return (bits & 4) != 0 && (!write || (bits & 2) != 0);
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
    } else if (!Permitted(*it->second, cred, access == 'w')) {
      Reply(peer, EACCES, -1, 0);
    } else if (Reply(peer, 0, it->second->memfd, it->second->size, it->second->page)) {
      it->second->peers.push_back(peer);
    }
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

// --- the owner's side

Napi::Function Segment::Define(Napi::Env env) {
  return DefineClass(env, kName,
                     {InstanceAccessor<&Segment::Id>("id"), InstanceAccessor<&Segment::Size>("size"),
                      InstanceMethod<&Segment::Attach>("attach"), InstanceMethod<&Segment::Remove>("remove"),
                      CloseMethod(), ClosedGetter()});
}

Segment::Segment(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Segment>(info), Resource(info.Env(), "segment") {
  CheckConstructToken(info, "makeSegment()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

constexpr unsigned kMfdHuge2MB = 21U << 26;  // linux/memfd.h's MFD_HUGE_2MB (21 << MFD_HUGE_SHIFT)

// makeSegment(size, mode, hugetlb)
Napi::Value Segment::Make(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t size = ToU64(info[0], "size");
  uint32_t mode = ToU32(info[1], "mode", 0777);
  bool hugetlb = ToBool(info[2], "hugetlb");
  if (size == 0 || size > (uint64_t{1} << 46)) ThrowRange(env, "size must be in [1, 2^46] bytes");
  uint64_t page = hugetlb ? 2u << 20 : 4096;
  size = (size + page - 1) / page * page;  // whole pages: hugetlbfs files grow only by them
  SegmentServer& server = SegmentServer::Instance(env);
  int fd = memfd_create("rdma-node segment", MFD_CLOEXEC | MFD_ALLOW_SEALING | (hugetlb ? MFD_HUGETLB | kMfdHuge2MB : 0));
  if (fd < 0) ThrowVerb(env, "memfd_create", errno);
  // Sealed at its size: nobody can truncate pages away under a peer's mapping or registration.
  if (ftruncate(fd, static_cast<off_t>(size)) != 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    int err = errno;
    close(fd);
    ThrowVerb(env, "memfd seal", err);
  }
  auto exported = std::make_shared<ExportedSegment>();
  exported->memfd = fd;
  exported->size = size;
  exported->page = page;
  exported->mode = mode;
  exported->uid = geteuid();
  exported->gid = getegid();
  Napi::Object object = AddonData::Get(env).segment_class.New({ConstructToken(env)});
  Segment* self = Unwrap(object);
  self->exported_ = exported;
  server.Add(exported);
  return object;
}

int Segment::Destroy(CloseMode) {
  if (exported_ == nullptr) return 0;
  if (exported_->server->ours()) exported_->server->Remove(exported_->number);
  close(exported_->memfd);  // the memory goes with the last mapping and the peers' fds
  exported_.reset();
  return 0;
}

// "rdma-seg:<server name>:<number>": where to ask and what for.
Napi::Value Segment::Id(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::String::New(info.Env(), "rdma-seg:" + exported_->server->name() + ":" + std::to_string(exported_->number));
}

Napi::Value Segment::Size(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), static_cast<double>(exported_->size));
}

static void CheckRange(Napi::Env env, uint64_t offset, uint64_t length, uint64_t size) {
  if (length == 0 || offset > size || length > size - offset) ThrowRange(env, "the range exceeds the segment");
}

// attach(offset, length) → a MappedBuffer over the segment, writable
Napi::Value Segment::Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t offset = ToU64(info[0], "offset"), length = ToU64(info[1], "length");
  CheckOpen(env);
  CheckRange(env, offset, length, exported_->size);
  return MappedBuffer::MapShared(env, exported_->memfd, offset, length, exported_->page, true);
}

// remove(): no new gets; the peers that have it are told. Mappings stay until detached.
Napi::Value Segment::Remove(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  if (exported_->server->ours()) exported_->server->Remove(exported_->number);
  return info.Env().Undefined();
}

// --- a peer's side

Napi::Function SegmentAccess::Define(Napi::Env env) {
  return DefineClass(env, kName,
                     {InstanceAccessor<&SegmentAccess::Size>("size"), InstanceAccessor<&SegmentAccess::Writable>("writable"),
                      InstanceMethod<&SegmentAccess::Attach>("attach"), CloseMethod(), ClosedGetter()});
}

SegmentAccess::SegmentAccess(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<SegmentAccess>(info), Resource(info.Env(), "segment access") {
  CheckConstructToken(info, "getSegment()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

// Asks the owner's server for the segment; returns the connection and the memfd, or throws.
static int Request(Napi::Env env, const std::string& server, uint64_t number, bool writable, uint64_t* size, uint64_t* page, int* memfd) {
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
    ThrowVerb(env, "getSegment", err, err == ECONNREFUSED ? "its owner is not running (or the id is from elsewhere)" : "");
  }
  memcpy(memfd, CMSG_DATA(header), sizeof(int));
  *size = value;
  *page = page_size;
  return fd;
}

// getSegment(segid, writable, listener(reason))
Napi::Value SegmentAccess::Get(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowType(env, "a segment id is a string");
  std::string id = info[0].As<Napi::String>();
  bool writable = ToBool(info[1], "writable");
  if (!info[2].IsFunction()) ThrowType(env, "listener must be a function");
  // rdma-seg:<server name, itself rdma-node-seg:<pid>:<nonce>>:<number>
  size_t last = id.rfind(':');
  const std::string prefix = "rdma-seg:rdma-node-seg:";
  if (id.compare(0, prefix.size(), prefix) != 0 || last == std::string::npos || last + 1 >= id.size() ||
      id.find_first_not_of("0123456789", last + 1) != std::string::npos || last - 9 > sizeof(sockaddr_un::sun_path) - 2) {
    ThrowVerb(env, "getSegment", EINVAL, "not a segment id");
  }
  uint64_t number = std::stoull(id.substr(last + 1));
  uint64_t size = 0, page = 0;
  int memfd = -1;
  int connection = Request(env, id.substr(9, last - 9), number, writable, &size, &page, &memfd);
  Napi::Object object;
  try {
    object = AddonData::Get(env).segment_access_class.New({ConstructToken(env)});
  } catch (...) {
    close(connection);
    close(memfd);
    throw;
  }
  SegmentAccess* self = Unwrap(object);
  self->memfd_ = memfd;
  self->connection_ = connection;
  self->size_ = size;
  self->page_ = page;
  self->writable_ = writable;
  self->listener_ = Napi::Persistent(info[2].As<Napi::Function>());
  SetNonBlocking(connection);
  self->poller_ = std::make_unique<FdPoller>(env, connection, [self] { self->OnNotice(); });
  self->poller_->Start();
  self->poller_->Unref();  // watching for the owner's news keeps no process alive
  return object;
}

void SegmentAccess::OnNotice() {
  char notice[16] = {};
  ssize_t got = recv(connection_, notice, sizeof notice - 1, MSG_DONTWAIT);
  if (got < 0 && errno == EAGAIN) return;
  poller_->Stop();  // one notice: removed (then the end), or the end alone (the owner went away)
  Napi::Env env = env_;
  const char* reason = got > 0 && strcmp(notice, "removed") == 0 ? "removed" : "owner-exited";
  CallFromLoop(env, [&] { listener_.Value().Call({Napi::String::New(env, reason)}); });
}

int SegmentAccess::Destroy(CloseMode) {
  if (memfd_ < 0) return 0;
  poller_.reset();
  listener_.Reset();
  close(connection_);  // the owner's server sees the end and forgets this peer
  close(memfd_);
  memfd_ = connection_ = -1;
  return 0;
}

Napi::Value SegmentAccess::Size(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), static_cast<double>(size_));
}

Napi::Value SegmentAccess::Writable(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Boolean::New(info.Env(), writable_);
}

// attach(offset, length) → a MappedBuffer over the segment, read-only unless got for writing
Napi::Value SegmentAccess::Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t offset = ToU64(info[0], "offset"), length = ToU64(info[1], "length");
  CheckOpen(env);
  CheckRange(env, offset, length, size_);
  return MappedBuffer::MapShared(env, memfd_, offset, length, page_, writable_);
}

}  // namespace rdma
