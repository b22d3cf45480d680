// Prefix-cache benchmark: lookup and insert speed for 20 conversations sharing a 1000-token
// prefix, and restore throughput from each tier (cold raw, cold zstd, disk). The KV layout
// defaults to Qwen3-0.6B's (28 layers, 8 KV heads x 128, f16, 16-token blocks). Compute time is
// not modelled: compare "restore tokens/s" with the model's prefill tokens/s (`runnel bench`).
//   bench_cache [--layers 28] [--kv-dim 1024] [--block 16] [--convs 20] [--prefix 1000]
//               [--own 200] [--dir /tmp/...]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "base/half.h"
#include "base/strings.h"
#include "base/time.h"
#include "cache/prefix_cache.h"

using namespace runnel;
using namespace runnel::cache;

namespace {

struct Args {
  int layers = 28, kv_dim = 1024, block = 16, convs = 20, prefix = 1000, own = 200;
  std::string dir = "/tmp/runnel-bench-cache";
};

std::vector<int32_t> tokens(uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % 150000);
  return t;
}

// Fills positions [from, n) with f16 values of roughly unit variance (KV-like entropy).
void fill(Sequence& seq, const KvLayout& l, int from, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (int p = from; p < seq.n_tokens(); ++p) {
    for (int layer = 0; layer < l.n_layers; ++layer) {
      for (void* row : {seq.k_row_mut(layer, p), seq.v_row_mut(layer, p)}) {
        uint16_t* h = static_cast<uint16_t*>(row);
        for (int d = 0; d < l.kv_dim; ++d) {
          s ^= s << 13;
          s ^= s >> 7;
          s ^= s << 17;
          const float u =
              static_cast<float>((s & 0xffff) + ((s >> 16) & 0xffff) + ((s >> 32) & 0xffff)) /
                  65536.0f -
              1.5f;
          h[d] = f32_to_f16(u * 2.0f);
        }
      }
    }
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Drops a directory's files from the page cache so a restore reads the device.
void drop_page_cache(const std::string& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    int fd = ::open(e.path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

void lookup_insert(const Args& a, const KvLayout& l) {
  CacheConfig c;
  c.hot_bytes = int64_t{8} << 30;
  c.cold_bytes = 0;
  PrefixCache cache(l, c, "bench");
  const std::vector<int32_t> system = tokens(1, a.prefix);
  std::vector<std::vector<int32_t>> convs;
  std::vector<double> t_first, t_start, t_append, t_commit, t_revisit, t_revisit_release;
  int64_t cached_first = 0;
  for (int i = 0; i < a.convs; ++i) {
    std::vector<int32_t> p = system;
    std::vector<int32_t> own = tokens(100 + static_cast<uint64_t>(i), a.own);
    p.insert(p.end(), own.begin(), own.end());
    convs.push_back(p);
    int64_t t0 = now_ns();
    Sequence seq = cache.start(p);
    int64_t t1 = now_ns();
    seq.append(std::span<const int32_t>(p).subspan(static_cast<size_t>(seq.n_cached())));
    int64_t t2 = now_ns();
    fill(seq, l, seq.n_cached(), static_cast<uint64_t>(i));
    int64_t t3 = now_ns();
    seq.commit(true);
    int64_t t4 = now_ns();
    (i == 0 ? t_first : t_start).push_back((t1 - t0) / 1e3);
    if (i > 0) cached_first += seq.n_cached();
    t_append.push_back((t2 - t1) / 1e3);
    t_commit.push_back((t4 - t3) / 1e3);
  }
  for (int rep = 0; rep < 3; ++rep) {
    for (const auto& p : convs) {
      int64_t t0 = now_ns();
      Sequence seq = cache.start(p);
      int64_t t1 = now_ns();
      seq.release();
      int64_t t2 = now_ns();
      t_revisit.push_back((t1 - t0) / 1e3);
      t_revisit_release.push_back((t2 - t0) / 1e3);
    }
  }
  CacheStats s = cache.stats();
  std::printf(
      "lookup/insert: %d conversations x (%d shared + %d own) tokens, block %d tokens, "
      "%s per block\n",
      a.convs, a.prefix, a.own, l.block_tokens,
      format_bytes(static_cast<double>(l.slot_bytes())).c_str());
  std::printf(
      "  start() new conversation, shared prefix found: median %.1f us (%.0f tokens "
      "reused on average)\n",
      median(t_start), static_cast<double>(cached_first) / (a.convs - 1));
  std::printf("  append(%d-token rest) allocating blocks:        median %.1f us\n", a.own,
              median(t_append));
  std::printf("  commit() full conversation into the trie:      median %.1f us\n",
              median(t_commit));
  std::printf(
      "  start() revisit, %d of %d tokens hot:          median %.1f us (+release %.1f us)\n",
      a.prefix + a.own - 1, a.prefix + a.own, median(t_revisit), median(t_revisit_release));
  std::printf("  hot pool: %lld blocks, %s; trie slots %zu\n", static_cast<long long>(s.hot.blocks),
              format_bytes(static_cast<double>(s.hot.blocks) * l.slot_bytes()).c_str(),
              cache.trie().n_slots());
}

// with_eviction: the hot pool is full of another (unreferenced) conversation, so every restored
// block first demotes one of its blocks; otherwise the pool was emptied (evict_unused) beforehand.
void restore(const Args& a, const KvLayout& l, const char* name, int64_t cold_bytes, int level,
             bool disk, bool drop_cache, bool with_eviction) {
  const int n = a.prefix + a.own;
  const int64_t conv_blocks = (n + l.block_tokens - 1) / l.block_tokens;
  CacheConfig c;
  c.hot_bytes = (conv_blocks + 8) * static_cast<int64_t>(l.slot_bytes());
  c.cold_bytes = cold_bytes;
  c.cold_zstd_level = level;
  if (disk) {
    std::filesystem::remove_all(a.dir);
    c.disk_dir = a.dir;
    c.disk_bytes = int64_t{64} << 30;
  }
  PrefixCache cache(l, c, "bench");
  const std::vector<int32_t> conv = tokens(7, n);
  {
    Sequence seq = cache.start(conv);
    seq.append(conv);
    fill(seq, l, 0, 7);
    seq.commit(true);
  }
  std::vector<double> secs;
  int64_t restored = 0;
  for (int rep = 0; rep < 3; ++rep) {
    {  // push the conversation out of the hot pool with another one of the same size
      const std::vector<int32_t> other = tokens(1000 + static_cast<uint64_t>(rep), n);
      Sequence seq = cache.start(other);
      seq.append(std::span<const int32_t>(other).subspan(static_cast<size_t>(seq.n_cached())));
      fill(seq, l, seq.n_cached(), 1000 + static_cast<uint64_t>(rep));
      seq.commit(true);
    }
    if (!with_eviction) cache.evict_unused();
    if (drop_cache) drop_page_cache(a.dir);
    CacheStats before = cache.stats();
    int64_t t0 = now_ns();
    Sequence seq = cache.start(conv);
    int64_t t1 = now_ns();
    CacheStats after = cache.stats();
    restored = (after.cold.restored_tokens - before.cold.restored_tokens) +
               (after.disk.restored_tokens - before.disk.restored_tokens);
    secs.push_back((t1 - t0) / 1e9);
    if (seq.n_cached() != n - 1) std::printf("  (only %d tokens cached)\n", seq.n_cached());
  }
  const double t = median(secs);
  const double bytes = static_cast<double>(restored) / l.block_tokens * l.kv_bytes();
  CacheStats s = cache.stats();
  const double stored =
      disk ? static_cast<double>(s.disk.bytes) / std::max<int64_t>(1, s.disk.blocks)
           : static_cast<double>(s.cold.bytes) / std::max<int64_t>(1, s.cold.blocks);
  std::printf(
      "  %-28s %7.1f ms for %lld tokens: %9.0f tokens/s, %6.2f GB/s of KV; stored "
      "%.0f%% of raw\n",
      name, t * 1e3, static_cast<long long>(restored), restored / t, bytes / t / 1e9,
      100.0 * stored / static_cast<double>(l.kv_bytes()));
}

// The 20 conversations again, with a hot pool too small for all of them (and a cold tier too
// small for the rest), then every conversation revisited in turn: where its tokens came from,
// how long start() took, and that every tier stayed within its budget.
void under_pressure(const Args& a, const KvLayout& l) {
  CacheConfig c;
  c.hot_bytes = int64_t{256} << 20;
  c.cold_bytes = int64_t{128} << 20;
  std::filesystem::remove_all(a.dir);
  c.disk_dir = a.dir;
  c.disk_bytes = int64_t{4} << 30;
  PrefixCache cache(l, c, "bench");
  const std::vector<int32_t> system = tokens(1, a.prefix);
  std::vector<std::vector<int32_t>> convs;
  int64_t peak_hot = 0, peak_cold = 0;
  for (int i = 0; i < a.convs; ++i) {
    std::vector<int32_t> p = system;
    std::vector<int32_t> own = tokens(100 + static_cast<uint64_t>(i), a.own);
    p.insert(p.end(), own.begin(), own.end());
    convs.push_back(p);
    Sequence seq = cache.start(p);
    seq.append(std::span<const int32_t>(p).subspan(static_cast<size_t>(seq.n_cached())));
    seq.commit(true);
    CacheStats s = cache.stats();
    peak_hot = std::max(peak_hot, s.hot.bytes);
    peak_cold = std::max(peak_cold, s.cold.bytes);
  }
  CacheStats before = cache.stats();
  std::vector<double> t;
  int64_t cached = 0;
  for (const auto& p : convs) {
    int64_t t0 = now_ns();
    Sequence seq = cache.start(p);
    t.push_back((now_ns() - t0) / 1e6);
    cached += seq.n_cached();
    CacheStats s = cache.stats();
    peak_hot = std::max(peak_hot, s.hot.bytes);
    peak_cold = std::max(peak_cold, s.cold.bytes);
  }
  CacheStats s = cache.stats();
  std::printf(
      "revisit under memory pressure: hot %s, cold %s, disk %s budgets; %d conversations "
      "of %d tokens\n",
      format_bytes(static_cast<double>(c.hot_bytes)).c_str(),
      format_bytes(static_cast<double>(c.cold_bytes)).c_str(),
      format_bytes(static_cast<double>(c.disk_bytes)).c_str(), a.convs, a.prefix + a.own);
  std::printf("  revisits reused %lld of %lld tokens; blocks from hot %lld, cold %lld, disk %lld\n",
              static_cast<long long>(cached),
              static_cast<long long>(static_cast<int64_t>(convs.size()) * (a.prefix + a.own)),
              static_cast<long long>(s.hot.hits - before.hot.hits),
              static_cast<long long>(s.cold.hits - before.cold.hits),
              static_cast<long long>(s.disk.hits - before.disk.hits));
  std::printf("  start() per revisit: median %.2f ms, max %.2f ms\n", median(t),
              *std::max_element(t.begin(), t.end()));
  std::printf("  peak hot %s, peak cold %s, disk %s (%lld files)\n",
              format_bytes(static_cast<double>(peak_hot)).c_str(),
              format_bytes(static_cast<double>(peak_cold)).c_str(),
              format_bytes(static_cast<double>(s.disk.bytes)).c_str(),
              static_cast<long long>(s.disk.blocks));
  std::filesystem::remove_all(a.dir);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--layers")
      a.layers = std::atoi(v);
    else if (k == "--kv-dim")
      a.kv_dim = std::atoi(v);
    else if (k == "--block")
      a.block = std::atoi(v);
    else if (k == "--convs")
      a.convs = std::atoi(v);
    else if (k == "--prefix")
      a.prefix = std::atoi(v);
    else if (k == "--own")
      a.own = std::atoi(v);
    else if (k == "--dir")
      a.dir = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  KvLayout l;
  l.n_layers = a.layers;
  l.kv_dim = a.kv_dim;
  l.block_tokens = a.block;
  l.dtype = DType::kF16;
  lookup_insert(a, l);
  under_pressure(a, l);
  std::printf("tier restore of one %d-token conversation (median of 3):\n", a.prefix + a.own);
  restore(a, l, "cold tier, raw", int64_t{8} << 30, 0, false, false, false);
  restore(a, l, "cold tier, zstd level 1", int64_t{8} << 30, 1, false, false, false);
  restore(a, l, "disk tier, page cache", 0, 0, true, false, false);
  restore(a, l, "disk tier, dropped page cache", 0, 0, true, true, false);
  std::printf("the same, evicting an equal amount to the tier while restoring:\n");
  restore(a, l, "cold tier, raw", int64_t{8} << 30, 0, false, false, true);
  restore(a, l, "cold tier, zstd level 1", int64_t{8} << 30, 1, false, false, true);
  restore(a, l, "disk tier, page cache", 0, 0, true, false, true);
  std::filesystem::remove_all(a.dir);
  return 0;
}
