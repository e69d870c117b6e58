// scif_endpoint.cc - see scif_endpoint.h.
#include "scif_endpoint.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "backend.h"

namespace scifnet {

namespace {

constexpr int kRoundsPerTurn = 16;  // api->poll() answers acted on per turn of the loop
constexpr int kCallsPerRound = 16;  // recv/send/accept calls per answer

int Errno() { return errno > 0 ? -errno : -EIO; }

size_t PageSize() {
  static const size_t page = [] {
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? static_cast<size_t>(p) : static_cast<size_t>(4096);
  }();
  return page;
}

// The bytes of a TypedArray, DataView or ArrayBuffer; false for anything else.
bool BytesOf(Napi::Value v, uint8_t** data, size_t* len) {
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    Napi::ArrayBuffer ab = ta.ArrayBuffer();
    *data = static_cast<uint8_t*>(ab.Data()) + ta.ByteOffset();
    *len = ta.ByteLength();
  } else if (v.IsDataView()) {
    Napi::DataView dv = v.As<Napi::DataView>();
    *data = static_cast<uint8_t*>(dv.Data());
    *len = dv.ByteLength();
  } else if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
    *data = static_cast<uint8_t*>(ab.Data());
    *len = ab.ByteLength();
  } else {
    return false;
  }
  if (*len == 0) *data = nullptr;
  return true;
}

// Offsets and values come as BigInt (src/scif.ts converts), lengths as
// numbers it checked to be safe integers.
int64_t I64(Napi::Value v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Int64Value(&lossless);
  }
  return v.As<Napi::Number>().Int64Value();
}

uint64_t U64(Napi::Value v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  return static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
}

size_t Size(Napi::Value v) { return static_cast<size_t>(v.As<Napi::Number>().DoubleValue()); }

int Int(Napi::Value v) { return v.As<Napi::Number>().Int32Value(); }

Napi::Value Status(Napi::Env env, int64_t status) {
  return Napi::Number::New(env, static_cast<double>(status));
}

// ---- remote mappings ----
//
// A mapping is an external ArrayBuffer. Its state is shared by the finalizer,
// unmap() and workers that lend it (vreadFrom/vwriteTo from a mapped Buffer):
// pins keep the pages mapped; the last of them to let go unmaps, and whoever
// comes last of the finalizer and the pins frees the record. All of them run
// on the loop's thread, but a worker thread's environment may have mappings
// too, hence the lock.

}  // namespace

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

// ---- the threadpool side ----

// One call into libscif on the threadpool, holding what it uses.
class ScifOp : public Napi::AsyncWorker {
 public:
  using Fn = std::function<int64_t(const ScifApi*, scif_epd_t)>;

  ScifOp(ScifEndpoint* ep, Napi::Function cb, const char* name, Fn fn, bool sleeper = false)
      : Napi::AsyncWorker(ep->Value(), cb, name),
        ep_(ep),
        api_(ep->api_),
        epd_(ep->epd_),
        fn_(std::move(fn)),
        sleeper_(sleeper) {}

  // Keeps a JS value (a Buffer) alive until the call is done.
  void Hold(Napi::Value v) { holds_.push_back(Napi::Persistent(v)); }
  // Keeps a mapping's pages mapped until the call is done.
  void Lend(const uint8_t* data, size_t len) { pins_.emplace_back(data, len); }
  void AfterOnLoop(std::function<void(int64_t)> fn) { after_ = std::move(fn); }
  void SetClose() { close_ = true; }
  bool sleeper() const { return sleeper_; }

  // Lets go of what was held, without having run (queueing failed).
  void Abandon() { Release(); }

 protected:
  void Execute() override {
    // Queued before a close() and not begun: the descriptor is going away.
    if (!close_ && ep_->closing_.load(std::memory_order_acquire)) {
      result_ = -ECANCELED;
      return;
    }
    result_ = fn_(api_, epd_);
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Release();
    if (after_) after_(result_);
    ep_->OpDone(this);
    Callback().Call(Receiver().Value(), {Status(env, result_)});
  }

 private:
  void Release() {
    pins_.clear();
    holds_.clear();
  }

  ScifEndpoint* ep_;
  const ScifApi* api_;
  scif_epd_t epd_;
  Fn fn_;
  bool sleeper_;
  bool close_ = false;
  int64_t result_ = 0;
  std::vector<Napi::Reference<Napi::Value>> holds_;
  std::vector<MappingPin> pins_;
  std::function<void(int64_t)> after_;
};

struct ScifEndpoint::LoopHandles {
  uv_poll_t poll;
  uv_idle_t idle;
  ScifEndpoint* owner;
  bool poll_init = false, idle_init = false;
  int open = 0;  // handles initialised and not yet closed
};

