#include "memory/alloc.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "addon/args.h"
#include "memory/registration_cache.h"
#include "verbs/mr.h"

namespace rdma {

constexpr size_t kPage = 4096;
constexpr size_t kHugePage = 2u << 20;
constexpr int kMapHuge2MB = 21 << MAP_HUGE_SHIFT;  // linux/mman.h's MAP_HUGE_2MB
constexpr unsigned kMfdHuge2MB = 21U << 26;         // linux/memfd.h's MFD_HUGE_2MB (21 << MFD_HUGE_SHIFT)

int MakeSealedMemfd(const char* name, uint64_t size, bool hugetlb) {
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | (hugetlb ? MFD_HUGETLB | kMfdHuge2MB : 0));
  if (fd < 0) return -errno;
  if (ftruncate(fd, static_cast<off_t>(size)) != 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

// A virtual address range this addon mapped. Referenced by the MappedBuffer while its pages are there and
// by each ArrayBuffer over it; unmapped with the last reference, after the registrations over it went.
struct Reservation {
  uintptr_t address;
  size_t length;
  std::shared_ptr<MemoryRegistry> registry;
  int refs = 1;
  bool owned = true;  // false once the range is no longer ours to unmap
};

static void ReleaseReservation(Reservation* reservation) {
  if (--reservation->refs > 0) return;
  if (reservation->owned) {
    DropCachedRegistrations(*reservation->registry, reservation->address, reservation->address + reservation->length);
    munmap(reinterpret_cast<void*>(reservation->address), reservation->length);
  }
  delete reservation;
}

// The ArrayBuffer's backing store is gone (collected, or detached and released): its reference goes.
static void FinalizeView(napi_env, void*, void* hint) { ReleaseReservation(static_cast<Reservation*>(hint)); }

Napi::Function MappedBuffer::Define(Napi::Env env) {
  return DefineClass(env, kName,
                     {InstanceAccessor<&MappedBuffer::View>("arrayBuffer"),
                      InstanceAccessor<&MappedBuffer::Address>("address"),
                      InstanceAccessor<&MappedBuffer::Length>("length"),
                      InstanceAccessor<&MappedBuffer::PageSize>("pageSize"),
                      InstanceAccessor<&MappedBuffer::Mapped>("mapped"),
                      InstanceMethod<&MappedBuffer::Unmap>("unmap"),
                      InstanceMethod<&MappedBuffer::Remap>("remap"),
                      InstanceMethod<&MappedBuffer::Discard>("discard"),
                      InstanceMethod<&MappedBuffer::Move>("move"),
                      CloseMethod(),
                      ClosedGetter()});
}

MappedBuffer::MappedBuffer(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<MappedBuffer>(info), Resource(info.Env(), "mapped buffer") {
  CheckConstructToken(info, "allocate()");
  napi_type_tag_object(info.Env(), info.This(), &kTag);
}

static size_t RoundUp(size_t value, size_t unit) { return (value + unit - 1) / unit * unit; }

// Maps `length` bytes at a 2 MiB-aligned address (what transparent huge pages need): reserves more,
// maps into the aligned middle, gives back the rest.
static void* MapAligned(size_t length, int prot, int flags, int fd) {
  void* wide = mmap(nullptr, length + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (wide == MAP_FAILED) return wide;
  uintptr_t start = RoundUp(reinterpret_cast<uintptr_t>(wide), kHugePage);
  size_t head = start - reinterpret_cast<uintptr_t>(wide);
  void* memory = mmap(reinterpret_cast<void*>(start), length, prot, flags | MAP_FIXED, fd, 0);
  if (memory == MAP_FAILED) {
    int err = errno;
    munmap(wide, length + kHugePage);
    errno = err;
    return memory;
  }
  if (head > 0) munmap(wide, head);
  if (kHugePage - head > 0) munmap(reinterpret_cast<void*>(start + length), kHugePage - head);
  madvise(memory, length, MADV_HUGEPAGE);
  return memory;
}

// allocate(size, hugePages, address | undefined, shareable)
Napi::Value MappedBuffer::Allocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t size = ToU64(info[0], "size");
  if (size == 0 || size > (uint64_t{1} << 46)) ThrowRange(env, "size must be in [1, 2^46] bytes");
  auto huge = static_cast<HugePages>(ToU32(info[1], "hugePages", 2));
  uintptr_t at = info[2].IsUndefined() ? 0 : ToU64(info[2], "address");
  bool shareable = ToBool(info[3], "shareable");
  size_t page = huge == HugePages::kNone ? kPage : kHugePage;
  if (at % page != 0) ThrowRange(env, "address must be aligned to " + std::to_string(page) + " bytes");
  size_t map_length = RoundUp(size, page);
  int fd = -1;
  if (shareable) {
    fd = MakeSealedMemfd("rdma-node buffer", map_length, huge == HugePages::kHugetlb);
    if (fd < 0) ThrowVerb(env, "memfd_create", -fd);
  }
  int flags = shareable ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS;
  if (huge == HugePages::kHugetlb && !shareable) flags |= MAP_HUGETLB | kMapHuge2MB;
  void* memory;
  if (at != 0) {
    memory = mmap(reinterpret_cast<void*>(at), map_length, PROT_READ | PROT_WRITE, flags | MAP_FIXED_NOREPLACE, fd, 0);
  } else if (huge == HugePages::kTransparent) {
    memory = MapAligned(map_length, PROT_READ | PROT_WRITE, flags, fd);
  } else {
    memory = mmap(nullptr, map_length, PROT_READ | PROT_WRITE, flags, fd, 0);
  }
  if (memory == MAP_FAILED) {
    int err = errno;
    if (fd >= 0) close(fd);
    ThrowVerb(env, "mmap", err);
  }
  Napi::Object object = Adopt(env, memory, size, map_length, huge == HugePages::kHugetlb ? kHugePage : kPage, huge, fd);
  Unwrap(object)->shareable_ = shareable;
  return object;
}

Napi::Object MappedBuffer::MapShared(Napi::Env env, int fd, uint64_t offset, size_t length, size_t page, bool writable) {
  if (offset % page != 0) ThrowRange(env, "offset must be a multiple of the segment's page size (" + std::to_string(page) + ")");
  size_t map_length = RoundUp(length, page);
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) ThrowVerb(env, "dup", errno);
  void* memory = mmap(nullptr, map_length, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, own, static_cast<off_t>(offset));
  if (memory == MAP_FAILED) {
    int err = errno;
    close(own);
    ThrowVerb(env, "mmap", err);
  }
  Napi::Object object = Adopt(env, memory, length, map_length, page, page == kPage ? HugePages::kNone : HugePages::kHugetlb, own);
  MappedBuffer* self = Unwrap(object);
  self->file_offset_ = offset;
  self->writable_ = writable;
  return object;
}

Napi::Object MappedBuffer::Adopt(Napi::Env env, void* memory, size_t length, size_t map_length, size_t page, HugePages huge, int file) {
  Napi::Object object;
  try {
    object = AddonData::Get(env).mapped_buffer_class.New({ConstructToken(env)});
  } catch (...) {
    munmap(memory, map_length);
    if (file >= 0) close(file);
    throw;
  }
  MappedBuffer* self = Unwrap(object);
  self->file_ = file;
  self->registry_ = AddonData::Get(env).memory;
  self->reservation_ = new Reservation{reinterpret_cast<uintptr_t>(memory), map_length, self->registry_};
  self->length_ = length;
  self->map_length_ = map_length;
  self->page_size_ = page;
  self->huge_ = huge;
  self->mapped_ = true;
  self->Track(true);
  return object;
}

MappedBuffer* MappedBuffer::Containing(Napi::Env env, const void* data, size_t length) {
  auto& buffers = AddonData::Get(env).memory->buffers;
  auto start = reinterpret_cast<uintptr_t>(data);
  auto it = buffers.upper_bound(start);
  if (it == buffers.begin()) return nullptr;
  MappedBuffer* buffer = (--it)->second;
  bool inside = buffer->mapped_ && start + length <= buffer->address() + buffer->map_length_;
  return inside ? buffer : nullptr;
}

Resource* MemoryHolder(Napi::Env env, const void* data, size_t length, Napi::Object* holder_js) {
  MappedBuffer* buffer = MappedBuffer::Containing(env, data, length);
  if (buffer == nullptr || buffer->Value().IsEmpty()) return nullptr;
  *holder_js = buffer->Value();
  return buffer;
}

uintptr_t MappedBuffer::address() const { return reservation_->address; }

void MappedBuffer::Track(bool tracked) {
  if (tracked) registry_->buffers[address()] = this;
  else registry_->buffers.erase(address());
}

bool MappedBuffer::SealedFile() const {
  if (file_ < 0) return false;
  int seals = fcntl(file_, F_GET_SEALS);
  return seals >= 0 && (seals & F_SEAL_SHRINK) != 0;
}

int MappedBuffer::MapFlags() const {
  if (file_ >= 0) return MAP_SHARED;
  return MAP_PRIVATE | MAP_ANONYMOUS | (huge_ == HugePages::kHugetlb ? MAP_HUGETLB | kMapHuge2MB : 0);
}

int MappedBuffer::MapFresh() {
  // MAP_FIXED is safe here: the range is ours (our pages or our reservation).
  int prot = PROT_READ | (writable_ ? PROT_WRITE : 0);
  void* memory = mmap(reinterpret_cast<void*>(address()), map_length_, prot, MapFlags() | MAP_FIXED, file_, static_cast<off_t>(file_offset_));
  if (memory == MAP_FAILED) return errno;
  if (huge_ == HugePages::kTransparent) madvise(memory, map_length_, MADV_HUGEPAGE);
  mapped_ = true;
  return 0;
}

void MappedBuffer::DetachView() {
  if (view_.IsEmpty()) return;
  Napi::ArrayBuffer view = view_.Value();
  if (!view.IsEmpty() && !view.IsDetached()) view.Detach();
  view_.Reset();
}

void MappedBuffer::Reserve() {
  void* memory = mmap(reinterpret_cast<void*>(address()), map_length_, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  if (memory == MAP_FAILED) {
    // Out of mappings: give the range back instead (nothing in JS can reach it, the view is detached).
    munmap(reinterpret_cast<void*>(address()), map_length_);
    reservation_->owned = false;
  }
  mapped_ = false;
}

int MappedBuffer::Destroy(CloseMode mode) {
  if (reservation_ == nullptr) return 0;
  Track(false);
  if (mode == CloseMode::kFromJs) {
    // close(): deterministic. Garbage collection and teardown instead leave the pages to the last
    // ArrayBuffer over them (they may still be in use), or unmap them now if there is none.
    DetachView();
    if (mapped_) {
      DropCachedRegistrations(*registry_, address(), address() + map_length_);
      if (reservation_->owned) Reserve();
    }
  }
  ReleaseReservation(reservation_);
  reservation_ = nullptr;
  if (file_ >= 0) close(file_);  // the mapping, where it stays, holds the file by itself
  file_ = -1;
  return 0;
}

void MappedBuffer::CheckMapped(Napi::Env env) const {
  CheckOpen(env);
  if (!mapped_) ThrowType(env, "the buffer is unmapped; remap() it first");
}

Napi::Value MappedBuffer::View(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckMapped(env);
  if (!view_.IsEmpty()) {
    Napi::ArrayBuffer current = view_.Value();
    if (!current.IsEmpty()) return current;
  }
  napi_value view;
  reservation_->refs++;
  napi_status status = napi_create_external_arraybuffer(env, reinterpret_cast<void*>(address()), length_,
                                                        FinalizeView, reservation_, &view);
  if (status != napi_ok) {
    reservation_->refs--;
    throw Napi::Error::New(env);
  }
  view_ = Napi::Weak(Napi::ArrayBuffer(env, view));
  return Napi::Value(env, view);
}

Napi::Value MappedBuffer::Address(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return FromU64(info.Env(), address());
}

Napi::Value MappedBuffer::Length(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(length_));
}

Napi::Value MappedBuffer::PageSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(page_size_));
}

