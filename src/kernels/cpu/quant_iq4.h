// IQ4_NL and IQ4_XS scalar reference (quant_iq4.cpp), reached through quant.h's dequantize_row and
// quantize_row. x and y hold nb blocks: 32 elements each for IQ4_NL, 256 for IQ4_XS.
#pragma once

#include <cstddef>

#include "kernels/cpu/quant.h"

namespace runnel::kernels::cpu {

void dequant_iq4_nl(const BlockIQ4_NL* x, float* y, size_t nb);
void dequant_iq4_xs(const BlockIQ4_XS* x, float* y, size_t nb);
void quant_iq4_nl(const float* x, BlockIQ4_NL* y, size_t nb);
void quant_iq4_xs(const float* x, BlockIQ4_XS* y, size_t nb);

}  // namespace runnel::kernels::cpu