Napi::Function ScifEndpoint::Define(Napi::Env env) {
  Napi::Object constants = Napi::Object::New(env);
  constants.Set("PROT_READ", Napi::Number::New(env, SCIF_PROT_READ));
  constants.Set("PROT_WRITE", Napi::Number::New(env, SCIF_PROT_WRITE));
  constants.Set("MAP_FIXED", Napi::Number::New(env, SCIF_MAP_FIXED));
  constants.Set("RMA_USECPU", Napi::Number::New(env, SCIF_RMA_USECPU));
  constants.Set("RMA_USECACHE", Napi::Number::New(env, SCIF_RMA_USECACHE));
  constants.Set("RMA_SYNC", Napi::Number::New(env, SCIF_RMA_SYNC));
  constants.Set("RMA_ORDERED", Napi::Number::New(env, SCIF_RMA_ORDERED));
  constants.Set("FENCE_INIT_SELF", Napi::Number::New(env, SCIF_FENCE_INIT_SELF));
  constants.Set("FENCE_INIT_PEER", Napi::Number::New(env, SCIF_FENCE_INIT_PEER));
  constants.Set("SIGNAL_LOCAL", Napi::Number::New(env, SCIF_SIGNAL_LOCAL));
  constants.Set("SIGNAL_REMOTE", Napi::Number::New(env, SCIF_SIGNAL_REMOTE));
  constants.Freeze();
  return DefineClass(
      env, "ScifEndpoint",
      {
          InstanceMethod<&ScifEndpoint::Open>("open"),
          InstanceMethod<&ScifEndpoint::Bind>("bind"),
          InstanceMethod<&ScifEndpoint::Listen>("listen"),
          InstanceMethod<&ScifEndpoint::Connect>("connect"),
          InstanceMethod<&ScifEndpoint::Accept>("accept"),
          InstanceMethod<&ScifEndpoint::Send>("send"),
          InstanceMethod<&ScifEndpoint::Recv>("recv"),
          InstanceMethod<&ScifEndpoint::Close>("close"),
          InstanceMethod<&ScifEndpoint::Ref>("ref"),
          InstanceMethod<&ScifEndpoint::Unref>("unref"),
          InstanceMethod<&ScifEndpoint::Register>("register"),
          InstanceMethod<&ScifEndpoint::Unregister>("unregister"),
          InstanceMethod<&ScifEndpoint::ReadFrom>("readFrom"),
          InstanceMethod<&ScifEndpoint::WriteTo>("writeTo"),
          InstanceMethod<&ScifEndpoint::VReadFrom>("vreadFrom"),
          InstanceMethod<&ScifEndpoint::VWriteTo>("vwriteTo"),
          InstanceMethod<&ScifEndpoint::Mmap>("mmap"),
          InstanceMethod<&ScifEndpoint::FenceMark>("fenceMark"),
          InstanceMethod<&ScifEndpoint::FenceWait>("fenceWait"),
          InstanceMethod<&ScifEndpoint::FenceSignal>("fenceSignal"),
          InstanceAccessor<&ScifEndpoint::GetLocalPort>("localPort"),
          InstanceAccessor<&ScifEndpoint::GetPeerNode>("peerNode"),
          InstanceAccessor<&ScifEndpoint::GetPeerPort>("peerPort"),
          InstanceAccessor<&ScifEndpoint::GetFd>("fd"),
          InstanceAccessor<&ScifEndpoint::GetPending>("pending"),
          StaticMethod<&ScifEndpoint::Alloc>("alloc"),
          StaticMethod<&ScifEndpoint::Unmap>("unmap"),
          StaticMethod<&ScifEndpoint::IsPageAligned>("isPageAligned"),
          StaticValue("pageSize", Napi::Number::New(env, static_cast<double>(PageSize()))),
          StaticValue("constants", constants),
      });
}

ScifEndpoint::ScifEndpoint(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ScifEndpoint>(info) {
  ctor_ = Napi::Persistent(info.NewTarget().As<Napi::Function>());
}

ScifEndpoint::~ScifEndpoint() {
  // Only reached for an endpoint never opened or already closed (an open one
  // holds a reference to itself), or at the environment's teardown.
  CloseLoop();
  if (epd_ >= 0 && api_) api_->close(epd_);
  delete async_;
}

bool ScifEndpoint::Usable() const {
  return state_ == State::kOpen || state_ == State::kListening || state_ == State::kConnecting ||
         state_ == State::kConnected;
}

// ---- connections and messages ----

Napi::Value ScifEndpoint::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::kNone) return Status(env, -EISCONN);
  api_ = Scif();
  if (!api_) return Status(env, -ENXIO);  // lastError() says why
  epd_ = api_->open();
  if (epd_ < 0) {
    int err = Errno();
    epd_ = -1;
    return Status(env, err);
  }
  if (int err = InitLoop()) {
    api_->close(epd_);
    epd_ = -1;
    return Status(env, err);
  }
  state_ = State::kOpen;
  ObjectWrap::Ref();  // an open endpoint lives until its close completes
  return Status(env, 0);
}

