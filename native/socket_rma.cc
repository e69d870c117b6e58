// socket_rma.cc - SocketHandle's bulk path (rma_lane.h): the window it asks
// the peer for and the chunks it writes there, the window it registers for
// the peer and the chunks it copies out, and the control frames between
// them (frame.h).
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "backend.h"
#include "socket_handle.h"

namespace scifnet {

namespace {

// SYNC: the chunk is in the peer's window when the call returns, so its
// DATA_RMA may go. USECACHE: a driver pins the written pages for every
// scif_vwriteto (a temporary window) and unpins them after; with it, it keeps
// them pinned in its registration cache, so a Buffer written again (node's
// pooled and reused buffers) is not pinned anew. MPSS 4 drops the cached
// pins when the pages are unmapped. The fabric ignores both flags' costs.
constexpr int kVwriteFlags = SCIF_RMA_SYNC | SCIF_RMA_USECACHE;

}  // namespace

rma::Copy SocketHandle::CopyMode() {
  if (copy_ < 0) copy_ = static_cast<int8_t>(rma::CopyFor(api_));
  return static_cast<rma::Copy>(copy_);
}

bool SocketHandle::RmaPossible() {
  return api_ && api_->register_ && api_->vwriteto && lane_ != Lane::kDeclined && RmaThreshold() > 0;
}

// The write waits for the peer's word (credit, not room), or goes by
// messages until the window it asked for comes: read the queue for it, holding
// what data comes meanwhile, up to a receive buffer's worth.
bool SocketHandle::ControlReading() const {
  return TxPending() && (!tx_ring_full_ || lane_ == Lane::kAsked) && !rx_failed_ && held_bytes_ < rma::kPausedCap;
}

void SocketHandle::QueueCtrl(const Ctrl& c) {
  uint8_t frame[kFrameHeader + kCtrlMax];
  size_t len = EncodeCtrl(frame, c);
  ctrl_out_.insert(ctrl_out_.end(), frame, frame + len);
}

// Control frames while no write is under way (a write sends them itself, at
// its frame boundaries). An error shows on the read side.
void SocketHandle::FlushCtrl() {
  if (send_off_ < send_buf_.size()) {
    int n = Send(send_buf_.data() + send_off_, send_buf_.size() - send_off_);
    if (n < 0) return;
    send_off_ += static_cast<size_t>(n);
    if (send_off_ < send_buf_.size()) return;
    send_buf_.clear();
    send_off_ = 0;
  }
  if (ctrl_out_.empty()) return;
  std::vector<uint8_t> ctrl;
  ctrl.swap(ctrl_out_);
  SendWhole(ctrl.data(), ctrl.size());
}

// Something the write or the control frames waited for came (a window,
// credit, a finished chunk, a frame to send): move on.
void SocketHandle::KickTx() {
  if (!Connected() || in_flush_) return;
  if (TxPending()) {
    if (!tx_ring_full_) {
      int r = FlushTx();
      if (r == kFlushDone || r < 0) FinishTx(r == kFlushDone ? 0 : r);
    }
  } else {
    FlushCtrl();
  }
  if (Connected() && Watch() != 0) Schedule();
}

// At a large buffer of the write: announces its chunks that are done, in
// order (kFlushDone: go on), or waits for them (kFlushLane).
int SocketHandle::AnnounceRma() {
  // RMA segments are made only once the window is here (lane_ kReady).
  LazyDeque<Chunk>& chunks = tx_lane_->chunks;
  if (chunks.empty() || !chunks.front().done) {
    LaunchRma();
    if (chunks.empty() || !chunks.front().done) return kFlushLane;
  }
  Chunk c = chunks.front();
  chunks.pop_front();
  if (c.err) return c.err;
  stats_.sent_rma += c.len;
  // A chunk may gather several buffers of the write.
  for (size_t left = c.len; left > 0;) {
    const Segment& s = segs_[seg_idx_];
    size_t take = std::min(left, s.len - seg_off_);
    seg_off_ += take;
    left -= take;
    if (seg_off_ == s.len) {
      seg_idx_++;
      seg_off_ = 0;
    }
  }
  Ctrl d;
  d.op = kCtrlDataRma;
  d.a = c.pos;
  d.b = c.len;
  uint8_t frame[kFrameHeader + kCtrlMax];
  int r = SendWhole(frame, EncodeCtrl(frame, d));
  if (r <= 0) return r;
  LaunchRma();
  return kFlushDone;
}

// Starts RMAs for the write's next large bytes, as far as the peer's window
// has room and the in-flight limit allows. Positions are 64-byte aligned, and
// a chunk never wraps around the window's end.
void SocketHandle::LaunchRma() {
  if (lane_ != Lane::kReady || tx_ != Tx::kWrite || !Connected()) return;
  TxLane& t = *tx_lane_;
  const size_t window = t.win_size;
  while (t.in_flight < rma::kMaxInFlight) {
    while (t.launch_idx < segs_.size() && segs_[t.launch_idx].kind != Seg::kRma) {
      t.launch_idx++;
      t.launch_off = 0;
    }
    if (t.launch_idx >= segs_.size()) return;
    // A chunk takes up to kChunk bytes of the large buffers from here on.
    size_t want = 0;
    for (size_t i = t.launch_idx, off = t.launch_off; i < segs_.size() && segs_[i].kind == Seg::kRma && want < rma::kChunk;
         i++, off = 0)
      want += segs_[i].len - off;
    want = std::min(want, rma::kChunk);
    size_t room = window - t.unacked;
    // Short of credit: wait for more rather than cut the stream into slivers.
    if (room < std::min(want, window / 4) && t.unacked > 0) return;
    size_t piece = std::min({want, room, window - t.pos});
    if (piece == 0) return;
    uint32_t pos = t.pos;
    size_t span = rma::Align(piece);
    t.unacked += span;
    t.pos = static_cast<uint32_t>((pos + span) % window);
    std::vector<std::pair<const uint8_t*, size_t>> parts;
    for (size_t got = 0; got < piece;) {
      const Segment& s = segs_[t.launch_idx];
      size_t take = std::min(s.len - t.launch_off, piece - got);
      parts.emplace_back(s.data + t.launch_off, take);
      got += take;
      t.launch_off += take;
      if (t.launch_off == s.len) {
        t.launch_idx++;
        t.launch_off = 0;
      }
    }
    uint64_t id = t.next_chunk_id++;
    t.chunks.push_back(Chunk{id, pos, static_cast<uint32_t>(piece)});
    if (t.map) {
      // Through the mapping: the bytes are in the peer's window now. The
      // fence orders the copy's (possibly non-temporal) stores before the
      // DATA_RMA frame that announces them.
      size_t at = pos;
      for (const auto& part : parts) {
        std::memcpy(t.map + at, part.first, part.second);
        at += part.second;
      }
      std::atomic_thread_fence(std::memory_order_seq_cst);
      t.chunks.back().done = true;
      continue;
    }
    t.in_flight++;
    WorkStarted();
    // The chunk holds the written buffers until its RMA returns, even past a
    // close: the engine reads them.
    napi_env env = Env();
    napi_ref hold = nullptr;
    if (napi_create_reference(env, tx_hold_.Value(), 1, &hold) != napi_ok) hold = nullptr;
    auto err = std::make_shared<int>(0);
    const ScifApi* api = api_;
    scif_epd_t epd = epd_;
    off_t remote = static_cast<off_t>(t.win_off + pos);
    rma::QueueJob(
        env, "SCIF_NET_RMA",
        [api, epd, parts = std::move(parts), remote, err] {
          off_t at = remote;
          for (const auto& part : parts) {
            if (api->vwriteto(epd, const_cast<uint8_t*>(part.first), part.second, at, kVwriteFlags) < 0) {
              *err = errno > 0 ? -errno : -EIO;
              return;
            }
            at += static_cast<off_t>(part.second);
          }
        },
        [this, env, hold, id, err](bool ran) {
          if (hold) napi_delete_reference(env, hold);
          RmaDone(id, ran ? *err : -ENOMEM);
        });
  }
}

void SocketHandle::RmaDone(uint64_t id, int err) {
  // The lane outlives its chunks: it goes only with the handle.
  tx_lane_->in_flight--;
  if (Chunk* c = tx_lane_->chunks.Find([id](const Chunk& c) { return c.id == id; })) {
    c->done = true;
    c->err = err;
  }
  KickTx();
  WorkFinished();  // last: it may close the descriptor and let go of us
}

// The peer declined a window: the write (and every later one) goes by
// messages, its large buffers framed as the small ones.
void SocketHandle::FallBack() {
  lane_ = Lane::kDeclined;
  stats_.fallbacks++;
  if (!TxPending() || tx_ != Tx::kWrite) return;
  std::vector<Segment> out(segs_.begin(), segs_.begin() + static_cast<ptrdiff_t>(seg_idx_));
  for (size_t i = seg_idx_; i < segs_.size(); i++) {
    if (segs_[i].kind != Seg::kRma) {
      out.push_back(segs_[i]);
      continue;
    }
    stats_.sent_messages += segs_[i].len;
    std::vector<Segment> one{{segs_[i].data, segs_[i].len, Seg::kBytes}};
    BuildSegments(one, 0, &out);
  }
  segs_.swap(out);
  RestartLaunch(0);
}

// The rest of a write that began by messages (before the window came), from
// a frame boundary on, becomes RMA segments: the frames' payload, pieces of
// one buffer joined again. Only when it is enough for RMA (rma_lane.h).
void SocketHandle::SwitchToRma() {
  switch_tried_ = true;
  size_t rest = 0;
  for (size_t i = seg_idx_; i < segs_.size(); i++)
    if (segs_[i].kind != Seg::kHeader) rest += segs_[i].len;
  if (rest < RmaThreshold()) return;
  std::vector<Segment> out(segs_.begin(), segs_.begin() + static_cast<ptrdiff_t>(seg_idx_));
  bool all = tx_lane_->map != nullptr;  // small pieces too, gathered through the mapping
  for (size_t i = seg_idx_; i < segs_.size(); i++) {
    Segment s = segs_[i];
    if (s.kind == Seg::kHeader) continue;
    if (out.size() > seg_idx_ && out.back().data + out.back().len == s.data) {
      out.back().len += s.len;
      continue;
    }
    s.kind = Seg::kRma;
    out.push_back(s);
  }
  // Pieces too small for RMA on their own (without the mapping) go back to frames.
  std::vector<Segment> rma_or_bytes;
  for (size_t i = seg_idx_; i < out.size(); i++) {
    Segment s = out[i];
    if (!all && s.len < RmaThreshold()) s.kind = Seg::kBytes;
    rma_or_bytes.push_back(s);
  }
  out.resize(seg_idx_);
  // The bytes counted as messages (Writev) that now go by RMA.
  size_t moved = 0;
  for (size_t i = seg_idx_; i < segs_.size(); i++)
    if (segs_[i].kind == Seg::kBytes) moved += segs_[i].len;
  for (const Segment& s : rma_or_bytes)
    if (s.kind == Seg::kBytes) moved -= s.len;
  BuildSegments(rma_or_bytes, 0, &out);
  stats_.sent_messages -= moved;
  segs_.swap(out);
  RestartLaunch(seg_idx_);
}

// A control frame from the peer; false when it broke the protocol (the
// reader has been told) or a hook closed us.
bool SocketHandle::HandleCtrl(const Ctrl& c) {
  bool ok = true;
  switch (c.op) {
    case kCtrlWindowReq:
      ok = rx_win_ == RxWindow::kNone;
      if (ok) StartWindow();
      break;
    case kCtrlWindow:
      ok = lane_ == Lane::kAsked && c.a % rma::kAlign == 0;
      if (!ok) break;
      if (c.a == 0) {
        FallBack();
      } else {
        tx_lane_ = std::make_unique<TxLane>();
        lane_ = Lane::kReady;
        tx_lane_->win_off = c.offset;
        tx_lane_->win_size = c.a;
        if (CopyMode() == rma::Copy::kMap) {
          // A mapping that cannot be had leaves the copies to scif_vwriteto.
          void* map = api_->mmap(nullptr, c.a, SCIF_PROT_READ | SCIF_PROT_WRITE, 0, epd_, static_cast<off_t>(c.offset));
          if (map != SCIF_MMAP_FAILED) tx_lane_->map = static_cast<uint8_t*>(map);
        }
      }
      KickTx();
      break;
    case kCtrlDataRma: {
      uint64_t end = static_cast<uint64_t>(c.a) + rma::Align(c.b);
      ok = rx_win_ == RxWindow::kReady && c.a == rx_lane_->expect_pos && c.b > 0 && end <= rx_lane_->size;
      if (!ok) break;
      rx_lane_->expect_pos = static_cast<uint32_t>(end % rx_lane_->size);
      return DeliverRma(c.a, c.b) && Connected();
    }
    case kCtrlCredit:
      ok = lane_ == Lane::kReady && c.a % rma::kAlign == 0 && c.a <= tx_lane_->unacked;
      if (!ok) break;
      tx_lane_->unacked -= c.a;
      KickTx();
      break;
    default:
      ok = false;
  }
  if (!ok) {
    DeliverError(-EPROTO);
    return false;
  }
  return Connected();
}

// The peer's first large write asked for a window: registered on the
// threadpool (on a driver it pins pages, and may sleep), answered from the loop.
void SocketHandle::StartWindow() {
  size_t size = rma::WindowSize();
  if (size == 0) {
    WindowDone(-ENOSPC, nullptr, 0, 0);
    return;
  }
  rx_win_ = RxWindow::kRegistering;
  WorkStarted();
  struct Result {
    void* mem = nullptr;
    off_t offset = -ENOMEM;
  };
  auto res = std::make_shared<Result>();
  const ScifApi* api = api_;
  scif_epd_t epd = epd_;
  rma::QueueJob(
      Env(), "SCIF_NET_REGISTER", [api, epd, size, res] { res->offset = rma::RegisterWindow(api, epd, size, &res->mem); },
      [this, res, size](bool ran) {
        WindowDone(ran && res->offset >= 0 ? 0 : (ran ? static_cast<int>(res->offset) : -ENOMEM), res->mem,
                   res->offset, size);
        WorkFinished();
      });
}

void SocketHandle::WindowDone(int status, void* mem, off_t offset, size_t size) {
  // Registered memory goes only once the descriptor is closed: the peer may
  // be writing into it until then.
  if (status == 0) ReleaseAfterClose(mem, size);
  if (!Connected()) return;
  Ctrl w;
  w.op = kCtrlWindow;
  if (status == 0) {
    rx_win_ = RxWindow::kReady;
    rx_lane_ = std::make_unique<RxLane>();
    rx_lane_->mem = static_cast<uint8_t*>(mem);
    rx_lane_->size = static_cast<uint32_t>(size);
    stats_.windows++;
    w.offset = static_cast<uint64_t>(offset);
    w.a = rx_lane_->size;
  } else {
    rx_win_ = RxWindow::kDeclined;  // RLIMIT_MEMLOCK (EAGAIN), ENOMEM: the peer sends by messages
  }
  QueueCtrl(w);
  KickTx();
}

// Window bytes copied out: credit goes back in batches, at once past a
// quarter of the window, else when the queue runs dry (FlushCredit).
void SocketHandle::Credit(uint32_t len) {
  rx_lane_->uncredited += static_cast<uint32_t>(rma::Align(len));
  if (rx_lane_->uncredited >= rx_lane_->size / 4) FlushCredit();
}

void SocketHandle::FlushCredit() {
  if (!rx_lane_ || rx_lane_->uncredited == 0 || !Connected()) return;
  Ctrl c;
  c.op = kCtrlCredit;
  c.a = rx_lane_->uncredited;
  rx_lane_->uncredited = 0;
  QueueCtrl(c);
  KickTx();
}

}  // namespace scifnet
