// DiskTier: directory index, LRU trimming, temp-file + rename writes.
#include "cache/disk_tier.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "base/error.h"
#include "base/log.h"

namespace runnel::cache {
namespace fs = std::filesystem;
namespace {

constexpr const char* kExt = ".kvb";

bool parse_key(const std::string& name, uint64_t* key) {
  if (name.size() != 16 + 4 || name.substr(16) != kExt) return false;
  uint64_t v = 0;
  for (int i = 0; i < 16; ++i) {
    char c = name[static_cast<size_t>(i)];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *key = v;
  return true;
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

DiskTier::DiskTier(std::string dir, int64_t budget_bytes)
    : dir_(std::move(dir)), budget_bytes_(budget_bytes) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  check(!ec && fs::is_directory(dir_), "cache", "--kv-cache-dir ", dir_,
        ": cannot create directory: ", ec.message());
  struct Found {
    fs::file_time_type time;
    uint64_t key;
    int64_t bytes;
  };
  std::vector<Found> found;
  for (const auto& ent : fs::directory_iterator(dir_, ec)) {
    std::string name = ent.path().filename().string();
    if (name.find(".tmp.") != std::string::npos) {  // a write interrupted by a crash
      fs::remove(ent.path(), ec);
      continue;
    }
    uint64_t key;
    if (!ent.is_regular_file(ec) || !parse_key(name, &key)) continue;
    found.push_back({ent.last_write_time(ec), key, static_cast<int64_t>(ent.file_size(ec))});
  }
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
    return a.time != b.time ? a.time < b.time : a.key < b.key;
  });
  for (const Found& f : found) {
    Entry e{f.bytes, ++tick_};
    index_[f.key] = e;
    lru_[e.tick] = f.key;
    bytes_ += f.bytes;
  }
  make_room(0);
  RUNNEL_INFO("cache", "disk tier ", dir_, ": ", index_.size(), " blocks, ", format_bytes(bytes_));
}

std::string DiskTier::path_of(uint64_t key) const {
  static const char* hex = "0123456789abcdef";
  std::string name(16, '0');
  for (int i = 15; i >= 0; --i, key >>= 4) name[static_cast<size_t>(i)] = hex[key & 15];
  return dir_ + "/" + name + kExt;
}

void DiskTier::touch(uint64_t key, Entry& e) {
  lru_.erase(e.tick);
  e.tick = ++tick_;
  lru_[e.tick] = key;
}

bool DiskTier::make_room(int64_t bytes) {
  if (bytes > budget_bytes_) return false;
  while (bytes_ + bytes > budget_bytes_ && !lru_.empty()) {
    uint64_t victim = lru_.begin()->second;
    remove(victim);
    ++n_evictions_;
  }
  return bytes_ + bytes <= budget_bytes_;
}

bool DiskTier::put(uint64_t key, std::string_view blob) {
  if (!enabled()) return false;
  const int64_t n = static_cast<int64_t>(blob.size());
  if (auto it = index_.find(key); it != index_.end()) {
    // Content-addressed and deterministically encoded: a file of the same size holds the same
    // bytes (unless damaged, which reading detects). Another size means a torn write: replace it.
    if (it->second.bytes == n) {
      touch(key, it->second);
      return true;
    }
    remove(key);
  }
  if (!make_room(n)) return false;
  const std::string path = path_of(key);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  // No fsync: a file torn by a crash fails its checksum and costs a miss, never wrong data.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && write_all(fd, blob.data(), blob.size());
  if (fd >= 0) ok = (::close(fd) == 0) && ok;
  if (ok) ok = ::rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok) {
    RUNNEL_WARN("cache", "cannot write ", path, ": ", std::strerror(errno));
    ::unlink(tmp.c_str());
    return false;
  }
  Entry e{n, ++tick_};
  index_[key] = e;
  lru_[e.tick] = key;
  bytes_ += n;
  return true;
}

std::optional<std::string> DiskTier::get(uint64_t key) {
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  const std::string path = path_of(key);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    remove(key);
    return std::nullopt;
  }
  std::string data;
  data.resize(static_cast<size_t>(std::max<int64_t>(it->second.bytes, 0)) + 1);
  size_t off = 0;
  while (true) {
    if (off == data.size()) data.resize(data.size() * 2);
    ssize_t r = ::read(fd, data.data() + off, data.size() - off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    off += static_cast<size_t>(r);
  }
  ::close(fd);
  data.resize(off);
  touch(key, it->second);
  return data;
}

void DiskTier::remove(uint64_t key) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  lru_.erase(it->second.tick);
  bytes_ -= it->second.bytes;
  index_.erase(it);
  ::unlink(path_of(key).c_str());
}

}  // namespace runnel::cache
