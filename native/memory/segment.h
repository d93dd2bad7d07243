// Segments, XPMEM's model without a kernel module: memory made shareable (a memfd sealed against
// shrinking and growing, so no peer can truncate pages away under a mapping or a registration) that its
// owner exports under a segment id. Another process gets it by that id from the owner's segment server, a
// thread serving a Unix socket in the abstract namespace: the server checks the caller's credentials
// (SO_PEERCRED) against the segment's permit as XPMEM does (mode bits for owner, group, others) and hands
// over the memfd with SCM_RIGHTS. The connection stays open: the owner's remove() tells every peer, and
// its exit shows as the connection's end. Attaching maps the memfd (MAP_SHARED) as a MappedBuffer.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "addon/poller.h"
#include "addon/resource.h"

namespace rdma {

struct ExportedSegment;

// The owner's side: makeSegment(size, mode).
class Segment : public Napi::ObjectWrap<Segment>, public Resource, public Lifecycle<Segment> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0004'0003ULL, 0x7365'676d'656e'7400ULL};
  static constexpr const char* kName = "Segment";
  static Napi::Function Define(Napi::Env env);
  static Napi::Value Make(const Napi::CallbackInfo& info);

  explicit Segment(const Napi::CallbackInfo& info);
  ~Segment() override { Close(CloseMode::kQuiet); }

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value Id(const Napi::CallbackInfo& info);
  Napi::Value Size(const Napi::CallbackInfo& info);
  Napi::Value Attach(const Napi::CallbackInfo& info);
  Napi::Value Remove(const Napi::CallbackInfo& info);

  std::shared_ptr<ExportedSegment> exported_;
};

// A peer's side: getSegment(segid, writable, listener): the memfd, and the connection the owner reports on.
class SegmentAccess : public Napi::ObjectWrap<SegmentAccess>, public Resource, public Lifecycle<SegmentAccess> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0004'0004ULL, 0x7365'6761'6363'6573ULL};
  static constexpr const char* kName = "SegmentAccess";
  static Napi::Function Define(Napi::Env env);
  static Napi::Value Get(const Napi::CallbackInfo& info);

  explicit SegmentAccess(const Napi::CallbackInfo& info);
  ~SegmentAccess() override { Close(CloseMode::kQuiet); }

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value Size(const Napi::CallbackInfo& info);
  Napi::Value Writable(const Napi::CallbackInfo& info);
  Napi::Value Attach(const Napi::CallbackInfo& info);
  void OnNotice();  // the owner said something, or went away

  int memfd_ = -1;
  int connection_ = -1;
  uint64_t size_ = 0;
  uint64_t page_ = 4096;
  bool writable_ = false;
  std::unique_ptr<FdPoller> poller_;
  Napi::FunctionReference listener_;
};

}  // namespace rdma
