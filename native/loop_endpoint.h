// loop_endpoint.h - one SCIF endpoint driven by the Node event loop: the core
// that both JS-facing classes stand on (SocketHandle under net.Socket and
// net.Server, ScifEndpoint under scif-net/scif).
//
// The descriptor is watched with uv_poll for what the endpoint wants in its
// state (Want()). On every wake-up the core asks api->poll(..., 0) for the
// exact state and acts on it: connecting and accepting here, moving bytes in
// the class (DispatchConnected()), a few rounds per turn of the loop. Work
// that cannot wait for the descriptor (a resumed reader, a result to report,
// a budget used up) is picked up on the next turn, from the environment's
// queue of such endpoints (turn_queue.h).
//
// Nothing that waits for the other node runs on the loop thread: on a SCIF
// driver scif_accept waits for the peer's grant and scif_close for its
// acknowledgement, so both run on the libuv threadpool (the raw API's RMA,
// registration and fences too: scif_op.h).
//
// Verbs return 0 or a negative errno. An open endpoint holds its JS object
// alive (KeepAlive) until it is closed.
#ifndef SCIF_NET_LOOP_ENDPOINT_H
#define SCIF_NET_LOOP_ENDPOINT_H

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <initializer_list>
#include <vector>

extern "C" {
#include "scif.h"
}

#include "addon.h"
#include "turn_queue.h"

namespace scifnet {

struct ScifApi;

class LoopEndpoint : private TurnQueue::Entry {
 public:
  enum class State { kNone, kOpen, kListening, kConnecting, kConnected, kClosing, kClosed };

  // Per turn of the loop, an endpoint acts on at most kRoundsPerTurn answers
  // of api->poll() and makes at most kCallsPerRound recv, send or accept
  // calls per answer: one busy endpoint must not keep the loop from the
  // others (libuv reads a stream at most 32 times per wake-up for the same
  // reason). 64 KiB reads make that up to 16 MiB of a stream per turn.
  static constexpr int kRoundsPerTurn = 8;
  static constexpr int kCallsPerRound = 32;
  // The most one scif_send() is asked to move: the driver's endpoint queue
  // (SCIF_ENDPT_QP_SIZE, 4 KiB) holds 4095 bytes, and it copies the whole
  // request into the kernel on every call, however little of it fits.
  static constexpr size_t kMaxSend = 4095;

  // Asks the fabric what changed and acts on it until nothing is left (the
  // wake-ups that bring us back are armed then) or the budget is spent.
  // known: what the descriptor said this instant (poll events, from the
  // loop's own epoll), so the first round need not ask again; -1: ask.
  void Service(int known = -1);
  void Schedule();

  // For both classes' property lists (see LoopEndpointProperties below).
  Napi::Value JsRef(const Napi::CallbackInfo& info);
  Napi::Value JsUnref(const Napi::CallbackInfo& info);
  Napi::Value JsFd(const Napi::CallbackInfo& info);
  Napi::Value JsLocalPort(const Napi::CallbackInfo& info);
  Napi::Value JsPeerNode(const Napi::CallbackInfo& info);
  Napi::Value JsPeerPort(const Napi::CallbackInfo& info);

 protected:
  explicit LoopEndpoint(napi_env env) : env_(env) {}
  virtual ~LoopEndpoint();
  LoopEndpoint(const LoopEndpoint&) = delete;
  LoopEndpoint& operator=(const LoopEndpoint&) = delete;

