// loop_endpoint.cc - see loop_endpoint.h.
#include "loop_endpoint.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>

#include <algorithm>

#include "addon.h"
#include "backend.h"
#include "napi_args.h"

extern "C" {
#include "scif_net.h"
}

namespace scifnet {

using napi_args::Errno;

// What a close leaves to the loop, which may outlive the endpoint: on_closed
// is called once libuv has let go of the endpoint's handle and, for a
// listener closed while accepting, once its descriptor is closed.
struct LoopEndpoint::Closing {
  explicit Closing(napi_env e) : env(e) {}
  napi_env env;
  Napi::FunctionReference on_closed;
  int waits = 0;  // for those (ReleaseClosing)
  // Closed in place of a poll handle the endpoint never made (CloseStandIn).
  uv_idle_t stand_in;
};

LoopEndpoint::~LoopEndpoint() {
  // Only reached once JS dropped an endpoint that is closed or never opened
  // (an open one holds itself alive, and so does a batch of accepts), or at
  // the environment's teardown: close what is left here.
  finalizing_ = true;
  CloseLoop(nullptr, false);
  if (epd_ >= 0 && api_) api_->close(epd_);
  if (release_mem_) munmap(release_mem_, release_len_);
  if (async_) napi_async_destroy(env_, async_);
}

bool LoopEndpoint::Usable() const {
  return state_ == State::kOpen || state_ == State::kListening || state_ == State::kConnecting ||
         state_ == State::kConnected;
}

short LoopEndpoint::Wanted() const {
  short want = Want();
  if (state_ == State::kListening && (accept_batch_ || listen_gone_ != 0)) want &= ~POLLIN;
  return want;
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
  // The poll handle is made now, as it sets O_NONBLOCK itself (an fcntl
  // pair fewer per connection).
  if (int err = EnsurePoll()) return err;
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

int LoopEndpoint::AdoptListener(scif_epd_t epd, uint16_t port) {
  if (state_ != State::kNone) return -EISCONN;
  api_ = Scif();
  if (!api_) return -ENXIO;
  // libscif's way to ask whether a descriptor is a listening endpoint: one
  // that listens already says EISCONN; anything else that is no endpoint
  // says so (EBADF; a driver, ENOTTY).
  if (api_->listen(epd, 1) < 0 && errno != EISCONN) return Errno();
  epd_ = epd;
  local_port_ = port;
  if (int err = InitLoop()) {
    epd_ = -1;
    return err;
  }
  SetState(State::kListening);
  KeepAlive(true);
  return Watch();
}

// ---- the loop side ----

// The endpoint's turns come from the environment's queue, made here if it
// is not yet (so that Schedule() cannot fail later); its poll handle comes
// when the descriptor is first watched (EnsurePoll).
int LoopEndpoint::InitLoop() {
  if (!TurnQueue::For(env_)) return -EIO;
  loop_open_ = true;
  return 0;
}

uv_loop_t* LoopEndpoint::Loop() const {
  uv_loop_t* loop = nullptr;
  return napi_get_uv_event_loop(env_, &loop) == napi_ok ? loop : nullptr;
}

bool LoopEndpoint::CloseLoop(napi_value on_closed, bool with_descriptor) {
  if (!loop_open_) return false;
  loop_open_ = false;
  watching_ = false;
  Unschedule();
  bool closes_descriptor = with_descriptor && epd_ >= 0 && !finalizing_;
  bool holds_listener = closes_descriptor && accept_batch_;
  Closing* closing = on_closed || holds_listener ? new Closing(env_) : nullptr;
  if (on_closed) closing->on_closed = Napi::Persistent(Napi::Function(env_, on_closed));
  if (!ClosePoll(closing) && on_closed) CloseStandIn(closing);
  // The descriptor goes on its own: 'close' is the handle's, as node:net's
  // comes from the loop's close phase, and what the peer reads (FIN or
  // reset) was decided before.
  if (closes_descriptor) {
    if (accept_batch_ || work_in_flight_ > 0) {
      close_after_accept_ = true;  // AcceptDone() or the last WorkFinished() closes it
      if (holds_listener) {
        closing->waits++;  // a listener's 'close' waits for that
        held_closing_ = closing;
      }
    } else if (state_ == State::kConnected) {
      CloseOnThreadpool(env_, api_, epd_, std::move(linger_), release_mem_, release_len_);
      release_mem_ = nullptr;
      epd_ = -1;
    } else {
      api_->close(epd_);
      if (release_mem_) munmap(release_mem_, release_len_);
      release_mem_ = nullptr;
      epd_ = -1;
    }
  }
  if (closing && closing->waits == 0) {
    // Nothing of the loop's to wait for (no handle could be closed): the
    // caller says 'close' itself.
    delete closing;
    return false;
  }
  return on_closed != nullptr;
}

// Closes the poll handle, if there is one (the next Watch() makes a new one);
// closing, unless null, waits for it. False when there was none.
bool LoopEndpoint::ClosePoll(Closing* closing) {
  if (!poll_) return false;
  uv_poll_stop(poll_);
  poll_->data = closing;
  if (closing) closing->waits++;
  uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* handle) {
    auto* c = static_cast<Closing*>(handle->data);
    delete reinterpret_cast<uv_poll_t*>(handle);
    if (c) ReleaseClosing(c);
  });
  poll_ = nullptr;
  return true;
}