Napi::Value ScifEndpoint::Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  int port = api_->bind(epd_, static_cast<uint16_t>(Int(info[0])));
  if (port < 0) return Status(env, Errno());
  local_port_ = static_cast<uint16_t>(port);
  return Status(env, port);
}

Napi::Value ScifEndpoint::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  if (api_->listen(epd_, Int(info[0])) < 0) return Status(env, Errno());
  state_ = State::kListening;
  return Status(env, 0);
}

// connect(node, port, cb(status)): 0 (cb follows, from the loop) or -errno.
Napi::Value ScifEndpoint::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  if (state_ == State::kConnecting) return Status(env, -EALREADY);
  scif_portID dst = {static_cast<uint16_t>(Int(info[0])), static_cast<uint16_t>(Int(info[1]))};
  // Non-blocking: EINPROGRESS now, the answer when the descriptor says so.
  int fd = scif_get_fd(epd_);
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return Status(env, Errno());
  int port = api_->connect(epd_, &dst);
  if (port < 0 && errno != EINPROGRESS) return Status(env, Errno());
  peer_ = dst;
  state_ = State::kConnecting;
  connect_cb_ = Napi::Persistent(info[2].As<Napi::Function>());
  if (port >= 0) {
    // Accepted at once: the answer is taken, so the descriptor will not say
    // so; reported from the loop all the same.
    local_port_ = static_cast<uint16_t>(port);
    connect_result_ = 0;
  }
  Schedule();
  return Status(env, 0);
}

// accept(cb(status, endpoint, node, port)): 0 or -errno.
Napi::Value ScifEndpoint::Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  if (state_ != State::kListening) return Status(env, -EINVAL);  // as scif_accept says
  accepts_.push_back(Napi::Persistent(info[0].As<Napi::Function>()));
  Schedule();
  return Status(env, 0);
}

// send(view, cb(status, bytes)): 0 or -errno; cb once every byte is in.
Napi::Value ScifEndpoint::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  if (state_ != State::kConnected) return Status(env, -ENOTCONN);
  SendReq r;
  uint8_t* data;
  if (!BytesOf(info[0], &data, &r.len)) return Status(env, -EINVAL);
  r.data = data;
  r.sent = 0;
  r.hold = Napi::Persistent(info[0]);
  r.pin = MappingPin(data, r.len);
  r.cb = Napi::Persistent(info[1].As<Napi::Function>());
  sends_.push_back(std::move(r));
  Schedule();
  return Status(env, 0);
}

// recv(length, cb(status, buffer)): 0 or -errno; cb once length bytes came.
Napi::Value ScifEndpoint::Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  if (state_ != State::kConnected) return Status(env, -ENOTCONN);
  size_t len = Size(info[0]);
  Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(env, len);
  if (env.IsExceptionPending()) return env.Undefined();  // out of memory: thrown
  RecvReq r;
  r.data = buf.Data();
  r.len = len;
  r.got = 0;
  r.buf = Napi::Persistent(buf);
  r.cb = Napi::Persistent(info[1].As<Napi::Function>());
  recvs_.push_back(std::move(r));
  Schedule();
  return Status(env, 0);
}

// close(cb(status)): true when cb will be called (once the descriptor is
// closed and the windows released), false when there was nothing to close.
// Requests still waiting get -ECANCELED now; calls already running on the
// threadpool finish first, and ones not yet begun get -ECANCELED.
Napi::Value ScifEndpoint::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Napi::Boolean::New(env, false);
  closing_.store(true, std::memory_order_release);
  state_ = State::kClosing;
  close_cb_ = Napi::Persistent(info[0].As<Napi::Function>());
  CloseLoop();
  CancelPending();
  if (inflight_ == 0)
    StartClose();
  else
    close_pending_ = true;
  return Napi::Boolean::New(env, true);
}

Napi::Value ScifEndpoint::Ref(const Napi::CallbackInfo& info) {
  referenced_ = true;
  if (loop_ && loop_->poll_init) uv_ref(reinterpret_cast<uv_handle_t*>(&loop_->poll));
  return info.Env().Undefined();
}

