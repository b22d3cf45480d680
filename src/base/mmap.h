// Read-only memory-mapped files. Errors name the file. An empty file maps to an empty span.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace runnel {

// An allocation for std::free, on 2 MiB transparent huge pages where the kernel allows them
// (THP "madvise" mode needs the hint) when it is at least 4 MiB: then it is 2 MiB aligned and
// rounded up to whole huge pages, and *capacity (if given) says how many bytes it spans. Smaller
// ones are 64-byte aligned. Buffers that are streamed or read in scattered pieces (weights, KV
// blocks) then need 512x fewer TLB entries, and the hardware prefetcher, which stops at page
// boundaries, restarts every 2 MiB instead of every 4 KiB. nullptr when out of memory.
void* alloc_maybe_huge(size_t bytes, size_t* capacity = nullptr);

class MappedFile {
 public:
  MappedFile() = default;
  // Throws Error("io", "<path>: <reason>") when the file cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

 private:
  void reset();
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Tells the OS that [p, p + bytes) of a read-only file mapping will not be read soon: the whole
// pages inside it leave the process's resident set (a later read faults them in again from the
// file, so this is only ever a hint). Never call it on anonymous memory.
void release_mapped_pages(const void* p, size_t bytes);

// Whole-file helpers for small files (configs, JSON). Throw Error("io", ...) naming the path.
std::string read_file(const std::string& path);
void write_file_atomic(const std::string& path, std::string_view contents);

}  // namespace runnel
