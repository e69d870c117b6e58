// socket_read.cc - SocketHandle's read side: frames off the queue, data
// handed to the reader in order (or held while it is paused), chunks copied
// out of the receive window (socket_handle.h, rma_lane.h).
#include <algorithm>
#include <cstring>

#include "backend.h"
#include "napi_args.h"
#include "socket_handle.h"

extern "C" {
#include "scif_net.h"
}

namespace scifnet {

using napi_args::Errno;
using napi_args::Num;

// Reads until the ring runs dry (true: the descriptor says when more comes), the
// reader pauses, or the turn's budget is spent (false: come back). A paused
// reader whose write waits for control frames reads too, holding the data.
bool SocketHandle::ReadSome() {
  Napi::Env env = Env();
  for (int i = 0; i < kCallsPerRound && ((reading_ && !rx_failed_) || ControlReading()) && Connected(); i++) {
    Napi::HandleScope scope(env);
    if (read_buf_.IsEmpty() || kReadSize - read_off_ < kReadRoom) {
      // Raw napi: node-addon-api makes a failure fatal, and making a Buffer
      // fails when the environment goes away (or memory runs out).
      void* data;
      napi_value made;
      if (napi_create_buffer(env, kReadSize, &data, &made) != napi_ok) return ReadFailed(-ENOMEM);
      read_buf_ = Napi::Persistent(Napi::Buffer<uint8_t>(env, made));
      read_off_ = 0;
    }
    Napi::Buffer<uint8_t> buf = read_buf_.Value();
    size_t at = read_off_, room = kReadSize - at;
    int n = api_->recv(epd_, buf.Data() + at, static_cast<int>(room), 0);
    // A node waking from low power: its descriptor says so again when it can.
    if (n < 0 && errno == EAGAIN) return true;
    if (n < 0) {
      DeliverError(Errno());
      return true;
    }
    if (n == 0) {  // drained
      Drained();
      return true;
    }
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
    // Frame by frame up to each control frame or FIN: what came before it
    // is handed out first.
    uint8_t* p = buf.Data() + at;
    size_t r = 0;
    // What this read filled is the reader's now, pieces of it handed out
    // as they are (8-aligned, the next read's place).
    read_off_ = (at + static_cast<size_t>(n) + 7) & ~static_cast<size_t>(7);
    while (r < static_cast<size_t>(n)) {
      FrameDecoder::Result f = decoder_.Decode(p + r, static_cast<size_t>(n) - r);
      if (f.length > 0) {
        // Stream order: the chunks before this frame's bytes go first.
        if (!EmitRun()) return true;
        stats_.received_messages += f.length;
        Deliver(buf, at + r + f.offset, f.length);
      }
      r += f.consumed;
      if (!Connected()) return true;
      if (f.error) {
        DeliverError(-f.error);
        return true;
      }
      if (f.fin) DeliverEnd();
      if (f.ctrl && !HandleCtrl(f.control)) return true;
      if (!Connected()) return true;
    }
    if (!EmitRun()) return true;
    if (static_cast<size_t>(n) < room) {  // the ring ran dry
      Drained();
      return true;
    }
  }
  FlushCredit();
  return !((reading_ && !rx_failed_) || ControlReading()) || !Connected();
}

// The ring ran dry: credit goes back, and a read buffer that has been read
// into much is let go, so that an idle connection keeps at most a few pages
// of one (the pieces handed out keep it as long as the reader keeps them).
void SocketHandle::Drained() {
  FlushCredit();
  if (read_off_ >= kReadKeep) read_buf_.Reset();
}

// Stream bytes, in order: to the reader, as a piece of the read buffer
// (node:net's reads cost a Buffer each too, but one made in JS: a Buffer made
// here, copied, was a share of a small message's round trip), or held while
// it is paused.
void SocketHandle::Deliver(const Napi::Buffer<uint8_t>& buf, size_t offset, size_t len) {
  Napi::Env env = Env();
  if (!reading_ || !held_.empty()) {
    const uint8_t* data = buf.Data() + offset;
    held_.emplace_back(Held::kData, std::vector<uint8_t>(data, data + len));
    held_bytes_ += len;
    return;
  }
  Emit(Hook::kRead, {Num(env, static_cast<double>(len)), buf, Num(env, static_cast<double>(offset))});
}

// A chunk the peer wrote into our window: copied out and credited, or held
// (uncredited, so the peer's writes wait) while the reader is paused. Small
// chunks (a stream of small writes, one chunk each) join a run that the end
// of this read of the queue hands out as one Buffer: a Buffer and a 'data'
// per chunk cost the reader more than the bytes.
bool SocketHandle::DeliverRma(uint32_t pos, uint32_t len) {
  stats_.received_rma += len;
  bool paused = !reading_ || !held_.empty();
  if ((paused || len >= kReadSize || rx_lane_->run_bytes + len > kReadSize) && !EmitRun()) return false;
  // Asked again: the run handed out may have paused the reader.
  if (!reading_ || !held_.empty()) {
    HoldRma(pos, len);
    return true;
  }
  if (len >= kReadSize) return EmitWindow(pos, len);
  JoinRun(pos, len);
  return true;
}

void SocketHandle::JoinRun(uint32_t pos, uint32_t len) {
  rx_lane_->run.push_back(Piece{pos, len});
  rx_lane_->run_bytes += len;
}

// The run goes before an end or an error: true if handing it out closed us.
bool SocketHandle::RunCutShort() {
  if (!rx_lane_ || rx_lane_->run.empty()) return false;
  EmitRun();
  return !Connected();
}

void SocketHandle::HoldRma(uint32_t pos, uint32_t len) {
  Held h(Held::kRma);
  h.pos = pos;
  h.len = len;
  held_.push_back(std::move(h));
}

// The run of small chunks (DeliverRma), handed out (HandOutRun), or held
// behind nothing (it came first) if the reader stopped meanwhile: false if
// the reader cannot go on (no Buffer, or closed by it).
bool SocketHandle::EmitRun() {
  if (!rx_lane_ || rx_lane_->run.empty()) return Connected();
  RxLane& r = *rx_lane_;
  if (!reading_ || !held_.empty()) {
    for (const Piece& piece : r.run) HoldRma(piece.pos, piece.len);
    r.run.clear();
    r.run_bytes = 0;
    return Connected();
  }
  return HandOutRun();
}

// The run copied out into one Buffer, credited, and handed to the reader.
bool SocketHandle::HandOutRun() {
  Napi::Env env = Env();
  RxLane& r = *rx_lane_;
  size_t total = r.run_bytes;
  void* data;
  napi_value out;
  if (napi_create_buffer(env, total, &data, &out) != napi_ok) return !ReadFailed(-ENOMEM);
  uint8_t* at = static_cast<uint8_t*>(data);
  for (const Piece& piece : r.run) {
    std::memcpy(at, r.mem + piece.pos, piece.len);
    at += piece.len;
    Credit(piece.len);
  }
  r.run.clear();
  r.run_bytes = 0;
  Emit(Hook::kRead, {Num(env, static_cast<double>(total)), out, Num(env, 0)});
  return Connected();
}

// Copies a chunk out of our window and hands it out in read-sized Buffers
// (below malloc's mmap threshold: larger ones cost fresh pages every time),
// crediting the window once it is copied. They are Node's own: blocks kept
// here and handed out as external Buffers, to spare the pages glibc trims
// and faults in again, cost the reader more than the faults (a finalizer a
// Buffer: 0.24-0.32 CPU s/GB received at 64 KiB, against 0.12-0.17).
bool SocketHandle::EmitWindow(uint32_t pos, uint32_t len) {
  Napi::Env env = Env();
  napi_value pieces[rma::kChunk / kReadSize + 1];
  size_t count = 0;
  for (uint32_t done = 0; done < len; count++) {
    uint32_t take = std::min<uint32_t>(len - done, static_cast<uint32_t>(kReadSize));
    void* data;
    if (count == sizeof(pieces) / sizeof(pieces[0]) ||
        napi_create_buffer(env, take, &data, &pieces[count]) != napi_ok)
      return !ReadFailed(-ENOMEM);
    std::memcpy(data, rx_lane_->mem + pos + done, take);
    done += take;
  }
  Credit(len);
  for (size_t i = 0; i < count && Connected(); i++) {
    size_t piece_len = std::min<size_t>(len - i * kReadSize, kReadSize);
    Emit(Hook::kRead, {Num(env, static_cast<double>(piece_len)), pieces[i], Num(env, 0)});
  }
  return true;
}

void SocketHandle::DeliverEnd() {
  if (RunCutShort()) return;
  eof_ = true;
  if (!reading_ || !held_.empty()) {
    held_.emplace_back(Held::kEnd);
    return;
  }
  reading_ = false;
  Emit(Hook::kRead, {Num(Env(), kUvEof)});
}

// The queue failed (a reset, a stream that is not ours): the reader learns it
// after what it holds, and a write waiting for the peer's word now fails.
void SocketHandle::DeliverError(int err) {
  if (RunCutShort()) return;
  rx_failed_ = true;
  if (!reading_ || !held_.empty()) {
    Held h(Held::kError);
    h.err = err;
    held_.push_back(std::move(h));
  } else {
    reading_ = false;
    rx_events_++;
    Emit(Hook::kRead, {Num(Env(), err)});
  }
  if (Connected() && TxPending() && !tx_ring_full_) FinishTx(err);
}

// Hands out what a paused reader held, until it pauses again.
bool SocketHandle::DeliverHeld() {
  Napi::Env env = Env();
  bool acted = false;
  while (reading_ && Connected() && !held_.empty()) {
    Napi::HandleScope scope(env);
    Held h = std::move(held_.front());
    held_.pop_front();
    acted = true;
    rx_events_++;
    switch (h.kind) {
      case Held::kData: {
        held_bytes_ -= h.bytes.size();
        void* data;
        napi_value out;
        if (napi_create_buffer_copy(env, h.bytes.size(), h.bytes.data(), &data, &out) != napi_ok) {
          ReadFailed(-ENOMEM);
          return true;
        }
        Emit(Hook::kRead, {Num(env, static_cast<double>(h.bytes.size())), out, Num(env, 0)});
        break;
      }
      case Held::kRma:
        if (h.len >= kReadSize) {
          EmitWindow(h.pos, h.len);
          break;
        }
        // Small chunks held in a row go out together too, as they came.
        JoinRun(h.pos, h.len);
        while (!held_.empty() && held_.front().kind == Held::kRma &&
               rx_lane_->run_bytes + held_.front().len <= kReadSize) {
          JoinRun(held_.front().pos, held_.front().len);
          held_.pop_front();
        }
        HandOutRun();
        break;
      case Held::kEnd:
        reading_ = false;
        Emit(Hook::kRead, {Num(env, kUvEof)});
        break;
      case Held::kError:
        reading_ = false;
        Emit(Hook::kRead, {Num(env, h.err)});
        break;
    }
  }
  if (Connected()) {
    FlushCredit();
    // Held no more: the queue may hold more for the reader.
    if (reading_ && held_.empty() && Watch() != 0) Schedule();
  }
  return acted;
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

}  // namespace scifnet
