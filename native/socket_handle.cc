// socket_handle.cc - see socket_handle.h.
#include "socket_handle.h"

#include <poll.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "backend.h"
#include "napi_args.h"

extern "C" {
#include "scif_net.h"
}

namespace scifnet {

using napi_args::Errno;

namespace {

constexpr size_t kReadSize = 64 * 1024;  // as node:net reads: below malloc's mmap threshold
constexpr size_t kCopyBelow = kReadSize / 4;  // smaller reads are copied out, the buffer reused
constexpr size_t kDirectFrom = 8 * 1024;  // segments this large skip the staging copy

Napi::Value Num(Napi::Env env, double v) { return Napi::Number::New(env, v); }

}  // namespace

Napi::Function SocketHandle::Define(Napi::Env env) {
  std::vector<PropertyDescriptor> props = {
      InstanceMethod<&SocketHandle::Open>("open"),
      InstanceMethod<&SocketHandle::Bind>("bind"),
      InstanceMethod<&SocketHandle::Listen>("listen"),
      InstanceMethod<&SocketHandle::Connect>("connect"),
      InstanceMethod<&SocketHandle::AdoptListener>("adoptListener"),
      InstanceMethod<&SocketHandle::ReadStart>("readStart"),
      InstanceMethod<&SocketHandle::ReadStop>("readStop"),
      InstanceMethod<&SocketHandle::Writev>("writev"),
      InstanceMethod<&SocketHandle::Shutdown>("shutdown"),
      InstanceMethod<&SocketHandle::Close>("close"),
      InstanceMethod<&SocketHandle::SetOwner>("setOwner"),
      StaticMethod<&SocketHandle::LinkHooks>("linkHooks"),
      InstanceAccessor<&SocketHandle::GetWriteQueueSize>("writeQueueSize"),
  };
  AddLoopEndpointProperties<SocketHandle>(&props);
  return DefineClass(env, "SocketHandle", props);
}

SocketHandle::SocketHandle(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<SocketHandle>(info), LoopEndpoint(info.Env()) {}

SocketHandle::~SocketHandle() {
  // Only reached once JS dropped a handle it never opened or already closed
  // (an open one holds itself alive), or at the environment's teardown.
  Finalizing();
  if (state_ != State::kClosed && state_ != State::kNone) Teardown(true, nullptr);
}

LoopEndpoint* SocketHandle::NewChild(napi_value* obj) {
  return NewChildOf<SocketHandle>(Env(), AddonData::Get(Env())->socket_handle_ctor, obj);
}

// linkHooks({ onconnection, onconnect, onread, onwrite, onshutdown }): the
// functions every handle of this environment calls, with its owner as `this`;
// any subset, once per module that owns some.
Napi::Value SocketHandle::LinkHooks(const Napi::CallbackInfo& info) {
  static const char* const kNames[kHookCount] = {"onconnection", "onconnect", "onread", "onwrite",
                                                  "onshutdown"};
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) return Num(env, -EINVAL);
  Napi::Object hooks = info[0].As<Napi::Object>();
  AddonData* data = AddonData::Get(env);
  for (int i = 0; i < kHookCount; i++) {
    Napi::Value fn = hooks.Get(kNames[i]);
    if (fn.IsFunction()) data->socket_hooks[i] = Napi::Persistent(fn.As<Napi::Function>());
  }
  return Num(env, 0);
}

// setOwner(owner): who hears this handle's hooks, until it is closed.
Napi::Value SocketHandle::SetOwner(const Napi::CallbackInfo& info) {
  if (info[0].IsObject()) owner_ = Napi::Persistent(info[0].As<Napi::Object>());
  return info.Env().Undefined();
}

// ---- verbs ----

// Sockets never register windows: their connections need only the
// endpoint's own descriptor (scif_net.h).
Napi::Value SocketHandle::Open(const Napi::CallbackInfo& info) {
  return Num(info.Env(), LoopEndpoint::Open(true));
}

Napi::Value SocketHandle::Bind(const Napi::CallbackInfo& info) {
  return Num(info.Env(), LoopEndpoint::Bind(static_cast<uint16_t>(info[0].As<Napi::Number>().Uint32Value())));
}

Napi::Value SocketHandle::Listen(const Napi::CallbackInfo& info) {
  return Num(info.Env(), LoopEndpoint::Listen(info[0].As<Napi::Number>().Int32Value()));
}

Napi::Value SocketHandle::Connect(const Napi::CallbackInfo& info) {
  scif_portID dst = {static_cast<uint16_t>(info[0].As<Napi::Number>().Uint32Value()),
                     static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value())};
  return Num(info.Env(), LoopEndpoint::Connect(dst));
}

