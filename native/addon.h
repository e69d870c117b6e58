// addon.h - what the addon keeps per Node environment (main thread or worker).
#ifndef SCIF_NET_ADDON_H
#define SCIF_NET_ADDON_H

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace scifnet {

struct AddonData {
  static constexpr size_t kStageSize = 64 * 1024;

  static AddonData* Get(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

  Napi::FunctionReference endpoint_ctor;
  // Small writes are gathered here before one scif_send(); endpoints share it
  // because a flush never keeps bytes in it across turns of the loop.
  uint8_t stage[kStageSize];
};

}  // namespace scifnet

#endif
