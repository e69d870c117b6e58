// addon.cc - the addon's entry: registers its two classes (SocketHandle, the
// handle under a net.Socket; ScifEndpoint, the raw SCIF API) and the calls
// about the fabric as a whole (nodes, backend, last error).
#include <napi.h>

#include <string>
#include <vector>

#include "addon.h"
#include "backend.h"
#include "cluster.h"
#include "napi_args.h"
#include "socket_handle.h"
#include "scif_endpoint.h"

extern "C" {
#include "scif.h"
#include "scif_net.h"
}

namespace scifnet {
namespace {

// -err, or -errno of the call that just failed.
Napi::Value Fail(Napi::Env env, int err = 0) { return napi_args::Status(env, err ? -err : napi_args::Errno()); }

// The backend, or null (the caller answers -ENXIO; lastError() says why).
const ScifApi* Api() { return Scif(); }

// { self, nodes: [...] } or -errno.
Napi::Value NodeIds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ScifApi* api = Api();
  if (!api) return Fail(env, ENXIO);
  uint16_t ids[SCIF_NET_MAX_NODES], self = 0;
  int n = api->get_node_ids(ids, SCIF_NET_MAX_NODES, &self);
  if (n < 0) return Fail(env);
  Napi::Array nodes = Napi::Array::New(env);
  for (int i = 0; i < n && i < SCIF_NET_MAX_NODES; i++) nodes.Set(i, Napi::Number::New(env, ids[i]));
  Napi::Object out = Napi::Object::New(env);
  out.Set("self", Napi::Number::New(env, self));
  out.Set("nodes", nodes);
  return out;
}

Napi::Value SelfNode(const Napi::CallbackInfo& info) {
  const ScifApi* api = Api();
  if (!api) return Fail(info.Env(), ENXIO);
  int n;
  if (api->self_node) {
    n = api->self_node();
  } else {
    uint16_t self = 0;
    n = api->get_node_ids(nullptr, 0, &self) < 0 ? -1 : self;
  }
  return n < 0 ? Fail(info.Env()) : Napi::Number::New(info.Env(), n);
}

Napi::Value FabricPath(const Napi::CallbackInfo& info) {
  if (!Api()) return Fail(info.Env(), ENXIO);
  const ScifApi* api = FabricControl();
  if (!api || !api->fabric_path) return Fail(info.Env(), ENOSYS);
  const char* path = api->fabric_path();
  return path ? Napi::String::New(info.Env(), path) : Fail(info.Env());
}

Napi::Value SetNodeOnline(const Napi::CallbackInfo& info) {
  if (!Api()) return Fail(info.Env(), ENXIO);
  const ScifApi* api = FabricControl();
  if (!api || !api->set_node_online) return Fail(info.Env(), ENOSYS);
  uint32_t node = info[0].As<Napi::Number>().Uint32Value();
  bool online = info[1].ToBoolean().Value();
  if (node > 0xffff) return Fail(info.Env(), EINVAL);
  if (api->set_node_online(static_cast<uint16_t>(node), online) < 0) return Fail(info.Env());
  return Napi::Number::New(info.Env(), 0);
}

// How many nodes the fabric has, online or not; or -errno.
Napi::Value NodeCount(const Napi::CallbackInfo& info) {
  if (!Api()) return Fail(info.Env(), ENXIO);
  const ScifApi* api = FabricControl();
  if (!api || !api->node_count) return Fail(info.Env(), ENOSYS);
  int n = api->node_count();
  return n < 0 ? Fail(info.Env()) : Napi::Number::New(info.Env(), n);
}

// The fabric's endpoints (scif_net_census), as objects; or -errno. Counts
// that cannot be read are -1.
Napi::Value Census(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Api()) return Fail(env, ENXIO);
  const ScifApi* api = FabricControl();
  if (!api || !api->census) return Fail(env, ENOSYS);
  std::vector<scif_net_endpoint_info> v(64);
  for (;;) {
    int n = api->census(v.data(), static_cast<int>(v.size()));
    if (n < 0) return Fail(env);
    if (static_cast<size_t>(n) <= v.size()) {
      v.resize(static_cast<size_t>(n));
      break;
    }
    v.resize(static_cast<size_t>(n) + 16);  // more came since we counted
  }
  auto count = [&](uint64_t c) { return Napi::Number::New(env, c == SCIF_NET_UNKNOWN ? -1.0 : static_cast<double>(c)); };
  Napi::Array out = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) {
    const scif_net_endpoint_info& e = v[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("state", e.state == SCIF_NET_EP_LISTENING ? "listening" : e.state == SCIF_NET_EP_CONNECTED ? "connected" : "accepted");
    o.Set("pid", Napi::Number::New(env, e.pid));
    o.Set("fd", Napi::Number::New(env, e.fd));
    o.Set("node", Napi::Number::New(env, e.node));
    o.Set("port", Napi::Number::New(env, e.port));
    if (e.state == SCIF_NET_EP_LISTENING) {
      o.Set("peer", env.Null());
    } else {
      Napi::Object peer = Napi::Object::New(env);
      peer.Set("node", Napi::Number::New(env, e.peer_node));
      peer.Set("port", Napi::Number::New(env, e.peer_port));
      o.Set("peer", peer);
    }
    o.Set("connection", Napi::String::New(env, e.conn ? std::to_string(e.conn) : ""));
    o.Set("bytesSent", count(e.bytes_sent));
    o.Set("bytesReceived", count(e.bytes_received));
    o.Set("rmas", count(e.rmas));
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

// Why the last failing call on this thread failed, when errno alone does not
// say: the backend that could not be had, or the fabric's own sentence.
Napi::Value LastError(const Napi::CallbackInfo& info) {
  std::string why;
  const ScifApi* api = Scif(&why);
  if (!api) return Napi::String::New(info.Env(), why);
  return Napi::String::New(info.Env(), api->last_error ? api->last_error() : "");
}

// { name, library, note } of the backend in use, or the reason there is none.
Napi::Value Backend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string why;
  const ScifApi* api = Scif(&why);
  if (!api) return Napi::String::New(env, why);
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", api->name);
  out.Set("library", api->library);
  out.Set("note", api->note);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  Napi::Function ctor = SocketHandle::Define(env);
  data->socket_handle_ctor = Napi::Persistent(ctor);
  env.SetInstanceData<AddonData>(data);
  exports.Set("SocketHandle", ctor);
  Napi::Function scif = ScifEndpoint::Define(env);
  data->scif_endpoint_ctor = Napi::Persistent(scif);
  exports.Set("ScifEndpoint", scif);
  exports.Set("nodeIds", Napi::Function::New<NodeIds>(env, "nodeIds"));
  exports.Set("selfNode", Napi::Function::New<SelfNode>(env, "selfNode"));
  exports.Set("fabricPath", Napi::Function::New<FabricPath>(env, "fabricPath"));
  exports.Set("setNodeOnline", Napi::Function::New<SetNodeOnline>(env, "setNodeOnline"));
  exports.Set("nodeCount", Napi::Function::New<NodeCount>(env, "nodeCount"));
  exports.Set("census", Napi::Function::New<Census>(env, "census"));
  exports.Set("lastError", Napi::Function::New<LastError>(env, "lastError"));
  exports.Set("backend", Napi::Function::New<Backend>(env, "backend"));
  exports.Set("UV_EOF", Napi::Number::New(env, kUvEof));
  RegisterCluster(env, exports);
  return exports;
}

}  // namespace
}  // namespace scifnet

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return scifnet::Init(env, exports);
}

NODE_API_MODULE(scif_net, InitAddon)