  // ---- what each class says ----
  // POLLIN and/or POLLOUT, as wanted in the present state (0: nothing).
  virtual short Want() const = 0;
  // Acts on an answer while connected; true when another look this turn
  // could find more (false: everything waited for is armed).
  virtual bool DispatchConnected(short revents) = 0;
  // A connect finished (status 0 or -errno), reported from the loop.
  virtual void ConnectDone(int status) = 0;
  // A listener accepted child (status 0), or failed to (-errno, child null).
  virtual void Accepted(int status, napi_value child) = 0;
  // Nothing can be waited for any more (-errno): tell whoever waits.
  virtual void Failed(int err) = 0;
  // Results that wait for the loop (run first in every Service()); true when
  // it completed something and the rounds should look again.
  virtual bool ReportWaiting() { return false; }
  // A new, unopened instance of the same class for an accepted connection,
  // its JS object in *obj; null when one cannot be made.
  virtual LoopEndpoint* NewChild(napi_value* obj) = 0;
  // How many connections a listener takes in one go (the raw API: as many as
  // accept() calls wait).
  virtual int AcceptsWanted() const { return kCallsPerRound; }
  // The threadpool work of the core (an accept batch) is over.
  virtual void WorkDrained() {}
  virtual napi_value Self() = 0;
  virtual void KeepAlive(bool hold) = 0;

  // ---- the verbs' common halves ----
  // scif_open (and, for socket endpoints, stream-only: scif_net.h), the loop
  // handles, and the self reference.
  int Open(bool stream_only);
  int Bind(uint16_t port);
  int Listen(int backlog);
  // Non-blocking: the answer comes through ConnectDone().
  int Connect(scif_portID dst);
  // A listening endpoint that another process opened (its descriptor passed
  // here): accepted on like our own. EBADF when the backend does not know
  // the descriptor as an endpoint.
  int AdoptListener(scif_epd_t epd, uint16_t port);
  // Stops watching, leaves the turn queue, closes the poll handle and,
  // with_descriptor, the descriptor: a connection's on the threadpool (a
  // driver's close waits for the peer's acknowledgement, up to 30 s from a
  // hung card), any other at once (a listener's port is free when 'close'
  // comes, as node:net's is), in both cases once no accept batch uses it.
  // on_closed (may be null) is called once libuv has let go of the endpoint's
  // handle, in the loop's close phase; false when there was nothing to close
  // (then it is not called). Call it before the state becomes kClosed.
  bool CloseLoop(napi_value on_closed, bool with_descriptor);
  bool AcceptInFlight() const { return accept_batch_ != nullptr; }
  // Threadpool work of a class that uses the descriptor (a socket's RMA and
  // registration): while any runs, a close leaves the descriptor open, and
  // the last WorkFinished() closes it; the endpoint's JS object is held
  // alive meanwhile. Memory handed to ReleaseAfterClose() (a registered
  // window the peer may still write into) is unmapped only once the
  // descriptor is closed.
  void WorkStarted();
  void WorkFinished();
  int WorkInFlight() const { return work_in_flight_; }
  void ReleaseAfterClose(void* mem, size_t len) {
    release_mem_ = mem;
    release_len_ = len;
  }
  // Bytes to send before a connection's descriptor closes (CloseLoop), for up
  // to kLingerMs while the peer makes room, as a kernel sends a closed TCP
  // socket's.
  void Linger(std::vector<uint8_t> bytes) { linger_ = std::move(bytes); }
  static constexpr int kLingerMs = 10000;
  // From a finalizer (the JS object is collected, or the environment goes):
  // no work may be queued any more, so the descriptor is closed at once.
  void Finalizing() { finalizing_ = true; }

  bool Usable() const;
  // Want(), less what a threadpool call is busy with.
  short Wanted() const;
  bool Connected() const { return state_ == State::kConnected; }
  void SetState(State s);
  int Watch();
  int EnsurePoll();  // the poll handle, made once per descriptor
  void Unwatch();
  // Calls fn on recv from the loop (MakeCallback, as node:net's handles call
  // their owners); false when JS can no longer run (we stop watching then).
  bool CallJs(napi_value recv, napi_value fn, std::initializer_list<napi_value> args);

  napi_env env_;
  const ScifApi* api_ = nullptr;
  scif_epd_t epd_ = -1;
  State state_ = State::kNone;
  uint16_t local_port_ = 0;  // accepted endpoints share their listener's
  scif_portID peer_ = {0, 0};
  int connect_result_ = 1;   // 1: no result waiting to be reported
  bool watching_ = false;
  // A listener whose accept failed for good (its descriptor says it listens
  // no more: a fabric directory removed): that failure (-errno), reported
  // (Accepted), after which it is no longer watched; 0 otherwise.
  int listen_gone_ = 0;

