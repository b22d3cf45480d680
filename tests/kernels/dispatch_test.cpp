// Dispatch: the ISA choice (best supported, RUNNEL_CPU forcing, errors for unknown or unsupported
// names, in a child process so the real start-up path runs), the per-ISA tables, and the
// bandwidth probe's read loop.
#include "kernels/cpu/dispatch.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/cpu.h"
#include "base/error.h"
#include "base/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/membw.h"

namespace runnel::kernels::cpu {
namespace {

TEST(Dispatch, ChoosesBestOrForced) {
  Isa best = Isa::kScalar;
  for (Isa isa : {Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512, Isa::kAmx}) {
    if (isa_supported(isa)) best = isa;
  }
  EXPECT_EQ(choose_isa(nullptr), best);
  EXPECT_EQ(choose_isa("scalar"), Isa::kScalar);
  if (isa_supported(Isa::kAvx2)) {
    EXPECT_EQ(choose_isa("avx2"), Isa::kAvx2);
  }
  if (isa_supported(Isa::kAvxVnni)) {
    EXPECT_EQ(choose_isa("avxvnni"), Isa::kAvxVnni);
  }
  EXPECT_THROW(choose_isa("sse9"), Error);
  if (!isa_supported(Isa::kAmx)) {
    // Forcing AMX without it is an error that names what the CPU has, not a crash.
    try {
      choose_isa("amx");
      ADD_FAILURE() << "RUNNEL_CPU=amx was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("not supported by this CPU"), std::string::npos)
          << e.what();
    }
  }
}

// The avxvnni table is the AVX2 one with other kernels for the integer r16 layouts (their dots in
// vpdpbusd); the float layouts and everything else stay AVX2's.
TEST(Dispatch, AvxVnniOverridesOnlyTheByteDotKernels) {
  const KernelTable& vnni = kernel_table(Isa::kAvxVnni);
  const KernelTable& avx2 = kernel_table(Isa::kAvx2);
  for (DType d :
       {DType::kQ8_0R16, DType::kQ4_0R16, DType::kQ5_0R16, DType::kQ4_1R16, DType::kQ5_1R16,
        DType::kQ3_KR16, DType::kQ4_KR16, DType::kQ5_KR16, DType::kQ6_KR16, DType::kQ8AR16,
        DType::kQ4AR16, DType::kQ8AR16G64, DType::kQ4AR16G64}) {
    EXPECT_NE(vnni.matmul[static_cast<int>(d)].packed, avx2.matmul[static_cast<int>(d)].packed)
        << dtype_name(d);
  }
  for (DType d : {DType::kF16R16, DType::kBF16R16, DType::kF32R16}) {
    EXPECT_EQ(vnni.matmul[static_cast<int>(d)].packed, avx2.matmul[static_cast<int>(d)].packed)
        << dtype_name(d);
  }
  // So the attention and vec tests, which loop over ISAs, leave avxvnni out: it runs AVX2's.
  EXPECT_EQ(vnni.attention, avx2.attention);
  EXPECT_EQ(vnni.rms_norm, avx2.rms_norm);
  EXPECT_EQ(vnni.softmax, avx2.softmax);
  EXPECT_EQ(vnni.silu_mul, avx2.silu_mul);
  EXPECT_EQ(vnni.add, avx2.add);
  EXPECT_EQ(vnni.argmax, avx2.argmax);
  EXPECT_EQ(vnni.quantize_q8, avx2.quantize_q8);
  // No avxvnni kernel reaches the AVX-512 tables: an AVX-512 CPU need not have AVX-VNNI.
  for (Isa isa : {Isa::kAvx512, Isa::kAmx}) {
    for (int d = 0; d < static_cast<int>(DType::kCount); ++d) {
      if (vnni.matmul[d].packed == avx2.matmul[d].packed) continue;
      EXPECT_NE(kernel_table(isa).matmul[d].packed, vnni.matmul[d].packed)
          << isa_name(isa) << " " << dtype_name(static_cast<DType>(d));
    }
  }
}

// The emulated tile unit is for tests: it makes the amx variant runnable, never chosen.
TEST(Dispatch, AmxEmulationIsRunnableButNeverChosen) {
  if (!isa_supported(Isa::kAvx512) || isa_supported(Isa::kAmx)) {
    GTEST_SKIP() << "needs AVX-512 without AMX";
  }
  enable_amx_emulation();
  EXPECT_TRUE(isa_runnable(Isa::kAmx));
  EXPECT_FALSE(isa_supported(Isa::kAmx));
  EXPECT_EQ(choose_isa(nullptr), Isa::kAvx512);
  testing::IsaScope scope(Isa::kAmx);
  EXPECT_TRUE(scope.ok());
  EXPECT_EQ(active_isa(), Isa::kAmx);
  // The amx table is the AVX-512 one with BF16 tile kernels for the prefill (more than 32 rows
  // of x, in bf16) of every r16 layout but F32R16's.
  const KernelTable& amx = kernel_table(Isa::kAmx);
  const KernelTable& avx512 = kernel_table(Isa::kAvx512);
  for (DType d : {DType::kF16R16, DType::kBF16R16, DType::kQ8_0R16, DType::kQ4_0R16,
                  DType::kQ5_0R16, DType::kQ2_KR16, DType::kQ3_KR16, DType::kQ4_KR16,
                  DType::kQ5_KR16, DType::kQ6_KR16, DType::kQ8AR16, DType::kQ4AR16,
                  DType::kQ8AR16G64, DType::kQ4AR16G64, DType::kQ4_1R16, DType::kQ5_1R16}) {
    const MatmulEntry& e = amx.matmul[static_cast<int>(d)];
    const MatmulEntry& v = avx512.matmul[static_cast<int>(d)];
    EXPECT_NE(e.bf16.fn, nullptr) << dtype_name(d);
    EXPECT_NE(e.bf16.expand, nullptr) << dtype_name(d);
    EXPECT_EQ(e.bf16.mr, 32) << dtype_name(d);
    EXPECT_EQ(v.bf16.fn, nullptr) << dtype_name(d);
    // Decode and short prompts: the AVX-512 entry as it is.
    EXPECT_EQ(e.packed, v.packed) << dtype_name(d);
    EXPECT_EQ(e.expand, v.expand) << dtype_name(d);
    EXPECT_EQ(e.act, v.act) << dtype_name(d);
    EXPECT_EQ(e.mr, v.mr) << dtype_name(d);
  }
  EXPECT_NE(amx.f32_to_bf16, nullptr);
  EXPECT_EQ(amx.matmul[static_cast<int>(DType::kF32R16)].bf16.fn, nullptr);
  EXPECT_EQ(amx.matmul[static_cast<int>(DType::kQ4_K)].tile,
            avx512.matmul[static_cast<int>(DType::kQ4_K)].tile);
}

// The self-test dispatch.cpp runs before it lets AMX be chosen passes on the model of the tile
// unit (and on the tile unit, where there is one).
TEST(Dispatch, AmxSelfTestPasses) {
  if (!isa_supported(Isa::kAvx512)) GTEST_SKIP() << "needs AVX-512";
  EXPECT_TRUE(amx_emulated::self_test());
  if (cpu_features().has_amx()) {
    EXPECT_TRUE(amx::self_test());
  }
}

// Prints the ISA a fresh process picks; the test below runs this binary with RUNNEL_CPU set.
TEST(DispatchChild, PrintActive) {
  EXPECT_TRUE(isa_supported(active_isa()));
  std::printf("active_isa=%s\n", isa_name(active_isa()));
}

std::string run_child(const char* forced) {
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (len <= 0) return "no exe";
  exe[len] = 0;
  const std::string cmd = std::string("RUNNEL_CPU=") + forced + " '" + exe +
                          "' --gtest_filter=DispatchChild.PrintActive 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  while (p && fgets(buf, sizeof(buf), p)) out += buf;
  if (p) pclose(p);
  return out;
}

TEST(Dispatch, RunnelCpuForcesVariantInFreshProcess) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512}) {
    if (!isa_supported(isa)) continue;
    const std::string out = run_child(isa_name(isa));
    EXPECT_NE(out.find(std::string("active_isa=") + isa_name(isa) + "\n"), std::string::npos)
        << out;
  }
  // An unknown name is an error with a message, not a crash.
  const std::string out = run_child("bogus");
  EXPECT_NE(out.find("RUNNEL_CPU=bogus is unknown"), std::string::npos) << out;
}

