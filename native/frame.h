// frame.h - the stream protocol scif-net sockets speak over a SCIF byte stream.
//
// SCIF has no half-close: closing an endpoint ends both directions, and the
// peer learns of it as ECONNRESET. A socket needs `end()` to reach the peer
// as an orderly end of stream while the other direction stays open, so each
// direction is a sequence of frames:
//
//   u32 little-endian header: bits 0-29 payload length, bits 30-31 type
//   type 0 DATA: that many payload bytes follow
//   type 1 FIN:  no payload; the sender will write nothing more
//
// A peer that vanishes without FIN (closed, reset, killed) reads as
// ECONNRESET, like a TCP reset.
#ifndef SCIF_NET_FRAME_H
#define SCIF_NET_FRAME_H

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace scifnet {

constexpr uint32_t kFrameData = 0;
constexpr uint32_t kFrameFin = 1;
constexpr size_t kFrameHeader = 4;
constexpr size_t kFrameMaxPayload = (1u << 30) - 1;

inline void EncodeHeader(uint8_t out[kFrameHeader], uint32_t type, uint32_t len) {
  uint32_t v = (type << 30) | len;
  out[0] = static_cast<uint8_t>(v);
  out[1] = static_cast<uint8_t>(v >> 8);
  out[2] = static_cast<uint8_t>(v >> 16);
  out[3] = static_cast<uint8_t>(v >> 24);
}

// Turns received bytes back into payload, in place: headers are cut out and
// the payload of every frame in the buffer is moved together, so one receive
// gives one contiguous chunk however many frames it held.
class FrameDecoder {
 public:
  struct Result {
    size_t offset = 0;  // where the payload starts in the buffer
    size_t length = 0;  // payload bytes
    bool fin = false;   // the peer ended its side
    int error = 0;      // EPROTO: not a scif-net stream
  };

  Result Decode(uint8_t* p, size_t n) {
    Result res;
    size_t r = 0, w = 0;
    bool started = false;
    while (r < n && !res.fin) {
      if (payload_left_ > 0) {
        size_t take = payload_left_ < n - r ? payload_left_ : n - r;
        if (!started) {
          res.offset = w = r;
          started = true;
        } else if (w != r) {
          std::memmove(p + w, p + r, take);
        }
        w += take;
        r += take;
        payload_left_ -= take;
        continue;
      }
      while (header_have_ < kFrameHeader && r < n) header_[header_have_++] = p[r++];
      if (header_have_ < kFrameHeader) break;
      header_have_ = 0;
      uint32_t v = header_[0] | (header_[1] << 8) | (header_[2] << 16) |
                   (static_cast<uint32_t>(header_[3]) << 24);
      uint32_t type = v >> 30;
      if (type == kFrameData) {
        payload_left_ = v & kFrameMaxPayload;
      } else if (type == kFrameFin && (v & kFrameMaxPayload) == 0) {
        res.fin = true;
      } else {
        res.error = EPROTO;
        break;
      }
    }
    if (res.fin && r < n) res.error = EPROTO;  // nothing may follow FIN
    res.length = started ? w - res.offset : 0;
    return res;
  }

 private:
  size_t payload_left_ = 0;
  uint8_t header_[kFrameHeader] = {};
  size_t header_have_ = 0;
};

}  // namespace scifnet

#endif
