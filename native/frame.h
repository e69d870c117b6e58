// frame.h - the stream protocol scif-net sockets speak over a SCIF byte stream.
//
// SCIF has no half-close: closing an endpoint ends both directions, and the
// peer learns of it as ECONNRESET. A socket needs `end()` to reach the peer
// as an orderly end of stream while the other direction stays open, and large
// writes move by RMA beside the queue (rma_lane.h), so each direction is a
// sequence of frames:
//
//   u32 little-endian header: bits 0-29 payload length, bits 30-31 type
//   type 0 DATA: that many payload bytes follow (at most kFrameMaxData are
//                sent in one frame, so control frames find a boundary soon)
//   type 1 FIN:  no payload; the sender will send no more stream bytes
//   type 2 CTRL: a control message, its first byte the opcode:
//       WINDOW_REQ                   the sender wants a receive window
//       WINDOW   {u64 off, u32 size} the receiver's window (size 0: declined)
//       DATA_RMA {u32 pos, u32 len}  the next len stream bytes are at pos in
//                                    the receiver's window (the RMA is done)
//       CREDIT   {u32 bytes}         the receiver copied out that much of
//                                    its window (counted 64-byte aligned)
//   type 3: not a scif-net stream (EPROTO)
//
// Control frames may follow FIN: a side that ended its stream still hands out
// a window and credit for the stream it receives. A peer that vanishes
// without FIN (closed, reset, killed) reads as ECONNRESET, like a TCP reset.
#ifndef SCIF_NET_FRAME_H
#define SCIF_NET_FRAME_H

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace scifnet {

constexpr uint32_t kFrameData = 0;
constexpr uint32_t kFrameFin = 1;
constexpr uint32_t kFrameCtrl = 2;
constexpr size_t kFrameHeader = 4;
constexpr size_t kFrameMaxPayload = (1u << 30) - 1;
// DATA frames are cut at this size: a control frame (credit the peer waits
// for) goes out only between frames, and must not wait behind a large write.
constexpr size_t kFrameMaxData = 16 * 1024;

enum CtrlOp : uint8_t { kCtrlWindowReq = 1, kCtrlWindow = 2, kCtrlDataRma = 3, kCtrlCredit = 4 };
constexpr size_t kCtrlMax = 13;  // the longest control payload (WINDOW)

struct Ctrl {
  uint8_t op = 0;
  uint64_t offset = 0;  // WINDOW
  uint32_t a = 0;       // WINDOW size, DATA_RMA pos, CREDIT bytes
  uint32_t b = 0;       // DATA_RMA len
};

inline void EncodeHeader(uint8_t out[kFrameHeader], uint32_t type, uint32_t len) {
  uint32_t v = (type << 30) | len;
  out[0] = static_cast<uint8_t>(v);
  out[1] = static_cast<uint8_t>(v >> 8);
  out[2] = static_cast<uint8_t>(v >> 16);
  out[3] = static_cast<uint8_t>(v >> 24);
}

inline void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t GetU32(const uint8_t* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

// Writes a control frame (header included) into out; its length.
inline size_t EncodeCtrl(uint8_t out[kFrameHeader + kCtrlMax], const Ctrl& c) {
  uint8_t* p = out + kFrameHeader;
  size_t len = 1;
  p[0] = c.op;
  switch (c.op) {
    case kCtrlWindow:
      PutU32(p + 1, static_cast<uint32_t>(c.offset));
      PutU32(p + 5, static_cast<uint32_t>(c.offset >> 32));
      PutU32(p + 9, c.a);
      len = 13;
      break;
    case kCtrlDataRma:
      PutU32(p + 1, c.a);
      PutU32(p + 5, c.b);
      len = 9;
      break;
    case kCtrlCredit:
      PutU32(p + 1, c.a);
      len = 5;
      break;
    default:
      break;
  }
  EncodeHeader(out, kFrameCtrl, static_cast<uint32_t>(len));
  return kFrameHeader + len;
}

// Turns received bytes back into payload, in place: headers are cut out and
// the payload of the frames decoded in one call is moved together. A call
// stops after a control frame or FIN, so the caller hands out the data that
// came before it first and the stream's order holds; it then decodes the
// rest (from consumed on).
class FrameDecoder {
 public:
  struct Result {
    size_t offset = 0;    // where the payload starts in the buffer
    size_t length = 0;    // payload bytes
    size_t consumed = 0;  // bytes of the buffer this call decoded
    bool fin = false;     // the peer ended its stream
    bool ctrl = false;    // a control message, in `control`
    Ctrl control;
    int error = 0;        // EPROTO: not a scif-net stream
  };

  Result Decode(uint8_t* p, size_t n) {
    Result res;
    size_t r = 0, w = 0;
    bool started = false;
    while (r < n) {
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
      if (ctrl_left_ > 0) {
        while (ctrl_left_ > 0 && r < n) {
          ctrl_[ctrl_have_++] = p[r++];
          ctrl_left_--;
        }
        if (ctrl_left_ > 0) break;
        res.ctrl = true;
        if (!ParseCtrl(&res.control)) res.error = EPROTO;
        break;
      }
      while (header_have_ < kFrameHeader && r < n) header_[header_have_++] = p[r++];
      if (header_have_ < kFrameHeader) break;
      header_have_ = 0;
      uint32_t v = GetU32(header_);
      uint32_t type = v >> 30;
      uint32_t len = v & kFrameMaxPayload;
      if (type == kFrameData && !fin_) {
        payload_left_ = len;
      } else if (type == kFrameFin && len == 0 && !fin_) {
        fin_ = res.fin = true;
        break;
      } else if (type == kFrameCtrl && len >= 1 && len <= kCtrlMax) {
        ctrl_left_ = len;
        ctrl_have_ = 0;
      } else {
        res.error = EPROTO;
        break;
      }
    }
    res.consumed = r;
    res.length = started ? w - res.offset : 0;
    return res;
  }

  bool Finished() const { return fin_; }

 private:
  bool ParseCtrl(Ctrl* c) const {
    c->op = ctrl_[0];
    switch (c->op) {
      case kCtrlWindowReq:
        return ctrl_have_ == 1;
      case kCtrlWindow:
        c->offset = GetU32(ctrl_ + 1) | (static_cast<uint64_t>(GetU32(ctrl_ + 5)) << 32);
        c->a = GetU32(ctrl_ + 9);
        return ctrl_have_ == 13;
      case kCtrlDataRma:
        c->a = GetU32(ctrl_ + 1);
        c->b = GetU32(ctrl_ + 5);
        return ctrl_have_ == 9 && !fin_;
      case kCtrlCredit:
        c->a = GetU32(ctrl_ + 1);
        return ctrl_have_ == 5;
      default:
        return false;
    }
  }

  size_t payload_left_ = 0;
  uint8_t header_[kFrameHeader] = {};
  size_t header_have_ = 0;
  uint8_t ctrl_[kCtrlMax] = {};
  size_t ctrl_have_ = 0, ctrl_left_ = 0;
  bool fin_ = false;
};

}  // namespace scifnet

#endif
