// socket_handle.cc - see socket_handle.h.
#include "socket_handle.h"

#include <fcntl.h>
#include <poll.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "addon.h"
#include "backend.h"
#include "busy_poll.h"

extern "C" {
#include "scif_net.h"
}

namespace scifnet {

namespace {

constexpr size_t kReadSize = 64 * 1024;  // as node:net reads: below malloc's mmap threshold
constexpr size_t kCopyBelow = kReadSize / 4;  // smaller reads are copied out, the buffer reused
constexpr int kReadsPerTurn = 16;
constexpr int kAcceptsPerTurn = 64;
constexpr int kRoundsPerTurn = 8;
constexpr size_t kDirectFrom = 8 * 1024;  // segments this large skip the staging copy

int Errno() { return errno > 0 ? -errno : -EIO; }

}  // namespace

struct SocketHandle::LoopHandles {
  uv_poll_t poll;
  uv_idle_t idle;
  SocketHandle* owner;
  napi_env env = nullptr;
  Napi::FunctionReference on_closed;  // close()'s callback, once libuv let go of both
  bool poll_init = false;
  int open = 0;
};

Napi::Function SocketHandle::Define(Napi::Env env) {
  return DefineClass(
      env, "SocketHandle",
      {
          InstanceMethod<&SocketHandle::Open>("open"),
          InstanceMethod<&SocketHandle::Bind>("bind"),
          InstanceMethod<&SocketHandle::Listen>("listen"),
          InstanceMethod<&SocketHandle::Connect>("connect"),
          InstanceMethod<&SocketHandle::ReadStart>("readStart"),
          InstanceMethod<&SocketHandle::ReadStop>("readStop"),
          InstanceMethod<&SocketHandle::Writev>("writev"),
          InstanceMethod<&SocketHandle::Shutdown>("shutdown"),
          InstanceMethod<&SocketHandle::Close>("close"),
          InstanceMethod<&SocketHandle::Ref>("ref"),
          InstanceMethod<&SocketHandle::Unref>("unref"),
          InstanceMethod<&SocketHandle::SetOwner>("setOwner"),
          StaticMethod<&SocketHandle::LinkHooks>("linkHooks"),
          InstanceAccessor<&SocketHandle::GetFd>("fd"),
          InstanceAccessor<&SocketHandle::GetLocalPort>("localPort"),
          InstanceAccessor<&SocketHandle::GetPeerNode>("peerNode"),
          InstanceAccessor<&SocketHandle::GetPeerPort>("peerPort"),
          InstanceAccessor<&SocketHandle::GetWriteQueueSize>("writeQueueSize"),
      });
}

SocketHandle::SocketHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SocketHandle>(info) {}

SocketHandle::~SocketHandle() {
  // Only reached once JS dropped an endpoint it never opened or already
  // closed: an open one holds a reference to itself.
  if (state_ != State::kClosed && state_ != State::kNone) Teardown(true);
  delete async_;
}

Napi::Object SocketHandle::Adopt(Napi::Env env, scif_epd_t epd, scif_portID peer, uint16_t local_port,
                              int* status) {
  *status = 0;
  napi_value made;
  if (napi_new_instance(env, AddonData::Get(env)->socket_handle_ctor.Value(), 0, nullptr, &made) != napi_ok) {
    // Raw napi, as in ReadSome(): out of memory, or the environment is going.
    FailedButAlive(env);
    Scif()->close(epd);
    *status = -ENOMEM;
    return Napi::Object();
  }
  Napi::Object obj(env, made);
  SocketHandle* ep = Unwrap(obj);
  ep->api_ = Scif();
  ep->epd_ = epd;
  ep->peer_ = peer;
  ep->local_port_ = local_port;  // accepted endpoints share their listener's port
  ep->state_ = State::kConnected;
  ep->ObjectWrap::Ref();
  int err = ep->Watch();
  if (err) {
    ep->Teardown(true);
    ep->ObjectWrap::Unref();
    *status = err;
  }
  return obj;
}

// linkHooks({ onconnection, onconnect, onread, onwrite, onshutdown }): the
// functions every handle of this environment calls, with its owner as `this`;
// any subset, once per module that owns some.
Napi::Value SocketHandle::LinkHooks(const Napi::CallbackInfo& info) {
  static const char* const kNames[kHookCount] = {"onconnection", "onconnect", "onread", "onwrite",
                                                  "onshutdown"};
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) return Napi::Number::New(env, -EINVAL);
  Napi::Object hooks = info[0].As<Napi::Object>();
  AddonData* data = AddonData::Get(env);
  for (int i = 0; i < kHookCount; i++) {
    Napi::Value fn = hooks.Get(kNames[i]);
    if (fn.IsFunction()) data->socket_hooks[i] = Napi::Persistent(fn.As<Napi::Function>());
  }
  return Napi::Number::New(env, 0);
}

