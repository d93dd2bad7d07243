// Segments, XPMEM's model without a kernel module: memory made shareable (a memfd sealed against
// shrinking and growing, so no peer can truncate pages away under a mapping or a registration) that its
// owner exports under a segment id. Another process gets it by that id, checked against the segment's
// permit as XPMEM does (mode bits for owner, group, others), on the channel the id names (the owner's
// socket server, or pidfd_getfd: memory/segment_channel.h), and hears of its removal or the owner's exit.
// Attaching maps the memfd (MAP_SHARED) as a MappedBuffer.
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "addon/poller.h"
#include "addon/resource.h"
#include "memory/segment_channel.h"

namespace rdma {

// The owner's side: makeSegment(size | shareable MappedBuffer, mode, hugetlb, channel).
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

// A peer's side: getSegment(segid, writable, listener): the memfd, and what the owner reports on.
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
  void OnConnection();
  void Notify(const char* reason);  // once: 'removed' or 'owner-exited'

  FetchedSegment fetched_;
  bool writable_ = false;
  std::vector<std::unique_ptr<FdPoller>> watches_;
  Napi::FunctionReference listener_;
};

}  // namespace rdma
