// busy_poll.h - a short spin before the event loop sleeps, for the endpoints
// that have just received.
//
// A request/response peer answers within microseconds, but waking a sleeping
// loop takes tens of them (the descriptor, epoll, the scheduler and, in a VM,
// a halted vCPU). So when the loop is about to sleep and some endpoint is in
// a conversation (it wrote, then received), a prepare handle looks at those
// endpoints for up to SCIF_NET_BUSY_POLL microseconds (default 0: never)
// and serves one that turns ready at once. A look is scif_net_rx_ready (the
// fabric's ring, no system call) or, on MPSS's libscif, scif_poll() with no
// timeout. Nothing arriving in that time cools them: the loop sleeps on the
// descriptors as usual until the next data heats them again, so an idle
// process does not spin. Nothing can be missed by cooling: SCIF's descriptor
// is level-triggered, so data that came during the spin keeps it readable
// and the loop's poll serves it. Like Linux's SO_BUSY_POLL it trades a
// bounded amount of CPU for latency; it never delays work the loop has ready
// (it only spins when the loop would block) and hands the loop back at least
// every kTurnCapNs while it keeps serving.
#ifndef SCIF_NET_BUSY_POLL_H
#define SCIF_NET_BUSY_POLL_H

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <vector>

namespace scifnet {

// What BusyPoll asks of an endpoint it spins for.
class BusyPollable {
 public:
  // 1 when there is something for a reader, 0 when not, -1 when there is
  // nothing to spin for (not reading, not connected).
  virtual int BusyLook() = 0;
  // Serves the endpoint; true on progress.
  virtual bool BusyServe() = 0;

  int busy_slot = -1;  // where BusyPoll keeps it while hot; BusyPoll's alone

 protected:
  ~BusyPollable() = default;
};

class BusyPoll {
 public:
  // The environment's spinner, made on first use; null when spinning is off
  // or the backend cannot look at a ring without a system call.
  static BusyPoll* For(Napi::Env env, const struct ScifApi* api);

  // ep received: spin for it the next times the loop is about to sleep.
  void Heat(BusyPollable* ep);
  // Never look at ep again.
  void Forget(BusyPollable* ep);

 private:
  static constexpr size_t kMaxHot = 64;          // endpoints looked at per spin
  static constexpr uint64_t kTurnCapNs = 250000;  // serving without a turn of the loop

  explicit BusyPoll(Napi::Env env, uint64_t budget_ns);
  static void OnPrepare(uv_prepare_t* handle);
  static void OnKick(uv_idle_t* handle);
  static void Cleanup(void* arg);
  void Spin();
  void Cool();

  Napi::Env env_;
  uint64_t budget_ns_;
  uv_prepare_t prepare_;
  uv_idle_t kick_;
  bool closed_ = false;
  std::vector<BusyPollable*> hot_;  // null where one was forgotten
};

}  // namespace scifnet

#endif