// setOwner(owner): who hears this handle's hooks, until it is closed.
Napi::Value SocketHandle::SetOwner(const Napi::CallbackInfo& info) {
  if (info[0].IsObject()) owner_ = Napi::Persistent(info[0].As<Napi::Object>());
  return info.Env().Undefined();
}

// ---- verbs ----

Napi::Value SocketHandle::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::kNone) return Napi::Number::New(env, -EISCONN);
  api_ = Scif();
  if (!api_) return Napi::Number::New(env, -ENXIO);  // as SCIF says of an unusable libscif; lastError() says more
  epd_ = api_->open();
  if (epd_ < 0) return Napi::Number::New(env, Errno());
  // Sockets never register windows: their connections need only the
  // endpoint's own descriptor (scif_net.h). MPSS's libscif has no such call.
  if (api_->set_stream_only && api_->set_stream_only(epd_) < 0) {
    int err = Errno();
    api_->close(epd_);
    epd_ = -1;
    return Napi::Number::New(env, err);
  }
  state_ = State::kOpen;
  ObjectWrap::Ref();  // an open endpoint lives until closed
  return Napi::Number::New(env, 0);
}

Napi::Value SocketHandle::Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::kOpen) return Napi::Number::New(env, -EINVAL);
  int port = api_->bind(epd_, static_cast<uint16_t>(info[0].As<Napi::Number>().Uint32Value()));
  if (port < 0) return Napi::Number::New(env, Errno());
  local_port_ = static_cast<uint16_t>(port);
  return Napi::Number::New(env, port);
}

Napi::Value SocketHandle::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::kOpen) return Napi::Number::New(env, -EINVAL);
  if (api_->listen(epd_, info[0].As<Napi::Number>().Int32Value()) < 0)
    return Napi::Number::New(env, Errno());
  state_ = State::kListening;
  return Napi::Number::New(env, Watch());
}

Napi::Value SocketHandle::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::kOpen) return Napi::Number::New(env, -EINVAL);
  peer_.node = static_cast<uint16_t>(info[0].As<Napi::Number>().Uint32Value());
  peer_.port = static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value());
  // Non-blocking: EINPROGRESS now, the answer when the descriptor says so.
  int fd = scif_get_fd(epd_);
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return Napi::Number::New(env, Errno());
  int port = api_->connect(epd_, &peer_);
  if (port < 0 && errno != EINPROGRESS) return Napi::Number::New(env, Errno());
  state_ = State::kConnecting;
  if (int err = Watch()) return Napi::Number::New(env, err);
  if (port >= 0) {
    // Accepted at once (the answer is already taken, so the descriptor will
    // not wake us): still reported from the loop, never from inside connect().
    local_port_ = static_cast<uint16_t>(port);
    connect_result_ = 0;
    Schedule();
  }
  return Napi::Number::New(env, 0);
}

