// scif_mapping.cc - ScifEndpoint's mmap(), and its statics unmap() and alloc().
#include <sys/mman.h>

#include <climits>
#include <map>
#include <mutex>

#include "backend.h"
#include "scif_endpoint.h"
#include "napi_args.h"

namespace scifnet {

using namespace napi_args;

// ---- remote mappings ----
//
// A mapping is an external ArrayBuffer. Its state is shared by the finalizer,
// unmap() and workers that lend it (vreadFrom/vwriteTo from a mapped Buffer):
// pins keep the pages mapped; the last of them to let go unmaps, and whoever
// comes last of the finalizer and the pins frees the record. All of them run
// on the loop's thread, but a worker thread's environment may have mappings
// too, hence the lock.

struct Mapping {
  const ScifApi* api;
  uint8_t* addr;
  size_t len;
  int pins = 0;
  bool release = false;    // unmap() or the finalizer asked for it
  bool unmapped = false;
  bool finalized = false;  // the ArrayBuffer is gone
};

namespace {

std::mutex& MapsLock() {
  static std::mutex* lock = new std::mutex();
  return *lock;
}

// Live mappings by address (process-wide, never destroyed).
std::map<uintptr_t, Mapping*>& Maps() {
  static auto* maps = new std::map<uintptr_t, Mapping*>();
  return *maps;
}

// The mapping holding [p, p + len), or null. Call with MapsLock held.
Mapping* FindMapping(const uint8_t* p, size_t len) {
  auto& maps = Maps();
  auto it = maps.upper_bound(reinterpret_cast<uintptr_t>(p));
  if (it == maps.begin()) return nullptr;
  --it;
  Mapping* m = it->second;
  if (p >= m->addr && p + len <= m->addr + m->len) return m;
  return nullptr;
}

// Call with MapsLock held.
int UnmapNow(Mapping* m) {
  Maps().erase(reinterpret_cast<uintptr_t>(m->addr));
  m->unmapped = true;
  return m->api->munmap(m->addr, m->len) < 0 ? Errno() : 0;
}

int Unpin(Mapping* m) {
  int err = 0;
  bool gone;
  {
    std::lock_guard<std::mutex> lock(MapsLock());
    if (--m->pins == 0 && m->release && !m->unmapped) err = UnmapNow(m);
    gone = m->pins == 0 && m->finalized;
  }
  if (gone) delete m;
  return err;
}

void FinalizeMapping(napi_env, void*, void* hint) {
  auto* m = static_cast<Mapping*>(hint);
  bool gone;
  {
    std::lock_guard<std::mutex> lock(MapsLock());
    m->finalized = true;
    m->release = true;
    gone = m->pins == 0;
    // A range this process mapped, whole and page-aligned: munmap cannot
    // fail, and a finalizer has nobody to tell if it did.
    if (gone && !m->unmapped) UnmapNow(m);
  }
  if (gone) delete m;
}

// ---- alloc() ----

void FinalizeAlloc(napi_env env, void* data, void* hint) {
  size_t len = reinterpret_cast<size_t>(hint);
  // Our own whole mapping: munmap cannot fail. Registered memory is never
  // finalized (its window holds it), so this is private memory again.
  munmap(data, len);
  int64_t ignored;
  napi_adjust_external_memory(env, -static_cast<int64_t>(len), &ignored);
}

}  // namespace

MappingPin::MappingPin(const uint8_t* data, size_t len) {
  std::lock_guard<std::mutex> lock(MapsLock());
  m_ = FindMapping(data, len);
  if (m_) m_->pins++;
}

MappingPin& MappingPin::operator=(MappingPin&& other) noexcept {
  if (this != &other) {
    if (m_) Unpin(m_);
    m_ = other.m_;
    other.m_ = nullptr;
  }
  return *this;
}

MappingPin::~MappingPin() {
  if (m_) Unpin(m_);  // an unmap() it delayed happens now
}

size_t MappingCount() {
  std::lock_guard<std::mutex> lock(MapsLock());
  return Maps().size();
}

// mmap(remoteOffset, length, prot): an external ArrayBuffer over the peer's
// pages, unmapped by its finalizer or by unmap(); or -errno.
Napi::Value ScifEndpoint::Mmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  int64_t roff = I64(info[0]);
  size_t len = Size(info[1]);
  int prot = Int(info[2]);
  void* addr = api_->mmap(nullptr, len, prot, 0, epd_, roff);
  if (addr == SCIF_MMAP_FAILED) return Status(env, Errno());
  auto* m = new Mapping{api_, static_cast<uint8_t*>(addr), len};
  {
    std::lock_guard<std::mutex> lock(MapsLock());
    Maps()[reinterpret_cast<uintptr_t>(addr)] = m;
  }
  napi_value ab;
  napi_status s = napi_create_external_arraybuffer(env, addr, len, FinalizeMapping, m, &ab);
  if (s != napi_ok) {
    {
      std::lock_guard<std::mutex> lock(MapsLock());
      UnmapNow(m);
    }
    delete m;
    if (env.IsExceptionPending()) return env.Undefined();
    return Status(env, -ENOMEM);
  }
  return Napi::Value(env, ab);
}

