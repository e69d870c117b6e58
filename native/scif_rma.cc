// scif_rma.cc - ScifEndpoint's registration, RMA and fences: calls that only
// wait for memory copies, run on the threadpool (scif_op.h).
#include <memory>

#include "backend.h"
#include "scif_endpoint.h"
#include "scif_op.h"
#include "napi_args.h"

namespace scifnet {

using namespace napi_args;

// ---- memory, RMA and fences ----

// register(view, offset, prot, mapFlags, cb(status, offset)): on the
// threadpool, since SCIF pins the pages and tells the peer; the window holds
// its memory from then until unregistered or closed.
Napi::Value ScifEndpoint::Register(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  uint8_t* data;
  size_t len;
  if (!BytesOf(info[0], &data, &len)) return Status(env, -EINVAL);
  off_t offset = static_cast<off_t>(I64(info[1]));
  int prot = Int(info[2]), map_flags = Int(info[3]);
  auto* op = new ScifOp(this, info[4].As<Napi::Function>(), "SCIF_REGISTER",
                        [=](const ScifApi* api, scif_epd_t epd, int64_t* value) -> int {
                          off_t off = api->register_(epd, data, len, offset, prot, map_flags);
                          if (off == SCIF_REGISTER_FAILED) return Errno();
                          *value = static_cast<int64_t>(off);
                          return 0;
                        });
  op->Hold(info[0]);
  op->GivesValue(ScifOp::Value::kBigInt);
  Napi::Reference<Napi::Value> memory = Napi::Persistent(info[0]);
  op->AfterOnLoop([this, len, memory = std::make_shared<Napi::Reference<Napi::Value>>(std::move(memory))](
                      int status, int64_t off) {
    if (status == 0) windows_[off] = WindowHold{std::move(*memory), len};
  });
  return Run(info, op);
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
                        [off, len](const ScifApi* api, scif_epd_t epd, int64_t*) -> int {
                          return api->unregister(epd, off, len) < 0 ? Errno() : 0;
                        },
                        true);
  op->AfterOnLoop([this, off, len](int status, int64_t) {
    if (status != 0) return;
    // The windows wholly inside the range are gone: their memory is free.
    uint64_t end = static_cast<uint64_t>(off) + len;
    for (auto it = windows_.lower_bound(off); it != windows_.end() && static_cast<uint64_t>(it->first) < end;)
      it = windows_.erase(it);
  });
  return Run(info, op);
}

// readFrom/writeTo(localOffset, length, remoteOffset, flags, cb(status)):
// window to window.
Napi::Value ScifEndpoint::WindowRma(const Napi::CallbackInfo& info, const char* name, WindowCall call) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  int64_t loff = I64(info[0]), roff = I64(info[2]);
  size_t len = Size(info[1]);
  int flags = Int(info[3]);
  auto* op = new ScifOp(this, info[4].As<Napi::Function>(), name,
                        [=](const ScifApi* api, scif_epd_t epd, int64_t*) -> int {
                          return (api->*call)(epd, loff, len, roff, flags) < 0 ? Errno() : 0;
                        });
  return Run(info, op);
}

Napi::Value ScifEndpoint::ReadFrom(const Napi::CallbackInfo& info) {
  return WindowRma(info, "SCIF_READFROM", &ScifApi::readfrom);
}

Napi::Value ScifEndpoint::WriteTo(const Napi::CallbackInfo& info) {
  return WindowRma(info, "SCIF_WRITETO", &ScifApi::writeto);
}

// vreadFrom/vwriteTo(view, remoteOffset, flags, cb(status)): the whole view,
// kept alive (and a mapping it lies in kept mapped) until the copy is done:
// unlike readFrom/writeTo between windows, these complete before cb.
Napi::Value ScifEndpoint::VirtualRma(const Napi::CallbackInfo& info, const char* name, VirtualCall call) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  uint8_t* data;
  size_t len;
  if (!BytesOf(info[0], &data, &len)) return Status(env, -EINVAL);
  int64_t roff = I64(info[1]);
  int flags = Int(info[2]);
  auto* op = new ScifOp(this, info[3].As<Napi::Function>(), name,
                        [=](const ScifApi* api, scif_epd_t epd, int64_t*) -> int {
                          if ((api->*call)(epd, data, len, roff, flags) < 0) return Errno();
                          if (flags & SCIF_RMA_SYNC) return 0;
                          // The copy may still run (SCIF's RMA is asynchronous)
                          // and the memory is a JS value that may be collected
                          // once we let go: wait for it here, as a fence would.
                          int mark;
                          if (api->fence_mark(epd, SCIF_FENCE_INIT_SELF, &mark) < 0 ||
                              api->fence_wait(epd, mark) < 0)
                            return Errno();
                          return 0;
                        });
  op->Hold(info[0]);
  op->Lend(data, len);
  return Run(info, op);
}

Napi::Value ScifEndpoint::VReadFrom(const Napi::CallbackInfo& info) {
  return VirtualRma(info, "SCIF_VREADFROM", &ScifApi::vreadfrom);
}

Napi::Value ScifEndpoint::VWriteTo(const Napi::CallbackInfo& info) {
  return VirtualRma(info, "SCIF_VWRITETO", &ScifApi::vwriteto);
}

// fenceMark(flags, cb(status, mark)).
Napi::Value ScifEndpoint::FenceMark(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  int flags = Int(info[0]);
  auto* op = new ScifOp(this, info[1].As<Napi::Function>(), "SCIF_FENCE_MARK",
                        [flags](const ScifApi* api, scif_epd_t epd, int64_t* value) -> int {
                          int mark = 0;
                          if (api->fence_mark(epd, flags, &mark) < 0) return Errno();
                          *value = mark;
                          return 0;
                        });
  op->GivesValue(ScifOp::Value::kNumber);
  return Run(info, op);
}

// fenceWait(mark, cb(status)).
Napi::Value ScifEndpoint::FenceWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  int mark = Int(info[0]);
  auto* op = new ScifOp(this, info[1].As<Napi::Function>(), "SCIF_FENCE_WAIT",
                        [mark](const ScifApi* api, scif_epd_t epd, int64_t*) -> int {
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
                        [=](const ScifApi* api, scif_epd_t epd, int64_t*) -> int {
                          return api->fence_signal(epd, loff, lval, roff, rval, flags) < 0 ? Errno()
                                                                                           : 0;
                        },
                        true);
  return Run(info, op);
}
}  // namespace scifnet
