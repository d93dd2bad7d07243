// Memory mapped for RDMA: page-aligned mappings (optionally transparent or hugetlbfs huge pages), seen from
// JS as an external ArrayBuffer over the mapping. Private anonymous memory, or a shared mapping of a file:
// a shareable buffer's own memfd (sealed against shrinking and growing, so it can be exported as a
// segment), or a segment's memfd for an attachment.
//
// No use-after-free is reachable from JS. The virtual range is a Reservation referenced by the buffer
// while it maps pages there and by every ArrayBuffer made over it, and unmapped only when the last of them
// goes. close() and the test operations that replace the pages (unmap, remap, move) detach the current
// ArrayBuffer first (every view of it becomes empty) and leave an inaccessible PROT_NONE mapping in place
// of the old pages, so even a backing store that escaped detaching could never reach someone else's memory.
// Buffers are not transferable to workers (Node copies ArrayBuffers with external finalizers instead).
#pragma once
#include <napi.h>

#include <memory>

#include "addon/resource.h"

namespace rdma {

struct Reservation;

enum class HugePages : uint32_t { kNone = 0, kTransparent = 1, kHugetlb = 2 };

// A memfd of `size` bytes (whole pages; 2 MiB ones for hugetlb) sealed at that size: nobody can truncate
// pages away under a mapping or a registration, or grow it. The fd, or -errno.
int MakeSealedMemfd(const char* name, uint64_t size, bool hugetlb);

class MappedBuffer : public Napi::ObjectWrap<MappedBuffer>, public Resource, public Lifecycle<MappedBuffer> {
 public:
  static constexpr napi_type_tag kTag = {0x7264'6d61'0004'0001ULL, 0x6d61'7070'6564'6275ULL};
  static constexpr const char* kName = "MappedBuffer";
  static Napi::Function Define(Napi::Env env);
  // allocate(size, hugePages, address | undefined, shareable)
  static Napi::Value Allocate(const Napi::CallbackInfo& info);
  // A shared mapping of `length` bytes of the file `fd` from `offset` (a segment's memfd, of `page`-sized
  // pages), read-only unless `writable`: JS writes to a read-only one fault (SIGSEGV), as any write to a
  // PROT_READ page does. The buffer keeps its own descriptor of the file, to map it again (remap()).
  static Napi::Object MapShared(Napi::Env env, int fd, uint64_t offset, size_t length, size_t page, bool writable);
  // The mapped buffer of this environment whose pages hold [data, data + length), or nullptr.
  static MappedBuffer* Containing(Napi::Env env, const void* data, size_t length);

  explicit MappedBuffer(const Napi::CallbackInfo& info);
  ~MappedBuffer() override { Close(CloseMode::kQuiet); }
  size_t page_size() const { return page_size_; }
  // The whole mapping: [address(), address() + map_length()).
  uintptr_t address() const;
  size_t map_length() const { return map_length_; }
  // The memfd of a buffer made by allocate(…, shareable), which makeSegment may export; else -1.
  int shareable_file() const { return shareable_ ? file_ : -1; }
  // Mapped from a memfd sealed against shrinking: no descriptor can truncate its pages away (holes
  // punched through a writable descriptor still can be: see the registration cache).
  bool SealedFile() const;

 private:
  int Destroy(CloseMode mode) override;
  Napi::Value View(const Napi::CallbackInfo& info);
  Napi::Value Address(const Napi::CallbackInfo& info);
  Napi::Value Length(const Napi::CallbackInfo& info);
  Napi::Value PageSize(const Napi::CallbackInfo& info);
  Napi::Value Mapped(const Napi::CallbackInfo& info);
  Napi::Value Unmap(const Napi::CallbackInfo& info);
  Napi::Value Remap(const Napi::CallbackInfo& info);
  Napi::Value Discard(const Napi::CallbackInfo& info);
  Napi::Value Move(const Napi::CallbackInfo& info);

  // Takes `memory` (and `file`, -1 for anonymous memory) into a new MappedBuffer; unmaps and closes them
  // if that fails.
  static Napi::Object Adopt(Napi::Env env, void* memory, size_t length, size_t map_length, size_t page, HugePages huge, int file = -1);
  int MapFlags() const;
  // Maps fresh pages over our own range (the current pages or our reservation); 0 or errno.
  int MapFresh();
  void DetachView();
  // The current pages give way to an inaccessible reservation of the same range.
  void Reserve();
  void Track(bool tracked);
  void CheckMapped(Napi::Env env) const;

  Reservation* reservation_ = nullptr;
  size_t length_ = 0;       // as asked; the ArrayBuffer's length
  size_t map_length_ = 0;   // rounded up to whole pages
  size_t page_size_ = 4096;
  HugePages huge_ = HugePages::kNone;
  bool mapped_ = false;
  int file_ = -1;             // the file mapped, or -1 for anonymous memory
  uint64_t file_offset_ = 0;
  bool writable_ = true;
  bool shareable_ = false;    // file_ is our own memfd, made by allocate()
  Napi::Reference<Napi::ArrayBuffer> view_;  // weak
  std::shared_ptr<MemoryRegistry> registry_;
};

}  // namespace rdma
