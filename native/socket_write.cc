// socket_write.cc - the socket's write path (socket_handle.h): writes
// gathered into frames, sent as the queue takes them (at most kMaxSend a
// call), the rest watched for; the bulk path by RMA is socket_rma.cc's.
#include <poll.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "backend.h"
#include "napi_args.h"
#include "socket_handle.h"

namespace scifnet {

using napi_args::Errno;
using napi_args::Num;

namespace {

constexpr size_t kDirectFrom = 8 * 1024;  // segments this large skip the staging copy


}  // namespace

Napi::Value SocketHandle::Writev(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Connected()) return Num(env, -ENOTCONN);
  if (TxPending() || fin_sent_) return Num(env, -EPIPE);
  if (!info[0].IsArray()) return Num(env, -EINVAL);
  Napi::Array list = info[0].As<Napi::Array>();
  uint32_t count = list.Length();
  size_t total = 0;
  // RMA once the peer's window is here; the first write that would use it
  // asks for it and goes by messages meanwhile, so a write still completes
  // once it is in the queue, without waiting for the peer to read the ask.
  bool possible = RmaPossible();
  bool rma = possible && lane_ == Lane::kReady;
  // The socket's own list, kept between writes: no allocation per write.
  std::vector<Segment>& buffers = write_list_;
  buffers.clear();
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsTypedArray()) return Num(env, -EINVAL);
    Napi::Uint8Array b = v.As<Napi::Uint8Array>();
    size_t len = b.ByteLength();
    if (len == 0) continue;
    buffers.push_back({b.Data(), len, Seg::kBytes});
    total += len;
  }
  if (total == 0) return Num(env, 0);
  // Large buffers move by RMA; so do small ones that node:net gathered into
  // a batch this large while a write was under way (a stream of small
  // writes), copied together into the peer's window when it is mapped.
  bool large = possible && total >= RmaThreshold();
  bool gather = rma && large && tx_lane_->map;
  bool any_rma = false;
  for (Segment& b : buffers) {
    if (gather || (rma && b.len >= RmaThreshold())) {
      b.kind = Seg::kRma;
      any_rma = true;
    } else {
      stats_.sent_messages += b.len;
    }
  }
  wrote_ = true;
  headers_.clear();
  segs_.clear();
  BuildSegments(buffers, 0, &segs_);
  if (buffers.capacity() > 64) std::vector<Segment>().swap(buffers);  // a rare long writev keeps nothing
  seg_idx_ = seg_off_ = 0;
  RestartLaunch(0);
  switch_tried_ = rma;  // built for RMA already
  tx_ = Tx::kWrite;
  tx_async_ = false;
  // RMA chunks read the buffers on the threadpool: each holds them (LaunchRma).
  // A write by messages alone is in the queue before this returns, or held
  // below (a reference made and dropped per write was a share of its CPU).
  if (any_rma) tx_hold_ = Napi::Persistent(info[0]);
  if (large && lane_ == Lane::kNone &&
      (total >= rma::kAskWrite || stats_.sent_messages >= rma::kAskAfter)) {
    lane_ = Lane::kAsked;
    Ctrl req;
    req.op = kCtrlWindowReq;
    QueueCtrl(req);
  }
  int r = FlushTx();
  if (r == kFlushDone || r < 0) {
    tx_ = Tx::kIdle;
    segs_.clear();
    if (!tx_hold_.IsEmpty()) tx_hold_.Reset();
    return Num(env, r < 0 ? WriteError(r) : 0);
  }
  tx_async_ = true;
  if (tx_hold_.IsEmpty()) tx_hold_ = Napi::Persistent(info[0]);
  if (Watch() != 0) Schedule();  // for room (the descriptor turns writable), or the window's answer
  return Num(env, 1);
}

// Frames buffers[from..] into out: runs of small buffers as DATA frames of at
// most kFrameMaxData bytes (a header before each), large ones as they are.
void SocketHandle::BuildSegments(const std::vector<Segment>& buffers, size_t from, std::vector<Segment>* out) {
  size_t run_left = 0, frame_left = 0;
  for (size_t i = from; i < buffers.size(); i++) {
    const Segment& s = buffers[i];
    if (s.kind == Seg::kRma) {
      out->push_back(s);
      continue;
    }
    if (run_left == 0)
      for (size_t j = i; j < buffers.size() && buffers[j].kind != Seg::kRma; j++) run_left += buffers[j].len;
    const uint8_t* p = s.data;
    size_t len = s.len;
    while (len > 0) {
      if (frame_left == 0) {
        frame_left = std::min(run_left, kFrameMaxData);
        headers_.emplace_back();
        EncodeHeader(headers_.back().data(), kFrameData, static_cast<uint32_t>(frame_left));
        out->push_back({headers_.back().data(), kFrameHeader, Seg::kHeader});
      }
      size_t take = std::min(len, frame_left);
      out->push_back({p, take, Seg::kBytes});
      p += take;
      len -= take;
      frame_left -= take;
      run_left -= take;
    }
  }
}