// adoptListener(epd, port): a cluster worker accepts on the listener its
// primary opened (cluster.cc); closing lets go of this process's hold only.
Napi::Value SocketHandle::AdoptListener(const Napi::CallbackInfo& info) {
  return Num(info.Env(), LoopEndpoint::AdoptListener(info[0].As<Napi::Number>().Int32Value(),
                                                     static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value())));
}

Napi::Value SocketHandle::ReadStart(const Napi::CallbackInfo& info) {
  if (Connected() && !reading_ && !eof_) {
    reading_ = true;
    // The descriptor is level-triggered: bytes already waiting show as
    // readable, and are read in the loop's poll phase, as libuv reads.
    if (Watch() != 0) Schedule();
  }
  return Num(info.Env(), 0);
}

// Stops watching for data at once: a level-triggered descriptor holding
// unread bytes would otherwise wake the loop on every turn.
Napi::Value SocketHandle::ReadStop(const Napi::CallbackInfo& info) {
  if (reading_) {
    reading_ = false;
    if (watching_) Watch();
  }
  return Num(info.Env(), 0);
}

Napi::Value SocketHandle::Writev(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Connected()) return Num(env, -ENOTCONN);
  if (TxPending() || fin_sent_) return Num(env, -EPIPE);
  if (!info[0].IsArray()) return Num(env, -EINVAL);
  Napi::Array list = info[0].As<Napi::Array>();
  uint32_t count = list.Length();
  size_t total = 0;
  segs_.clear();
  segs_.reserve(count * 2 + 1);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsTypedArray()) return Num(env, -EINVAL);
    Napi::Uint8Array b = v.As<Napi::Uint8Array>();
    if (b.ByteLength() > 0) segs_.push_back({b.Data(), b.ByteLength()});
    total += b.ByteLength();
  }
  if (total == 0) return Num(env, 0);
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
    return Num(env, r < 0 ? r : 0);
  }
  tx_async_ = true;
  tx_hold_ = Napi::Persistent(info[0]);
  if (Watch() != 0) Schedule();  // for space: the descriptor turns writable
  return Num(env, 1);
}

// shutdown(): sends FIN after everything written; 1 (onshutdown follows, always
// from the loop) or -errno.
Napi::Value SocketHandle::Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Connected()) return Num(env, -ENOTCONN);
  if (TxPending()) return Num(env, -EBUSY);
  if (fin_sent_) return Num(env, 0);
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
    Schedule();
  } else if (Watch() != 0) {
    Schedule();  // waiting for room
  }
  return Num(env, 1);
}


// close(reset): idempotent. Without reset the peer reads an orderly end of
// stream if we had not sent one; with reset (or when that cannot be said
// without waiting) it reads ECONNRESET.
//
// close(reset, callback): the callback runs once libuv has closed the
// handle's loop handles, in the loop's close phase, as node:net's handles
// call theirs; returns whether it will (false: nothing was open, call it yourself).
Napi::Value SocketHandle::Close(const Napi::CallbackInfo& info) {
  bool reset = info.Length() > 0 && info[0].ToBoolean().Value();
  napi_value on_closed = info.Length() > 1 && info[1].IsFunction() ? napi_value(info[1]) : nullptr;
  bool later = false;
  if (state_ != State::kClosed && state_ != State::kNone) {
    later = Teardown(reset, on_closed);
    KeepAlive(false);
  }
  SetState(State::kClosed);
  return Napi::Boolean::New(info.Env(), later);
}

Napi::Value SocketHandle::GetWriteQueueSize(const Napi::CallbackInfo& info) {
  return Num(info.Env(), static_cast<double>(TxBytes()));
}

// ---- the loop core's questions ----

short SocketHandle::Want() const {
  switch (state_) {
    case State::kListening:
      return POLLIN;
    case State::kConnecting:
      return POLLOUT;
    case State::kConnected:
      return static_cast<short>((reading_ ? POLLIN : 0) | (TxPending() ? POLLOUT : 0));
    case State::kNone:
    case State::kOpen:
    case State::kClosing:
    case State::kClosed:
      return 0;
  }
  return 0;
}

