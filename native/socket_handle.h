// socket_handle.h - the SCIF endpoint under a net.Socket or net.Server, as a JS object.
//
// The handle moves bytes and reports readiness; the JS socket that owns it
// decides everything else (the stream state machine, timeouts, errors). Verbs
// return 0 or a negative errno, and results arrive through a few hooks,
// functions linked once per environment (linkHooks) and called with the
// handle's owner (setOwner: the net.Socket or net.Server) as `this`:
//
//   onconnection(status, handle)    a listener accepted (handle.peerNode/Port)
//   onconnect(status)               a connect finished
//   onread(nread, buffer, offset)   nread > 0: bytes at buffer[offset..];
//                                   UV_EOF: the peer ended; else -errno
//   onwrite(status)                 an asynchronous writev() finished
//   onshutdown(status)              an asynchronous shutdown() finished
//
// The loop core (loop_endpoint.h) watches the descriptor and connects and
// accepts; this class frames the byte stream (frame.h) and moves it: small
// writes through the endpoint's queue, large ones by RMA into the peer's
// receive window (rma_lane.h), announced on the queue in stream order.
#ifndef SCIF_NET_SOCKET_HANDLE_H
#define SCIF_NET_SOCKET_HANDLE_H

#include <napi.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "addon.h"
#include "busy_poll.h"
#include "frame.h"
#include "lazy_deque.h"
#include "loop_endpoint.h"
#include "rma_lane.h"

namespace scifnet {

constexpr int kUvEof = -4095;  // UV_EOF, as node:net's onread sees it

class SocketHandle : public Napi::ObjectWrap<SocketHandle>, public LoopEndpoint, public BusyPollable {
 public:
  static Napi::Function Define(Napi::Env env);

  explicit SocketHandle(const Napi::CallbackInfo& info);
  ~SocketHandle() override;

 private:
  enum class Tx { kIdle, kWrite, kShutdown };
  // Bytes of a frame (kBytes), a frame's header (kHeader: a frame starts
  // here), or a large buffer that moves by RMA (kRma).
  enum class Seg : uint8_t { kBytes, kHeader, kRma };
  struct Segment {
    const uint8_t* data;
    size_t len;
    Seg kind;
  };
  // The sending side's window in the peer: none asked for yet, asked for,
  // had, or declined (writes go by messages).
  enum class Lane { kNone, kAsked, kReady, kDeclined };
  enum class RxWindow { kNone, kRegistering, kReady, kDeclined };
  // An RMA into the peer's window, announced (DATA_RMA) once done, in order.
  struct Chunk {
    uint64_t id;
    uint32_t pos, len;
    bool done = false;
    int err = 0;
  };
  // What a paused reader took off the queue: bytes, a chunk still in our
  // window (credited once delivered), the end, or an error.
  struct Held {
    enum Kind { kData, kRma, kEnd, kError } kind;
    explicit Held(Kind k, std::vector<uint8_t> b = {}) : kind(k), bytes(std::move(b)) {}
    std::vector<uint8_t> bytes;
    uint32_t pos = 0, len = 0;
    int err = 0;
  };
  static constexpr int kFlushRing = 0, kFlushDone = 1, kFlushLane = 2;
  static constexpr size_t kReadSize = 64 * 1024;  // as node:net reads: below malloc's mmap threshold
  static constexpr size_t kReadRoom = kReadSize / 4;  // a read buffer with less room left is retired
  static constexpr size_t kReadKeep = 4 * 1024;  // ...and one read into this far, once the ring runs dry