Napi::Value ScifEndpoint::Unref(const Napi::CallbackInfo& info) {
  referenced_ = false;
  if (loop_ && loop_->poll_init) uv_unref(reinterpret_cast<uv_handle_t*>(&loop_->poll));
  return info.Env().Undefined();
}

Napi::Value ScifEndpoint::GetLocalPort(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), local_port_);
}

Napi::Value ScifEndpoint::GetPeerNode(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), peer_.node);
}

Napi::Value ScifEndpoint::GetPeerPort(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), peer_.port);
}

Napi::Value ScifEndpoint::GetFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), epd_ >= 0 ? scif_get_fd(epd_) : -1);
}

// What the endpoint holds, for tests that look for leaks.
Napi::Value ScifEndpoint::GetPending(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("connect", Napi::Number::New(env, connect_cb_.IsEmpty() ? 0 : 1));
  o.Set("accepts", Napi::Number::New(env, static_cast<double>(accepts_.size())));
  o.Set("recvs", Napi::Number::New(env, static_cast<double>(recvs_.size())));
  o.Set("sends", Napi::Number::New(env, static_cast<double>(sends_.size())));
  o.Set("inflight", Napi::Number::New(env, inflight_));
  o.Set("sleepers", Napi::Number::New(env, sleepers_));
  o.Set("windows", Napi::Number::New(env, static_cast<double>(windows_.size())));
  o.Set("watching", Napi::Boolean::New(env, watching_));
  std::lock_guard<std::mutex> lock(MapsLock());
  o.Set("mappings", Napi::Number::New(env, static_cast<double>(Maps().size())));
  return o;
}

// ---- memory, RMA and fences ----

// register(view, offset, prot, mapFlags): the window's offset (BigInt) or -errno.
Napi::Value ScifEndpoint::Register(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  uint8_t* data;
  size_t len;
  if (!BytesOf(info[0], &data, &len)) return Status(env, -EINVAL);
  off_t off = api_->register_(epd_, data, len, static_cast<off_t>(I64(info[1])), Int(info[2]),
                              Int(info[3]));
  if (off == SCIF_REGISTER_FAILED) return Status(env, Errno());
  windows_[static_cast<int64_t>(off)] = WindowHold{Napi::Persistent(info[0]), len};
  return Napi::BigInt::New(env, static_cast<int64_t>(off));
}

// Runs op on the threadpool; 0 (its callback follows) or -errno.
Napi::Value ScifEndpoint::Run(const Napi::CallbackInfo& info, ScifOp* op) {
  Napi::Env env = info.Env();
  if (env.IsExceptionPending()) {  // the AsyncWorker could not be made
    op->Abandon();
    delete op;
    return env.Undefined();
  }
  napi_status s = napi_queue_async_work(env, *op);
  if (s != napi_ok) {
    op->Abandon();
    delete op;
    return Status(env, -ENOMEM);
  }
  inflight_++;
  if (op->sleeper()) sleepers_++;
  return Status(env, 0);
}

// unregister(offset, length, cb(status)).
Napi::Value ScifEndpoint::Unregister(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  int64_t off = I64(info[0]);
  size_t len = Size(info[1]);
  // It waits for the peer's RMAs into the windows (a sleeper, as fences are).
  auto* op = new ScifOp(this, info[2].As<Napi::Function>(), "SCIF_UNREGISTER",
                        [off, len](const ScifApi* api, scif_epd_t epd) -> int64_t {
                          return api->unregister(epd, off, len) < 0 ? Errno() : 0;
                        },
                        true);
  op->AfterOnLoop([this, off, len](int64_t r) {
    if (r != 0) return;
    // The windows wholly inside the range are gone: their memory is free.
    uint64_t end = static_cast<uint64_t>(off) + len;
    for (auto it = windows_.lower_bound(off); it != windows_.end() && static_cast<uint64_t>(it->first) < end;)
      it = windows_.erase(it);
  });
  return Run(info, op);
}

// readFrom/writeTo(localOffset, length, remoteOffset, flags, cb(status)).
Napi::Value ScifEndpoint::ReadFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  int64_t loff = I64(info[0]), roff = I64(info[2]);
  size_t len = Size(info[1]);
  int flags = Int(info[3]);
  auto* op = new ScifOp(this, info[4].As<Napi::Function>(), "SCIF_READFROM",
                        [=](const ScifApi* api, scif_epd_t epd) -> int64_t {
                          return api->readfrom(epd, loff, len, roff, flags) < 0 ? Errno() : 0;
                        });
  return Run(info, op);
}