Napi::Value SocketHandle::ReadStart(const Napi::CallbackInfo& info) {
  if (state_ == State::kConnected && !reading_ && !eof_) {
    reading_ = true;
    // Bytes may already wait in the ring with no doorbell coming for them.
    Schedule();
  }
  return Napi::Number::New(info.Env(), 0);
}

Napi::Value SocketHandle::ReadStop(const Napi::CallbackInfo& info) {
  reading_ = false;
  return Napi::Number::New(info.Env(), 0);
}

// writev(buffers): 0 when every byte is in the ring already, 1 when the rest
// follows and onwrite() will say how it went, or -errno.
Napi::Value SocketHandle::Writev(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::kConnected) return Napi::Number::New(env, -ENOTCONN);
  if (TxPending() || fin_sent_) return Napi::Number::New(env, -EPIPE);
  if (!info[0].IsArray()) return Napi::Number::New(env, -EINVAL);
  Napi::Array list = info[0].As<Napi::Array>();
  uint32_t count = list.Length();
  size_t total = 0;
  segs_.clear();
  segs_.reserve(count * 2 + 1);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsTypedArray()) return Napi::Number::New(env, -EINVAL);
    Napi::Uint8Array b = v.As<Napi::Uint8Array>();
    if (b.ByteLength() > 0) segs_.push_back({b.Data(), b.ByteLength()});
    total += b.ByteLength();
  }
  if (total == 0) return Napi::Number::New(env, 0);
  wrote_ = true;
  // Frame the payload: a header before every kFrameMaxPayload bytes.
  size_t frames = (total + kFrameMaxPayload - 1) / kFrameMaxPayload;
  headers_.assign(frames * kFrameHeader, 0);
  std::vector<Segment> framed;
  framed.reserve(segs_.size() + frames * 2);
  size_t frame_left = 0, remaining = total, h = 0;
  for (const Segment& s : segs_) {
    const uint8_t* p = s.data;
    size_t len = s.len;
    while (len > 0) {
      if (frame_left == 0) {
        frame_left = std::min(remaining, kFrameMaxPayload);
        EncodeHeader(&headers_[h * kFrameHeader], kFrameData, static_cast<uint32_t>(frame_left));
        framed.push_back({&headers_[h * kFrameHeader], kFrameHeader});
        h++;
      }
      size_t take = std::min(len, frame_left);
      framed.push_back({p, take});
      p += take;
      len -= take;
      frame_left -= take;
      remaining -= take;
    }
  }
  segs_.swap(framed);
  seg_idx_ = seg_off_ = 0;
  tx_ = Tx::kWrite;
  tx_async_ = false;
  int r = FlushTx();
  if (r == 1 || r < 0) {
    tx_ = Tx::kIdle;
    segs_.clear();
    return Napi::Number::New(env, r < 0 ? r : 0);
  }
  tx_async_ = true;
  tx_hold_ = Napi::Persistent(info[0]);
  Schedule();  // arm for space (and catch space that appeared meanwhile)
  if (!api_->doorbell_readiness) Watch();
  return Napi::Number::New(env, 1);
}

// shutdown(): sends FIN after everything written; 1 (onshutdown follows, always
// from the loop) or -errno.
Napi::Value SocketHandle::Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::kConnected) return Napi::Number::New(env, -ENOTCONN);
  if (TxPending()) return Napi::Number::New(env, -EBUSY);
  if (fin_sent_) return Napi::Number::New(env, 0);
  fin_sent_ = true;
  headers_.assign(kFrameHeader, 0);
  EncodeHeader(headers_.data(), kFrameFin, 0);
  segs_.assign(1, Segment{headers_.data(), kFrameHeader});
  seg_idx_ = seg_off_ = 0;
  tx_ = Tx::kShutdown;
  tx_async_ = true;
  int r = FlushTx();
  if (r != 0) {
    // Done already (a peer that is gone no longer needs to hear that we are
    // done), but reported from the loop, as a TCP shutdown completes.
    shutdown_status_ = r == 1 || r == -ECONNRESET ? 0 : r;
    tx_ = Tx::kIdle;
    segs_.clear();
  }
  Schedule();
  return Napi::Number::New(env, 1);
}

