// scif_endpoint.h - SCIF itself for JS users (src/scif.ts): an endpoint that
// speaks raw libscif (no framing, so plain SCIF programs are its peers), its
// registered windows, RMA, remote mappings and fences.
//
// Two kinds of work, two ways of running it, and neither blocks the loop:
//
//  - connect, accept, send and recv wait for the peer. The loop core
//    (loop_endpoint.h) drives them: the descriptor is watched with uv_poll
//    only while something waits on it, and the non-blocking call is made when
//    it says so. Requests queue in order; each one completes from the loop
//    with MakeCallback.
//
//  - RMA, fences, unregister and close only wait for memory copies (ours, the
//    peer's, or a DMA engine's), so they run whole on the libuv threadpool
//    (ScifOp, an AsyncWorker) holding what they use: the endpoint's JS
//    object, and the Buffers they read or write. The endpoint counts them;
//    the descriptor is closed (on the threadpool too: closing gives
//    registered pages back) only once none is left, so no worker can ever
//    use a descriptor number that has been reused.
//
// Results are plain numbers: 0 or a value, or a negative errno, which
// src/scif.ts turns into Node-shaped errors. Callbacks are (status, value).
//
// Lifetimes:
//  - an open endpoint holds a reference to itself until its close completes;
//  - a window holds its memory (the Buffer or ArrayBuffer registered) until it
//    is unregistered or the endpoint closed, so memory registered can never
//    be freed (and reused) while a peer can still reach it;
//  - a mapping (mmap) is an external ArrayBuffer unmapped by its finalizer, or
//    by unmap(), which detaches it first; a mapping lent to a worker (vreadFrom
//    or vwriteTo from it) is unmapped only once the worker is done with it.
//
// A fence or an unregister waits for the peer's RMAs on the threadpool while
// the loop may wait on the descriptor for a send or a recv. The fabric wakes
// such threads on a socket of their own (the connection's RMA bell,
// kernel/README.md), never on the descriptor, so every wake-up the loop
// waits for reaches it; a real SCIF driver sleeps them in the kernel.
//
// The class is spread over three files: scif_endpoint.cc (its shape,
// connections, the request queues and closing), scif_rma.cc (registration,
// RMA and fences on the threadpool, through scif_op.h) and scif_mapping.cc
// (mmap, unmap and alloc).
#ifndef SCIF_NET_SCIF_ENDPOINT_H
#define SCIF_NET_SCIF_ENDPOINT_H

#include <napi.h>
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>

#include "loop_endpoint.h"
#include "scif_mapping.h"

extern "C" {
#include "scif.h"
}

namespace scifnet {

struct ScifApi;
class ScifOp;

class ScifEndpoint : public Napi::ObjectWrap<ScifEndpoint>, public LoopEndpoint {
 public:
  static Napi::Function Define(Napi::Env env);

  explicit ScifEndpoint(const Napi::CallbackInfo& info);
  ~ScifEndpoint() override;

 private:
  friend class ScifOp;
  struct RecvReq {
    Napi::Reference<Napi::Buffer<uint8_t>> buf;
    uint8_t* data;
    size_t len, got;
    Napi::FunctionReference cb;
  };
  struct SendReq {
    Napi::Reference<Napi::Value> hold;
    MappingPin pin;
    const uint8_t* data;
    size_t len, sent;
    Napi::FunctionReference cb;
  };
  struct WindowHold {
    Napi::Reference<Napi::Value> memory;
    uint64_t len;
  };

  // Connections and messages.
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value Accept(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Recv(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetPending(const Napi::CallbackInfo& info);

  // Memory, RMA and fences.
  Napi::Value Register(const Napi::CallbackInfo& info);
  Napi::Value Unregister(const Napi::CallbackInfo& info);
  Napi::Value ReadFrom(const Napi::CallbackInfo& info);
  Napi::Value WriteTo(const Napi::CallbackInfo& info);
  Napi::Value VReadFrom(const Napi::CallbackInfo& info);
  Napi::Value VWriteTo(const Napi::CallbackInfo& info);
  Napi::Value Mmap(const Napi::CallbackInfo& info);
  Napi::Value FenceMark(const Napi::CallbackInfo& info);
  Napi::Value FenceWait(const Napi::CallbackInfo& info);
  Napi::Value FenceSignal(const Napi::CallbackInfo& info);

  // Not tied to an endpoint.
  static Napi::Value Alloc(const Napi::CallbackInfo& info);
  static Napi::Value Unmap(const Napi::CallbackInfo& info);
  static Napi::Value IsPageAligned(const Napi::CallbackInfo& info);

  // The loop core's questions (loop_endpoint.h).
  short Want() const override;
  bool DispatchConnected(short revents) override;
  void ConnectDone(int status) override;
  void Accepted(int status, napi_value child) override;
  void Failed(int err) override;
  bool ReportWaiting() override;
  LoopEndpoint* NewChild(napi_value* obj) override;
  int AcceptsWanted() const override { return static_cast<int>(accepts_.size()); }
  void WorkDrained() override {
    if (close_pending_ && inflight_ == 0) StartClose();
  }
  napi_value Self() override { return Value(); }
  void KeepAlive(bool hold) override { hold ? ObjectWrap::Ref() : ObjectWrap::Unref(); }

  bool RecvSome();
  bool SendSome();
  void Emit(Napi::FunctionReference& cb, std::initializer_list<napi_value> args);
  void CancelPending();

  // The threadpool side.
  Napi::Value Run(const Napi::CallbackInfo& info, ScifOp* op);
  // The RMA calls by kind: window to window, and from or to a JS view.
  using WindowCall = int (*ScifApi::*)(scif_epd_t, off_t, size_t, off_t, int);
  using VirtualCall = int (*ScifApi::*)(scif_epd_t, void*, size_t, off_t, int);
  Napi::Value WindowRma(const Napi::CallbackInfo& info, const char* name, WindowCall call);
  Napi::Value VirtualRma(const Napi::CallbackInfo& info, const char* name, VirtualCall call);
  void OpDone(ScifOp* op);
  void StartClose();

  std::atomic<bool> closing_{false};

  Napi::FunctionReference connect_cb_;
  std::deque<Napi::FunctionReference> accepts_;
  std::deque<RecvReq> recvs_;
  std::deque<SendReq> sends_;

  int inflight_ = 0;  // ScifOps queued and not yet completed
  int sleepers_ = 0;  // ...of which wait in the fabric for the peer
  bool close_pending_ = false;
  Napi::FunctionReference close_cb_;
  std::map<int64_t, WindowHold> windows_;  // by offset
};

}  // namespace scifnet

#endif
