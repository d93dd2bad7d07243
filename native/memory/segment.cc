#include "memory/segment.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "addon/args.h"
#include "memory/alloc.h"
#include "memory/segment_channel.h"

namespace rdma {

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

// makeSegment(size | MappedBuffer, mode, hugetlb, channel)
Napi::Value Segment::Make(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MappedBuffer* buffer = info[0].IsObject() ? UnwrapTagged<MappedBuffer>(info[0], "buffer") : nullptr;
  uint64_t size = buffer == nullptr ? ToU64(info[0], "size") : 0;
  uint32_t mode = ToU32(info[1], "mode", 0777);
  bool hugetlb = ToBool(info[2], "hugetlb");
  auto channel = static_cast<SegmentChannel>(ToU32(info[3], "channel", 1));
  auto exported = std::make_shared<ExportedSegment>();
  if (buffer != nullptr) {
    // Its own pages, shared: the buffer's memfd, whole.
    buffer->CheckOpen(env);
    if (buffer->shareable_file() < 0) ThrowType(env, "makeSegment(buffer) needs a buffer from allocate(size, { shareable: true })");
    exported->memfd = fcntl(buffer->shareable_file(), F_DUPFD_CLOEXEC, 0);
    if (exported->memfd < 0) ThrowVerb(env, "dup", errno);
    exported->size = buffer->map_length();
    exported->page = buffer->page_size();
  } else {
    if (size == 0 || size > (uint64_t{1} << 46)) ThrowRange(env, "size must be in [1, 2^46] bytes");
    exported->page = hugetlb ? 2u << 20 : 4096;
    exported->size = (size + exported->page - 1) / exported->page * exported->page;  // hugetlbfs files grow only by whole pages
    exported->memfd = MakeSealedMemfd("rdma-node segment", exported->size, hugetlb);
    if (exported->memfd < 0) ThrowVerb(env, "memfd_create", -exported->memfd);
  }
  exported->channel = channel;
  exported->mode = mode;
  exported->uid = geteuid();
  exported->gid = getegid();
  Napi::Object object;
  try {
    Export(env, exported);
    object = AddonData::Get(env).segment_class.New({ConstructToken(env)});
  } catch (...) {
    Unexport(*exported);
    close(exported->memfd);
    if (exported->notice_fd >= 0) close(exported->notice_fd);
    throw;
  }
  Unwrap(object)->exported_ = exported;
  return object;
}

int Segment::Destroy(CloseMode) {
  if (exported_ == nullptr) return 0;
  Unexport(*exported_);
  // The memfd before the notice fd: the pidfd channel's check of what a peer took depends on the order.
  close(exported_->memfd);  // the memory goes with the last mapping and the peers' fds
  if (exported_->notice_fd >= 0) close(exported_->notice_fd);
  exported_.reset();
  return 0;
}

Napi::Value Segment::Id(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::String::New(info.Env(), SegmentId(*exported_));
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
  Unexport(*exported_);
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

// getSegment(segid, writable, listener(reason))
Napi::Value SegmentAccess::Get(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowType(env, "a segment id is a string");
  std::string id = info[0].As<Napi::String>();
  bool writable = ToBool(info[1], "writable");
  if (!info[2].IsFunction()) ThrowType(env, "listener must be a function");
  FetchedSegment fetched = Fetch(env, id, writable);
  Napi::Object object;
  try {
    object = AddonData::Get(env).segment_access_class.New({ConstructToken(env)});
  } catch (...) {
    for (int fd : {fetched.memfd, fetched.connection, fetched.notice, fetched.owner}) {
      if (fd >= 0) close(fd);
    }
    throw;
  }
  SegmentAccess* self = Unwrap(object);
  self->fetched_ = fetched;
  self->writable_ = writable;
  self->listener_ = Napi::Persistent(info[2].As<Napi::Function>());
  // Watching for the owner's news keeps no process alive.
  if (fetched.connection >= 0) {
    SetNonBlocking(fetched.connection);
    self->watches_.push_back(std::make_unique<FdPoller>(env, fetched.connection, [self] { self->OnConnection(); }));
  } else {
    self->watches_.push_back(std::make_unique<FdPoller>(env, fetched.notice, [self] { self->Notify("removed"); }));
    self->watches_.push_back(std::make_unique<FdPoller>(env, fetched.owner, [self] { self->Notify("owner-exited"); }));
  }
  for (auto& watch : self->watches_) {
    watch->Start();
    watch->Unref();
  }
  return object;
}

// The owner said something on the socket channel ("removed", then the end), or went away (the end alone).
void SegmentAccess::OnConnection() {
  char notice[16] = {};
  ssize_t got = recv(fetched_.connection, notice, sizeof notice - 1, MSG_DONTWAIT);
  if (got < 0 && errno == EAGAIN) return;
  Notify(got > 0 && strcmp(notice, "removed") == 0 ? "removed" : "owner-exited");
}

void SegmentAccess::Notify(const char* reason) {
  for (auto& watch : watches_) watch->Stop();  // one notice
  Napi::Env env = env_;
  CallFromLoop(env, [&] { listener_.Value().Call({Napi::String::New(env, reason)}); });
}

int SegmentAccess::Destroy(CloseMode) {
  if (fetched_.memfd < 0) return 0;
  watches_.clear();
  listener_.Reset();
  // Closing the connection makes the owner's server forget this peer.
  for (int fd : {fetched_.connection, fetched_.notice, fetched_.owner, fetched_.memfd}) {
    if (fd >= 0) close(fd);
  }
  fetched_ = FetchedSegment();
  return 0;
}

Napi::Value SegmentAccess::Size(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), static_cast<double>(fetched_.size));
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
  CheckRange(env, offset, length, fetched_.size);
  return MappedBuffer::MapShared(env, fetched_.memfd, offset, length, fetched_.page, writable_);
}

}  // namespace rdma