// close(reset): idempotent. Without reset the peer reads an orderly end of
// stream if we had not sent one; with reset (or when that cannot be said
// without waiting) it reads ECONNRESET.
//
// close(reset, callback): the callback runs once libuv has closed the
// endpoint's handles, in the loop's close phase, as node:net's handles call
// theirs; returns whether it will (false: nothing was open, call it yourself).
Napi::Value SocketHandle::Close(const Napi::CallbackInfo& info) {
  bool reset = info.Length() > 0 && info[0].ToBoolean().Value();
  bool later = false;
  if (state_ != State::kClosed && state_ != State::kNone) {
    if (loop_ && info.Length() > 1 && info[1].IsFunction()) {
      loop_->on_closed = Napi::Persistent(info[1].As<Napi::Function>());
      later = true;
    }
    Teardown(reset);
    ObjectWrap::Unref();
  }
  state_ = State::kClosed;
  return Napi::Boolean::New(info.Env(), later);
}

Napi::Value SocketHandle::Ref(const Napi::CallbackInfo& info) {
  referenced_ = true;
  if (loop_) {
    if (loop_->poll_init) uv_ref(reinterpret_cast<uv_handle_t*>(&loop_->poll));
    uv_ref(reinterpret_cast<uv_handle_t*>(&loop_->idle));
  }
  return info.Env().Undefined();
}

Napi::Value SocketHandle::Unref(const Napi::CallbackInfo& info) {
  referenced_ = false;
  if (loop_) {
    if (loop_->poll_init) uv_unref(reinterpret_cast<uv_handle_t*>(&loop_->poll));
    uv_unref(reinterpret_cast<uv_handle_t*>(&loop_->idle));
  }
  return info.Env().Undefined();
}

Napi::Value SocketHandle::GetFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), epd_ >= 0 ? scif_get_fd(epd_) : -1);
}

Napi::Value SocketHandle::GetLocalPort(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), local_port_);
}

Napi::Value SocketHandle::GetPeerNode(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), peer_.node);
}

Napi::Value SocketHandle::GetPeerPort(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), peer_.port);
}

Napi::Value SocketHandle::GetWriteQueueSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(TxBytes()));
}

// ---- the loop side ----

// Starts watching the descriptor: 0, or -errno when libuv cannot (then
// nothing would ever wake us, so the caller must fail instead of waiting).
int SocketHandle::Watch() {
  if (!loop_) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(Env(), &loop) != napi_ok) return -EINVAL;
    loop_ = new LoopHandles();
    loop_->owner = this;
    loop_->env = Env();
    uv_idle_init(loop, &loop_->idle);
    loop_->idle.data = loop_;
    loop_->open = 1;
    int err = uv_poll_init(loop, &loop_->poll, scif_get_fd(epd_));
    if (err) return err;
    loop_->poll.data = loop_;
    loop_->poll_init = true;
    loop_->open++;
    if (!referenced_) {
      uv_unref(reinterpret_cast<uv_handle_t*>(&loop_->idle));
      uv_unref(reinterpret_cast<uv_handle_t*>(&loop_->poll));
    }
  }
  if (!loop_->poll_init) return -EINVAL;
  int events = WatchEvents();
  if (!watching_ || events != watch_events_) {
    int err = uv_poll_start(&loop_->poll, events, OnPoll);
    if (err) return err;
    watching_ = true;
    watch_events_ = events;
  }
  return 0;
}

// The fabric's descriptor turns readable for every kind of news (rings,
// connection requests, a departed peer), so reading is all we watch there; a
// SCIF driver's descriptor reports POLLOUT itself, so with one we also watch
// for writability while we wait for space or for a connect to finish.
int SocketHandle::WatchEvents() const {
  if (api_->doorbell_readiness) return UV_READABLE;
  bool want_out = state_ == State::kConnecting || (state_ == State::kConnected && TxPending());
  return UV_READABLE | (want_out ? UV_WRITABLE : 0);
}

