// addon.h - what the addon keeps per Node environment (main thread or worker).
#ifndef SCIF_NET_ADDON_H
#define SCIF_NET_ADDON_H

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>

namespace scifnet {

class BusyPoll;

struct AddonData {
  static constexpr size_t kStageSize = 64 * 1024;

  static AddonData* Get(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

  Napi::FunctionReference endpoint_ctor;
  // Small writes are gathered here before one scif_send(); endpoints share it
  // because a flush never keeps bytes in it across turns of the loop.
  uint8_t stage[kStageSize];
  BusyPoll* busy = nullptr;  // busy_poll.h; made on first use
  bool busy_off = false;     // ...or known to be off
  bool js_gone = false;      // JS can no longer run here (JsAlive)
};

// Whether JS can run in env. Not while it goes away (a worker terminating, the
// process exiting): napi calls that could run JS then fail with no exception
// pending, which node-addon-api turns into a fatal error.
inline bool CanRunJs(napi_env env) {
  napi_value global, value;
  if (napi_get_global(env, &global) != napi_ok) return false;
  return napi_get_named_property(env, global, "undefined", &value) == napi_ok;
}

// Asked by the loop's callbacks (uv_poll, uv_idle, prepare, the threadpool's
// completions) before they call into JS, and after each call (one that made
// a worker exit returns into an environment that is going away). Once false,
// false for good. Call inside a HandleScope.
inline bool JsAlive(napi_env env) {
  AddonData* data = nullptr;
  if (napi_get_instance_data(env, reinterpret_cast<void**>(&data)) != napi_ok || !data) return CanRunJs(env);
  if (!data->js_gone && !CanRunJs(env)) data->js_gone = true;
  return !data->js_gone;
}

// After a napi call from the loop failed (one that could run JS: making an
// object or a Buffer): drops any exception it left and says whether JS still
// runs - false while the environment goes away, which can begin at any
// moment (worker.terminate() from another thread).
inline bool FailedButAlive(napi_env env) {
  bool pending = false;
  napi_value error;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending)
    napi_get_and_clear_last_exception(env, &error);
  return JsAlive(env);
}

// Calls fn from the loop through async (MakeCallback, as node:net's handles
// call their owners). A throw goes to the process's 'uncaughtException', as
// from any callback of the loop. False when JS can no longer run (JsAlive).
inline bool CallFromLoop(napi_env env, napi_async_context async, napi_value recv, napi_value fn,
                         std::initializer_list<napi_value> args) {
  napi_value result;
  if (napi_make_callback(env, async, recv, fn, args.size(), args.begin(), &result) != napi_ok) {
    bool pending = false;
    napi_value error;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
        napi_get_and_clear_last_exception(env, &error) == napi_ok && CanRunJs(env))
      napi_fatal_exception(env, error);
  }
  return JsAlive(env);
}

}  // namespace scifnet

#endif
