// cluster.cc - see cluster.h.
//
// node:cluster workers listening on one SCIF port share one listening
// endpoint, as they share a TCP port: the primary opens, binds and listens
// once (openListener) and passes the endpoint's descriptor to each worker
// (sendFd/receiveFd), which accepts on it (SocketHandle.adoptListener). On Intel MPSS an
// endpoint is an open file of the SCIF device, so a descriptor passed with
// SCM_RIGHTS is the same endpoint, and scif_accept() on it works from any
// process that holds it; the calls below are libscif's alone, no extension.
// Whether the backend in use can accept on a descriptor another process
// opened is asked of it (sharesListeners: a dup()ed listener's descriptor is
// what another process would hold).
//
// Descriptors travel over Unix datagram sockets in Linux's abstract
// namespace: the receiver binds one to a name the kernel picks (autobind),
// tells it to the sender over Node's IPC, and takes the descriptor the sender
// sent there once the sender says it has - so nothing is ever waited for. The
// kernel attaches the sender's credentials (SO_PASSCRED) and a descriptor
// from any process but the expected one is refused.
#include "cluster.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include "addon.h"
#include "backend.h"
#include "napi_args.h"

extern "C" {
#include "scif.h"
}

namespace scifnet {
namespace {

using napi_args::Errno;
using napi_args::Int;

constexpr size_t kMaxName = sizeof(sockaddr_un::sun_path) - 1;

Napi::Value Fail(Napi::Env env, int err) { return Napi::Number::New(env, err < 0 ? err : -err); }

// An abstract address from the name a receiver reported (without the leading NUL).
bool AbstractAddress(const std::string& name, sockaddr_un* sa, socklen_t* len) {
  if (name.empty() || name.size() > kMaxName) return false;
  std::memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  std::memcpy(sa->sun_path + 1, name.data(), name.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return true;
}

// fdReceiver() -> { fd, name } | -errno: a datagram socket that takes
// descriptors, bound to an abstract name of the kernel's choosing.
Napi::Value FdReceiver(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Fail(env, Errno());
  int on = 1;
  sockaddr_un sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  socklen_t len = sizeof(sa);
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa_family_t)) < 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) < 0) {
    int err = Errno();
    close(fd);
    return Fail(env, err);
  }
  size_t path = len - offsetof(sockaddr_un, sun_path);
  if (path < 2 || sa.sun_path[0] != '\0') {
    close(fd);
    return Fail(env, EADDRNOTAVAIL);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("name", Napi::String::New(env, std::string(sa.sun_path + 1, path - 1)));
  return out;
}

// sendFd(name, fd) -> 0 | -errno: sends a duplicate of fd to the receiver
// called name. The datagram is queued there when this returns.
Napi::Value SendFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsNumber()) return Fail(env, EINVAL);
  sockaddr_un sa;
  socklen_t len;
  if (!AbstractAddress(info[0].As<Napi::String>().Utf8Value(), &sa, &len)) return Fail(env, EINVAL);
  int passed = Int(info[1]);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(env, Errno());
  char byte = 'F';
  iovec iov = {&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  std::memset(control, 0, sizeof(control));
  msghdr msg = {};
  msg.msg_name = &sa;
  msg.msg_namelen = len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &passed, sizeof(int));
  ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  int err = n < 0 ? Errno() : 0;
  close(fd);
  return Napi::Number::New(env, err);
}

// receiveFd(receiverFd, fromPid) -> fd | -errno: the descriptor waiting at
// the receiver; -EAGAIN when none is, -EPERM when it came from another
// process than fromPid (or another user), which is then closed.
Napi::Value ReceiveFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) return Fail(env, EINVAL);
  int fd = Int(info[0]);
  pid_t from = static_cast<pid_t>(Int(info[1]));
  char byte;
  iovec iov = {&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4) + CMSG_SPACE(sizeof(ucred))];
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) return Fail(env, Errno());
  int got[4];
  int count = 0;
  bool trusted = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_RIGHTS) {
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k && count < 4; i++) std::memcpy(&got[count++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    } else if (c->cmsg_type == SCM_CREDENTIALS) {
      ucred cred;
      std::memcpy(&cred, CMSG_DATA(c), sizeof(cred));
      trusted = cred.uid == getuid() && (from <= 0 || cred.pid == from);
    }
  }
  int err = 0;
  if (msg.msg_flags & MSG_CTRUNC) err = -EMSGSIZE;
  else if (!trusted) err = -EPERM;
  else if (count != 1) err = -EBADMSG;
  if (err) {
    for (int i = 0; i < count; i++) close(got[i]);
    return Fail(env, err);
  }
  return Napi::Number::New(env, got[0]);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) return Fail(info.Env(), EINVAL);
  return Napi::Number::New(info.Env(), close(Int(info[0])) < 0 ? Errno() : 0);
}

