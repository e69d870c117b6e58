// backend.h - which libscif the addon speaks to.
//
// SCIF_NET_BACKEND=auto|hw|virtual (default auto):
//   virtual  the virtual fabric linked into the addon (kernel/)
//   hw       the system's libscif (MPSS), loaded with dlopen: SCIF_NET_LIBSCIF
//            names it (default libscif.so.0); the SCIF device must exist
//            unless SCIF_NET_LIBSCIF is given (which is how the tests point
//            this path at the fabric's own libscif-ABI library)
//   auto     hw when a SCIF device (/dev/mic/scif, /dev/scif) is there and
//            libscif loads, else virtual
// The addon calls the same libscif API either way, through this table.
#ifndef SCIF_NET_BACKEND_H
#define SCIF_NET_BACKEND_H

#include <string>

extern "C" {
#include "scif.h"
#include "scif_net.h"
}

namespace scifnet {

struct ScifApi {
  std::string name;     // "virtual" or "hw"
  std::string library;  // what was loaded, for hw
  std::string note;     // why auto chose what it chose
  // Whether scif_accept() waits for the peer node: a driver's does (its grant
  // and the acknowledgement), so the addon accepts on the threadpool; the
  // fabric's never does (the request is read with the connection), so it
  // accepts on the loop, in the turn the request came.
  bool accept_waits = true;

  scif_epd_t (*open)(void);
  int (*close)(scif_epd_t);
  int (*bind)(scif_epd_t, uint16_t);
  int (*listen)(scif_epd_t, int);
  int (*connect)(scif_epd_t, struct scif_portID*);
  int (*accept)(scif_epd_t, struct scif_portID*, scif_epd_t*, int);
  int (*send)(scif_epd_t, void*, int, int);
  int (*recv)(scif_epd_t, void*, int, int);
  int (*poll)(struct scif_pollepd*, unsigned int, long);
  int (*get_node_ids)(uint16_t*, int, uint16_t*);
  off_t (*register_)(scif_epd_t, void*, size_t, off_t, int, int);
  int (*unregister)(scif_epd_t, off_t, size_t);
  void* (*mmap)(void*, size_t, int, int, scif_epd_t, off_t);
  int (*munmap)(void*, size_t);
  int (*readfrom)(scif_epd_t, off_t, size_t, off_t, int);
  int (*writeto)(scif_epd_t, off_t, size_t, off_t, int);
  int (*vreadfrom)(scif_epd_t, void*, size_t, off_t, int);
  int (*vwriteto)(scif_epd_t, void*, size_t, off_t, int);
  int (*fence_mark)(scif_epd_t, int, int*);
  int (*fence_wait)(scif_epd_t, int);
  int (*fence_signal)(scif_epd_t, off_t, uint64_t, off_t, uint64_t, int);
  // The descriptor to poll (MPSS 4 exports scif_get_fd; under MPSS 3 the
  // endpoint is the descriptor): always the library's own, never the linked
  // fabric's, which would take a foreign listener for one to adopt. FdOf().
  int (*get_fd)(scif_epd_t) = nullptr;

  // The fabric's own calls (scif_net.h); null with MPSS's libscif.
  const char* (*fabric_path)(void) = nullptr;
  int (*self_node)(void) = nullptr;
  int (*set_node_online)(uint16_t, int) = nullptr;
  int (*node_count)(void) = nullptr;
  // The fabric's listeners and connections, for `scif-net ports`.
  int (*census)(struct scif_net_endpoint_info*, int) = nullptr;
  const char* (*last_error)(void) = nullptr;
  // Makes an endpoint stream-only before it connects or listens: its
  // connections hold one descriptor a side instead of three, and the RMA
  // family fails on them with EOPNOTSUPP (scif_net.h). Null with MPSS's
  // libscif, whose connections have no such cost: skip the call then.
  int (*set_stream_only)(scif_epd_t) = nullptr;
  // Whether a ring holds something for us, without a system call (scif_net.h,
  // busy_poll.h); its flags change nothing since the descriptor is level-triggered.
  int (*rx_ready)(scif_epd_t, int) = nullptr;
};

// The descriptor behind epd, by the library in use.
inline int FdOf(const ScifApi* api, scif_epd_t epd) { return api->get_fd ? api->get_fd(epd) : epd; }

// The process's backend, chosen on first use; null when the one asked for
// cannot be had, with *why saying what was looked for.
const ScifApi* Scif(std::string* why = nullptr);

// Where the fabric's own calls (its directory, taking nodes down: a test
// harness's card reset) are: the backend in use if it has them, else - for a
// libscif without them, such as the MPSS-strict build, on a virtual fabric
// that SCIF_NET_FABRIC names - the fabric linked into the addon, which works
// on the same directory. Null on hardware.
const ScifApi* FabricControl();

}  // namespace scifnet

#endif