TEST(Dispatch, TablesAreCompleteForEverySupportedIsa) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512}) {
    if (!isa_supported(isa)) continue;
    const KernelTable& t = kernel_table(isa);
    for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                    DType::kQ4_K, DType::kQ6_K}) {
      EXPECT_NE(t.matmul[static_cast<int>(d)].tile, nullptr) << isa_name(isa);
    }
    EXPECT_NE(t.attention, nullptr);
    EXPECT_NE(t.gelu_erf, nullptr);
    EXPECT_NE(t.read_sum, nullptr);
  }
  // Variants really differ from the reference (the table is not all scalar).
  if (isa_supported(Isa::kAvx512)) {
    EXPECT_NE(kernel_table(Isa::kAvx512).matmul[static_cast<int>(DType::kQ8_0)].tile,
              kernel_table(Isa::kScalar).matmul[static_cast<int>(DType::kQ8_0)].tile);
  }
}

TEST(Membw, ReadLoopsReadEveryWordAndProbeReportsBandwidth) {
  std::vector<uint64_t> buf(4096 / 8 * 3);
  std::mt19937_64 rng(1);
  for (auto& v : buf) v = rng();
  for (size_t bytes : {size_t{256}, size_t{4096}, size_t{12288}}) {
    uint64_t want = 0;
    for (size_t i = 0; i < bytes / 8; ++i) want ^= buf[i];
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512}) {
      if (!isa_supported(isa)) continue;
      EXPECT_EQ(kernel_table(isa).read_sum(buf.data(), bytes), want) << isa_name(isa);
    }
  }
  ThreadPool pool(2);
  const double gbs = measure_memory_bandwidth(pool, size_t{64} << 20);
  EXPECT_GT(gbs, 0.5);
  EXPECT_LT(gbs, 10000.0);
  EXPECT_THROW(measure_memory_bandwidth(pool, 100), Error);
}

}  // namespace
}  // namespace runnel::kernels::cpu