// An endpoint that never watched its descriptor has no handle to close, yet
// its 'close' must come from the loop's close phase all the same, as
// node:net's does: a handle made only to be closed stands in for the poll
// handle. False when none can be made.
bool LoopEndpoint::CloseStandIn(Closing* closing) {
  uv_loop_t* loop = Loop();
  if (!loop || uv_idle_init(loop, &closing->stand_in) != 0) return false;
  closing->stand_in.data = closing;
  closing->waits++;
  uv_close(reinterpret_cast<uv_handle_t*>(&closing->stand_in),
           [](uv_handle_t* handle) { ReleaseClosing(static_cast<Closing*>(handle->data)); });
  return true;
}

// Sends bytes until all are in, the peer is gone, or kLingerMs passed
// without room (a threadpool thread: it may wait).
void LoopEndpoint::SendLingering(const ScifApi* api, scif_epd_t epd, const std::vector<uint8_t>& bytes) {
  size_t sent = 0;
  uint64_t deadline = uv_hrtime() + static_cast<uint64_t>(kLingerMs) * 1000000;
  while (sent < bytes.size()) {
    int ask = static_cast<int>(std::min(bytes.size() - sent, kMaxSend));
    int n = api->send(epd, const_cast<uint8_t*>(bytes.data() + sent), ask, 0);
    if (n < 0) return;
    sent += static_cast<size_t>(n);
    if (n == ask) continue;
    uint64_t now = uv_hrtime();
    if (now >= deadline) return;
    scif_pollepd pe = {epd, POLLOUT, 0};
    long wait_ms = static_cast<long>(std::min<uint64_t>((deadline - now) / 1000000 + 1, 100));
    if (api->poll(&pe, 1, wait_ms) < 0 || (pe.revents & (POLLHUP | POLLERR | POLLNVAL))) return;
  }
}

// One of what a close waits for is over; the last calls on_closed.
void LoopEndpoint::ReleaseClosing(Closing* closing) {
  if (--closing->waits > 0) return;
  if (!closing->on_closed.IsEmpty()) {
    Napi::Env env(closing->env);
    Napi::HandleScope scope(env);
    if (JsAlive(env)) CallFromLoop(env, nullptr, env.Global(), closing->on_closed.Value(), {});
  }
  delete closing;
}

