// busy_poll.cc - see busy_poll.h.
#include "busy_poll.h"

#include <sched.h>

#include <cstdlib>
#include <cstring>

#include "addon.h"
#include "backend.h"

namespace scifnet {

namespace {

// Off unless asked for: on the driver-faithful fabric (a system call per
// message each way, as the driver's interrupt) a 50 µs spin measured about
// twice a Unix socket's round trip, and no spin about 1.1-1.3 times it
// (bench section 2, 2026-12-01): the spinner takes the core its peer needs.
constexpr uint64_t kDefaultBudgetUs = 0;

// SCIF_NET_BUSY_POLL: microseconds, a whole number; anything else keeps the default.
uint64_t BudgetNs() {
  const char* s = getenv("SCIF_NET_BUSY_POLL");
  if (!s || !*s) return kDefaultBudgetUs * 1000;
  char* end = nullptr;
  unsigned long long us = strtoull(s, &end, 10);
  if (*end != '\0' || s[0] == '-' || us > 1000000) return kDefaultBudgetUs * 1000;
  return static_cast<uint64_t>(us) * 1000;
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

BusyPoll* BusyPoll::For(Napi::Env env, const ScifApi* api) {
  AddonData* data = AddonData::Get(env);
  if (data->busy || data->busy_off) return data->busy;
  uint64_t budget = BudgetNs();
  uv_loop_t* loop = nullptr;
  if (budget == 0 || !api || napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
    data->busy_off = true;
    return nullptr;
  }
  auto* self = new BusyPoll(env, budget);
  // Neither handle keeps the loop alive: spinning is never a reason to stay.
  if (uv_prepare_init(loop, &self->prepare_) != 0) {
    delete self;
    data->busy_off = true;
    return nullptr;
  }
  self->prepare_.data = self;
  uv_unref(reinterpret_cast<uv_handle_t*>(&self->prepare_));
  if (uv_idle_init(loop, &self->kick_) != 0) {
    self->closed_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&self->prepare_), [](uv_handle_t* h) {
      delete static_cast<BusyPoll*>(h->data);
    });
    data->busy_off = true;
    return nullptr;
  }
  self->kick_.data = self;
  uv_unref(reinterpret_cast<uv_handle_t*>(&self->kick_));
  if (napi_add_env_cleanup_hook(env, Cleanup, self) != napi_ok) {
    Cleanup(self);
    data->busy_off = true;
    return nullptr;
  }
  data->busy = self;
  return self;
}

BusyPoll::BusyPoll(Napi::Env env, uint64_t budget_ns) : env_(env), budget_ns_(budget_ns) {}

// The environment goes: close both handles; the second close frees us.
void BusyPoll::Cleanup(void* arg) {
  auto* self = static_cast<BusyPoll*>(arg);
  self->closed_ = true;
  for (BusyPollable* ep : self->hot_)
    if (ep) ep->busy_slot = -1;
  self->hot_.clear();
  auto done = [](uv_handle_t* h) {
    auto* bp = static_cast<BusyPoll*>(h->data);
    if (h == reinterpret_cast<uv_handle_t*>(&bp->kick_)) delete bp;
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&self->prepare_), done);
  uv_close(reinterpret_cast<uv_handle_t*>(&self->kick_), done);
}

void BusyPoll::Heat(BusyPollable* ep) {
  if (closed_ || ep->busy_slot >= 0 || hot_.size() >= kMaxHot) return;
  ep->busy_slot = static_cast<int>(hot_.size());
  hot_.push_back(ep);
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&prepare_))) uv_prepare_start(&prepare_, OnPrepare);
}

void BusyPoll::Forget(BusyPollable* ep) {
  if (ep->busy_slot < 0) return;
  hot_[static_cast<size_t>(ep->busy_slot)] = nullptr;
  ep->busy_slot = -1;
}

void BusyPoll::Cool() {
  for (BusyPollable* ep : hot_)
    if (ep) ep->busy_slot = -1;
  hot_.clear();
  uv_prepare_stop(&prepare_);
}

void BusyPoll::OnPrepare(uv_prepare_t* handle) { static_cast<BusyPoll*>(handle->data)->Spin(); }

void BusyPoll::OnKick(uv_idle_t* handle) { uv_idle_stop(handle); }

void BusyPoll::Spin() {
  // Forgotten endpoints leave holes; close them up first.
  size_t n = 0;
  for (BusyPollable* ep : hot_) {
    if (!ep) continue;
    ep->busy_slot = static_cast<int>(n);
    hot_[n++] = ep;
  }
  hot_.resize(n);
  if (hot_.empty()) {
    uv_prepare_stop(&prepare_);
    return;
  }
  uv_loop_t* loop = prepare_.loop;
  if (uv_backend_timeout(loop) == 0) return;  // the loop will not sleep: nothing to save
  if (!JsAlive(env_)) {
    uv_prepare_stop(&prepare_);  // the environment goes away (addon.h)
    return;
  }
  uint64_t now = uv_hrtime();
  uint64_t deadline = now + budget_ns_, cap = now + kTurnCapNs;
  for (unsigned round = 1;; round++) {
    bool served = false;
    // By index: serving runs JS, which may heat more endpoints or forget some.
    for (size_t i = 0; i < hot_.size() && !closed_; i++) {
      BusyPollable* ep = hot_[i];
      if (!ep) continue;
      int ready = ep->BusyLook();
      if (ready == 0) continue;
      if (ready < 0 || !ep->BusyServe()) Forget(ep);  // not reading, or nothing it could use
      served = true;
      if (!JsAlive(env_)) {
        uv_prepare_stop(&prepare_);  // a callback made the environment go away
        return;
      }
    }
    if (closed_) return;
    now = uv_hrtime();
    if (served) {
      if (uv_backend_timeout(loop) == 0) return;  // it has work now: let it run
      if (now >= cap) {
        // Let the loop look at its other descriptors without sleeping, and
        // come back here after.
        uv_idle_start(&kick_, OnKick);
        return;
      }
      deadline = now + budget_ns_;
      continue;
    }
    if (now >= deadline) {
      Cool();
      return;
    }
    // Leave the core to a peer that shares it, now and then.
    if (round % 64 == 0)
      sched_yield();
    else
      CpuRelax();
  }
}

}  // namespace scifnet
