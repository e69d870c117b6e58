// scif_op.h - one libscif call run on the threadpool for a ScifEndpoint.
#ifndef SCIF_NET_SCIF_OP_H
#define SCIF_NET_SCIF_OP_H

#include <napi.h>

#include <functional>
#include <utility>
#include <vector>

#include "addon.h"
#include "scif_endpoint.h"
#include "napi_args.h"

namespace scifnet {

// One call into libscif on the threadpool, holding what it uses. The call
// returns 0 or -errno, and may give a value besides (an offset, a mark): the
// callback gets (status, value), so a value is never mistaken for an error
// (MPSS 4's fence marks are negative as ints).
class ScifOp : public Napi::AsyncWorker {
 public:
  using Fn = std::function<int(const ScifApi*, scif_epd_t, int64_t* value)>;
  enum class Value { kNone, kNumber, kBigInt };

  ScifOp(ScifEndpoint* ep, Napi::Function cb, const char* name, Fn fn, bool sleeper = false)
      : Napi::AsyncWorker(ep->Value(), cb, name),
        ep_(ep),
        api_(ep->api_),
        epd_(ep->epd_),
        fn_(std::move(fn)),
        sleeper_(sleeper) {}

  // Keeps a JS value (a Buffer) alive until the call is done.
  void Hold(Napi::Value v) { holds_.push_back(Napi::Persistent(v)); }
  // Keeps a mapping's pages mapped until the call is done.
  void Lend(const uint8_t* data, size_t len) { pins_.emplace_back(data, len); }
  void AfterOnLoop(std::function<void(int, int64_t)> fn) { after_ = std::move(fn); }
  void GivesValue(Value kind) { value_kind_ = kind; }
  void SetClose() { close_ = true; }
  bool sleeper() const { return sleeper_; }

  // Lets go of what was held, without having run (queueing failed).
  void Abandon() { Release(); }

 protected:
  void Execute() override {
    // Queued before a close() and not begun: the descriptor is going away.
    if (!close_ && ep_->closing_.load(std::memory_order_acquire)) {
      status_ = -ECANCELED;
      return;
    }
    status_ = fn_(api_, epd_, &value_);
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Release();
    if (after_) after_(status_, value_);
    ep_->OpDone(this);
    if (!JsAlive(env)) return;  // the environment goes away (addon.h)
    Napi::Value value = env.Undefined();
    if (status_ == 0 && value_kind_ == Value::kNumber) value = Napi::Number::New(env, static_cast<double>(value_));
    if (status_ == 0 && value_kind_ == Value::kBigInt) value = Napi::BigInt::New(env, value_);
    Callback().Call(Receiver().Value(), {napi_args::Status(env, status_), value});
  }

 private:
  void Release() {
    pins_.clear();
    holds_.clear();
  }

  ScifEndpoint* ep_;
  const ScifApi* api_;
  scif_epd_t epd_;
  Fn fn_;
  bool sleeper_;
  bool close_ = false;
  int status_ = 0;
  int64_t value_ = 0;
  Value value_kind_ = Value::kNone;
  std::vector<Napi::Reference<Napi::Value>> holds_;
  std::vector<MappingPin> pins_;
  std::function<void(int, int64_t)> after_;
};

}  // namespace scifnet

#endif
