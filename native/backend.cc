// backend.cc - see backend.h.
#include "backend.h"

#include <dlfcn.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

extern "C" {
#include "scif_net.h"
}

namespace scifnet {
namespace {

const char* const kDevices[] = {"/dev/mic/scif", "/dev/scif"};

ScifApi Virtual() {
  ScifApi api;
  api.name = "virtual";
  api.accept_waits = false;
  api.open = scif_open;
  api.close = scif_close;
  api.bind = scif_bind;
  api.listen = scif_listen;
  api.connect = scif_connect;
  api.accept = scif_accept;
  api.send = scif_send;
  api.recv = scif_recv;
  api.poll = scif_poll;
  api.get_node_ids = scif_get_nodeIDs;
  api.register_ = scif_register;
  api.unregister = scif_unregister;
  api.mmap = scif_mmap;
  api.munmap = scif_munmap;
  api.readfrom = scif_readfrom;
  api.writeto = scif_writeto;
  api.vreadfrom = scif_vreadfrom;
  api.vwriteto = scif_vwriteto;
  api.fence_mark = scif_fence_mark;
  api.fence_wait = scif_fence_wait;
  api.fence_signal = scif_fence_signal;
  api.get_fd = scif_get_fd;
  api.fabric_path = scif_net_fabric_path;
  api.self_node = scif_net_self_node;
  api.set_node_online = scif_net_set_node_online;
  api.node_count = scif_net_node_count;
  api.census = scif_net_census;
  api.last_error = scif_net_last_error;
  api.set_stream_only = scif_net_set_stream_only;
  api.rx_ready = scif_net_rx_ready;
  return api;
}

// The SCIF device node, if the machine has one. SCIF_NET_DEVICES (paths
// separated by ':') replaces the list, for tests of the choice.
const char* Device() {
  static std::string found;
  const char* list = getenv("SCIF_NET_DEVICES");
  if (list) {
    std::string rest = list;
    while (!rest.empty()) {
      size_t colon = rest.find(':');
      std::string d = rest.substr(0, colon);
      rest = colon == std::string::npos ? "" : rest.substr(colon + 1);
      if (!d.empty() && access(d.c_str(), F_OK) == 0) return (found = d).c_str();
    }
    return nullptr;
  }
  for (const char* d : kDevices)
    if (access(d, F_OK) == 0) return d;
  return nullptr;
}

template <typename F>
bool Need(void* lib, const char* symbol, F* slot, std::string* missing) {
  *slot = reinterpret_cast<F>(dlsym(lib, symbol));
  if (!*slot) *missing += missing->empty() ? symbol : std::string(", ") + symbol;
  return *slot != nullptr;
}

// Loads libscif with dlopen; false with *why when it cannot be used.
bool Hardware(const std::string& library, ScifApi* api, std::string* why) {
  // RTLD_LOCAL: the library's scif_* must not stand in for the fabric's own.
  void* lib = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* err = dlerror();
    *why = "cannot load " + library + " (" + (err ? err : "dlopen failed") +
           "); install Intel MPSS's libscif or set SCIF_NET_LIBSCIF to its path";
    return false;
  }
  std::string missing;
  Need(lib, "scif_open", &api->open, &missing);
  Need(lib, "scif_close", &api->close, &missing);
  Need(lib, "scif_bind", &api->bind, &missing);
  Need(lib, "scif_listen", &api->listen, &missing);
  Need(lib, "scif_connect", &api->connect, &missing);
  Need(lib, "scif_accept", &api->accept, &missing);
  Need(lib, "scif_send", &api->send, &missing);
  Need(lib, "scif_recv", &api->recv, &missing);
  Need(lib, "scif_poll", &api->poll, &missing);
  Need(lib, "scif_get_nodeIDs", &api->get_node_ids, &missing);
  Need(lib, "scif_register", &api->register_, &missing);
  Need(lib, "scif_unregister", &api->unregister, &missing);
  Need(lib, "scif_mmap", &api->mmap, &missing);
  Need(lib, "scif_munmap", &api->munmap, &missing);
  Need(lib, "scif_readfrom", &api->readfrom, &missing);
  Need(lib, "scif_writeto", &api->writeto, &missing);
  Need(lib, "scif_vreadfrom", &api->vreadfrom, &missing);
  Need(lib, "scif_vwriteto", &api->vwriteto, &missing);
  Need(lib, "scif_fence_mark", &api->fence_mark, &missing);
  Need(lib, "scif_fence_wait", &api->fence_wait, &missing);
  Need(lib, "scif_fence_signal", &api->fence_signal, &missing);
  if (!missing.empty()) {
    *why = library + " is not a usable libscif: it lacks " + missing;
    dlclose(lib);
    return false;
  }
  // MPSS 4's (MPSS 3 has none: its endpoint is the descriptor).
  std::string optional;
  Need(lib, "scif_get_fd", &api->get_fd, &optional);
  // Present only when the library is the virtual fabric built as libscif.
  Need(lib, "scif_net_fabric_path", &api->fabric_path, &optional);
  Need(lib, "scif_net_self_node", &api->self_node, &optional);
  Need(lib, "scif_net_set_node_online", &api->set_node_online, &optional);
  Need(lib, "scif_net_node_count", &api->node_count, &optional);
  Need(lib, "scif_net_census", &api->census, &optional);
  Need(lib, "scif_net_last_error", &api->last_error, &optional);
  Need(lib, "scif_net_set_stream_only", &api->set_stream_only, &optional);
  Need(lib, "scif_net_rx_ready", &api->rx_ready, &optional);
  api->name = "hw";
  api->library = library;
  return true;
}

// SCIF_NET_SLOW_CALLS=accept=MS,close=MS,register=MS: those calls take that
// much longer, as a driver's do when they wait for a peer node (its grant,
// its disconnect acknowledgement, pinned pages announced). For tests that
// check nothing of the kind runs on the event loop's thread.
struct SlowCalls {
  int accept_ms = 0, close_ms = 0, register_ms = 0;
  int (*accept)(scif_epd_t, struct scif_portID*, scif_epd_t*, int) = nullptr;
  int (*close)(scif_epd_t) = nullptr;
  off_t (*register_)(scif_epd_t, void*, size_t, off_t, int, int) = nullptr;
};
SlowCalls slow;

void Pause(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

void SlowDown(ScifApi* api) {
  const char* spec = getenv("SCIF_NET_SLOW_CALLS");
  if (!spec || !*spec) return;
  std::string rest = spec;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string item = rest.substr(0, comma);
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
    size_t eq = item.find('=');
    if (eq == std::string::npos) continue;
    int ms = atoi(item.c_str() + eq + 1);
    std::string name = item.substr(0, eq);
    if (name == "accept") slow.accept_ms = ms;
    if (name == "close") slow.close_ms = ms;
    if (name == "register") slow.register_ms = ms;
  }
  if (slow.accept_ms > 0) {
    api->accept_waits = true;
    slow.accept = api->accept;
    api->accept = [](scif_epd_t epd, struct scif_portID* peer, scif_epd_t* nepd, int flags) {
      Pause(slow.accept_ms);
      return slow.accept(epd, peer, nepd, flags);
    };
  }
  if (slow.close_ms > 0) {
    slow.close = api->close;
    api->close = [](scif_epd_t epd) {
      Pause(slow.close_ms);
      return slow.close(epd);
    };
  }
  if (slow.register_ms > 0) {
    slow.register_ = api->register_;
    api->register_ = [](scif_epd_t epd, void* addr, size_t len, off_t off, int prot, int flags) {
      Pause(slow.register_ms);
      return slow.register_(epd, addr, len, off, prot, flags);
    };
  }
}

struct Choice {
  ScifApi api;
  bool ok = false;
  std::string why;
};

Choice Choose() {
  Choice c;
  const char* env = getenv("SCIF_NET_BACKEND");
  std::string mode = env && *env ? env : "auto";
  const char* lib_env = getenv("SCIF_NET_LIBSCIF");
  std::string library = lib_env && *lib_env ? lib_env : "libscif.so.0";
  const char* device = Device();
  if (mode == "virtual") {
    c.api = Virtual();
    c.ok = true;
  } else if (mode == "hw") {
    if (!device && !(lib_env && *lib_env)) {
      c.why = "SCIF_NET_BACKEND=hw: no SCIF device (looked for /dev/mic/scif and /dev/scif); "
              "set SCIF_NET_LIBSCIF to use a libscif anyway";
    } else if (Hardware(library, &c.api, &c.why)) {
      c.ok = true;
    } else {
      c.why = "SCIF_NET_BACKEND=hw: " + c.why;
    }
  } else if (mode == "auto") {
    std::string why;
    if (!device) {
      c.api = Virtual();
      c.api.note = "auto: no SCIF device, using the virtual fabric";
      c.ok = true;
    } else if (Hardware(library, &c.api, &why)) {
      c.api.note = std::string("auto: found ") + device;
      c.ok = true;
    } else {
      // A driver is there: quietly using the virtual fabric instead would
      // leave the cards unused and every peer on them unreachable.
      c.why = "SCIF_NET_BACKEND=auto: the SCIF device " + std::string(device) + " is there but " + why +
              "; install MPSS's libscif, or set SCIF_NET_BACKEND=virtual to use the virtual fabric";
    }
  } else {
    c.why = "SCIF_NET_BACKEND=" + mode + " is not one of auto, hw, virtual";
  }
  return c;
}

}  // namespace

const ScifApi* FabricControl() {
  const ScifApi* api = Scif();
  if (api && api->set_node_online) return api;
  if (!api || api->name != "hw" || !getenv("SCIF_NET_FABRIC")) return nullptr;
  static const ScifApi fabric = Virtual();
  return &fabric;
}

const ScifApi* Scif(std::string* why) {
  static std::once_flag once;
  static Choice* choice;
  std::call_once(once, [] {
    choice = new Choice(Choose());
    if (choice->ok) SlowDown(&choice->api);
  });
  if (!choice->ok) {
    if (why) *why = choice->why;
    return nullptr;
  }
  return &choice->api;
}

}  // namespace scifnet
