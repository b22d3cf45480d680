// Synthetic vocabularies for grammar tests and benchmarks: every single byte, JSON-ish chunks, and
// (for large sizes) word-like tokens made from byte pairs and syllables, like a BPE vocabulary.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace runnel::sample::testing {

// Small vocabulary: 256 single bytes, then JSON chunks; one EOS token (empty string bytes) at the
// end, whose id is returned in eos.
std::vector<std::string> small_json_vocab(int32_t& eos);
// n tokens in all (the last is EOS): the small vocabulary plus generated word pieces.
std::vector<std::string> large_vocab(int32_t n, int32_t& eos, uint64_t seed = 1);

}  // namespace runnel::sample::testing