Napi::Value ScifEndpoint::WriteTo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  int64_t loff = I64(info[0]), roff = I64(info[2]);
  size_t len = Size(info[1]);
  int flags = Int(info[3]);
  auto* op = new ScifOp(this, info[4].As<Napi::Function>(), "SCIF_WRITETO",
                        [=](const ScifApi* api, scif_epd_t epd) -> int64_t {
                          return api->writeto(epd, loff, len, roff, flags) < 0 ? Errno() : 0;
                        });
  return Run(info, op);
}

// vreadFrom/vwriteTo(view, remoteOffset, flags, cb(status)): the whole view.
Napi::Value ScifEndpoint::VReadFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  uint8_t* data;
  size_t len;
  if (!BytesOf(info[0], &data, &len)) return Status(env, -EINVAL);
  int64_t roff = I64(info[1]);
  int flags = Int(info[2]);
  auto* op = new ScifOp(this, info[3].As<Napi::Function>(), "SCIF_VREADFROM",
                        [=](const ScifApi* api, scif_epd_t epd) -> int64_t {
                          return api->vreadfrom(epd, data, len, roff, flags) < 0 ? Errno() : 0;
                        });
  op->Hold(info[0]);
  op->Lend(data, len);
  return Run(info, op);
}

Napi::Value ScifEndpoint::VWriteTo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  uint8_t* data;
  size_t len;
  if (!BytesOf(info[0], &data, &len)) return Status(env, -EINVAL);
  int64_t roff = I64(info[1]);
  int flags = Int(info[2]);
  auto* op = new ScifOp(this, info[3].As<Napi::Function>(), "SCIF_VWRITETO",
                        [=](const ScifApi* api, scif_epd_t epd) -> int64_t {
                          return api->vwriteto(epd, data, len, roff, flags) < 0 ? Errno() : 0;
                        });
  op->Hold(info[0]);
  op->Lend(data, len);
  return Run(info, op);
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

// fenceMark(flags, cb(markOrStatus)).
Napi::Value ScifEndpoint::FenceMark(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  int flags = Int(info[0]);
  auto* op = new ScifOp(this, info[1].As<Napi::Function>(), "SCIF_FENCE_MARK",
                        [flags](const ScifApi* api, scif_epd_t epd) -> int64_t {
                          int mark = 0;
                          return api->fence_mark(epd, flags, &mark) < 0 ? Errno() : mark;
                        });
  return Run(info, op);
}

// fenceWait(mark, cb(status)).
Napi::Value ScifEndpoint::FenceWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  int mark = Int(info[0]);
  auto* op = new ScifOp(this, info[1].As<Napi::Function>(), "SCIF_FENCE_WAIT",
                        [mark](const ScifApi* api, scif_epd_t epd) -> int64_t {
                          return api->fence_wait(epd, mark) < 0 ? Errno() : 0;
                        },
                        true);
  return Run(info, op);
}

// fenceSignal(localOffset, localValue, remoteOffset, remoteValue, flags, cb(status)).
Napi::Value ScifEndpoint::FenceSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  int64_t loff = I64(info[0]), roff = I64(info[2]);
  uint64_t lval = U64(info[1]), rval = U64(info[3]);
  int flags = Int(info[4]);
  auto* op = new ScifOp(this, info[5].As<Napi::Function>(), "SCIF_FENCE_SIGNAL",
                        [=](const ScifApi* api, scif_epd_t epd) -> int64_t {
                          return api->fence_signal(epd, loff, lval, roff, rval, flags) < 0 ? Errno()
                                                                                           : 0;
                        },
                        true);
  return Run(info, op);
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

// ---- the loop side ----

int ScifEndpoint::InitLoop() {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(Env(), &loop) != napi_ok || !loop) return -EIO;
  auto* h = new LoopHandles();
  h->owner = this;
  loop_ = h;
  int err = uv_idle_init(loop, &h->idle);
  if (!err) {
    h->idle.data = h;
    h->idle_init = true;
    h->open++;
  }
  if (err) CloseLoop();
  return err;
}

void ScifEndpoint::CloseLoop() {
  if (!loop_) return;
  LoopHandles* h = loop_;
  loop_ = nullptr;
  watching_ = false;
  h->owner = nullptr;
  auto done = [](uv_handle_t* handle) {
    auto* lh = static_cast<LoopHandles*>(handle->data);
    if (--lh->open == 0) delete lh;
  };
  if (h->open == 0) {
    delete h;
    return;
  }
  if (h->idle_init) {
    uv_idle_stop(&h->idle);
    uv_close(reinterpret_cast<uv_handle_t*>(&h->idle), done);
  }
  if (h->poll_init) {
    uv_poll_stop(&h->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), done);
  }
}