bool SocketHandle::DispatchConnected(short revents) {
  bool acted = false, rx_armed = true, tx_armed = true;
  if (revents & POLLHUP) peer_gone_ = true;
  if (TxPending() && (revents & (POLLOUT | POLLHUP | POLLERR))) {
    int r = FlushTx();
    if (r != 0) FinishTx(r == 1 ? 0 : r);
    tx_armed = r == 0;  // waiting for space
    acted = true;
  }
  if (Connected() && reading_ && (revents & (POLLIN | POLLHUP | POLLERR))) {
    rx_armed = ReadSome();
    acted = true;
  }
  // Everything we wait for is armed (a callback that wants more schedules
  // itself), so another api_->poll() this turn would find nothing new.
  if (rx_armed && tx_armed) return false;
  return acted;
}

void SocketHandle::ConnectDone(int status) { Emit(Hook::kConnect, {Num(Env(), status)}); }

void SocketHandle::Accepted(int status, napi_value child) {
  if (status < 0)
    Emit(Hook::kConnection, {Num(Env(), status)});
  else
    Emit(Hook::kConnection, {Num(Env(), 0), child});
}

// The descriptor cannot be watched or asked any more: whoever waits learns why.
void SocketHandle::Failed(int err) {
  Napi::Env env = Env();
  switch (state_) {
    case State::kListening:
      Emit(Hook::kConnection, {Num(env, err)});
      return;
    case State::kConnecting:
      SetState(State::kOpen);
      ConnectDone(err);
      return;
    case State::kConnected:
      if (TxPending()) FinishTx(err);
      if (reading_ && Connected()) {
        reading_ = false;
        rx_events_++;
        Emit(Hook::kRead, {Num(env, err)});
      }
      return;
    case State::kNone:
    case State::kOpen:
    case State::kClosing:
    case State::kClosed:
      return;
  }
}

// A shutdown that finished without waiting is still reported from the loop.
bool SocketHandle::ReportWaiting() {
  if (shutdown_status_ == 1) return false;
  int status = shutdown_status_;
  shutdown_status_ = 1;
  Emit(Hook::kShutdown, {Num(Env(), status)});
  return false;
}

// Reads until the ring runs dry (true: the descriptor says when more comes), the
// reader pauses, or the turn's budget is spent (false: come back).
bool SocketHandle::ReadSome() {
  Napi::Env env = Env();
  for (int i = 0; i < kCallsPerRound && reading_ && Connected(); i++) {
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
    // A node waking from low power: its descriptor says so again when it can.
    if (n < 0 && errno == EAGAIN) return true;
    if (n < 0) {
      int err = Errno();
      reading_ = false;
      rx_events_++;
      Emit(Hook::kRead, {Num(env, err)});
      return true;
    }
    if (n == 0) return true;  // drained
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
      Emit(Hook::kRead, {Num(env, static_cast<double>(f.length)), out,
                      Num(env, static_cast<double>(offset))});
    }
    if (f.error || f.fin) {
      if (!Connected()) return true;
      reading_ = false;
      eof_ = f.fin && !f.error;
      Emit(Hook::kRead, {Num(env, f.error ? -f.error : kUvEof)});
      return true;
    }
    if (static_cast<size_t>(n) < kReadSize) return true;  // the ring ran dry
  }
  return !reading_ || !Connected();
}

// A Buffer could not be made: while JS runs, the reader learns why (and the
// bytes read are lost with the connection); once it is gone, nobody is left.
bool SocketHandle::ReadFailed(int err) {
  reading_ = false;
  if (!FailedButAlive(Env())) {
    Unwatch();  // nobody left to tell (addon.h)
    return true;
  }
  rx_events_++;
  Emit(Hook::kRead, {Num(Env(), err)});
  return true;
}

void SocketHandle::FinishTx(int status) {
  Tx kind = tx_;
  bool async = tx_async_;
  tx_ = Tx::kIdle;
  segs_.clear();
  seg_idx_ = seg_off_ = 0;
  send_buf_.clear();
  send_off_ = 0;
  tx_hold_.Reset();
  if (kind == Tx::kShutdown && status == -ECONNRESET) status = 0;
  if (!async) return;
  Emit(kind == Tx::kShutdown ? Hook::kShutdown : Hook::kWrite, {Num(Env(), status)});
}