// Sends what lingers, then scif_close(epd), on the threadpool; here at once
// (without lingering) if no work can be queued.
void LoopEndpoint::CloseOnThreadpool(napi_env env, const ScifApi* api, scif_epd_t epd,
                                     std::vector<uint8_t> linger, void* release_mem, size_t release_len) {
  struct Job {
    const ScifApi* api;
    scif_epd_t epd;
    std::vector<uint8_t> linger;
    void* release_mem;
    size_t release_len;
    napi_async_work work = nullptr;
  };
  auto* job = new Job{api, epd, std::move(linger), release_mem, release_len};
  napi_value name;
  bool queued = napi_create_string_utf8(env, "SCIF_CLOSE", NAPI_AUTO_LENGTH, &name) == napi_ok &&
                napi_create_async_work(
                    env, nullptr, name,
                    [](napi_env, void* data) {
                      auto* j = static_cast<Job*>(data);
                      SendLingering(j->api, j->epd, j->linger);
                      j->api->close(j->epd);
                      if (j->release_mem) munmap(j->release_mem, j->release_len);
                    },
                    [](napi_env e, napi_status, void* data) {
                      auto* j = static_cast<Job*>(data);
                      napi_delete_async_work(e, j->work);
                      delete j;
                    },
                    job, &job->work) == napi_ok &&
                napi_queue_async_work(env, job->work) == napi_ok;
  if (queued) return;
  if (job->work) napi_delete_async_work(env, job->work);
  FailedButAlive(env);
  api->close(epd);
  if (release_mem) munmap(release_mem, release_len);
  delete job;
}

void LoopEndpoint::WorkStarted() {
  work_in_flight_++;
  KeepAlive(true);
}

void LoopEndpoint::WorkFinished() {
  work_in_flight_--;
  Closing* closed = work_in_flight_ == 0 && !accept_batch_ ? CloseDeferred() : nullptr;
  KeepAlive(false);
  if (closed) ReleaseClosing(closed);  // last: it may call into JS
}

// A close that waited for the descriptor's users (accepts, work) to return.
// A listener's does not wait for a peer: here, so that its port is free by
// the time 'close' is emitted; the close to release for that (after the
// caller is done with us), or null.
LoopEndpoint::Closing* LoopEndpoint::CloseDeferred() {
  if (!close_after_accept_) return nullptr;
  close_after_accept_ = false;
  Closing* held = held_closing_;
  held_closing_ = nullptr;
  if (epd_ >= 0 && held) {
    api_->close(epd_);
  } else if (epd_ >= 0) {
    CloseOnThreadpool(env_, api_, epd_, std::move(linger_), release_mem_, release_len_);
    release_mem_ = nullptr;
  }
  epd_ = -1;
  return held;
}

// Watches the descriptor for what Wanted() says, or stops when that is
// nothing: 0, or -errno when libuv cannot (then nothing would ever wake us,
// so the caller must fail instead of waiting). The descriptor is
// level-triggered (a driver's, and the fabric's), so only what is wanted is
// watched: readable while reading, writable while sending. A driver's poll
// also attaches to different wait queues by state, and epoll asks it only
// when the descriptor is added: after a state change the handle is started
// afresh.
int LoopEndpoint::EnsurePoll() {
  if (!loop_open_) return -EBADF;
  if (poll_) return 0;
  uv_loop_t* loop = Loop();
  if (!loop) return -EIO;
  auto* poll = new uv_poll_t;
  // Also makes the descriptor non-blocking.
  int err = uv_poll_init(loop, poll, FdOf(api_, epd_));
  if (err) {
    delete poll;
    return err;
  }
  poll->data = this;
  poll_ = poll;
  watching_ = false;
  if (!referenced_) uv_unref(reinterpret_cast<uv_handle_t*>(poll));
  return 0;
}

int LoopEndpoint::Watch() {
  short want = Usable() ? Wanted() : 0;
  if (!loop_open_ || want == 0) {
    Unwatch();
    return 0;
  }
  int events = ((want & POLLIN) ? UV_READABLE : 0) | ((want & POLLOUT) ? UV_WRITABLE : 0);
  if (int err = EnsurePoll()) return err;
  // A new state registers afresh even for the same events: a driver's poll
  // hooks the wait queues of the state it was first polled in (uv_poll_start
  // takes the descriptor out of epoll and puts it back).
  if (rewatch_ || !watching_ || events != watch_events_) {
    int err = uv_poll_start(poll_, events, OnPoll);
    if (err) return err;
    watching_ = true;
    watch_events_ = events;
  }
  rewatch_ = false;
  return 0;
}

void LoopEndpoint::Unwatch() {
  if (watching_ && poll_) uv_poll_stop(poll_);
  watching_ = false;
}