 private:
  struct Closing;
  struct AcceptBatch;
  static void OnPoll(uv_poll_t* handle, int status, int events);
  void TakeTurn() override;
  void Unschedule();
  void SetReferenced(bool referenced);
  uv_loop_t* Loop() const;
  static void ReleaseClosing(Closing* closing);
  static void SendLingering(const ScifApi* api, scif_epd_t epd, const std::vector<uint8_t>& bytes);
  bool ClosePoll(Closing* closing);
  bool CloseStandIn(Closing* closing);
  static void CloseOnThreadpool(napi_env env, const ScifApi* api, scif_epd_t epd,
                                std::vector<uint8_t> linger = {}, void* release_mem = nullptr,
                                size_t release_len = 0);
  Closing* CloseDeferred();
  int InitLoop();
  bool DispatchState(short revents);
  bool StartAccept();
  static void RunAccepts(AcceptBatch* batch);
  void AcceptDone(AcceptBatch* batch, bool ran);
  bool FinishConnect();
  napi_value Adopt(scif_epd_t epd, scif_portID peer, int* status);

  // Made when first watched, and made anew when the descriptor's file
  // changes under it (a failed connect); its data is this endpoint until it
  // is closed.
  uv_poll_t* poll_ = nullptr;
  AcceptBatch* accept_batch_ = nullptr;  // scif_accept() calls on the threadpool
  bool close_after_accept_ = false;  // closed while they (or work) use the descriptor
  // A listener's close, whose 'close' waits for CloseDeferred() (its port is
  // free when 'close' comes).
  Closing* held_closing_ = nullptr;
  int work_in_flight_ = 0;
  void* release_mem_ = nullptr;
  size_t release_len_ = 0;
  std::vector<uint8_t> linger_;
  int watch_events_ = 0;
  bool rewatch_ = false;  // the state changed since the poll handle was started
  bool finalizing_ = false;
  bool loop_open_ = false;  // from InitLoop() to CloseLoop()
  bool referenced_ = true;
  napi_async_context async_ = nullptr;
};

// NewChild() for a class T deriving from Napi::ObjectWrap<T> and LoopEndpoint,
// whose constructor is ctor.
template <class T>
LoopEndpoint* NewChildOf(napi_env env, const Napi::FunctionReference& ctor, napi_value* obj) {
  // Raw napi: node-addon-api makes a failure fatal (addon.h FailedButAlive).
  if (napi_new_instance(env, ctor.Value(), 0, nullptr, obj) != napi_ok) {
    FailedButAlive(env);
    return nullptr;
  }
  return T::Unwrap(Napi::Object(env, *obj));
}

// ref(), unref() and the fd, localPort, peerNode and peerPort accessors, for
// a class T deriving from Napi::ObjectWrap<T> and LoopEndpoint.
template <class T>
void AddLoopEndpointProperties(std::vector<Napi::ClassPropertyDescriptor<T>>* props) {
  using W = Napi::ObjectWrap<T>;
  using Method = Napi::Value (T::*)(const Napi::CallbackInfo&);
  props->push_back(W::InstanceMethod("ref", static_cast<Method>(&T::JsRef)));
  props->push_back(W::InstanceMethod("unref", static_cast<Method>(&T::JsUnref)));
  props->push_back(W::InstanceAccessor("fd", static_cast<Method>(&T::JsFd), nullptr));
  props->push_back(W::InstanceAccessor("localPort", static_cast<Method>(&T::JsLocalPort), nullptr));
  props->push_back(W::InstanceAccessor("peerNode", static_cast<Method>(&T::JsPeerNode), nullptr));
  props->push_back(W::InstanceAccessor("peerPort", static_cast<Method>(&T::JsPeerPort), nullptr));
}

}  // namespace scifnet

#endif
