// rma_lane.h - what a socket's bulk path (frame.h's control frames) needs
// besides the stream: its settings, its threadpool jobs, its receive window.
//
// A write of at least Threshold() bytes on a connection moves by RMA: the
// receiver registers a window (lazily, on the sender's first WINDOW_REQ: an
// idle connection pins nothing), the sender copies into it chunk by chunk
// (Copy below) and announces each chunk with DATA_RMA on the queue once it is
// in the window, so stream order holds; the receiver copies the chunk out and
// returns CREDIT. Until the window comes the asking write goes by messages.
// A window that cannot be had (RLIMIT_MEMLOCK, ENOMEM) is declined, and the
// connection's writes go by scif_send as before: a fallback, never an error.
// bench/README.md ("The bulk path") has the measurements behind the numbers.
#ifndef SCIF_NET_RMA_LANE_H
#define SCIF_NET_RMA_LANE_H

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <functional>

extern "C" {
#include "scif.h"
}

namespace scifnet {

struct ScifApi;

namespace rma {

// Chunks: large enough that a threadpool round trip is small beside the copy,
// small enough that several are in flight in one window.
constexpr size_t kChunk = 256 * 1024;
constexpr int kMaxInFlight = 4;
constexpr size_t kAlign = 64;  // positions in the window: a cache line
// What a paused reader takes off the queue (so control frames behind it are
// seen) before it stops, as a socket's receive buffer bounds what it holds.
constexpr size_t kPausedCap = 256 * 1024;

// When a connection asks for a window: a write (or batch) of kAskWrite
// bytes, or kAskAfter bytes sent by messages so far. A window pins
// WindowSize() bytes on the peer and makes the connection's RMA channel (two
// more descriptors a side): a connection that moves less never repays it (a
// few KiB of one-shot requests and answers, HTTP's short bodies).
constexpr size_t kAskWrite = 64 * 1024;
constexpr size_t kAskAfter = 256 * 1024;

inline size_t Align(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

// SCIF_NET_RMA_WINDOW (bytes, whole pages, default 1 MiB; 0 declines every
// window), read once per process.
size_t WindowSize();

// How the sender copies into the peer's window. kDma: scif_vwriteto on the
// threadpool (a card's DMA engine does the copy). kMap: the window mapped
// with scif_mmap and copied into from the loop thread, so the bytes are in
// the peer's window before the write's callback with no thread hand-off.
// SCIF_NET_RMA_COPY=dma|mmap; by default mmap on the virtual fabric (whose
// "DMA engine" is itself a memcpy on a thread of ours) and dma on a
// dlopen'ed libscif (a card, or the MPSS-strict run). Read when a connection
// first asks (a getenv per write was a share of a small write's CPU).
enum class Copy : uint8_t { kDma, kMap };
Copy CopyFor(const ScifApi* api);

// The smallest write (or batch of writes node:net gathered) that moves by
// RMA: SCIF_NET_RMA_THRESHOLD bytes (0 turns the bulk path off), by default
// 1 KiB when copying through the mapping (a memcpy and a 13-byte frame beat
// pushing the bytes through the 4 KiB queue: bench/README.md) and 16 KiB with
// scif_vwriteto, whose every chunk is a threadpool round trip and, on a card,
// a DMA set up and waited for.
size_t Threshold(Copy copy);

struct Stats {
  uint64_t sent_rma = 0, sent_messages = 0;
  uint64_t received_rma = 0, received_messages = 0;
  uint32_t windows = 0;    // receive windows this end registered
  uint32_t fallbacks = 0;  // times this end's writes went back to messages
};

// Runs work() on the threadpool, then done(ran) on the loop (ran false when
// the work could not be queued: done runs at once then). False when even that
// failed to be set up.
bool QueueJob(napi_env env, const char* name, std::function<void()> work, std::function<void(bool)> done);

// A receive window: size bytes of fresh anonymous memory, registered on epd
// for the peer to write. *mem and the offset, or -errno with nothing kept.
off_t RegisterWindow(const ScifApi* api, scif_epd_t epd, size_t size, void** mem);

}  // namespace rma
}  // namespace scifnet

#endif