  // Verbs (JS).
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value AdoptListener(const Napi::CallbackInfo& info);
  Napi::Value ReadStart(const Napi::CallbackInfo& info);
  Napi::Value ReadStop(const Napi::CallbackInfo& info);
  Napi::Value Writev(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value SetOwner(const Napi::CallbackInfo& info);
  static Napi::Value LinkHooks(const Napi::CallbackInfo& info);
  Napi::Value GetWriteQueueSize(const Napi::CallbackInfo& info);
  Napi::Value ScifStats(const Napi::CallbackInfo& info);

  // The loop core's questions (loop_endpoint.h).
  short Want() const override;
  bool DispatchConnected(short revents) override;
  void ConnectDone(int status) override;
  void Accepted(int status, napi_value child) override;
  void Failed(int err) override;
  bool ReportWaiting() override;
  LoopEndpoint* NewChild(napi_value* obj) override;
  napi_value Self() override { return Value(); }
  void KeepAlive(bool hold) override { hold ? ObjectWrap::Ref() : ObjectWrap::Unref(); }

  // Busy polling's questions (busy_poll.h).
  int BusyLook() override;
  bool BusyServe() override;

  // The stream.
  bool ReadSome();
  bool ReadFailed(int err);
  void FinishTx(int status);
  int FlushTx();
  int FlushTxSteps();
  int Send(const uint8_t* data, size_t len);
  int SendWhole(const uint8_t* data, size_t len);
  bool UnreadData();
  bool Teardown(bool reset, napi_value on_closed);
  bool TxPending() const { return tx_ != Tx::kIdle; }
  int WriteError(int status) const;
  size_t TxBytes() const;
  void BuildSegments(const std::vector<Segment>& buffers, size_t from, std::vector<Segment>* out);

  // The bulk path.
  bool RmaPossible();
  // How this connection copies by RMA (rma::CopyFor), decided on first use.
  rma::Copy CopyMode();
  size_t RmaThreshold() { return rma::Threshold(CopyMode()); }
  // The write waits for the peer's control frames (a window, credit): the
  // queue is read for them even while the reader is paused.
  bool ControlReading() const;
  bool CtrlOutPending() const { return !ctrl_out_.empty() || send_off_ < send_buf_.size(); }
  void QueueCtrl(const Ctrl& c);
  void FlushCtrl();
  void KickTx();
  int AnnounceRma();
  void LaunchRma();
  void RmaDone(uint64_t id, int err);
  bool HandleCtrl(const Ctrl& c);
  void StartWindow();
  void FallBack();
  void SwitchToRma();
  // The write under way went by messages and the window is here now.
  bool SwitchWanted() const { return lane_ == Lane::kReady && tx_ == Tx::kWrite && !switch_tried_; }
  // The next bytes to launch by RMA: from segment idx on (a new write's list).
  void RestartLaunch(size_t idx) {
    if (tx_lane_) {
      tx_lane_->launch_idx = idx;
      tx_lane_->launch_off = 0;
    }
  }
  void WindowDone(int status, void* mem, off_t offset, size_t size);
  void Deliver(const Napi::Buffer<uint8_t>& buf, size_t offset, size_t len);
  void Drained();
  bool DeliverRma(uint32_t pos, uint32_t len);
  bool EmitRun();
  bool HandOutRun();
  void JoinRun(uint32_t pos, uint32_t len);
  bool RunCutShort();
  void HoldRma(uint32_t pos, uint32_t len);
  bool EmitWindow(uint32_t pos, uint32_t len);
  void DeliverEnd();
  void DeliverError(int err);
  bool DeliverHeld();
  void Credit(uint32_t len);
  void FlushCredit();

  void Emit(Hook hook, std::initializer_list<napi_value> args);

  Napi::ObjectReference owner_;  // hears the hooks; let go at close
  bool reading_ = false;
  bool peer_gone_ = false;
  bool fin_sent_ = false;
  bool eof_ = false;
  int shutdown_status_ = 1;  // 1: none waiting to be reported
  BusyPoll* busy_ = nullptr;  // the environment's, once this endpoint received
  bool busy_looked_ = false;
  uint64_t rx_events_ = 0;    // reads, ends and errors reported
  bool wrote_ = false;        // since the last read

  FrameDecoder decoder_;
  // Reads fill it from read_off_ on, and hand out pieces of it: a part
  // handed out is never read into again (read_off_ only grows; a buffer
  // with less than kReadRoom left, or read into past kReadKeep when the
  // ring runs dry, is retired for a new one).
  Napi::Reference<Napi::Buffer<uint8_t>> read_buf_;
  size_t read_off_ = 0;

  Tx tx_ = Tx::kIdle;
  bool tx_async_ = false;
  bool tx_ring_full_ = false;  // the write waits for room (else for the lane)
  bool in_flush_ = false;
  bool switch_tried_ = false;  // this write's rest was looked at for RMA
  std::vector<Segment> segs_;
  std::vector<Segment> write_list_;  // Writev's buffers, kept for the next
  size_t seg_idx_ = 0, seg_off_ = 0;
  LazyDeque<std::array<uint8_t, kFrameHeader>> headers_;  // stable addresses
  // Control frames to send at the next frame boundary.
  std::vector<uint8_t> ctrl_out_;

  // Sending by RMA: the peer's window and the chunks written into it, made
  // when the window comes (WINDOW), so an idle connection keeps a pointer.
  struct TxLane {
    uint64_t win_off = 0;
    uint32_t win_size = 0;
    uint8_t* map = nullptr;  // the peer's window, mapped (rma::Copy::kMap)
    uint32_t pos = 0;        // where the next chunk goes in the peer's window
    uint64_t unacked = 0;    // window bytes written and not credited yet
    size_t launch_idx = 0, launch_off = 0;  // the next bytes to launch
    LazyDeque<Chunk> chunks;
    uint64_t next_chunk_id = 1;
    int in_flight = 0;
  };
  Lane lane_ = Lane::kNone;  // kReady: tx_lane_ is there
  int8_t copy_ = -1;         // an rma::Copy once CopyMode() decided
  std::unique_ptr<TxLane> tx_lane_;

  // Receiving by RMA: our window, made when it is registered.
  struct Piece {
    uint32_t pos, len;
  };
  struct RxLane {
    uint8_t* mem = nullptr;  // unmapped after the descriptor closes (ReleaseAfterClose)
    uint32_t size = 0;
    uint32_t expect_pos = 0;
    uint32_t uncredited = 0;
    // Small chunks of one read of the queue, handed out as one Buffer (EmitRun).
    std::vector<Piece> run;
    size_t run_bytes = 0;
  };
  RxWindow rx_win_ = RxWindow::kNone;  // kReady: rx_lane_ is there
  std::unique_ptr<RxLane> rx_lane_;
  LazyDeque<Held> held_;
  size_t held_bytes_ = 0;
  bool rx_failed_ = false;  // the queue gave an error: nothing more to read

  rma::Stats stats_;
  // Staged bytes (framed) of the write under way that the ring had no room
  // for yet, from send_off_ on.
  std::vector<uint8_t> send_buf_;
  size_t send_off_ = 0;
  Napi::Reference<Napi::Value> tx_hold_;  // keeps the written buffers alive
};

}  // namespace scifnet

#endif