// ---- not tied to an endpoint ----

// alloc(length): a zeroed Buffer of whole pages (length rounded up), private
// anonymous memory (which the fabric can register: it refuses shared memory
// it did not make) that is unmapped when the Buffer is collected; or -errno.
Napi::Value ScifEndpoint::Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t page = PageSize();
  size_t want = Size(info[0]);
  if (want == 0 || want > SIZE_MAX - page) return Status(env, -EINVAL);
  size_t len = (want + page - 1) / page * page;
  // Fresh anonymous pages read as zeros without being touched, so a window
  // over them costs no copy when it is registered.
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Status(env, Errno());
  napi_value buf;
  napi_status s = napi_create_external_buffer(env, len, p, FinalizeAlloc, reinterpret_cast<void*>(len), &buf);
  if (s != napi_ok) {
    munmap(p, len);
    if (env.IsExceptionPending()) return env.Undefined();
    return Status(env, -ENOMEM);
  }
  int64_t ignored;
  napi_adjust_external_memory(env, static_cast<int64_t>(len), &ignored);
  return Napi::Value(env, buf);
}

// unmap(arrayBuffer): detaches a mapping from mmap() (every view of it now
// has length 0) and unmaps it - at once, or when the last RMA using it is
// done. 0, -errno, or -EINVAL when it is not a live mapping.
Napi::Value ScifEndpoint::Unmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) return Status(env, -EINVAL);
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  void* data = ab.Data();
  size_t len = ab.ByteLength();
  Mapping* m;
  {
    std::lock_guard<std::mutex> lock(MapsLock());
    auto it = Maps().find(reinterpret_cast<uintptr_t>(data));
    if (!data || it == Maps().end() || it->second->len != len || it->second->release)
      return Status(env, -EINVAL);
    m = it->second;
    m->pins++;  // alive through the detach, whenever its finalizer runs
  }
  napi_status s = napi_detach_arraybuffer(env, ab);
  if (s != napi_ok) {
    Unpin(m);
    if (env.IsExceptionPending()) return env.Undefined();
    return Status(env, -EINVAL);
  }
  {
    std::lock_guard<std::mutex> lock(MapsLock());
    m->release = true;
  }
  return Status(env, Unpin(m));
}

Napi::Value ScifEndpoint::IsPageAligned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t len;
  if (!BytesOf(info[0], &data, &len)) return Napi::Boolean::New(env, false);
  size_t page = PageSize();
  return Napi::Boolean::New(env, reinterpret_cast<uintptr_t>(data) % page == 0 && len % page == 0);
}
}  // namespace scifnet
