// loop_accept.cc - the listener's side of the loop core (loop_endpoint.h):
// scif_accept() in batches, on the loop where it cannot wait and on the
// threadpool where a driver's does, and the accepted endpoints adopted as JS
// objects of the listener's class.
#include <fcntl.h>
#include <poll.h>

#include <algorithm>

#include "addon.h"
#include "backend.h"
#include "loop_endpoint.h"
#include "napi_args.h"

namespace scifnet {

using napi_args::Errno;

// scif_accept() until nothing waits (or the quota is met), on the threadpool.
struct LoopEndpoint::AcceptBatch {
  napi_async_work work = nullptr;
  LoopEndpoint* ep;
  const ScifApi* api;
  scif_epd_t listener;
  int quota;
  int count = 0;
  int err = 0;
  bool gone = false;  // the listener can accept nothing more
  scif_epd_t epd[kCallsPerRound];
  scif_portID peer[kCallsPerRound];
};

// Accepts what waits: here, or on the threadpool when scif_accept() waits for
// the peer node (accept_waits). True when another look this turn may find
// more; false while a batch is out (the listener is not watched for
// requests until it is back).
bool LoopEndpoint::StartAccept() {
  int quota = std::min(AcceptsWanted(), kCallsPerRound);
  if (accept_batch_ || quota <= 0) return false;
  auto* b = new AcceptBatch();
  b->ep = this;
  b->api = api_;
  b->listener = epd_;
  b->quota = quota;
  if (!api_->accept_waits) {
    RunAccepts(b);
    accept_batch_ = b;
    KeepAlive(true);
    AcceptDone(b, true);
    return true;
  }
  napi_value name;
  bool queued =
      napi_create_string_utf8(env_, "SCIF_ACCEPT", NAPI_AUTO_LENGTH, &name) == napi_ok &&
      napi_create_async_work(
          env_, nullptr, name,
          [](napi_env, void* data) { RunAccepts(static_cast<AcceptBatch*>(data)); },
          [](napi_env, napi_status status, void* data) {
            auto* batch = static_cast<AcceptBatch*>(data);
            batch->ep->AcceptDone(batch, status == napi_ok);
          },
          b, &b->work) == napi_ok &&
      napi_queue_async_work(env_, b->work) == napi_ok;
  if (!queued) {
    if (b->work) napi_delete_async_work(env_, b->work);
    delete b;
    FailedButAlive(env_);
    Accepted(-ENOMEM, nullptr);
    return false;
  }
  accept_batch_ = b;
  KeepAlive(true);  // for the batch: it comes back to us
  return false;
}

// scif_accept() until nothing waits or the quota is met (any thread).
void LoopEndpoint::RunAccepts(AcceptBatch* b) {
  while (b->count < b->quota) {
    int i = b->count;
    if (b->api->accept(b->listener, &b->peer[i], &b->epd[i], 0) < 0) {
      if (errno == EAGAIN) return;
      b->err = Errno();
      // A listener that no longer listens says so on its descriptor: the
      // driver's POLLERR, the fabric's hang-up once its directory went
      // (ENODEV). Any other failure is one caller's, as node:net's.
      scif_pollepd pe = {b->listener, POLLIN, 0};
      b->gone = b->api->poll(&pe, 1, 0) == 1 && (pe.revents & (POLLERR | POLLHUP));
      return;
    }
    // A driver's accepted descriptors are inheritable; ours are not.
    int fd = FdOf(b->api, b->epd[i]);
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);  // the only descriptor flag there is
    b->count++;
  }
}

// The batch is back: every endpoint it accepted becomes a JS object, or is
// closed if the listener went meanwhile.
void LoopEndpoint::AcceptDone(AcceptBatch* b, bool ran) {
  accept_batch_ = nullptr;
  bool async = b->work != nullptr;
  if (async) napi_delete_async_work(env_, b->work);
  bool listening = ran && state_ == State::kListening && JsAlive(env_);
  for (int i = 0; i < b->count; i++) {
    if (!listening || state_ != State::kListening) {
      CloseOnThreadpool(env_, api_, b->epd[i]);
      continue;
    }
    Napi::HandleScope scope(Napi::Env{env_});
    int status = 0;
    napi_value child = Adopt(b->epd[i], b->peer[i], &status);
    Accepted(status, child);
  }
  if (listening && b->gone && state_ == State::kListening) listen_gone_ = b->err;  // never watched again
  if (listening && b->err && state_ == State::kListening) Accepted(b->err, nullptr);
  delete b;
  Closing* closed = work_in_flight_ == 0 ? CloseDeferred() : nullptr;
  WorkDrained();
  if (async && Usable()) Schedule();  // more may wait: look again (a sync batch's caller does)
  KeepAlive(false);
  if (closed) ReleaseClosing(closed);  // last: it may call into JS
}

// The endpoint scif_accept() made, as a JS object of our class; null with
// *status = -errno when it cannot be had (the endpoint is closed then).
napi_value LoopEndpoint::Adopt(scif_epd_t epd, scif_portID peer, int* status) {
  napi_value obj = nullptr;
  LoopEndpoint* child = NewChild(&obj);
  int err = child ? 0 : -ENOMEM;
  if (child) {
    child->api_ = api_;
    child->epd_ = epd;
    child->peer_ = peer;
    child->local_port_ = local_port_;
    err = child->InitLoop();
    if (err) child->epd_ = -1;
  }
  if (err) {
    CloseOnThreadpool(env_, api_, epd);
    *status = err;
    return nullptr;
  }
  child->SetState(State::kConnected);
  child->KeepAlive(true);
  *status = 0;
  return obj;
}

}  // namespace scifnet
