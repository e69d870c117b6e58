// binding.cc - registers the addon: the Endpoint class and the fabric's
// node calls. Nothing else lives here.
#include <napi.h>

#include "addon.h"
#include "endpoint.h"

extern "C" {
#include "scif.h"
#include "scif_net.h"
}

namespace scifnet {
namespace {

Napi::Value Fail(Napi::Env env) { return Napi::Number::New(env, errno > 0 ? -errno : -EIO); }

// { self, nodes: [...] } or -errno.
Napi::Value NodeIds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint16_t ids[SCIF_NET_MAX_NODES], self = 0;
  int n = scif_get_nodeIDs(ids, SCIF_NET_MAX_NODES, &self);
  if (n < 0) return Fail(env);
  Napi::Array nodes = Napi::Array::New(env, n);
  for (int i = 0; i < n && i < SCIF_NET_MAX_NODES; i++) nodes.Set(i, Napi::Number::New(env, ids[i]));
  Napi::Object out = Napi::Object::New(env);
  out.Set("self", Napi::Number::New(env, self));
  out.Set("nodes", nodes);
  return out;
}

Napi::Value NodeCount(const Napi::CallbackInfo& info) {
  int n = scif_net_node_count();
  return n < 0 ? Fail(info.Env()) : Napi::Number::New(info.Env(), n);
}

Napi::Value SelfNode(const Napi::CallbackInfo& info) {
  int n = scif_net_self_node();
  return n < 0 ? Fail(info.Env()) : Napi::Number::New(info.Env(), n);
}

Napi::Value FabricPath(const Napi::CallbackInfo& info) {
  const char* path = scif_net_fabric_path();
  return path ? Napi::String::New(info.Env(), path) : Fail(info.Env());
}

Napi::Value SetNodeOnline(const Napi::CallbackInfo& info) {
  uint32_t node = info[0].As<Napi::Number>().Uint32Value();
  bool online = info[1].ToBoolean().Value();
  if (node > 0xffff || scif_net_set_node_online(static_cast<uint16_t>(node), online) < 0)
    return Fail(info.Env());
  return Napi::Number::New(info.Env(), 0);
}

// Why the last failing call on this thread failed, when errno alone does not say.
Napi::Value LastError(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), scif_net_last_error());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  Napi::Function ctor = Endpoint::Define(env);
  data->endpoint_ctor = Napi::Persistent(ctor);
  env.SetInstanceData<AddonData>(data);
  exports.Set("Endpoint", ctor);
  exports.Set("nodeIds", Napi::Function::New<NodeIds>(env, "nodeIds"));
  exports.Set("nodeCount", Napi::Function::New<NodeCount>(env, "nodeCount"));
  exports.Set("selfNode", Napi::Function::New<SelfNode>(env, "selfNode"));
  exports.Set("fabricPath", Napi::Function::New<FabricPath>(env, "fabricPath"));
  exports.Set("setNodeOnline", Napi::Function::New<SetNodeOnline>(env, "setNodeOnline"));
  exports.Set("lastError", Napi::Function::New<LastError>(env, "lastError"));
  exports.Set("UV_EOF", Napi::Number::New(env, kUvEof));
  return exports;
}

}  // namespace
}  // namespace scifnet

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return scifnet::Init(env, exports);
}

NODE_API_MODULE(scif_net, InitAddon)
