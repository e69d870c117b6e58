// addon.h - what the addon keeps per Node environment (main thread or worker).
#ifndef SCIF_NET_ADDON_H
#define SCIF_NET_ADDON_H

#include <napi.h>

#include <cstddef>
#include <cstdint>

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
};

}  // namespace scifnet

#endif
