// scif_endpoint.cc - see scif_endpoint.h.
#include "scif_endpoint.h"

#include <fcntl.h>

#include <utility>

#include "backend.h"
#include "scif_op.h"
#include "napi_args.h"

namespace scifnet {

using namespace napi_args;

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
  o.Set("mappings", Napi::Number::New(env, static_cast<double>(MappingCount())));
  return o;
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
