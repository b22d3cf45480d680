#include "base/dtype.h"

#include <cctype>
#include <string>

#include "base/assert.h"

namespace runnel {
namespace {

// Block sizes follow GGML: QK4_0 = QK8_0 = 32 elements, K-quants 256 elements per super-block.
// mlx*_r16 (kernels/cpu/packed_mlx.h): per 32 elements the quants, an f32 scale and an f32 bias;
// mlx*_r16_g64: per 64 elements the quants, one f32 scale and one f32 bias.
constexpr DTypeInfo kInfo[] = {
    {"f32", 1, 4, false},
    {"f16", 1, 2, false},
    {"bf16", 1, 2, false},
    {"f64", 1, 8, false},
    {"i64", 1, 8, false},
    {"i32", 1, 4, false},
    {"i16", 1, 2, false},
    {"i8", 1, 1, false},
    {"u8", 1, 1, false},
    {"u32", 1, 4, false},
    {"bool", 1, 1, false},
    {"q4_0", 32, 18, true},
    {"q4_1", 32, 20, true},
    {"q5_0", 32, 22, true},
    {"q5_1", 32, 24, true},
    {"q8_0", 32, 34, true},
    {"q2_k", 256, 84, true},
    {"q3_k", 256, 110, true},
    {"q4_k", 256, 144, true},
    {"q5_k", 256, 176, true},
    {"q6_k", 256, 210, true},
    {"q8_k", 256, 292, true},
    {"q8_0_r16", 32, 34, true},
    {"q4_0_r16", 32, 18, true},
    {"mlx8_r16", 32, 40, true},
    {"mlx4_r16", 32, 24, true},
    {"f16_r16", 1, 2, true},
    {"bf16_r16", 1, 2, true},
    {"f32_r16", 1, 4, true},
    {"q4_k_r16", 256, 144, true},
    {"q6_k_r16", 256, 210, true},
    {"mlx8_r16_g64", 64, 72, true},
    {"mlx4_r16_g64", 64, 40, true},
    {"q5_k_r16", 256, 176, true},
    {"q5_0_r16", 32, 22, true},
    {"q3_k_r16", 256, 114, true},
    {"q2_k_r16", 256, 84, true},
    {"q5_1_r16", 32, 24, true},
    {"q4_1_r16", 32, 20, true},
    {"iq4_nl", 32, 18, true},
    {"iq4_xs", 256, 136, true},
    {"iq4_nl_r16", 32, 18, true},
    {"iq4_xs_r16", 256, 136, true},
};
static_assert(sizeof(kInfo) / sizeof(kInfo[0]) == static_cast<size_t>(DType::kCount));

}  // namespace

const DTypeInfo& dtype_info(DType t) {
  RUNNEL_ASSERT(t < DType::kCount);
  return kInfo[static_cast<size_t>(t)];
}

bool parse_dtype(std::string_view name, DType* out) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (size_t i = 0; i < static_cast<size_t>(DType::kCount); ++i) {
    if (kInfo[i].name == lower) {
      *out = static_cast<DType>(i);
      return true;
    }
  }
  return false;
}

}  // namespace runnel
