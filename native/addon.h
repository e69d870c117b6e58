// addon.h - what the addon keeps per Node environment (main thread or worker).
#ifndef SCIF_NET_ADDON_H
#define SCIF_NET_ADDON_H

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>

namespace scifnet {

class BusyPoll;
class TurnQueue;

// The hooks a SocketHandle calls on its owner (socket_handle.h).
enum class Hook { kConnection, kConnect, kRead, kWrite, kShutdown };
constexpr int kHookCount = 5;

struct AddonData {
  static constexpr size_t kStageSize = 64 * 1024;

  static AddonData* Get(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

  // The classes' constructors, for the endpoints scif_accept() makes.
  Napi::FunctionReference socket_handle_ctor;
  Napi::FunctionReference scif_endpoint_ctor;
  Napi::FunctionReference socket_hooks[kHookCount];
  // Small writes are gathered here before one scif_send(); endpoints share it
  // because a flush never keeps bytes in it across turns of the loop.
  uint8_t stage[kStageSize];
  BusyPoll* busy = nullptr;  // busy_poll.h; made on first use
  bool busy_off = false;     // ...or known to be off
  TurnQueue* turns = nullptr;  // turn_queue.h; made on first use
  bool turns_gone = false;     // ...and closed with the environment
  bool js_gone = false;      // JS can no longer run here (JsAlive)
};

// Whether the loop's callbacks (uv_poll, uv_idle, prepare, the threadpool's
// completions) may still call into JS. Not once the environment goes away (a
// worker terminating, which may begin at any moment from another thread):
// napi calls that could run JS then fail with no exception pending. The
// first such failure (NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS keeps
// node-addon-api from making it fatal) notes it here, and the loop stops
// moving bytes nobody will read.
inline bool JsAlive(napi_env env) { return !AddonData::Get(env)->js_gone; }

// After a napi call from the loop failed: drops the exception it left, or
// notes that the environment is going away. False then.
inline bool FailedButAlive(napi_env env) {
  bool pending = false;
  napi_value error;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending)
    return napi_get_and_clear_last_exception(env, &error) == napi_ok;
  AddonData::Get(env)->js_gone = true;
  return false;
}

// Calls fn from the loop through async (MakeCallback, as node:net's handles
// call their owners). A throw goes to the process's 'uncaughtException', as
// from any callback of the loop. False when JS can no longer run (JsAlive).
inline bool CallFromLoop(napi_env env, napi_async_context async, napi_value recv, napi_value fn,
                         std::initializer_list<napi_value> args) {
  napi_value result;
  if (napi_make_callback(env, async, recv, fn, args.size(), args.begin(), &result) == napi_ok) return true;
  bool pending = false;
  napi_value error;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
      napi_get_and_clear_last_exception(env, &error) == napi_ok) {
    napi_fatal_exception(env, error);
    return JsAlive(env);
  }
  AddonData::Get(env)->js_gone = true;
  return false;
}

}  // namespace scifnet

#endif
