// napi_args.h - argument and result conversions the addon's classes share.
#ifndef SCIF_NET_NAPI_ARGS_H
#define SCIF_NET_NAPI_ARGS_H

#include <napi.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace scifnet {
namespace napi_args {

inline int Errno() { return errno > 0 ? -errno : -EIO; }

inline size_t PageSize() {
  static const size_t page = [] {
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? static_cast<size_t>(p) : static_cast<size_t>(4096);
  }();
  return page;
}

// The bytes of a TypedArray, DataView or ArrayBuffer; false for anything else.
inline bool BytesOf(Napi::Value v, uint8_t** data, size_t* len) {
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    Napi::ArrayBuffer ab = ta.ArrayBuffer();
    *data = static_cast<uint8_t*>(ab.Data()) + ta.ByteOffset();
    *len = ta.ByteLength();
  } else if (v.IsDataView()) {
    Napi::DataView dv = v.As<Napi::DataView>();
    *data = static_cast<uint8_t*>(dv.Data());
    *len = dv.ByteLength();
  } else if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
    *data = static_cast<uint8_t*>(ab.Data());
    *len = ab.ByteLength();
  } else {
    return false;
  }
  if (*len == 0) *data = nullptr;
  return true;
}

// Offsets and values come as BigInt (src/scif.ts converts), lengths as
// numbers it checked to be safe integers.
inline int64_t I64(Napi::Value v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Int64Value(&lossless);
  }
  return v.As<Napi::Number>().Int64Value();
}

inline uint64_t U64(Napi::Value v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  return static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
}

inline size_t Size(Napi::Value v) { return static_cast<size_t>(v.As<Napi::Number>().DoubleValue()); }

inline int Int(Napi::Value v) { return v.As<Napi::Number>().Int32Value(); }

inline Napi::Value Status(Napi::Env env, int64_t status) {
  return Napi::Number::New(env, static_cast<double>(status));
}

inline Napi::Value Num(Napi::Env env, double v) { return Napi::Number::New(env, v); }

}  // namespace napi_args
}  // namespace scifnet

#endif
