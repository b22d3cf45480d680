// The fake model of fake_kv.h.
#include "fake_kv.h"

#include <cstring>
#include <random>

#include "base/half.h"
#include "base/strings.h"

namespace runnel::cache::testing {

uint32_t prefix_hash(std::span<const int32_t> tokens, int p) {
  uint64_t h = 1469598103934665603ULL;
  for (int i = 0; i <= p; ++i) {
    h ^= static_cast<uint32_t>(tokens[static_cast<size_t>(i)]);
    h *= 1099511628211ULL;
  }
  return static_cast<uint32_t>((h ^ (h >> 29)) & 0xffffff);
}

namespace {

// Element d of the row for (position p, layer, kind 0=K/1=V).
float element(std::span<const int32_t> tokens, int p, int layer, int kind, int d, uint32_t ph) {
  switch (d) {
    case 0:
      return static_cast<float>(tokens[static_cast<size_t>(p)]);
    case 1:
      return static_cast<float>(p);
    case 2:
      return static_cast<float>(layer);
    case 3:
      return static_cast<float>(kind);
    case 4:
      return static_cast<float>(ph);
    default:
      return static_cast<float>((ph + static_cast<uint32_t>(d * 7 + layer)) % 1000);
  }
}

void write_row(uint8_t* row, const KvLayout& l, std::span<const int32_t> tokens, int p, int layer,
               int kind, uint32_t ph) {
  for (int d = 0; d < l.kv_dim; ++d) {
    float v = element(tokens, p, layer, kind, d, ph);
    if (l.dtype == DType::kF32) {
      std::memcpy(row + 4 * d, &v, 4);
    } else {
      uint16_t h = f32_to_f16(static_cast<float>(static_cast<int>(v) % 2048));
      std::memcpy(row + 2 * d, &h, 2);
    }
  }
}

}  // namespace

void compute(Sequence& seq, const KvLayout& l, int from, int64_t* computed) {
  std::span<const int32_t> t = seq.tokens();
  for (int p = from; p < seq.n_tokens(); ++p) {
    const uint32_t ph = prefix_hash(t, p);
    for (int layer = 0; layer < l.n_layers; ++layer) {
      write_row(static_cast<uint8_t*>(seq.k_row_mut(layer, p)), l, t, p, layer, 0, ph);
      write_row(static_cast<uint8_t*>(seq.v_row_mut(layer, p)), l, t, p, layer, 1, ph);
    }
  }
  if (computed) *computed += seq.n_tokens() - from;
}

std::string verify(const Sequence& seq, const KvLayout& l) {
  std::span<const int32_t> t = seq.tokens();
  std::vector<uint8_t> want(l.row_bytes());
  const int bt = l.block_tokens;
  for (int p = 0; p < seq.n_tokens(); ++p) {
    const uint32_t ph = prefix_hash(t, p);
    for (int layer = 0; layer < l.n_layers; ++layer) {
      for (int kind = 0; kind < 2; ++kind) {
        write_row(want.data(), l, t, p, layer, kind, ph);
        // Read through the per-layer block pointer list, as the attention kernel will.
        const void* const* blocks = kind == 0 ? seq.k_blocks(layer) : seq.v_blocks(layer);
        const uint8_t* row = static_cast<const uint8_t*>(blocks[p / bt]) +
                             static_cast<size_t>(p % bt) * l.row_bytes();
        if (std::memcmp(row, want.data(), want.size()) != 0) {
          float got[2] = {0, 0};
          if (l.dtype == DType::kF32) std::memcpy(got, row, 8);
          return str_cat("position ", p, " layer ", layer, kind == 0 ? " K" : " V",
                         ": expected token ", t[static_cast<size_t>(p)], ", row holds token ",
                         got[0], " at position ", got[1]);
        }
      }
    }
  }
  return "";
}

std::vector<uint8_t> fake_state(std::span<const int32_t> tokens, int n, size_t bytes) {
  std::vector<uint8_t> s(bytes);
  const uint32_t ph = n > 0 ? prefix_hash(tokens, n - 1) : 0;
  for (size_t i = 0; i < bytes; ++i) s[i] = static_cast<uint8_t>((ph >> (8 * (i % 3))) + i + n);
  return s;
}

TurnResult run_turn(PrefixCache& cache, std::span<const int32_t> prompt,
                    std::span<const int32_t> gen) {
  TurnResult r;
  const KvLayout& l = cache.layout();
  Sequence seq = cache.start(prompt);
  r.n_cached = seq.n_cached();
  r.error = verify(seq, l);
  if (!r.error.empty()) return r;
  seq.append(prompt.subspan(static_cast<size_t>(seq.n_cached())));
  compute(seq, l, r.n_cached, &r.computed);
  seq.commit();
  for (int32_t tok : gen) {
    const int from = seq.n_tokens();
    seq.append(std::span<const int32_t>(&tok, 1));
    compute(seq, l, from, &r.computed);
  }
  seq.commit(/*include_partial=*/true);
  r.error = verify(seq, l);
  seq.release();
  return r;
}

std::vector<int32_t> random_tokens(uint64_t seed, int n, int32_t lo, int32_t hi) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(lo, hi - 1);
  std::vector<int32_t> out(static_cast<size_t>(n));
  for (int32_t& t : out) t = dist(rng);
  return out;
}

std::vector<int32_t> concat(std::span<const int32_t> a, std::span<const int32_t> b) {
  std::vector<int32_t> out(a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

KvLayout small_layout(int block_tokens, size_t state_bytes) {
  KvLayout l;
  l.n_layers = 2;
  l.block_tokens = block_tokens;
  l.kv_dim = 8;
  l.dtype = DType::kF32;
  l.state_bytes = state_bytes;
  return l;
}

}  // namespace runnel::cache::testing