short ScifEndpoint::Want() const {
  switch (state_) {
    case State::kListening:
      return accepts_.empty() ? 0 : POLLIN;
    case State::kConnecting:
      return POLLOUT;
    case State::kConnected:
      return static_cast<short>((recvs_.empty() ? 0 : POLLIN) | (sends_.empty() ? 0 : POLLOUT));
    default:
      return 0;
  }
}

// Watches the descriptor for what Want() says, or stops when that is nothing.
// The fabric's descriptor turns readable for every kind of news, so reading is
// all we watch there; a SCIF driver's reports POLLOUT itself.
int ScifEndpoint::Watch() {
  short want = Want();
  if (!loop_ || want == 0) {
    Unwatch();
    return 0;
  }
  int events = UV_READABLE;
  if (!api_->doorbell_readiness)
    events = ((want & POLLIN) ? UV_READABLE : 0) | ((want & POLLOUT) ? UV_WRITABLE : 0);
  if (!loop_->poll_init) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(Env(), &loop) != napi_ok || !loop) return -EIO;
    int err = uv_poll_init(loop, &loop_->poll, scif_get_fd(epd_));
    if (err) return err;
    loop_->poll.data = loop_;
    loop_->poll_init = true;
    loop_->open++;
    if (!referenced_) uv_unref(reinterpret_cast<uv_handle_t*>(&loop_->poll));
  }
  if (!watching_ || events != watch_events_) {
    int err = uv_poll_start(&loop_->poll, events, OnPoll);
    if (err) return err;
    watching_ = true;
    watch_events_ = events;
  }
  return 0;
}

void ScifEndpoint::Unwatch() {
  if (watching_ && loop_) uv_poll_stop(&loop_->poll);
  watching_ = false;
}

void ScifEndpoint::Schedule() {
  if (loop_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(&loop_->idle)))
    uv_idle_start(&loop_->idle, OnIdle);
}

void ScifEndpoint::OnPoll(uv_poll_t* handle, int, int) {
  auto* h = static_cast<LoopHandles*>(handle->data);
  if (!h->owner) return;
  Napi::HandleScope scope(h->owner->Env());
  h->owner->Service();
}

void ScifEndpoint::OnIdle(uv_idle_t* handle) {
  auto* h = static_cast<LoopHandles*>(handle->data);
  uv_idle_stop(handle);
  if (!h->owner) return;
  Napi::HandleScope scope(h->owner->Env());
  h->owner->Service();
}

// Asks api->poll() what changed and acts on it until nothing is left to do,
// at which point the poll has armed the wake-ups that bring us back.
void ScifEndpoint::Service() {
  if (!Usable()) return;
  Napi::Env env = Env();
  if (connect_result_ != 1 && state_ == State::kConnecting) {
    int status = connect_result_;
    connect_result_ = 1;
    state_ = status == 0 ? State::kConnected : State::kOpen;
    Napi::FunctionReference cb = std::move(connect_cb_);
    Emit(cb, {Status(env, status)});
  }
  for (int round = 0; round < kRoundsPerTurn; round++) {
    if (!Usable()) return;
    // Requests with nothing (left) to move wait for nothing.
    if (CompleteEmpty()) continue;
    short want = Want();
    if (want == 0) {
      Unwatch();
      return;
    }
    scif_pollepd pe = {epd_, want, 0};
    int err = api_->poll(&pe, 1, 0) < 0 ? Errno() : 0;
    if (!err && (pe.revents & POLLNVAL)) err = -EBADF;
    bool acted = !err && pe.revents != 0 && Dispatch(pe.revents);
    if (!Usable()) return;
    // Nothing to act on: the poll armed the wake-ups; wait for the descriptor.
    if (!err && !acted) err = Watch();
    if (err) {
      FailAll(err);
      return;
    }
    if (!acted) return;
    // Acted: ask again, the answer may have changed.
  }
  Schedule();  // still busy: give the rest of the loop a turn first
}

// Completes the requests at the heads of the queues that have nothing to
// move (recv(0), send of an empty buffer); true when it completed any.
bool ScifEndpoint::CompleteEmpty() {
  Napi::Env env = Env();
  bool acted = false;
  while (state_ == State::kConnected && !recvs_.empty() && recvs_.front().got == recvs_.front().len) {
    RecvReq done = std::move(recvs_.front());
    recvs_.pop_front();
    Napi::HandleScope scope(env);
    Emit(done.cb, {Status(env, 0), done.buf.Value()});
    acted = true;
  }
  while (state_ == State::kConnected && !sends_.empty() && sends_.front().sent == sends_.front().len) {
    SendReq done = std::move(sends_.front());
    sends_.pop_front();
    Emit(done.cb, {Status(env, 0), Napi::Number::New(env, static_cast<double>(done.len))});
    acted = true;
  }
  return acted;
}

