// Block blob encoding: header | int32 tokens[n] | payload (raw rows or zstd frame).
#include "cache/block_codec.h"

#include <zstd.h>

#include <cstring>
#include <vector>

#include "base/assert.h"
#include "base/error.h"
#include "cache/hash.h"

namespace runnel::cache {
namespace {

constexpr uint64_t kMagic = 0x3130424b4c4e5252ULL;  // "RRNLKB01" little-endian
constexpr uint32_t kRaw = 0, kZstd = 1;             // kZstd: byte planes (see to_planes), then zstd

struct Header {
  uint64_t magic;
  uint64_t key;
  uint64_t parent_key;
  uint64_t layout_fp;
  uint64_t raw_bytes;
  uint64_t stored_bytes;
  uint64_t checksum;
  uint32_t n_tokens;
  uint32_t state_tokens;
  uint32_t compression;
  uint32_t reserved;
};
static_assert(sizeof(Header) == 72);

size_t raw_payload_bytes(const KvLayout& l, int n_tokens, int state_tokens) {
  size_t b = l.row_bytes() * static_cast<size_t>(n_tokens) * 2 * static_cast<size_t>(l.n_layers);
  if (state_tokens > 0) b += l.state_bytes;
  return b;
}

uint64_t checksum(const Header& h, const void* tokens, size_t token_bytes, const void* payload) {
  Header c = h;
  c.checksum = 0;
  uint64_t s = hash64(&c, sizeof(c), 0x636b73756d);
  s = hash64(tokens, token_bytes, s);
  return hash64(payload, h.stored_bytes, s);
}

// Gathers the filled rows of a block into `out` (raw payload order).
void gather(const KvLayout& l, const uint8_t* block, int n, int state_tokens, uint8_t* out) {
  size_t rows = l.row_bytes() * static_cast<size_t>(n);
  for (int layer = 0; layer < l.n_layers; ++layer) {
    std::memcpy(out, block + l.k_offset(layer), rows);
    out += rows;
    std::memcpy(out, block + l.v_offset(layer), rows);
    out += rows;
  }
  if (state_tokens > 0) std::memcpy(out, block + l.state_offset(), l.state_bytes);
}

void scatter(const KvLayout& l, const uint8_t* in, int n, int state_tokens, uint8_t* block) {
  size_t rows = l.row_bytes() * static_cast<size_t>(n);
  for (int layer = 0; layer < l.n_layers; ++layer) {
    std::memcpy(block + l.k_offset(layer), in, rows);
    in += rows;
    std::memcpy(block + l.v_offset(layer), in, rows);
    in += rows;
  }
  if (state_tokens > 0) std::memcpy(block + l.state_offset(), in, l.state_bytes);
}

std::vector<uint8_t>& scratch() {
  thread_local std::vector<uint8_t> buf;
  return buf;
}
std::vector<uint8_t>& scratch2() {
  thread_local std::vector<uint8_t> buf;
  return buf;
}

// Before compression, the bytes of each element are split into planes (all first bytes, then
// all second bytes, ...): sign and exponent bytes of f16/f32 values repeat a lot and compress
// well once they are contiguous, while mantissa bytes barely compress at all.
void to_planes(const uint8_t* in, size_t n, size_t width, uint8_t* out) {
  const size_t n_elems = n / width;
  for (size_t b = 0; b < width; ++b)
    for (size_t i = 0; i < n_elems; ++i) out[b * n_elems + i] = in[i * width + b];
  std::memcpy(out + n_elems * width, in + n_elems * width, n - n_elems * width);
}

void from_planes(const uint8_t* in, size_t n, size_t width, uint8_t* out) {
  const size_t n_elems = n / width;
  for (size_t b = 0; b < width; ++b)
    for (size_t i = 0; i < n_elems; ++i) out[i * width + b] = in[b * n_elems + i];
  std::memcpy(out + n_elems * width, in + n_elems * width, n - n_elems * width);
}

}  // namespace

std::string encode_block(const KvLayout& l, const uint8_t* block, uint64_t key, uint64_t parent_key,
                         std::span<const int32_t> tokens, int state_tokens, int zstd_level) {
  const int n = static_cast<int>(tokens.size());
  RUNNEL_ASSERT(n >= 1 && n <= l.block_tokens);
  Header h{};
  h.magic = kMagic;
  h.key = key;
  h.parent_key = parent_key;
  h.layout_fp = l.fingerprint();
  h.raw_bytes = raw_payload_bytes(l, n, state_tokens);
  h.n_tokens = static_cast<uint32_t>(n);
  h.state_tokens = static_cast<uint32_t>(state_tokens);
  const size_t token_bytes = tokens.size_bytes();
  std::string out;
  if (zstd_level <= 0) {
    h.compression = kRaw;
    h.stored_bytes = h.raw_bytes;
    out.resize(sizeof(Header) + token_bytes + h.raw_bytes);
    gather(l, block, n, state_tokens,
           reinterpret_cast<uint8_t*>(out.data()) + sizeof(Header) + token_bytes);
  } else {
    std::vector<uint8_t>& raw = scratch();
    std::vector<uint8_t>& planes = scratch2();
    raw.resize(h.raw_bytes);
    planes.resize(h.raw_bytes);
    gather(l, block, n, state_tokens, raw.data());
    to_planes(raw.data(), raw.size(), l.elem_bytes(), planes.data());
    size_t bound = ZSTD_compressBound(planes.size());
    out.resize(sizeof(Header) + token_bytes + bound);
    size_t z = ZSTD_compress(out.data() + sizeof(Header) + token_bytes, bound, planes.data(),
                             planes.size(), zstd_level);
    if (ZSTD_isError(z)) fail("cache", "zstd compression failed: ", ZSTD_getErrorName(z));
    h.compression = kZstd;
    h.stored_bytes = z;
    out.resize(sizeof(Header) + token_bytes + z);
    out.shrink_to_fit();  // the cold tier's budget counts size(): hold no more than that
  }
  std::memcpy(out.data() + sizeof(Header), tokens.data(), token_bytes);
  h.checksum = checksum(h, out.data() + sizeof(Header), token_bytes,
                        out.data() + sizeof(Header) + token_bytes);
  std::memcpy(out.data(), &h, sizeof(h));
  return out;
}

bool peek_block_header(std::string_view blob, BlockHeaderInfo* info) {
  if (blob.size() < sizeof(Header)) return false;
  Header h;
  std::memcpy(&h, blob.data(), sizeof(h));
  if (h.magic != kMagic) return false;
  info->key = h.key;
  info->n_tokens = static_cast<int>(h.n_tokens);
  info->state_tokens = static_cast<int>(h.state_tokens);
  return true;
}

bool decode_block(const KvLayout& l, std::string_view blob, uint64_t key, uint64_t parent_key,
                  std::span<const int32_t> tokens, uint8_t* block, int* state_tokens,
                  std::string* why) {
  auto bad = [&](const char* reason) {
    if (why) *why = reason;
    return false;
  };
  if (blob.size() < sizeof(Header)) return bad("truncated header");
  Header h;
  std::memcpy(&h, blob.data(), sizeof(h));
  if (h.magic != kMagic) return bad("bad magic");
  if (h.key != key || h.parent_key != parent_key) return bad("content key mismatch");
  if (h.layout_fp != l.fingerprint()) return bad("written for another KV layout");
  if (h.n_tokens != tokens.size() || h.n_tokens < 1 ||
      h.n_tokens > static_cast<uint32_t>(l.block_tokens))
    return bad("token count mismatch");
  if (h.state_tokens > h.n_tokens || (h.state_tokens > 0 && l.state_bytes == 0))
    return bad("bad state snapshot");
  const size_t token_bytes = tokens.size_bytes();
  if (h.raw_bytes !=
      raw_payload_bytes(l, static_cast<int>(h.n_tokens), static_cast<int>(h.state_tokens)))
    return bad("payload size mismatch");
  if (h.compression == kRaw && h.stored_bytes != h.raw_bytes) return bad("payload size mismatch");
  if (h.compression != kRaw && h.compression != kZstd) return bad("unknown compression");
  if (blob.size() != sizeof(Header) + token_bytes + h.stored_bytes) return bad("truncated payload");
  const char* tok = blob.data() + sizeof(Header);
  const char* payload = tok + token_bytes;
  if (std::memcmp(tok, tokens.data(), token_bytes) != 0) return bad("tokens differ");
  if (checksum(h, tok, token_bytes, payload) != h.checksum) return bad("checksum mismatch");
  const int n = static_cast<int>(h.n_tokens);
  const int st = static_cast<int>(h.state_tokens);
  if (h.compression == kRaw) {
    scatter(l, reinterpret_cast<const uint8_t*>(payload), n, st, block);
  } else {
    std::vector<uint8_t>& planes = scratch2();
    std::vector<uint8_t>& raw = scratch();
    planes.resize(h.raw_bytes);
    raw.resize(h.raw_bytes);
    size_t z = ZSTD_decompress(planes.data(), planes.size(), payload, h.stored_bytes);
    if (ZSTD_isError(z) || z != h.raw_bytes) return bad("zstd frame is corrupt");
    from_planes(planes.data(), planes.size(), l.elem_bytes(), raw.data());
    scatter(l, raw.data(), n, st, block);
  }
  *state_tokens = st;
  return true;
}

}  // namespace runnel::cache
