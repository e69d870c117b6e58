// cluster.h - what node:cluster support needs from the addon (cluster.cc):
// descriptors passed between processes, listening endpoints opened for
// other processes, and a listener adopted from a descriptor another process
// opened (src/net/cluster.ts says how they fit together).
#ifndef SCIF_NET_CLUSTER_H
#define SCIF_NET_CLUSTER_H

#include <napi.h>

namespace scifnet {

// Adds fdReceiver, sendFd, receiveFd, closeFd, openListener, closeEndpoint
// and sharesListeners to the addon's exports (a worker accepts on a passed
// listener with SocketHandle.adoptListener).
void RegisterCluster(Napi::Env env, Napi::Object exports);

}  // namespace scifnet

#endif
