// loop_endpoint.cc - see loop_endpoint.h.
#include "loop_endpoint.h"

#include <fcntl.h>
#include <poll.h>

#include "addon.h"
#include "backend.h"
#include "napi_args.h"

extern "C" {
#include "scif_net.h"
}

namespace scifnet {

using napi_args::Errno;

// The libuv handles outlive the endpoint when it is destroyed first (libuv
// closes asynchronously): owner is cleared then, and the last close frees this.
struct LoopEndpoint::LoopHandles {
  uv_poll_t poll;
  uv_idle_t idle;
  LoopEndpoint* owner;
  napi_env env;
  Napi::FunctionReference on_closed;
  bool poll_init = false;
  int open = 0;  // handles initialised and not yet closed
};

LoopEndpoint::~LoopEndpoint() {
  // Only reached once JS dropped an endpoint that is closed or never opened
  // (an open one holds itself alive), or at the environment's teardown.
  CloseLoop(nullptr);
  if (epd_ >= 0 && api_) api_->close(epd_);
  if (async_) napi_async_destroy(env_, async_);
}

bool LoopEndpoint::Usable() const {
  return state_ == State::kOpen || state_ == State::kListening || state_ == State::kConnecting ||
         state_ == State::kConnected;
}

void LoopEndpoint::SetState(State s) {
  if (s != state_) rewatch_ = true;
  state_ = s;
}

// ---- the verbs' common halves ----

int LoopEndpoint::Open(bool stream_only) {
  if (state_ != State::kNone) return -EISCONN;
  api_ = Scif();
  if (!api_) return -ENXIO;  // as SCIF says of an unusable libscif; lastError() says more
  epd_ = api_->open();
  if (epd_ < 0) {
    int err = Errno();
    epd_ = -1;
    return err;
  }
  // MPSS's libscif has no stream-only endpoints, and needs none (scif_net.h).
  int err = stream_only && api_->set_stream_only && api_->set_stream_only(epd_) < 0 ? Errno() : 0;
  if (!err) err = InitLoop();
  if (err) {
    api_->close(epd_);
    epd_ = -1;
    return err;
  }
  SetState(State::kOpen);
  KeepAlive(true);
  return 0;
}

int LoopEndpoint::Bind(uint16_t port) {
  if (!Usable()) return -EBADF;
  int bound = api_->bind(epd_, port);
  if (bound < 0) return Errno();
  local_port_ = static_cast<uint16_t>(bound);
  return bound;
}

int LoopEndpoint::Listen(int backlog) {
  if (!Usable()) return -EBADF;
  if (api_->listen(epd_, backlog) < 0) return Errno();
  SetState(State::kListening);
  return Watch();
}

int LoopEndpoint::Connect(scif_portID dst) {
  if (state_ == State::kConnecting) return -EALREADY;
  if (!Usable()) return -EBADF;
  // Non-blocking: EINPROGRESS now, the answer when the descriptor says so.
  int fd = scif_get_fd(epd_);
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return Errno();
  int port = api_->connect(epd_, &dst);
  if (port < 0 && errno != EINPROGRESS) return Errno();
  peer_ = dst;
  SetState(State::kConnecting);
  if (port >= 0) {
    // Accepted at once: the answer is taken, so the descriptor will not say
    // so; reported from the loop all the same, never from inside connect().
    local_port_ = static_cast<uint16_t>(port);
    connect_result_ = 0;
  }
  Schedule();
  return 0;
}

// ---- the loop side ----

int LoopEndpoint::InitLoop() {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env_, &loop) != napi_ok || !loop) return -EIO;
  auto* h = new LoopHandles();
  h->owner = this;
  h->env = env_;
  int err = uv_idle_init(loop, &h->idle);
  if (err) {
    delete h;
    return err;
  }
  h->idle.data = h;
  h->open = 1;
  loop_ = h;
  if (!referenced_) uv_unref(reinterpret_cast<uv_handle_t*>(&h->idle));
  return 0;
}