// A write that fails because the peer has closed: after the peer's FIN that
// is EPIPE, as TCP says it (a reset in CLOSE_WAIT: the peer ended, then
// closed), not ECONNRESET, which is what SCIF says of any peer gone.
int SocketHandle::WriteError(int status) const {
  return status == -ECONNRESET && (eof_ || decoder_.Finished()) ? -EPIPE : status;
}

void SocketHandle::FinishTx(int status) {
  Tx kind = tx_;
  bool async = tx_async_;
  tx_ = Tx::kIdle;
  tx_ring_full_ = false;
  segs_.clear();
  seg_idx_ = seg_off_ = 0;
  RestartLaunch(0);
  if (status != 0) {
    // A write that failed: its chunks still running complete unheard.
    if (tx_lane_) tx_lane_->chunks.clear();
    send_buf_.clear();
    send_off_ = 0;
  }
  tx_hold_.Reset();
  if (kind == Tx::kShutdown && status == -ECONNRESET) status = 0;
  if (kind == Tx::kWrite) status = WriteError(status);
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

// Sends what the ring takes of data, whole: 1 when all is in, 0 when the
// rest was staged in send_buf_ for when there is room, or -errno.
int SocketHandle::SendWhole(const uint8_t* data, size_t len) {
  int n = Send(data, len);
  if (n < 0) return n;
  if (static_cast<size_t>(n) < len) {
    send_buf_.assign(data + n, data + len);
    send_off_ = 0;
    return 0;
  }
  return 1;
}

int SocketHandle::FlushTx() {
  in_flush_ = true;
  int r = FlushTxSteps();
  in_flush_ = false;
  tx_ring_full_ = r == kFlushRing;
  return r;
}

// Moves the write into the ring: kFlushDone when all is in, kFlushRing when
// the ring is full, kFlushLane when it waits for the bulk path (a window, a
// chunk's RMA, credit), or -errno. Small pieces are gathered into one staging
// copy, so a batch of tiny writes costs one api_->send(). Control frames go
// at frame boundaries.
int SocketHandle::FlushTxSteps() {
  uint8_t* stage = AddonData::Get(Env())->stage;
  for (;;) {
    if (send_off_ < send_buf_.size()) {
      int n = Send(send_buf_.data() + send_off_, send_buf_.size() - send_off_);
      if (n < 0) return n;
      send_off_ += static_cast<size_t>(n);
      if (send_off_ < send_buf_.size()) return kFlushRing;
      send_buf_.clear();
      send_off_ = 0;
    }
    bool at_end = seg_idx_ == segs_.size();
    // The window came while this write went by messages: the rest moves by
    // RMA, from the next frame on.
    if (!at_end && SwitchWanted() && segs_[seg_idx_].kind == Seg::kHeader && seg_off_ == 0) SwitchToRma();
    if (!ctrl_out_.empty() && (at_end || segs_[seg_idx_].kind == Seg::kRma ||
                               (segs_[seg_idx_].kind == Seg::kHeader && seg_off_ == 0))) {
      std::vector<uint8_t> ctrl;
      ctrl.swap(ctrl_out_);
      int r = SendWhole(ctrl.data(), ctrl.size());
      if (r <= 0) return r;
      continue;
    }
    if (at_end) return kFlushDone;
    if (segs_[seg_idx_].kind == Seg::kRma) {
      int r = AnnounceRma();
      if (r != kFlushDone) return r;
      continue;
    }
    size_t staged = 0;
    // Staging stops at a frame's start when something waits for a boundary
    // (a control frame, the switch to RMA): it goes there.
    bool boundary_wanted = !ctrl_out_.empty() || SwitchWanted();
    while (seg_idx_ < segs_.size() && segs_[seg_idx_].kind != Seg::kRma) {
      const Segment& s = segs_[seg_idx_];
      size_t rest = s.len - seg_off_;
      if (staged > 0 && boundary_wanted && s.kind == Seg::kHeader) break;
      if (rest >= kDirectFrom || staged + rest > AddonData::kStageSize) break;
      std::memcpy(stage + staged, s.data + seg_off_, rest);
      staged += rest;
      seg_idx_++;
      seg_off_ = 0;
    }
    if (staged > 0) {
      int r = SendWhole(stage, staged);
      if (r <= 0) return r;
      continue;
    }
    if (seg_idx_ == segs_.size() || segs_[seg_idx_].kind == Seg::kRma) continue;
    const Segment& s = segs_[seg_idx_];
    int n = Send(s.data + seg_off_, s.len - seg_off_);
    if (n < 0) return n;
    seg_off_ += static_cast<size_t>(n);
    if (seg_off_ < s.len) return kFlushRing;
    seg_idx_++;
    seg_off_ = 0;
  }
}

size_t SocketHandle::TxBytes() const {
  size_t total = send_buf_.size() - send_off_;
  for (size_t i = seg_idx_; i < segs_.size(); i++) total += segs_[i].len;
  return total - (seg_idx_ < segs_.size() ? seg_off_ : 0);
}

}  // namespace scifnet
