// rma_lane.cc - see rma_lane.h.
#include "rma_lane.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstdint>
#include <cstring>

#include "addon.h"
#include "backend.h"

namespace scifnet {
namespace rma {

namespace {

size_t EnvSize(const char* name, size_t fallback) {
  const char* v = getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  unsigned long long n = strtoull(v, &end, 10);
  if (end == v || *end) return fallback;
  return static_cast<size_t>(n);
}

}  // namespace

Copy CopyFor(const ScifApi* api) {
  // Read afresh for every connection: tests switch it within a process.
  const char* v = getenv("SCIF_NET_RMA_COPY");
  if (v && strcmp(v, "dma") == 0) return Copy::kDma;
  if (v && strcmp(v, "mmap") == 0) return Copy::kMap;
  return api->name == "virtual" ? Copy::kMap : Copy::kDma;
}

size_t Threshold(Copy copy) {
  static const size_t threshold = EnvSize("SCIF_NET_RMA_THRESHOLD", SIZE_MAX);
  if (threshold != SIZE_MAX) return threshold;
  return copy == Copy::kMap ? 1024 : 16 * 1024;
}

size_t WindowSize() {
  static const size_t size = [] {
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_t n = EnvSize("SCIF_NET_RMA_WINDOW", 1024 * 1024);
    if (n == 0) return size_t{0};
    if (n > (1u << 30)) n = 1u << 30;  // positions are u32s
    return (n + page - 1) / page * page;
  }();
  return size;
}

bool QueueJob(napi_env env, const char* name, std::function<void()> work, std::function<void(bool)> done) {
  struct Job {
    std::function<void()> work;
    std::function<void(bool)> done;
    napi_async_work handle = nullptr;
  };
  auto* job = new Job{std::move(work), std::move(done)};
  napi_value label;
  bool queued = napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &label) == napi_ok &&
                napi_create_async_work(
                    env, nullptr, label, [](napi_env, void* data) { static_cast<Job*>(data)->work(); },
                    [](napi_env e, napi_status status, void* data) {
                      auto* j = static_cast<Job*>(data);
                      napi_delete_async_work(e, j->handle);
                      Napi::HandleScope scope{Napi::Env(e)};
                      j->done(status == napi_ok);
                      delete j;
                    },
                    job, &job->handle) == napi_ok &&
                napi_queue_async_work(env, job->handle) == napi_ok;
  if (queued) return true;
  if (job->handle) napi_delete_async_work(env, job->handle);
  FailedButAlive(env);
  job->done(false);
  delete job;
  return false;
}

off_t RegisterWindow(const ScifApi* api, scif_epd_t epd, size_t size, void** mem) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -errno;
  off_t off = api->register_(epd, p, size, 0, SCIF_PROT_READ | SCIF_PROT_WRITE, 0);
  if (off < 0) {
    int err = errno;
    munmap(p, size);
    return -err;
  }
  *mem = p;
  return off;
}

}  // namespace rma
}  // namespace scifnet
