// The disk tier: one file per block, named by its 64-bit content key (`<16 hex>.kvb`) in a
// directory that outlives the process. Files are written to a temp name and renamed, so readers
// see whole files or none; contents are verified by decode_block (checksum, key, tokens), so a torn
// or corrupted file is a miss. The byte budget holds at write time: least-recently-used files are
// deleted to make room. An index of the directory is built at start-up. Engine-thread only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace runnel::cache {

class DiskTier {
 public:
  DiskTier() = default;
  // Creates `dir` when missing, removes stale temp files, indexes existing blocks (oldest first by
  // modification time) and trims to the budget. Throws Error("cache", ...) when dir is unusable.
  DiskTier(std::string dir, int64_t budget_bytes);

  bool enabled() const { return !dir_.empty(); }
  const std::string& dir() const { return dir_; }
  bool contains(uint64_t key) const { return index_.count(key) != 0; }
  // Stores a blob; false when it cannot fit in the budget or the write fails (logged, a miss
  // later).
  bool put(uint64_t key, std::string_view blob);
  // The file's bytes, or nullopt when absent or unreadable. Marks the file recently used.
  std::optional<std::string> get(uint64_t key);
  void remove(uint64_t key);
  std::string path_of(uint64_t key) const;

  int64_t bytes() const { return bytes_; }
  int64_t budget_bytes() const { return budget_bytes_; }
  int64_t n_files() const { return static_cast<int64_t>(index_.size()); }
  int64_t n_evictions() const { return n_evictions_; }

 private:
  struct Entry {
    int64_t bytes;
    uint64_t tick;
  };
  void touch(uint64_t key, Entry& e);
  bool make_room(int64_t bytes);

  std::string dir_;
  int64_t budget_bytes_ = 0;
  int64_t bytes_ = 0;
  int64_t n_evictions_ = 0;
  uint64_t tick_ = 0;
  std::unordered_map<uint64_t, Entry> index_;
  std::map<uint64_t, uint64_t> lru_;  // tick -> key
};

}  // namespace runnel::cache
