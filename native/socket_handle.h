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
// accepts; this class frames the byte stream (frame.h) and moves it.
#ifndef SCIF_NET_SOCKET_HANDLE_H
#define SCIF_NET_SOCKET_HANDLE_H

#include <napi.h>

#include <cstdint>
#include <vector>

#include "addon.h"
#include "busy_poll.h"
#include "frame.h"
#include "loop_endpoint.h"

namespace scifnet {

constexpr int kUvEof = -4095;  // UV_EOF, as node:net's onread sees it

class SocketHandle : public Napi::ObjectWrap<SocketHandle>, public LoopEndpoint, public BusyPollable {
 public:
  static Napi::Function Define(Napi::Env env);

  explicit SocketHandle(const Napi::CallbackInfo& info);
  ~SocketHandle() override;

 private:
  enum class Tx { kIdle, kWrite, kShutdown };
  struct Segment {
    const uint8_t* data;
    size_t len;
  };

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
  int Send(const uint8_t* data, size_t len);
  bool UnreadData();
  bool Teardown(bool reset, napi_value on_closed);
  bool TxPending() const { return tx_ != Tx::kIdle; }
  size_t TxBytes() const;

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
  Napi::Reference<Napi::Buffer<uint8_t>> read_buf_;

  Tx tx_ = Tx::kIdle;
  bool tx_async_ = false;
  std::vector<Segment> segs_;
  size_t seg_idx_ = 0, seg_off_ = 0;
  std::vector<uint8_t> headers_;
  // Staged bytes (framed) of the write under way that the ring had no room
  // for yet, from send_off_ on.
  std::vector<uint8_t> send_buf_;
  size_t send_off_ = 0;
  Napi::Reference<Napi::Value> tx_hold_;  // keeps the written buffers alive
};

}  // namespace scifnet

#endif
