// <immintrin.h> for the SIMD kernel files, included with -Wuninitialized and -Wmaybe-uninitialized
// off: GCC 12.2's AVX-512 intrinsics start from _mm512_undefined_*() (`__Y = __Y`), which those
// warnings report falsely after inlining (GCC bug 105593). Every header that may be an AVX-512
// file's first route to <immintrin.h> includes this one instead.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