// What the ring took of data (or -errno), in requests of at most kMaxSend
// bytes: a driver copies a whole request into the kernel on every call,
// however little of it fits.
int SocketHandle::Send(const uint8_t* data, size_t len) {
  size_t sent = 0;
  while (sent < len && sent < INT_MAX - kMaxSend) {
    int ask = static_cast<int>(std::min(len - sent, kMaxSend));
    int n = api_->send(epd_, const_cast<uint8_t*>(data + sent), ask, 0);
    if (n < 0) return sent > 0 ? static_cast<int>(sent) : Errno();  // the error comes again next time
    sent += static_cast<size_t>(n);
    if (n < ask) break;  // the ring is full
  }
  return static_cast<int>(sent);
}

// Moves queued bytes into the ring: 1 when all are in, 0 when the ring is
// full, or -errno. Small pieces are gathered into one staging copy, so a
// batch of tiny writes costs one api_->send().
int SocketHandle::FlushTx() {
  uint8_t* stage = AddonData::Get(Env())->stage;
  for (;;) {
    if (send_off_ < send_buf_.size()) {
      int n = Send(send_buf_.data() + send_off_, send_buf_.size() - send_off_);
      if (n < 0) return n;
      send_off_ += static_cast<size_t>(n);
      if (send_off_ < send_buf_.size()) return 0;
      send_buf_.clear();
      send_off_ = 0;
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
        send_buf_.assign(stage + n, stage + staged);
        send_off_ = 0;
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
  size_t total = send_buf_.size() - send_off_;
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

// Closes the connection, with a FIN when one can be sent without waiting and
// the peer is owed one, else the peer reads a reset; true when on_closed
// will be called (CloseLoop).
bool SocketHandle::Teardown(bool reset, napi_value on_closed) {
  if (!reset && Connected() && !eof_ && UnreadData()) reset = true;
  // Our end of the stream: a FIN, unless a write was still under way (its
  // rest is dropped, as node:net drops it, and the peer reads a reset). One
  // that finds the ring full goes before the descriptor closes, on the
  // threadpool (a lingering close).
  if (!reset && Connected() && tx_ == Tx::kShutdown && !peer_gone_) {
    // A shutdown not yet through: its FIN still goes.
    int r = FlushTx();
    if (r == 0 && send_off_ < send_buf_.size())
      Linger(std::vector<uint8_t>(send_buf_.begin() + static_cast<ptrdiff_t>(send_off_), send_buf_.end()));
    else if (r == 0 && seg_idx_ < segs_.size())
      Linger(std::vector<uint8_t>(segs_[seg_idx_].data + seg_off_, segs_[seg_idx_].data + segs_[seg_idx_].len));
  }
  if (!reset && Connected() && !fin_sent_ && !peer_gone_ && !TxPending()) {
    uint8_t fin[kFrameHeader];
    EncodeHeader(fin, kFrameFin, 0);
    fin_sent_ = true;
    int n = Send(fin, kFrameHeader);
    if (n >= 0 && static_cast<size_t>(n) < kFrameHeader) Linger(std::vector<uint8_t>(fin + n, fin + kFrameHeader));
  }
  bool later = CloseLoop(on_closed, true);
  SetState(State::kClosed);
  reading_ = false;
  owner_.Reset();  // closed: no hook is called any more
  if (busy_slot >= 0) busy_->Forget(this);  // hot: so the spinner is alive
  tx_ = Tx::kIdle;
  segs_.clear();
  send_buf_.clear();
  send_off_ = 0;
  if (!tx_hold_.IsEmpty()) tx_hold_.Reset();
  if (!read_buf_.IsEmpty()) read_buf_.Reset();
  return later;
}

// ---- busy polling's questions ----

int SocketHandle::BusyLook() {
  if (!Connected() || epd_ < 0 || !reading_) return -1;
  if (api_->rx_ready) return api_->rx_ready(epd_, 0) == 0 ? 0 : 1;  // an error: let Service() meet it
  // MPSS's libscif has no look without a system call: scif_poll() it is.
  scif_pollepd pe = {epd_, POLLIN, 0};
  return api_->poll(&pe, 1, 0) == 0 ? 0 : 1;
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
  if (owner_.IsEmpty()) return;
  Napi::FunctionReference& fn = AddonData::Get(Env())->socket_hooks[static_cast<int>(hook)];
  if (fn.IsEmpty()) return;
  if (!CallJs(owner_.Value(), fn.Value(), args)) reading_ = false;  // nobody left to tell
}

}  // namespace scifnet