void SocketHandle::Unwatch() {
  if (watching_) uv_poll_stop(&loop_->poll);
  watching_ = false;
}

void SocketHandle::Schedule() {
  if (loop_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(&loop_->idle)))
    uv_idle_start(&loop_->idle, OnIdle);
}

void SocketHandle::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* h = static_cast<LoopHandles*>(handle->data);
  if (!h->owner) return;
  Napi::HandleScope scope(h->owner->Env());
  if (!JsAlive(h->owner->Env())) {
    h->owner->Unwatch();  // nobody left to tell; the environment's teardown closes us
    return;
  }
  h->owner->Service();
}

void SocketHandle::OnIdle(uv_idle_t* handle) {
  auto* h = static_cast<LoopHandles*>(handle->data);
  uv_idle_stop(handle);
  if (!h->owner) return;
  Napi::HandleScope scope(h->owner->Env());
  if (!JsAlive(h->owner->Env())) return;
  h->owner->Service();
}

// Asks the fabric what changed and acts on it until nothing is left to do, at
// which point api_->poll() has armed the wake-ups that bring us back.
void SocketHandle::Service() {
  if (shutdown_status_ != 1) {
    int status = shutdown_status_;
    shutdown_status_ = 1;
    Emit(Hook::kShutdown, {Napi::Number::New(Env(), status)});
  }
  if (connect_result_ != 1 && state_ == State::kConnecting) {
    int status = connect_result_;
    connect_result_ = 1;
    state_ = status == 0 ? State::kConnected : State::kOpen;
    Emit(Hook::kConnect, {Napi::Number::New(Env(), status)});
  }
  for (int round = 0; round < kRoundsPerTurn; round++) {
    if (state_ == State::kClosed || !JsAlive(Env())) return;
    short want = 0;
    if (state_ == State::kListening) want = POLLIN;
    if (state_ == State::kConnecting) want = POLLOUT;
    if (state_ == State::kConnected)
      want = static_cast<short>((reading_ ? POLLIN : 0) | (TxPending() ? POLLOUT : 0));
    scif_pollepd pe = {epd_, want, 0};
    if (api_->poll(&pe, 1, 0) < 0) return;
    if (pe.revents == 0 || !Dispatch(pe.revents)) {
      if (watching_ && !api_->doorbell_readiness) Watch();
      return;
    }
  }
  Schedule();  // still busy: give the rest of the loop a turn first
}

// Acts on one api_->poll() answer; false when there was nothing to act on.
bool SocketHandle::Dispatch(short revents) {
  switch (state_) {
    case State::kListening:
      if (!(revents & POLLIN)) return false;
      AcceptSome();
      return true;
    case State::kConnecting:
      if (!(revents & (POLLOUT | POLLERR | POLLHUP))) return false;
      FinishConnect();
      return true;
    case State::kConnected: {
      bool acted = false, rx_armed = true, tx_armed = true;
      if (revents & POLLHUP) peer_gone_ = true;
      if (TxPending() && (revents & (POLLOUT | POLLHUP))) {
        int r = FlushTx();
        if (r != 0) FinishTx(r == 1 ? 0 : r);
        tx_armed = r == 0 || !TxPending();  // a short api_->send() armed for space
        acted = true;
      }
      if (state_ == State::kConnected && reading_ && (revents & (POLLIN | POLLHUP))) {
        rx_armed = ReadSome();
        acted = true;
      }
      // A departed peer cannot wake us again; stop watching once we want nothing.
      if (peer_gone_ && state_ == State::kConnected && !reading_ && !TxPending()) {
        Unwatch();
        return false;
      }
      // Everything we wait for is armed (a callback that wants more schedules
      // itself), so another api_->poll() this turn would find nothing new.
      if (rx_armed && tx_armed) return false;
      return acted;
    }
    case State::kNone:
    case State::kOpen:
    case State::kClosed:
      return false;
  }
  return false;
}

