// scif_endpoint.cc - see scif_endpoint.h.
#include "scif_endpoint.h"

#include <poll.h>

#include <algorithm>
#include <climits>
#include <utility>
#include <vector>

#include "addon.h"
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
  std::vector<PropertyDescriptor> props = {
      InstanceMethod<&ScifEndpoint::Open>("open"),
      InstanceMethod<&ScifEndpoint::Bind>("bind"),
      InstanceMethod<&ScifEndpoint::Listen>("listen"),
      InstanceMethod<&ScifEndpoint::Connect>("connect"),
      InstanceMethod<&ScifEndpoint::Accept>("accept"),
      InstanceMethod<&ScifEndpoint::Send>("send"),
      InstanceMethod<&ScifEndpoint::Recv>("recv"),
      InstanceMethod<&ScifEndpoint::Close>("close"),
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
      InstanceAccessor<&ScifEndpoint::GetPending>("pending"),
      StaticMethod<&ScifEndpoint::Alloc>("alloc"),
      StaticMethod<&ScifEndpoint::Unmap>("unmap"),
      StaticMethod<&ScifEndpoint::IsPageAligned>("isPageAligned"),
      StaticValue("pageSize", Napi::Number::New(env, static_cast<double>(PageSize()))),
      StaticValue("constants", constants),
  };
  AddLoopEndpointProperties<ScifEndpoint>(&props);
  return DefineClass(env, "ScifEndpoint", props);
}

ScifEndpoint::ScifEndpoint(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<ScifEndpoint>(info), LoopEndpoint(info.Env()) {}

ScifEndpoint::~ScifEndpoint() = default;

LoopEndpoint* ScifEndpoint::NewChild(napi_value* obj) {
  return NewChildOf<ScifEndpoint>(Env(), AddonData::Get(Env())->scif_endpoint_ctor, obj);
}

// ---- connections and messages ----

Napi::Value ScifEndpoint::Open(const Napi::CallbackInfo& info) {
  return Status(info.Env(), LoopEndpoint::Open(false));
}

Napi::Value ScifEndpoint::Bind(const Napi::CallbackInfo& info) {
  return Status(info.Env(), LoopEndpoint::Bind(static_cast<uint16_t>(Int(info[0]))));
}

Napi::Value ScifEndpoint::Listen(const Napi::CallbackInfo& info) {
  return Status(info.Env(), LoopEndpoint::Listen(Int(info[0])));
}

// connect(node, port, cb(status)): 0 (cb follows, from the loop) or -errno.
Napi::Value ScifEndpoint::Connect(const Napi::CallbackInfo& info) {
  scif_portID dst = {static_cast<uint16_t>(Int(info[0])), static_cast<uint16_t>(Int(info[1]))};
  int err = LoopEndpoint::Connect(dst);
  if (!err) connect_cb_ = Napi::Persistent(info[2].As<Napi::Function>());
  return Status(info.Env(), err);
}

// accept(cb(status, endpoint, node, port)): 0 or -errno.
Napi::Value ScifEndpoint::Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable()) return Status(env, -EBADF);
  if (state_ != State::kListening) return Status(env, -EINVAL);  // as scif_accept says
  if (listen_gone_ != 0) return Status(env, listen_gone_);  // as it said last
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
  CloseLoop(nullptr, false);
  CancelPending();
  if (inflight_ == 0 && !AcceptInFlight())
    StartClose();
  else
    close_pending_ = true;
  return Napi::Boolean::New(env, true);
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
  if (close_pending_ && inflight_ == 0 && !AcceptInFlight()) StartClose();
}