// Nothing can be waited for: every request waiting learns why.
void ScifEndpoint::FailAll(int err) {
  Napi::Env env = Env();
  Napi::FunctionReference cb = std::move(connect_cb_);
  if (state_ == State::kConnecting) state_ = State::kOpen;
  auto accepts = std::move(accepts_);
  auto recvs = std::move(recvs_);
  auto sends = std::move(sends_);
  accepts_.clear();
  recvs_.clear();
  sends_.clear();
  Unwatch();
  Emit(cb, {Status(env, err)});
  for (auto& a : accepts) Emit(a, {Status(env, err)});
  for (auto& r : recvs) Emit(r.cb, {Status(env, err)});
  for (auto& s : sends) Emit(s.cb, {Status(env, err)});
}

// Acts on one api->poll() answer; false when there was nothing to act on.
bool ScifEndpoint::Dispatch(short revents) {
  switch (state_) {
    case State::kListening:
      return (revents & POLLIN) && AcceptSome();
    case State::kConnecting:
      return (revents & (POLLOUT | POLLERR | POLLHUP)) && FinishConnect();
    case State::kConnected: {
      bool acted = false;
      if (!sends_.empty() && (revents & (POLLOUT | POLLHUP | POLLERR))) acted |= SendSome();
      if (state_ == State::kConnected && !recvs_.empty() && (revents & (POLLIN | POLLHUP | POLLERR)))
        acted |= RecvSome();
      return acted;
    }
    default:
      return false;
  }
}

bool ScifEndpoint::AcceptSome() {
  Napi::Env env = Env();
  bool acted = false;
  for (int i = 0; i < kCallsPerRound && state_ == State::kListening && !accepts_.empty(); i++) {
    scif_portID peer;
    scif_epd_t nepd;
    if (api_->accept(epd_, &peer, &nepd, 0) < 0) {
      if (errno == EAGAIN) return acted;
      int err = Errno();
      Napi::FunctionReference cb = std::move(accepts_.front());
      accepts_.pop_front();
      Emit(cb, {Status(env, err)});
      return true;
    }
    acted = true;
    Napi::HandleScope scope(env);
    Napi::Object child = ctor_.New({});
    int err = env.IsExceptionPending() ? -ENOMEM : 0;
    if (err) env.GetAndClearPendingException();
    ScifEndpoint* ep = err ? nullptr : Unwrap(child);
    if (ep) {
      ep->api_ = api_;
      ep->epd_ = nepd;
      ep->peer_ = peer;
      ep->local_port_ = local_port_;  // accepted endpoints share their listener's port
      err = ep->InitLoop();
      if (err) ep->epd_ = -1;
    }
    if (err || !ep) {
      api_->close(nepd);
      Napi::FunctionReference cb = std::move(accepts_.front());
      accepts_.pop_front();
      Emit(cb, {Status(env, err ? err : -ENOMEM)});
      continue;
    }
    ep->state_ = State::kConnected;
    ep->ObjectWrap::Ref();
    Napi::FunctionReference cb = std::move(accepts_.front());
    accepts_.pop_front();
    Emit(cb, {Status(env, 0), child, Napi::Number::New(env, peer.node), Napi::Number::New(env, peer.port)});
  }
  return acted;
}

bool ScifEndpoint::FinishConnect() {
  int port = api_->connect(epd_, &peer_);
  if (port < 0 && errno == EINPROGRESS) return false;
  int status = port < 0 ? Errno() : 0;
  if (port >= 0) local_port_ = static_cast<uint16_t>(port);
  state_ = status == 0 ? State::kConnected : State::kOpen;
  Napi::FunctionReference cb = std::move(connect_cb_);
  Emit(cb, {Status(Env(), status)});
  return true;
}

bool ScifEndpoint::RecvSome() {
  Napi::Env env = Env();
  bool acted = false;
  for (int i = 0; i < kCallsPerRound && state_ == State::kConnected && !recvs_.empty(); i++) {
    RecvReq& r = recvs_.front();
    int want = static_cast<int>(std::min<size_t>(r.len - r.got, INT_MAX));
    int n = want == 0 ? 0 : api_->recv(epd_, r.data + r.got, want, 0);
    if (n < 0 && errno == EAGAIN) n = 0;  // a node waking up: ask again later
    if (n < 0) {
      int err = Errno();
      RecvReq done = std::move(recvs_.front());
      recvs_.pop_front();
      Emit(done.cb, {Status(env, err)});
      return true;
    }
    r.got += static_cast<size_t>(n);
    if (r.got == r.len) {
      RecvReq done = std::move(recvs_.front());
      recvs_.pop_front();
      Napi::HandleScope scope(env);
      Emit(done.cb, {Status(env, 0), done.buf.Value()});
      acted = true;
      continue;
    }
    if (n == 0) return acted;  // drained; the fabric armed its doorbell
    acted = true;
  }
  return acted;
}

