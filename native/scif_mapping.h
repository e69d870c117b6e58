// scif_mapping.h - the peer's windows mapped into this process (mmap), kept
// mapped while requests use them.
#ifndef SCIF_NET_SCIF_MAPPING_H
#define SCIF_NET_SCIF_MAPPING_H

#include <cstddef>
#include <cstdint>

namespace scifnet {

struct Mapping;

// Keeps a remote mapping's pages mapped while a request reads or writes them
// (an unmap() meanwhile detaches at once and unmaps when the last pin goes).
class MappingPin {
 public:
  MappingPin() = default;
  MappingPin(const uint8_t* data, size_t len);  // pins the mapping holding them, if any
  MappingPin(MappingPin&& other) noexcept : m_(other.m_) { other.m_ = nullptr; }
  MappingPin& operator=(MappingPin&& other) noexcept;
  MappingPin(const MappingPin&) = delete;
  MappingPin& operator=(const MappingPin&) = delete;
  ~MappingPin();

 private:
  Mapping* m_ = nullptr;
};

// Live mappings in this process, for tests that look for leaks.
size_t MappingCount();

}  // namespace scifnet

#endif
