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
using napi_args::Num;

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
      InstanceMethod<&SocketHandle::ScifStats>("scifStats"),
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

// Not stream-only: a large write registers a receive window. The fabric
// makes a connection's RMA channel only then, so an idle connection still
// holds one descriptor a side (kernel/README.md).
Napi::Value SocketHandle::Open(const Napi::CallbackInfo& info) {
  return Num(info.Env(), LoopEndpoint::Open(false));
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
  if (Connected() && !reading_ && (!eof_ || !held_.empty())) {
    reading_ = true;
    // The descriptor is level-triggered: bytes already waiting show as
    // readable, and are read in the loop's poll phase, as libuv reads.
    // What a paused reader held is handed out from the loop first.
    if (!held_.empty() || Watch() != 0) Schedule();
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

// shutdown(): sends FIN after everything written; 1 (onshutdown follows, always
// from the loop) or -errno.
Napi::Value SocketHandle::Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Connected()) return Num(env, -ENOTCONN);
  if (TxPending()) return Num(env, -EBUSY);
  if (fin_sent_) return Num(env, 0);
  fin_sent_ = true;
  headers_.clear();
  headers_.emplace_back();
  EncodeHeader(headers_.back().data(), kFrameFin, 0);
  segs_.assign(1, Segment{headers_.back().data(), kFrameHeader, Seg::kHeader});
  seg_idx_ = seg_off_ = 0;
  RestartLaunch(0);
  tx_ = Tx::kShutdown;
  tx_async_ = true;
  int r = FlushTx();
  if (r != kFlushRing) {
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

// scifStats(): how this connection's bytes moved, in bytes (rma_lane.h).
Napi::Value SocketHandle::ScifStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object sent = Napi::Object::New(env), received = Napi::Object::New(env), out = Napi::Object::New(env);
  sent.Set("rma", Num(env, static_cast<double>(stats_.sent_rma)));
  sent.Set("messages", Num(env, static_cast<double>(stats_.sent_messages)));
  received.Set("rma", Num(env, static_cast<double>(stats_.received_rma)));
  received.Set("messages", Num(env, static_cast<double>(stats_.received_messages)));
  out.Set("sent", sent);
  out.Set("received", received);
  out.Set("windows", Num(env, stats_.windows));
  out.Set("fallbacks", Num(env, stats_.fallbacks));
  return out;
}

// ---- the loop core's questions ----

short SocketHandle::Want() const {
  switch (state_) {
    case State::kListening:
      return POLLIN;
    case State::kConnecting:
      return POLLOUT;
    case State::kConnected: {
      bool out = TxPending() ? tx_ring_full_ : CtrlOutPending();
      bool in = (reading_ && !rx_failed_) || ControlReading();
      return static_cast<short>((in ? POLLIN : 0) | (out ? POLLOUT : 0));
    }
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
  // The read side first, as libuv serves a stream: a peer's reset reaches a
  // reader as a read error (node:net's 'error', the write under way then
  // completing quietly) rather than as a failed write. Its hook may close us.
  if (Connected() && ((reading_ && !rx_failed_) || ControlReading()) && (revents & (POLLIN | POLLHUP | POLLERR))) {
    rx_armed = ReadSome();
    acted = true;
  }
  if (!Connected()) return acted;
  if (TxPending() && (revents & (POLLOUT | POLLHUP | POLLERR))) {
    int r = FlushTx();
    if (r == kFlushDone || r < 0) FinishTx(r == kFlushDone ? 0 : r);
    tx_armed = r == kFlushRing || r == kFlushLane;  // waiting for room, or for the lane
    acted = true;
  } else if (!TxPending() && CtrlOutPending() && (revents & (POLLOUT | POLLHUP | POLLERR))) {
    FlushCtrl();
    acted = true;
  }
  // Everything we wait for is armed (a callback that wants more schedules
  // itself), so another api_->poll() this turn would find nothing new.
  if (rx_armed && tx_armed) return false;
  return acted;
}

void SocketHandle::ConnectDone(int status) { Emit(Hook::kConnect, {Num(Env(), status)}); }

// onconnection(status, handle) as node:net's; onconnection(status,
// undefined, true) when the listener can accept nothing more.
void SocketHandle::Accepted(int status, napi_value child) {
  Napi::Env env = Env();
  if (status < 0 && listen_gone_ != 0)
    Emit(Hook::kConnection, {Num(env, status), env.Undefined(), Napi::Boolean::New(env, true)});
  else if (status < 0)
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
      if (reading_ && Connected() && !rx_failed_) {
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

// A shutdown that finished without waiting is still reported from the loop,
// and what a paused reader held is handed out once it reads again.
bool SocketHandle::ReportWaiting() {
  if (reading_ && !held_.empty() && Connected()) return DeliverHeld();
  if (shutdown_status_ == 1) return false;
  int status = shutdown_status_;
  shutdown_status_ = 1;
  Emit(Hook::kShutdown, {Num(Env(), status)});
  return false;
}

// Whether bytes the peer sent are still waiting in the ring, unread: closing
// then discards them, and (as TCP answers with a reset) the peer must learn it.
// A FIN alone is not data, so what is there is read and looked at.
bool SocketHandle::UnreadData() {
  if ((rx_lane_ && !rx_lane_->run.empty()) ||
      held_.Find([](const Held& h) { return h.kind == Held::kData || h.kind == Held::kRma; }))
    return true;
  if (decoder_.Finished() || rx_failed_) return false;
  uint8_t scratch[16 * 1024];
  for (int i = 0; i < 64; i++) {
    int n = api_->recv(epd_, scratch, sizeof(scratch), 0);
    if (n <= 0) return false;
    size_t r = 0;
    while (r < static_cast<size_t>(n)) {
      FrameDecoder::Result f = decoder_.Decode(scratch + r, static_cast<size_t>(n) - r);
      if (f.length > 0 || f.error || (f.ctrl && f.control.op == kCtrlDataRma)) return true;
      if (f.fin) return false;
      r += f.consumed;
    }
  }
  return true;
}

// Closes the connection, with a FIN when one can be sent without waiting and
// the peer is owed one, else the peer reads a reset; true when on_closed
// will be called (CloseLoop).
bool SocketHandle::Teardown(bool reset, napi_value on_closed) {
  if (!reset && Connected() && !eof_ && UnreadData()) reset = true;
  // Our end of the stream: a FIN, after the rest of the frame a write under
  // way had begun. One that finds the ring full goes before the descriptor
  // closes, on the threadpool (a lingering close).
  if (!reset && Connected() && tx_ == Tx::kShutdown && !peer_gone_) {
    // A shutdown not yet through: its FIN still goes.
    int r = FlushTx();
    if (r == 0 && send_off_ < send_buf_.size())
      Linger(std::vector<uint8_t>(send_buf_.begin() + static_cast<ptrdiff_t>(send_off_), send_buf_.end()));
    else if (r == 0 && seg_idx_ < segs_.size())
      Linger(std::vector<uint8_t>(segs_[seg_idx_].data + seg_off_, segs_[seg_idx_].data + segs_[seg_idx_].len));
  }
  if (!reset && Connected() && !fin_sent_ && !peer_gone_ && (tx_ == Tx::kWrite || !TxPending())) {
    // The FIN, after what is staged (the rest of a control frame the ring
    // had no room for) and, with a write under way, the rest of the frame it
    // had begun: the peer reads what was sent and an orderly end, as a
    // closed TCP socket's peer reads what its kernel had taken. The rest of
    // the write is dropped, as node:net drops what libuv had not written: at
    // most one frame (kFrameMaxData) and a control frame are sent on.
    std::vector<uint8_t> out(send_buf_.begin() + static_cast<ptrdiff_t>(send_off_), send_buf_.end());
    for (size_t i = seg_idx_; tx_ == Tx::kWrite && i < segs_.size(); i++) {
      const Segment& seg = segs_[i];
      size_t from = i == seg_idx_ ? seg_off_ : 0;
      if (seg.kind == Seg::kRma || (seg.kind == Seg::kHeader && from == 0)) break;  // at a frame's start
      out.insert(out.end(), seg.data + from, seg.data + seg.len);
    }
    out.resize(out.size() + kFrameHeader);
    EncodeHeader(out.data() + out.size() - kFrameHeader, kFrameFin, 0);
    fin_sent_ = true;
    int n = Send(out.data(), out.size());
    if (n >= 0 && static_cast<size_t>(n) < out.size()) Linger(std::vector<uint8_t>(out.begin() + n, out.end()));
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
  ctrl_out_.clear();
  if (tx_lane_) {
    tx_lane_->chunks.clear();  // chunks still running complete unheard (RmaDone)
    if (tx_lane_->map) {
      api_->munmap(tx_lane_->map, tx_lane_->win_size);
      tx_lane_->map = nullptr;
    }
  }
  held_.clear();
  held_bytes_ = 0;
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