bool LoopEndpoint::CloseLoop(napi_value on_closed) {
  if (!loop_) return false;
  LoopHandles* h = loop_;
  loop_ = nullptr;
  watching_ = false;
  h->owner = nullptr;
  if (on_closed) h->on_closed = Napi::Persistent(Napi::Function(env_, on_closed));
  auto done = [](uv_handle_t* handle) {
    auto* lh = static_cast<LoopHandles*>(handle->data);
    if (--lh->open > 0) return;
    if (!lh->on_closed.IsEmpty()) {
      Napi::Env env(lh->env);
      Napi::HandleScope scope(env);
      if (JsAlive(env)) CallFromLoop(env, nullptr, env.Global(), lh->on_closed.Value(), {});
    }
    delete lh;
  };
  uv_idle_stop(&h->idle);
  uv_close(reinterpret_cast<uv_handle_t*>(&h->idle), done);
  if (h->poll_init) {
    uv_poll_stop(&h->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), done);
  }
  return on_closed != nullptr;
}

// Watches the descriptor for what Want() says, or stops when that is nothing:
// 0, or -errno when libuv cannot (then nothing would ever wake us, so the
// caller must fail instead of waiting). The fabric's descriptor turns
// readable for every kind of news, so reading is all we watch there; a SCIF
// driver's reports POLLOUT itself. A driver's poll also attaches to
// different wait queues by state, and epoll only asks it when the
// descriptor is added: after a state change the handle is started afresh.
int LoopEndpoint::Watch() {
  short want = Usable() ? Want() : 0;
  if (!loop_ || want == 0) {
    Unwatch();
    return 0;
  }
  int events = UV_READABLE;
  if (!api_->doorbell_readiness)
    events = ((want & POLLIN) ? UV_READABLE : 0) | ((want & POLLOUT) ? UV_WRITABLE : 0);
  if (!loop_->poll_init) {
    uv_loop_t* loop = uv_handle_get_loop(reinterpret_cast<uv_handle_t*>(&loop_->idle));
    int err = uv_poll_init(loop, &loop_->poll, scif_get_fd(epd_));
    if (err) return err;
    loop_->poll.data = loop_;
    loop_->poll_init = true;
    loop_->open++;
    if (!referenced_) uv_unref(reinterpret_cast<uv_handle_t*>(&loop_->poll));
  }
  if (rewatch_ && watching_) Unwatch();
  if (!watching_ || events != watch_events_) {
    int err = uv_poll_start(&loop_->poll, events, OnPoll);
    if (err) return err;
    watching_ = true;
    watch_events_ = events;
  }
  rewatch_ = false;
  return 0;
}

void LoopEndpoint::Unwatch() {
  if (watching_ && loop_) uv_poll_stop(&loop_->poll);
  watching_ = false;
}

void LoopEndpoint::Schedule() {
  if (loop_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(&loop_->idle)))
    uv_idle_start(&loop_->idle, OnIdle);
}

void LoopEndpoint::OnPoll(uv_poll_t* handle, int, int) {
  auto* h = static_cast<LoopHandles*>(handle->data);
  if (!h->owner) return;
  Napi::HandleScope scope(Napi::Env(h->env));
  if (!JsAlive(h->env)) {
    h->owner->Unwatch();  // nobody left to tell; the environment's teardown closes us
    return;
  }
  h->owner->Service();
}

void LoopEndpoint::OnIdle(uv_idle_t* handle) {
  auto* h = static_cast<LoopHandles*>(handle->data);
  uv_idle_stop(handle);
  if (!h->owner) return;
  Napi::HandleScope scope(Napi::Env(h->env));
  if (!JsAlive(h->env)) return;
  h->owner->Service();
}

void LoopEndpoint::Service() {
  if (!Usable() || !JsAlive(env_)) return;
  if (connect_result_ != 1 && state_ == State::kConnecting) {
    int status = connect_result_;
    connect_result_ = 1;
    SetState(status == 0 ? State::kConnected : State::kOpen);
    ConnectDone(status);
  }
  for (int round = 0; round < kRoundsPerTurn; round++) {
    if (!Usable() || !JsAlive(env_)) return;
    if (ReportWaiting()) continue;
    short want = Want();
    if (want == 0) {
      Unwatch();
      return;
    }
    scif_pollepd pe = {epd_, want, 0};
    int err = api_->poll(&pe, 1, 0) < 0 ? Errno() : 0;
    if (!err && (pe.revents & POLLNVAL)) err = -EBADF;
    bool acted = !err && pe.revents != 0 && DispatchState(pe.revents);
    if (!Usable()) return;
    // Nothing to act on: the poll armed the wake-ups; wait for the descriptor.
    if (!err && !acted) err = Watch();
    if (err) {
      Unwatch();
      Failed(err);
      return;
    }
    if (!acted) return;
  }
  Schedule();  // still busy: give the rest of the loop a turn first
}