void SocketHandle::AcceptSome() {
  Napi::Env env = Env();
  for (int i = 0; i < kAcceptsPerTurn && state_ == State::kListening && JsAlive(env); i++) {
    scif_portID peer;
    scif_epd_t nepd;
    if (api_->accept(epd_, &peer, &nepd, 0) < 0) {
      if (errno == EAGAIN) return;
      Emit(Hook::kConnection, {Napi::Number::New(env, Errno())});
      return;
    }
    Napi::HandleScope scope(env);
    int status;
    Napi::Object child = Adopt(env, nepd, peer, local_port_, &status);
    if (status) {
      Emit(Hook::kConnection, {Napi::Number::New(env, status)});
      continue;
    }
    Emit(Hook::kConnection, {Napi::Number::New(env, 0), child});
  }
}

void SocketHandle::FinishConnect() {
  int port = api_->connect(epd_, &peer_);
  if (port < 0 && errno == EINPROGRESS) return;
  int status = port < 0 ? Errno() : 0;
  if (port >= 0) local_port_ = static_cast<uint16_t>(port);
  state_ = status == 0 ? State::kConnected : State::kOpen;
  Emit(Hook::kConnect, {Napi::Number::New(Env(), status)});
}

// Reads until the ring runs dry (true: api_->recv() armed the doorbell), the
// reader pauses, or the turn's budget is spent (false: come back).
bool SocketHandle::ReadSome() {
  Napi::Env env = Env();
  for (int i = 0; i < kReadsPerTurn && reading_ && state_ == State::kConnected; i++) {
    Napi::HandleScope scope(env);
    if (read_buf_.IsEmpty()) {
      // Raw napi: node-addon-api makes a failure fatal, and making a Buffer
      // fails when the environment goes away (or memory runs out).
      void* data;
      napi_value made;
      if (napi_create_buffer(env, kReadSize, &data, &made) != napi_ok) return ReadFailed(-ENOMEM);
      read_buf_ = Napi::Persistent(Napi::Buffer<uint8_t>(env, made));
    }
    Napi::Buffer<uint8_t> buf = read_buf_.Value();
    int n = api_->recv(epd_, buf.Data(), static_cast<int>(kReadSize), 0);
    if (n < 0) {
      int err = Errno();
      reading_ = false;
      rx_events_++;
      Emit(Hook::kRead, {Napi::Number::New(env, err)});
      return true;
    }
    if (n == 0) return true;  // drained; scif_recv armed the doorbell
    rx_events_++;
    if (!busy_looked_) {
      busy_looked_ = true;
      busy_ = BusyPoll::For(env, api_);
    }
    // Only a conversation (we wrote, now the answer came) expects the next
    // message soon: a reader of a one-way stream would spin on cores the
    // writer's process needs.
    if (busy_ && wrote_) busy_->Heat(this);
    wrote_ = false;
    // Drained, so scif_recv raised our waiting flag; but a hot endpoint is
    // looked at before the loop sleeps (busy_poll.h), so the peer need not
    // ring while we are busy with what came.
    if (busy_slot_ >= 0 && static_cast<size_t>(n) < kReadSize) api_->rx_ready(epd_, SCIF_NET_RX_QUIET);
    FrameDecoder::Result f = decoder_.Decode(buf.Data(), static_cast<size_t>(n));
    if (f.length > 0) {
      Napi::Value out;
      size_t offset = f.offset;
      if (f.length < kCopyBelow) {
        void* data;
        napi_value copy;
        if (napi_create_buffer_copy(env, f.length, buf.Data() + f.offset, &data, &copy) != napi_ok)
          return ReadFailed(-ENOMEM);
        out = Napi::Value(env, copy);
        offset = 0;
      } else {
        out = buf;
        read_buf_.Reset();  // handed to JS; the next read takes a new one
      }
      Emit(Hook::kRead, {Napi::Number::New(env, static_cast<double>(f.length)), out,
                      Napi::Number::New(env, static_cast<double>(offset))});
    }
    if (f.error || f.fin) {
      if (state_ != State::kConnected) return true;
      reading_ = false;
      eof_ = f.fin && !f.error;
      Emit(Hook::kRead, {Napi::Number::New(env, f.error ? -f.error : kUvEof)});
      return true;
    }
    if (static_cast<size_t>(n) < kReadSize) return true;  // the ring ran dry
  }
  return !reading_ || state_ != State::kConnected;
}