// A turn on the loop's next iteration (turn_queue.h). InitLoop() made the
// queue, so it is missing only once the environment goes away, when no
// turn would come anyway.
void LoopEndpoint::Schedule() {
  if (!loop_open_ || Queued()) return;
  if (TurnQueue* turns = TurnQueue::For(env_)) turns->Add(this, referenced_);
}

void LoopEndpoint::Unschedule() {
  if (!Queued()) return;
  if (TurnQueue* turns = TurnQueue::For(env_)) turns->Remove(this);
}

void LoopEndpoint::TakeTurn() { Service(); }

// status < 0: libuv met an error condition on the descriptor (EPOLLERR: on the
// fabric, a killed peer's socket for a moment) and stopped the handle. The
// endpoint itself says what happened: serve it, which watches again. The
// handle is ours while it can call this (CloseLoop and ClosePoll close it).
void LoopEndpoint::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* ep = static_cast<LoopEndpoint*>(handle->data);
  if (status < 0) ep->watching_ = false;
  Napi::HandleScope scope(Napi::Env(ep->env_));
  if (!JsAlive(ep->env_)) {
    ep->Unwatch();  // nobody left to tell; the environment's teardown closes us
    return;
  }
  // epoll has just said what the (level-triggered) descriptor holds: one
  // scif_poll() fewer per wake-up. An error status is asked about anew.
  int known = -1;
  if (status == 0)
    known = ((events & UV_READABLE) ? POLLIN : 0) | ((events & UV_WRITABLE) ? POLLOUT : 0) |
            ((events & UV_DISCONNECT) ? POLLHUP : 0);
  ep->Service(known);
}

void LoopEndpoint::Service(int known) {
  if (!Usable() || !JsAlive(env_)) return;
  if (connect_result_ != 1 && state_ == State::kConnecting) {
    int status = connect_result_;
    connect_result_ = 1;
    SetState(status == 0 ? State::kConnected : State::kOpen);
    ConnectDone(status);
    // What the connect's callback set in motion is for the next turn, as
    // with libuv's: watch for it.
    if (Usable() && Watch() == 0) return;
    known = -1;
  }
  for (int round = 0; round < kRoundsPerTurn; round++) {
    if (!Usable() || !JsAlive(env_)) return;
    if (ReportWaiting()) {
      known = -1;
      continue;
    }
    short want = Wanted();
    if (want == 0) {
      Unwatch();
      return;
    }
    scif_pollepd pe = {epd_, want, 0};
    int err = 0;
    if (known >= 0)
      pe.revents = static_cast<short>(known & (want | POLLHUP));
    else if (api_->poll(&pe, 1, 0) < 0)
      err = Errno();
    known = -1;
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
      return (revents & POLLIN) && StartAccept();
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

bool LoopEndpoint::FinishConnect() {
  int port = api_->connect(epd_, &peer_);
  if (port < 0 && errno == EINPROGRESS) return false;
  int status = port < 0 ? Errno() : 0;
  if (port >= 0) local_port_ = static_cast<uint16_t>(port);
  // A failed connect leaves the descriptor on a new file (so a connect may be
  // tried again): a poll handle of the old one must not be reused.
  if (status != 0) {
    watching_ = false;
    ClosePoll(nullptr);
  }
  SetState(status == 0 ? State::kConnected : State::kOpen);
  ConnectDone(status);
  return false;  // a wake-up that reports a connect ends there, as libuv's does
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
  SetReferenced(true);
  return info.Env().Undefined();
}

Napi::Value LoopEndpoint::JsUnref(const Napi::CallbackInfo& info) {
  SetReferenced(false);
  return info.Env().Undefined();
}

// An unreferenced endpoint keeps the loop alive neither while it waits on the
// descriptor nor while a turn of service is scheduled.
void LoopEndpoint::SetReferenced(bool referenced) {
  referenced_ = referenced;
  auto* poll = reinterpret_cast<uv_handle_t*>(poll_);
  if (poll && referenced) uv_ref(poll);
  if (poll && !referenced) uv_unref(poll);
  if (!Queued()) return;
  if (TurnQueue* turns = TurnQueue::For(env_)) turns->SetReferenced(this, referenced);
}

Napi::Value LoopEndpoint::JsFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), epd_ >= 0 ? FdOf(api_, epd_) : -1);
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