// Acts on one api->poll() answer; false when there was nothing more to do.
bool LoopEndpoint::DispatchState(short revents) {
  switch (state_) {
    case State::kListening:
      return (revents & POLLIN) && AcceptSome();
    case State::kConnecting:
      return (revents & (POLLOUT | POLLERR | POLLHUP)) && FinishConnect();
    case State::kConnected:
      return DispatchConnected(revents);
    case State::kNone:
    case State::kOpen:
    case State::kClosing:
    case State::kClosed:
      return false;
  }
  return false;
}

bool LoopEndpoint::AcceptSome() {
  bool acted = false;
  for (int i = 0; i < kCallsPerRound && state_ == State::kListening && (Want() & POLLIN) && JsAlive(env_);
       i++) {
    scif_portID peer;
    scif_epd_t nepd;
    if (api_->accept(epd_, &peer, &nepd, 0) < 0) {
      if (errno == EAGAIN) return acted;
      Accepted(Errno(), nullptr);
      return true;
    }
    acted = true;
    Napi::HandleScope scope(Napi::Env{env_});
    int status = 0;
    napi_value child = Adopt(nepd, peer, &status);
    Accepted(status, child);
  }
  return acted;
}

// The endpoint scif_accept() made, as a JS object of our class; null with
// *status = -errno when it cannot be had (the endpoint is closed then).
napi_value LoopEndpoint::Adopt(scif_epd_t epd, scif_portID peer, int* status) {
  napi_value obj = nullptr;
  LoopEndpoint* child = NewChild(&obj);
  int err = child ? 0 : -ENOMEM;
  if (child) {
    child->api_ = api_;
    child->epd_ = epd;
    child->peer_ = peer;
    child->local_port_ = local_port_;
    err = child->InitLoop();
    if (err) child->epd_ = -1;
  }
  if (err) {
    api_->close(epd);
    *status = err;
    return nullptr;
  }
  child->SetState(State::kConnected);
  child->KeepAlive(true);
  *status = 0;
  return obj;
}

bool LoopEndpoint::FinishConnect() {
  int port = api_->connect(epd_, &peer_);
  if (port < 0 && errno == EINPROGRESS) return false;
  int status = port < 0 ? Errno() : 0;
  if (port >= 0) local_port_ = static_cast<uint16_t>(port);
  SetState(status == 0 ? State::kConnected : State::kOpen);
  ConnectDone(status);
  return true;
}

bool LoopEndpoint::CallJs(napi_value recv, napi_value fn, std::initializer_list<napi_value> args) {
  if (!JsAlive(env_)) return false;
  if (!async_) {
    napi_value name;
    if (napi_create_string_utf8(env_, "SCIFENDPOINT", NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_async_init(env_, Self(), name, &async_) != napi_ok) {
      async_ = nullptr;
      if (!FailedButAlive(env_)) {
        Unwatch();
        return false;
      }
    }
  }
  if (CallFromLoop(env_, async_, recv, fn, args)) return true;
  Unwatch();  // nobody left to tell; the environment's teardown closes us
  return false;
}

// ---- shared JS properties ----

Napi::Value LoopEndpoint::JsRef(const Napi::CallbackInfo& info) {
  referenced_ = true;
  if (loop_) {
    if (loop_->poll_init) uv_ref(reinterpret_cast<uv_handle_t*>(&loop_->poll));
    uv_ref(reinterpret_cast<uv_handle_t*>(&loop_->idle));
  }
  return info.Env().Undefined();
}

// An unreferenced endpoint keeps the loop alive neither while it waits on the
// descriptor nor while a turn of service is scheduled.
Napi::Value LoopEndpoint::JsUnref(const Napi::CallbackInfo& info) {
  referenced_ = false;
  if (loop_) {
    if (loop_->poll_init) uv_unref(reinterpret_cast<uv_handle_t*>(&loop_->poll));
    uv_unref(reinterpret_cast<uv_handle_t*>(&loop_->idle));
  }
  return info.Env().Undefined();
}

Napi::Value LoopEndpoint::JsFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), epd_ >= 0 ? scif_get_fd(epd_) : -1);
}

Napi::Value LoopEndpoint::JsLocalPort(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), local_port_);
}

Napi::Value LoopEndpoint::JsPeerNode(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), peer_.node);
}

Napi::Value LoopEndpoint::JsPeerPort(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), peer_.port);
}

}  // namespace scifnet