Napi::Value MappedBuffer::Mapped(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !closed() && mapped_);
}

// The test operations below change the mapping behind every registration cache's back (the way other
// code in a process would); only the monitor or ODP can keep registrations correct across them.

// unmap(): the pages go (as munmap would); the range stays reserved for remap().
Napi::Value MappedBuffer::Unmap(const Napi::CallbackInfo& info) {
  CheckMapped(info.Env());
  DetachView();
  Reserve();
  if (!reservation_->owned) ThrowVerb(info.Env(), "mmap", ENOMEM);
  return info.Env().Undefined();
}

// remap(): fresh zero pages at the same address (mmap MAP_FIXED), whether mapped or unmapped; a shared
// mapping maps its file again (the pages, and their contents, are the file's).
Napi::Value MappedBuffer::Remap(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  if (!reservation_->owned) ThrowType(info.Env(), "the address range was given back; this buffer cannot be remapped");
  DetachView();
  int err = MapFresh();
  if (err != 0) {
    Reserve();
    ThrowVerb(info.Env(), "mmap", err);
  }
  return info.Env().Undefined();
}

// discard(offset, length): madvise(MADV_DONTNEED): the pages read as zeros again (fresh on next touch).
// In a shared mapping MADV_REMOVE instead: it punches the hole in the file, for every process mapping it.
Napi::Value MappedBuffer::Discard(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckMapped(env);
  uint64_t offset = ToU64(info[0], "offset"), length = ToU64(info[1], "length");
  if (offset % page_size_ != 0 || length % page_size_ != 0 || length == 0 || offset > map_length_ || length > map_length_ - offset) {
    ThrowRange(env, "discard needs whole pages of " + std::to_string(page_size_) + " bytes inside the buffer");
  }
  int advice = file_ >= 0 ? MADV_REMOVE : MADV_DONTNEED;
  if (madvise(reinterpret_cast<void*>(address() + offset), length, advice) != 0) ThrowVerb(env, "madvise", errno);
  return env.Undefined();
}

// move(): mremap the pages (with their contents) to a new address; the old range stays reserved while an
// ArrayBuffer over it may live.
Napi::Value MappedBuffer::Move(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckMapped(env);
  void* target = mmap(nullptr, map_length_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (target == MAP_FAILED) ThrowVerb(env, "mmap", errno);
  DetachView();
  void* old = reinterpret_cast<void*>(address());
  void* moved = mremap(old, map_length_, map_length_, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  if (moved == MAP_FAILED) {
    int err = errno;
    munmap(target, map_length_);
    ThrowVerb(env, "mremap", err);
  }
  Track(false);
  Reservation* previous = reservation_;
  if (previous->refs > 1) {
    void* held = mmap(old, map_length_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    previous->owned = held == old;
    if (held != MAP_FAILED && held != old) munmap(held, map_length_);  // a kernel that took it as a hint
  } else {
    previous->owned = false;  // nothing refers to it: leave it free
  }
  ReleaseReservation(previous);
  reservation_ = new Reservation{reinterpret_cast<uintptr_t>(moved), map_length_, registry_};
  Track(true);
  return env.Undefined();
}

}  // namespace rdma
