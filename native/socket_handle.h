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
// The descriptor is watched with uv_poll. On every wake-up the endpoint asks
// scif_poll() for the exact state, which also re-arms the wake-ups it needs;
// work that cannot wait for the descriptor (a resumed reader, a budget used
// up) is picked up by an idle handle on the next turn of the loop.
#ifndef SCIF_NET_SOCKET_HANDLE_H
#define SCIF_NET_SOCKET_HANDLE_H

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <vector>

#include "addon.h"
#include "frame.h"

extern "C" {
#include "scif.h"
}

namespace scifnet {

constexpr int kUvEof = -4095;  // UV_EOF, as node:net's onread sees it

class BusyPoll;

class SocketHandle : public Napi::ObjectWrap<SocketHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  // A JS object for an endpoint scif_accept() returned.
  static Napi::Object Adopt(Napi::Env env, scif_epd_t epd, scif_portID peer, uint16_t local_port,
                            int* status);

  explicit SocketHandle(const Napi::CallbackInfo& info);
  ~SocketHandle() override;

 private:
  friend class BusyPoll;
  enum class State { kNone, kOpen, kListening, kConnecting, kConnected, kClosed };
  enum class Tx { kIdle, kWrite, kShutdown };
  struct Segment {
    const uint8_t* data;
    size_t len;
  };
  struct LoopHandles;

  // Verbs (JS).
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value ReadStart(const Napi::CallbackInfo& info);
  Napi::Value ReadStop(const Napi::CallbackInfo& info);
  Napi::Value Writev(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value SetOwner(const Napi::CallbackInfo& info);
  static Napi::Value LinkHooks(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value GetLocalPort(const Napi::CallbackInfo& info);
  Napi::Value GetPeerNode(const Napi::CallbackInfo& info);
  Napi::Value GetPeerPort(const Napi::CallbackInfo& info);
  Napi::Value GetWriteQueueSize(const Napi::CallbackInfo& info);

  // The loop side.
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnIdle(uv_idle_t* handle);
  int Watch();
  int WatchEvents() const;
  void Unwatch();
  void Schedule();
  void Service();
  bool Dispatch(short revents);
  void AcceptSome();
  void FinishConnect();
  bool ReadSome();
  bool ReadFailed(int err);
  void FinishTx(int status);
  int FlushTx();
  int Send(const uint8_t* data, size_t len);
  bool UnreadData();
  void Teardown(bool reset);
  bool TxPending() const { return tx_ != Tx::kIdle; }
  size_t TxBytes() const;
  void Emit(Hook hook, std::initializer_list<napi_value> args);
  // For BusyPoll: 1 when the ring has something for a reader, 0 when not,
  // -1 when there is nothing to spin for (flags: scif_net_rx_ready's); and
  // serving, true on progress.
  int BusyLook(int flags) const;
  bool BusyServe();

  const struct ScifApi* api_ = nullptr;
  scif_epd_t epd_ = -1;
  State state_ = State::kNone;
  LoopHandles* loop_ = nullptr;
  bool watching_ = false;
  int watch_events_ = 0;
  bool referenced_ = true;
  bool reading_ = false;
  bool peer_gone_ = false;
  bool fin_sent_ = false;
  bool eof_ = false;
  int connect_result_ = 1;   // 1: none waiting to be reported
  int shutdown_status_ = 1;  // likewise
  uint16_t local_port_ = 0;
  scif_portID peer_ = {0, 0};
  Napi::AsyncContext* async_ = nullptr;
  Napi::ObjectReference owner_;  // hears the hooks; let go at close
  BusyPoll* busy_ = nullptr;  // the environment's, once this endpoint received
  bool busy_looked_ = false;
  int busy_slot_ = -1;        // where BusyPoll keeps it while hot
  uint64_t rx_events_ = 0;    // reads, ends and errors reported
  bool wrote_ = false;        // since the last read

  FrameDecoder decoder_;
  Napi::Reference<Napi::Buffer<uint8_t>> read_buf_;

  Tx tx_ = Tx::kIdle;
  bool tx_async_ = false;
  std::vector<Segment> segs_;
  size_t seg_idx_ = 0, seg_off_ = 0;
  std::vector<uint8_t> headers_;
  std::vector<uint8_t> leftover_;  // staged bytes the ring had no room for
  Napi::Reference<Napi::Value> tx_hold_;  // keeps the written buffers alive
};

}  // namespace scifnet

#endif