bool ScifEndpoint::SendSome() {
  Napi::Env env = Env();
  bool acted = false;
  for (int i = 0; i < kCallsPerRound && state_ == State::kConnected && !sends_.empty(); i++) {
    SendReq& s = sends_.front();
    int want = static_cast<int>(std::min<size_t>(s.len - s.sent, INT_MAX));
    int n = want == 0 ? 0 : api_->send(epd_, const_cast<uint8_t*>(s.data + s.sent), want, 0);
    if (n < 0 && errno == EAGAIN) n = 0;
    if (n < 0) {
      int err = Errno();
      SendReq done = std::move(sends_.front());
      sends_.pop_front();
      Emit(done.cb, {Status(env, err)});
      return true;
    }
    s.sent += static_cast<size_t>(n);
    if (s.sent == s.len) {
      SendReq done = std::move(sends_.front());
      sends_.pop_front();
      Emit(done.cb, {Status(env, 0), Napi::Number::New(env, static_cast<double>(done.len))});
      acted = true;
      continue;
    }
    if (n == 0) return acted;  // the ring is full; the fabric armed for space
    acted = true;
  }
  return acted;
}

// Calls cb from the loop, as node:net's handles call their owners.
void ScifEndpoint::Emit(Napi::FunctionReference& cb, std::initializer_list<napi_value> args) {
  if (cb.IsEmpty()) return;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  Napi::Object self = Value();
  if (!async_) async_ = new Napi::AsyncContext(env, "SCIFENDPOINT", self);
  Napi::Function fn = cb.Value();
  cb.Reset();
  fn.MakeCallback(self, args, *async_);
  if (env.IsExceptionPending()) {
    // As for any callback from the loop: the process's uncaughtException.
    Napi::Error e = env.GetAndClearPendingException();
    napi_fatal_exception(env, e.Value());
  }
}

// Requests waiting on the descriptor, at close: -ECANCELED, now (close() was
// called from JS, so these are plain calls).
void ScifEndpoint::CancelPending() {
  Napi::Env env = Env();
  Napi::Object self = Value();
  std::vector<Napi::FunctionReference> cbs;
  if (!connect_cb_.IsEmpty()) cbs.push_back(std::move(connect_cb_));
  for (auto& a : accepts_) cbs.push_back(std::move(a));
  for (auto& r : recvs_) cbs.push_back(std::move(r.cb));
  for (auto& s : sends_) cbs.push_back(std::move(s.cb));
  accepts_.clear();
  recvs_.clear();
  sends_.clear();
  connect_result_ = 1;
  for (auto& cb : cbs) {
    cb.Value().Call(self, {Status(env, -ECANCELED)});
    if (env.IsExceptionPending()) {
      Napi::Error e = env.GetAndClearPendingException();
      napi_fatal_exception(env, e.Value());
    }
  }
}

void ScifEndpoint::OpDone(ScifOp* op) {
  inflight_--;
  if (op->sleeper()) sleepers_--;
  if (close_pending_ && inflight_ == 0) StartClose();
}

// Closes the descriptor on the threadpool (the fabric gives registered pages
// back then), once nothing else of ours uses it.
void ScifEndpoint::StartClose() {
  close_pending_ = false;
  Napi::Env env = Env();
  scif_epd_t epd = epd_;
  auto finish = [this](int64_t) {
    epd_ = -1;
    state_ = State::kClosed;
    windows_.clear();  // the fabric let go of their memory
    ObjectWrap::Unref();
  };
  auto* op = new ScifOp(this, close_cb_.Value(), "SCIF_CLOSE",
                        [epd](const ScifApi* api, scif_epd_t) -> int64_t {
                          return api->close(epd) < 0 ? Errno() : 0;
                        });
  close_cb_.Reset();
  bool queued = !env.IsExceptionPending();
  if (queued) {
    op->SetClose();
    op->AfterOnLoop(finish);
    queued = napi_queue_async_work(env, *op) == napi_ok;
    if (queued) inflight_++;
  }
  if (!queued) {
    // The work could not be queued: close here instead.
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
    Napi::Object self = Value();
    Napi::Function cb = op->Callback().Value();
    delete op;
    int status = api_->close(epd) < 0 ? Errno() : 0;
    finish(status);
    cb.Call(self, {Status(env, status)});
  }
}

}  // namespace scifnet