// A Buffer could not be made: while JS runs, the reader learns why (and the
// bytes read are lost with the connection); once it is gone, nobody is left.
bool SocketHandle::ReadFailed(int err) {
  reading_ = false;
  if (!FailedButAlive(Env())) {
    Unwatch();
    return true;
  }
  rx_events_++;
  Emit(Hook::kRead, {Napi::Number::New(Env(), err)});
  return true;
}

void SocketHandle::FinishTx(int status) {
  Tx kind = tx_;
  bool async = tx_async_;
  tx_ = Tx::kIdle;
  segs_.clear();
  leftover_.clear();
  tx_hold_.Reset();
  if (kind == Tx::kShutdown && status == -ECONNRESET) status = 0;
  if (!async) return;
  Emit(kind == Tx::kShutdown ? Hook::kShutdown : Hook::kWrite, {Napi::Number::New(Env(), status)});
}

int SocketHandle::Send(const uint8_t* data, size_t len) {
  int n = api_->send(epd_, const_cast<uint8_t*>(data), static_cast<int>(std::min<size_t>(len, INT_MAX)), 0);
  return n < 0 ? Errno() : n;
}

// Moves queued bytes into the ring: 1 when all are in, 0 when the ring is
// full, or -errno. Small pieces are gathered into one staging copy, so a
// batch of tiny writes costs one api_->send().
int SocketHandle::FlushTx() {
  uint8_t* stage = AddonData::Get(Env())->stage;
  for (;;) {
    if (!leftover_.empty()) {
      int n = Send(leftover_.data(), leftover_.size());
      if (n < 0) return n;
      leftover_.erase(leftover_.begin(), leftover_.begin() + n);
      if (!leftover_.empty()) return 0;
    }
    if (seg_idx_ == segs_.size()) return 1;
    size_t staged = 0;
    while (seg_idx_ < segs_.size()) {
      const Segment& s = segs_[seg_idx_];
      size_t rest = s.len - seg_off_;
      if (rest >= kDirectFrom || staged + rest > AddonData::kStageSize) break;
      std::memcpy(stage + staged, s.data + seg_off_, rest);
      staged += rest;
      seg_idx_++;
      seg_off_ = 0;
    }
    if (staged > 0) {
      int n = Send(stage, staged);
      if (n < 0) return n;
      if (static_cast<size_t>(n) < staged) {
        leftover_.assign(stage + n, stage + staged);
        return 0;
      }
      continue;
    }
    const Segment& s = segs_[seg_idx_];
    int n = Send(s.data + seg_off_, s.len - seg_off_);
    if (n < 0) return n;
    seg_off_ += static_cast<size_t>(n);
    if (seg_off_ < s.len) return 0;
    seg_idx_++;
    seg_off_ = 0;
  }
}

size_t SocketHandle::TxBytes() const {
  size_t total = leftover_.size();
  for (size_t i = seg_idx_; i < segs_.size(); i++) total += segs_[i].len;
  return total - (seg_idx_ < segs_.size() ? seg_off_ : 0);
}