// openListener(port, backlog) -> { epd, port } | -errno: a listening
// endpoint for other processes to accept on; this process never accepts.
// Stream-only where the backend has them, as a socket server's listener.
Napi::Value OpenListener(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ScifApi* api = Scif();
  if (!api) return Fail(env, ENXIO);
  if (!info[0].IsNumber() || !info[1].IsNumber()) return Fail(env, EINVAL);
  uint32_t want = info[0].As<Napi::Number>().Uint32Value();
  if (want > 0xffff) return Fail(env, EINVAL);
  scif_epd_t epd = api->open();
  if (epd < 0) return Fail(env, Errno());
  int port = -1;
  if ((api->set_stream_only && api->set_stream_only(epd) < 0) ||
      (port = api->bind(epd, static_cast<uint16_t>(want))) < 0 ||
      api->listen(epd, Int(info[1])) < 0) {
    int err = Errno();
    api->close(epd);
    return Fail(env, err);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("epd", Napi::Number::New(env, epd));
  out.Set("port", Napi::Number::New(env, port));
  return out;
}

Napi::Value CloseEndpoint(const Napi::CallbackInfo& info) {
  const ScifApi* api = Scif();
  if (!api) return Fail(info.Env(), ENXIO);
  if (!info[0].IsNumber()) return Fail(info.Env(), EINVAL);
  return Napi::Number::New(info.Env(), api->close(Int(info[0])) < 0 ? Errno() : 0);
}

// listenerGone(epd) -> whether a listener can accept nothing more (its
// descriptor hung up: the fabric directory it was in was removed; a
// driver's says POLLERR), so a new one must take its place.
Napi::Value ListenerGone(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ScifApi* api = Scif();
  if (!api || !info[0].IsNumber()) return Napi::Boolean::New(env, false);
  scif_pollepd pe = {Int(info[0]), POLLIN, 0};
  bool gone = api->poll(&pe, 1, 0) == 1 && (pe.revents & (POLLERR | POLLHUP | POLLNVAL));
  return Napi::Boolean::New(env, gone);
}

// Whether the backend accepts on a listening endpoint's descriptor that
// another process holds: asked once, with a listener of our own whose
// descriptor is dup()ed (what SCM_RIGHTS would give another process).
int ProbeSharing() {
  const ScifApi* api = Scif();
  if (!api) return -ENXIO;
  scif_epd_t epd = api->open();
  if (epd < 0) return Errno();
  if (api->bind(epd, 0) < 0 || api->listen(epd, 1) < 0) {
    int err = Errno();
    api->close(epd);
    return err;
  }
  int copy = fcntl(FdOf(api, epd), F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    int err = Errno();
    api->close(epd);
    return err;
  }
  // A listening endpoint says EISCONN to scif_listen (loop_endpoint.cc,
  // AdoptListener); a descriptor the backend does not know, EBADF.
  bool known = api->listen(copy, 1) < 0 && errno == EISCONN;
  if (known) api->close(copy);  // the adopted copy: only this hold goes
  else close(copy);
  api->close(epd);
  return known ? 1 : 0;
}

Napi::Value SharesListeners(const Napi::CallbackInfo& info) {
  static int answer = ProbeSharing();
  return answer < 0 ? Fail(info.Env(), answer) : Napi::Boolean::New(info.Env(), answer == 1);
}

}  // namespace

void RegisterCluster(Napi::Env env, Napi::Object exports) {
  exports.Set("fdReceiver", Napi::Function::New<FdReceiver>(env, "fdReceiver"));
  exports.Set("sendFd", Napi::Function::New<SendFd>(env, "sendFd"));
  exports.Set("receiveFd", Napi::Function::New<ReceiveFd>(env, "receiveFd"));
  exports.Set("closeFd", Napi::Function::New<CloseFd>(env, "closeFd"));
  exports.Set("openListener", Napi::Function::New<OpenListener>(env, "openListener"));
  exports.Set("closeEndpoint", Napi::Function::New<CloseEndpoint>(env, "closeEndpoint"));
  exports.Set("listenerGone", Napi::Function::New<ListenerGone>(env, "listenerGone"));
  exports.Set("sharesListeners", Napi::Function::New<SharesListeners>(env, "sharesListeners"));
}

}  // namespace scifnet
