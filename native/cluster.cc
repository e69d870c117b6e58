// cluster.cc - see cluster.h.
//
// node:cluster workers listening on one SCIF port share one listening
// endpoint, as they share a TCP port: the primary opens, binds and listens
// once (openListener) and passes the endpoint's descriptor to each worker
// (sendFd/receiveFd), which accepts on it (SharedListener). On Intel MPSS an
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
#include <uv.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include "addon.h"
#include "backend.h"
#include "napi_args.h"
#include "socket_handle.h"

extern "C" {
#include "scif.h"
}

namespace scifnet {
namespace {

using napi_args::Errno;
using napi_args::Int;

constexpr int kAcceptsPerTurn = 64;
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
  int copy = fcntl(scif_get_fd(epd), F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    int err = Errno();
    api->close(epd);
    return err;
  }
  scif_pollepd pe = {copy, POLLIN, 0};
  bool known = api->poll(&pe, 1, 0) >= 0 && !(pe.revents & POLLNVAL);
  if (known) api->close(copy);  // the adopted copy: only this hold goes
  else close(copy);
  api->close(epd);
  return known ? 1 : 0;
}

Napi::Value SharesListeners(const Napi::CallbackInfo& info) {
  static int answer = ProbeSharing();
  return answer < 0 ? Fail(info.Env(), answer) : Napi::Boolean::New(info.Env(), answer == 1);
}

// A listening endpoint adopted from a descriptor that another process opened
// (the cluster primary): accepts on it like a SocketHandle listener, and
// hands each connection, a SocketHandle, to its owner's onconnection hook.
// Other processes accept on the same endpoint; a connection one of them took
// first is simply not there (EAGAIN).
class SharedListener : public Napi::ObjectWrap<SharedListener> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SharedListener",
                       {
                           InstanceMethod<&SharedListener::Adopt>("adopt"),
                           InstanceMethod<&SharedListener::SetOwner>("setOwner"),
                           InstanceMethod<&SharedListener::Close>("close"),
                           InstanceMethod<&SharedListener::Ref>("ref"),
                           InstanceMethod<&SharedListener::Unref>("unref"),
                           InstanceAccessor<&SharedListener::GetFd>("fd"),
                           InstanceAccessor<&SharedListener::GetLocalPort>("localPort"),
                       });
  }

  explicit SharedListener(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SharedListener>(info) {}

  ~SharedListener() override { delete async_; }

 private:
  struct Watcher {
    uv_poll_t poll;
    SharedListener* owner;
  };

  // adopt(epd, port) -> 0 | -errno: EBADF when the backend does not know
  // the descriptor as an endpoint (see sharesListeners()).
  Napi::Value Adopt(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (epd_ >= 0 || closed_) return Fail(env, EISCONN);
    if (!info[0].IsNumber() || !info[1].IsNumber()) return Fail(env, EINVAL);
    api_ = Scif();
    if (!api_) return Fail(env, ENXIO);
    scif_epd_t epd = Int(info[0]);
    scif_pollepd pe = {epd, POLLIN, 0};
    if (api_->poll(&pe, 1, 0) < 0) return Fail(env, Errno());
    if (pe.revents & POLLNVAL) return Fail(env, EBADF);
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) return Fail(env, EINVAL);
    auto* w = new Watcher();
    w->owner = this;
    int err = uv_poll_init(loop, &w->poll, scif_get_fd(epd));
    if (err == 0) {
      w->poll.data = w;
      err = uv_poll_start(&w->poll, UV_READABLE, OnPoll);
      if (err) uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), Free);
    } else {
      delete w;
    }
    if (err) return Fail(env, err);
    watcher_ = w;
    epd_ = epd;
    port_ = static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value());
    if (!referenced_) uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));
    ObjectWrap::Ref();  // lives until closed
    return Napi::Number::New(env, 0);
  }

  Napi::Value SetOwner(const Napi::CallbackInfo& info) {
    if (info[0].IsObject()) owner_ = Napi::Persistent(info[0].As<Napi::Object>());
    return info.Env().Undefined();
  }

  // close(): stops accepting here and lets go of this process's hold on the
  // endpoint; the other processes' holds keep it listening.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (!closed_) {
      closed_ = true;
      owner_.Reset();
      if (watcher_) {
        watcher_->owner = nullptr;
        uv_poll_stop(&watcher_->poll);
        uv_close(reinterpret_cast<uv_handle_t*>(&watcher_->poll), Free);
        watcher_ = nullptr;
      }
      if (epd_ >= 0) {
        api_->close(epd_);
        epd_ = -1;
        ObjectWrap::Unref();
      }
    }
    return info.Env().Undefined();
  }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    referenced_ = true;
    if (watcher_) uv_ref(reinterpret_cast<uv_handle_t*>(&watcher_->poll));
    return info.Env().Undefined();
  }

  Napi::Value Unref(const Napi::CallbackInfo& info) {
    referenced_ = false;
    if (watcher_) uv_unref(reinterpret_cast<uv_handle_t*>(&watcher_->poll));
    return info.Env().Undefined();
  }

  Napi::Value GetFd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), epd_ >= 0 ? scif_get_fd(epd_) : -1);
  }

  Napi::Value GetLocalPort(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), port_); }

  static void Free(uv_handle_t* handle) { delete static_cast<Watcher*>(handle->data); }

  static void OnPoll(uv_poll_t* handle, int status, int) {
    auto* w = static_cast<Watcher*>(handle->data);
    SharedListener* self = w->owner;
    if (!self) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    if (!JsAlive(env)) {
      uv_poll_stop(handle);
      return;
    }
    if (status < 0) {
      self->Emit({Napi::Number::New(env, status)});
      return;
    }
    self->AcceptSome();
  }

  void AcceptSome() {
    Napi::Env env = Env();
    // Asked on every wake-up: scif_poll() also re-arms the backend's wake-ups.
    scif_pollepd pe = {epd_, POLLIN, 0};
    if (api_->poll(&pe, 1, 0) < 0 || !(pe.revents & POLLIN)) return;
    for (int i = 0; i < kAcceptsPerTurn && epd_ >= 0 && JsAlive(env); i++) {
      scif_portID peer;
      scif_epd_t nepd;
      if (api_->accept(epd_, &peer, &nepd, 0) < 0) {
        if (errno != EAGAIN) Emit({Napi::Number::New(env, Errno())});
        return;
      }
      Napi::HandleScope scope(env);
      int status;
      Napi::Object child = SocketHandle::Adopt(env, nepd, peer, port_, &status);
      if (status) Emit({Napi::Number::New(env, status)});
      else Emit({Napi::Number::New(env, 0), child});
    }
  }

  // The owner's onconnection hook, as a SocketHandle listener calls it.
  void Emit(std::initializer_list<napi_value> args) {
    napi_env env = Env();
    if (owner_.IsEmpty() || !JsAlive(env)) return;
    Napi::FunctionReference& fn = AddonData::Get(env)->socket_hooks[static_cast<int>(Hook::kConnection)];
    if (fn.IsEmpty()) return;
    if (!async_) async_ = new Napi::AsyncContext(Env(), "SCIFSHAREDLISTENER", Value());
    CallFromLoop(env, *async_, owner_.Value(), fn.Value(), args);
  }

  const ScifApi* api_ = nullptr;
  scif_epd_t epd_ = -1;
  uint16_t port_ = 0;
  bool closed_ = false;
  bool referenced_ = true;
  Watcher* watcher_ = nullptr;
  Napi::ObjectReference owner_;
  Napi::AsyncContext* async_ = nullptr;
};

}  // namespace

void RegisterCluster(Napi::Env env, Napi::Object exports) {
  exports.Set("fdReceiver", Napi::Function::New<FdReceiver>(env, "fdReceiver"));
  exports.Set("sendFd", Napi::Function::New<SendFd>(env, "sendFd"));
  exports.Set("receiveFd", Napi::Function::New<ReceiveFd>(env, "receiveFd"));
  exports.Set("closeFd", Napi::Function::New<CloseFd>(env, "closeFd"));
  exports.Set("openListener", Napi::Function::New<OpenListener>(env, "openListener"));
  exports.Set("closeEndpoint", Napi::Function::New<CloseEndpoint>(env, "closeEndpoint"));
  exports.Set("sharesListeners", Napi::Function::New<SharesListeners>(env, "sharesListeners"));
  exports.Set("SharedListener", SharedListener::Define(env));
}

}  // namespace scifnet