// Whether bytes the peer sent are still waiting in the ring, unread: closing
// then discards them, and (as TCP answers with a reset) the peer must learn it.
// A FIN alone is not data, so what is there is read and looked at.
bool SocketHandle::UnreadData() {
  uint8_t scratch[16 * 1024];
  for (int i = 0; i < 64; i++) {
    int n = api_->recv(epd_, scratch, sizeof(scratch), 0);
    if (n <= 0) return false;
    FrameDecoder::Result f = decoder_.Decode(scratch, static_cast<size_t>(n));
    if (f.length > 0 || f.error) return true;
    if (f.fin) return false;
  }
  return true;
}

void SocketHandle::Teardown(bool reset) {
  if (!reset && state_ == State::kConnected && !eof_ && UnreadData()) reset = true;
  if (!reset && state_ == State::kConnected && !fin_sent_ && !peer_gone_ && !TxPending() &&
      leftover_.empty()) {
    uint8_t fin[kFrameHeader];
    EncodeHeader(fin, kFrameFin, 0);
    // Best effort, without waiting: if the ring is full the peer reads a reset.
    if (Send(fin, kFrameHeader) == static_cast<int>(kFrameHeader)) fin_sent_ = true;
  }
  state_ = State::kClosed;
  reading_ = false;
  owner_.Reset();  // closed: no hook is called any more
  if (busy_slot_ >= 0) busy_->Forget(this, false);  // hot: so the spinner is alive
  if (loop_) {
    loop_->owner = nullptr;
    Unwatch();
    auto done = [](uv_handle_t* handle) {
      auto* h = static_cast<LoopHandles*>(handle->data);
      if (--h->open > 0) return;
      if (!h->on_closed.IsEmpty()) {
        Napi::Env env(h->env);
        Napi::HandleScope scope(env);
        if (JsAlive(env)) CallFromLoop(env, nullptr, env.Global(), h->on_closed.Value(), {});
      }
      delete h;
    };
    uv_idle_stop(&loop_->idle);
    uv_close(reinterpret_cast<uv_handle_t*>(&loop_->idle), done);
    if (loop_->poll_init) uv_close(reinterpret_cast<uv_handle_t*>(&loop_->poll), done);
    loop_ = nullptr;
  }
  if (epd_ >= 0) api_->close(epd_);
  epd_ = -1;
  tx_ = Tx::kIdle;
  segs_.clear();
  leftover_.clear();
  if (!tx_hold_.IsEmpty()) tx_hold_.Reset();
  if (!read_buf_.IsEmpty()) read_buf_.Reset();
}

int SocketHandle::BusyLook(int flags) const {
  if (state_ != State::kConnected || epd_ < 0) return -1;
  if (!reading_ && !(flags & SCIF_NET_RX_ARM)) return -1;
  return api_->rx_ready(epd_, flags) == 0 ? 0 : 1;  // an error: let Service() meet it
}

bool SocketHandle::BusyServe() {
  uint64_t before = rx_events_;
  Napi::HandleScope scope(Env());
  Service();
  return rx_events_ != before;
}

// Calls the owner's hook: the environment's function for it (LinkHooks), with
// the owner as `this`. Nothing once the owner let go (close) or JS is gone.
void SocketHandle::Emit(Hook hook, std::initializer_list<napi_value> args) {
  napi_env env = Env();
  if (owner_.IsEmpty() || !JsAlive(env)) return;
  Napi::FunctionReference& fn = AddonData::Get(env)->socket_hooks[static_cast<int>(hook)];
  if (fn.IsEmpty()) return;
  Napi::Object owner = owner_.Value();
  if (!async_) async_ = new Napi::AsyncContext(Env(), "SCIFENDPOINT", Value());
  if (!CallFromLoop(env, *async_, owner, fn.Value(), args)) {
    // Nobody is left to tell anything: stop reading and watching; the
    // environment's teardown closes the endpoint.
    reading_ = false;
    Unwatch();
  }
}

}  // namespace scifnet
