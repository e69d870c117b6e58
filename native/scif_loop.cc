// scif_loop.cc - ScifEndpoint's loop side: watching the descriptor and
// moving connects, accepts, sends and recvs along as it reports readiness.
#include <poll.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "addon.h"
#include "backend.h"
#include "scif_endpoint.h"
#include "napi_args.h"

namespace scifnet {

using namespace napi_args;

namespace {

constexpr int kRoundsPerTurn = 16;  // api->poll() answers acted on per turn of the loop
constexpr int kCallsPerRound = 16;  // recv/send/accept calls per answer

}  // namespace

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
  if (!JsAlive(h->owner->Env())) {
    h->owner->Unwatch();  // nobody left to tell (addon.h)
    return;
  }
  h->owner->Service();
}

void ScifEndpoint::OnIdle(uv_idle_t* handle) {
  auto* h = static_cast<LoopHandles*>(handle->data);
  uv_idle_stop(handle);
  if (!h->owner) return;
  Napi::HandleScope scope(h->owner->Env());
  if (!JsAlive(h->owner->Env())) return;
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
    if (!Usable() || !JsAlive(env)) return;
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
  for (int i = 0; i < kCallsPerRound && state_ == State::kListening && !accepts_.empty() &&
                  JsAlive(env);
       i++) {
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
    // Raw napi: node-addon-api makes a failure fatal (addon.h FailedButAlive).
    napi_value made;
    int err = 0;
    if (napi_new_instance(env, ctor_.Value(), 0, nullptr, &made) != napi_ok) {
      FailedButAlive(env);
      err = -ENOMEM;
    }
    Napi::Object child = err ? Napi::Object() : Napi::Object(env, made);
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
  Napi::Function fn = cb.Value();
  cb.Reset();
  if (!JsAlive(env)) return;
  Napi::Object self = Value();
  if (!async_) async_ = new Napi::AsyncContext(env, "SCIFENDPOINT", self);
  if (!CallFromLoop(env, *async_, self, fn, args)) Unwatch();  // nobody left to tell
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