// Closes the descriptor on the threadpool (the fabric gives registered pages
// back then), once nothing else of ours uses it.
void ScifEndpoint::StartClose() {
  close_pending_ = false;
  Napi::Env env = Env();
  scif_epd_t epd = epd_;
  auto finish = [this](int, int64_t) {
    epd_ = -1;
    SetState(State::kClosed);
    windows_.clear();  // the fabric let go of their memory
    KeepAlive(false);
  };
  auto* op = new ScifOp(this, close_cb_.Value(), "SCIF_CLOSE",
                        [epd](const ScifApi* api, scif_epd_t, int64_t*) -> int {
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
    finish(status, 0);
    cb.Call(self, {Status(env, status)});
  }
}

// ---- the loop side ----

short ScifEndpoint::Want() const {
  switch (state_) {
    case State::kListening:
      return accepts_.empty() ? 0 : POLLIN;
    case State::kConnecting:
      return POLLOUT;
    case State::kConnected:
      return static_cast<short>((recvs_.empty() ? 0 : POLLIN) | (sends_.empty() ? 0 : POLLOUT));
    case State::kNone:
    case State::kOpen:
    case State::kClosing:
    case State::kClosed:
      return 0;
  }
  return 0;
}

// Completes the requests at the heads of the queues that have nothing to
// move (recv(0), send of an empty buffer); true when it completed any.
// Only the requests made before this pass: one that a callback makes (a loop
// of recv(0), or of receives the ring holds already) waits for the next, so
// the loop's other work has its turn between them.
bool ScifEndpoint::ReportWaiting() {
  Napi::Env env = Env();
  bool acted = false;
  size_t recvs = recvs_.size(), sends = sends_.size();
  while (recvs-- > 0 && Connected() && !recvs_.empty() && recvs_.front().got == recvs_.front().len) {
    RecvReq done = std::move(recvs_.front());
    recvs_.pop_front();
    Napi::HandleScope scope(env);
    Emit(done.cb, {Status(env, 0), done.buf.Value()});
    acted = true;
  }
  while (sends-- > 0 && Connected() && !sends_.empty() && sends_.front().sent == sends_.front().len) {
    SendReq done = std::move(sends_.front());
    sends_.pop_front();
    Emit(done.cb, {Status(env, 0), Napi::Number::New(env, static_cast<double>(done.len))});
    acted = true;
  }
  return acted;
}

// Nothing can be waited for: every request waiting learns why.
void ScifEndpoint::Failed(int err) {
  Napi::Env env = Env();
  Napi::FunctionReference cb = std::move(connect_cb_);
  if (state_ == State::kConnecting) SetState(State::kOpen);
  auto accepts = std::move(accepts_);
  auto recvs = std::move(recvs_);
  auto sends = std::move(sends_);
  accepts_.clear();
  recvs_.clear();
  sends_.clear();
  Emit(cb, {Status(env, err)});
  for (auto& a : accepts) Emit(a, {Status(env, err)});
  for (auto& r : recvs) Emit(r.cb, {Status(env, err)});
  for (auto& s : sends) Emit(s.cb, {Status(env, err)});
}

bool ScifEndpoint::DispatchConnected(short revents) {
  bool acted = false;
  if (!sends_.empty() && (revents & (POLLOUT | POLLHUP | POLLERR))) acted |= SendSome();
  if (Connected() && !recvs_.empty() && (revents & (POLLIN | POLLHUP | POLLERR))) acted |= RecvSome();
  return acted;
}

void ScifEndpoint::ConnectDone(int status) {
  Napi::FunctionReference cb = std::move(connect_cb_);
  Emit(cb, {Status(Env(), status)});
}

void ScifEndpoint::Accepted(int status, napi_value child) {
  Napi::Env env = Env();
  if (status < 0 && listen_gone_ != 0) {
    // It accepts nothing more: every accept waiting learns why.
    auto accepts = std::move(accepts_);
    accepts_.clear();
    for (auto& a : accepts) Emit(a, {Status(env, status)});
    return;
  }
  if (accepts_.empty()) return;  // an error with nobody waiting to hear it
  Napi::FunctionReference cb = std::move(accepts_.front());
  accepts_.pop_front();
  if (status < 0) {
    Emit(cb, {Status(env, status)});
    return;
  }
  Emit(cb, {Status(env, 0), child});
}

bool ScifEndpoint::RecvSome() {
  Napi::Env env = Env();
  bool acted = false;
  for (int i = 0; i < kCallsPerRound && Connected() && !recvs_.empty(); i++) {
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
    if (n == 0) return acted;  // drained
    acted = true;
  }
  return acted;
}

bool ScifEndpoint::SendSome() {
  Napi::Env env = Env();
  bool acted = false;
  for (int i = 0; i < kCallsPerRound && Connected() && !sends_.empty(); i++) {
    SendReq& s = sends_.front();
    int want = static_cast<int>(std::min(s.len - s.sent, kMaxSend));
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
  Napi::Function fn = cb.Value();
  cb.Reset();
  CallJs(Value(), fn, args);
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

}  // namespace scifnet
