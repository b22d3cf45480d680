// GGUF reader and writer: the shared real files, a writer round trip, and hostile files (every
// truncation of a small file, offsets outside the file, huge counts) that must fail cleanly.
#include "formats/gguf.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "base/error.h"
#include "base/mmap.h"
#include "testing/testing.h"

namespace runnel::formats {
namespace {
namespace fs = std::filesystem;

std::string write_bytes(const std::string& dir, const std::string& name, const std::string& b) {
  std::string path = dir + "/" + name;
  // Unlink first: truncating a file in place makes ext4 flush it (auto_da_alloc), slowly.
  std::remove(path.c_str());
  std::ofstream(path, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
  return path;
}

// Expects open() to throw an Error("gguf") whose message contains `needle`.
void expect_gguf_error(const std::string& path, const std::string& needle) {
  try {
    GgufFile::open(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const Error& e) {
    EXPECT_EQ(e.component(), "gguf");
    EXPECT_NE(e.message().find(needle), std::string::npos) << e.message();
    EXPECT_NE(e.message().find(path), std::string::npos) << e.message();
  }
}

TEST(Gguf, ReadsStories260K) {
  auto f = GgufFile::open(testing::shared_dir() + "/models/stories260K.gguf");
  EXPECT_EQ(f->architecture(), "llama");
  EXPECT_TRUE(f->version() == 2 || f->version() == 3);
  EXPECT_EQ(f->get_int("llama.embedding_length"), 64);
  EXPECT_EQ(f->get_int("llama.block_count"), 5);
  auto tokens = f->get_strings("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.has_value());
  EXPECT_EQ(tokens->size(), 512u);
  auto scores = f->get_floats("tokenizer.ggml.scores");
  ASSERT_TRUE(scores.has_value());
  EXPECT_EQ(scores->size(), 512u);
  EXPECT_FALSE(f->get_int("no.such.key").has_value());
  const GgufTensor* emb = f->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(emb->n_elements(), 512 * 64);
  EXPECT_EQ(emb->n_bytes, row_bytes(emb->dtype, 512 * 64));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(emb->data) % 32, 0u);
  EXPECT_NE(f->find_tensor("blk.4.attn_q.weight"), nullptr);
  EXPECT_EQ(f->find_tensor("blk.5.attn_q.weight"), nullptr);
  EXPECT_EQ(f->find_tensor("output_norm.weight")->shape, (std::vector<int64_t>{64}));
  EXPECT_EQ(f->find_tensor("blk.0.attn_k.weight")->shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(f->find_tensor("blk.0.ffn_down.weight")->shape, (std::vector<int64_t>{64, 172}));
  EXPECT_EQ(f->tensors().size(), 48u);
  EXPECT_EQ(f->metadata().size(), 19u);
  for (const GgufTensor& t : f->tensors()) EXPECT_EQ(t.dtype, DType::kF32) << t.name;
  // Offsets from the data section: output_norm follows token_embd (512 * 64 * 4 bytes).
  EXPECT_EQ(f->find_tensor("output_norm.weight")->offset, 131072u);
  EXPECT_EQ(f->find_tensor("output_norm.weight")->data, emb->data + 131072);
  EXPECT_EQ(f->get_int("tokenizer.ggml.seperator_token_id"), 4294967295);
  EXPECT_NEAR(*f->get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-10);
  auto types = f->get_ints("tokenizer.ggml.token_type");
  ASSERT_TRUE(types.has_value());
  EXPECT_EQ((std::vector<int64_t>(types->begin(), types->begin() + 3)),
            (std::vector<int64_t>{2, 3, 3}));
  EXPECT_EQ(tokens->at(1), "<s>");
  // Wrong-type access names the key.
  try {
    f->get_string("llama.block_count");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("llama.block_count"), std::string::npos);
  }
}

// Copies a real file through the writer: every key (with its type) and tensor survives.
TEST(Gguf, RewritesStories260KExactly) {
  auto src = GgufFile::open(testing::shared_dir() + "/models/stories260K.gguf");
  GgufWriter w;
  for (const auto& [key, value] : src->metadata()) w.set(key, value);
  for (const GgufTensor& t : src->tensors())
    w.add_tensor(t.name, t.dtype, t.shape, t.data, t.n_bytes);
  std::string path = testing::make_temp_dir("gguf") + "/copy.gguf";
  w.write(path);
  auto copy = GgufFile::open(path);
  EXPECT_EQ(copy->metadata(), src->metadata());
  ASSERT_EQ(copy->tensors().size(), src->tensors().size());
  for (size_t i = 0; i < src->tensors().size(); ++i) {
    const GgufTensor& a = src->tensors()[i];
    const GgufTensor& b = copy->tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.shape, b.shape);
    EXPECT_EQ(a.dtype, b.dtype);
    EXPECT_EQ(a.offset, b.offset);  // same order, same alignment: same layout
    ASSERT_EQ(a.n_bytes, b.n_bytes);
    EXPECT_EQ(std::memcmp(a.data, b.data, a.n_bytes), 0) << a.name;
  }
}

TEST(Gguf, ReadsEveryLlamaCppVocab) {
  int n = 0;
  for (const auto& entry :
       fs::directory_iterator(testing::shared_dir() + "/testdata/llamacpp-vocab")) {
    if (entry.path().extension() != ".gguf") continue;
    auto f = GgufFile::open(entry.path().string());
    auto tokens = f->get_strings("tokenizer.ggml.tokens");
    ASSERT_TRUE(tokens.has_value()) << entry.path();
    EXPECT_GT(tokens->size(), 100u) << entry.path();
    EXPECT_TRUE(f->get_string("tokenizer.ggml.model").has_value()) << entry.path();
    ++n;
  }
  EXPECT_GE(n, 5);
}

GgufWriter sample_writer(std::vector<float>& weights) {
  GgufWriter w;
  w.set_string("general.architecture", "test");
  w.set_int("test.u8", GgufType::kU8, 200);
  w.set_int("test.i8", GgufType::kI8, -100);
  w.set_int("test.u16", GgufType::kU16, 60000);
  w.set_int("test.i16", GgufType::kI16, -30000);
  w.set_int("test.u32", GgufType::kU32, 4000000000);
  w.set_int("test.i32", GgufType::kI32, -2000000000);
  w.set_int("test.u64", GgufType::kU64, int64_t{1} << 50);
  w.set_int("test.i64", GgufType::kI64, -(int64_t{1} << 50));
  w.set_float("test.f32", 0.5);
  GgufValue f64;
  f64.type = GgufType::kF64;
  f64.scalar = 1e-300;
  w.set("test.f64", f64);
  w.set_bool("test.bool", true);
  w.set_strings("test.strings", {"a", "", "héllo"});
  GgufValue ints;
  ints.type = GgufType::kArray;
  ints.elem_type = GgufType::kI32;
  ints.ints = {1, -2, 3};
  w.set("test.ints", ints);
  GgufValue floats;
  floats.type = GgufType::kArray;
  floats.elem_type = GgufType::kF32;
  floats.floats = {0.25, -1.5};
  w.set("test.floats", floats);
  GgufValue bools;
  bools.type = GgufType::kArray;
  bools.elem_type = GgufType::kBool;
  bools.bools = {true, false, true};
  w.set("test.bools", bools);
  weights.resize(3 * 32);
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>(i) * 0.5f;
  w.add_tensor("a", DType::kF32, {3, 32}, weights.data(), weights.size() * 4);
  w.add_tensor("b", DType::kF32, {5}, weights.data(), 20);
  std::vector<uint8_t> q(2 * 34, 7);
  w.add_tensor("q", DType::kQ8_0, {64}, q.data(), q.size());
  return w;
}

TEST(Gguf, WriterRoundTripsEveryValueType) {
  std::string dir = testing::make_temp_dir("gguf");
  std::vector<float> weights;
  GgufWriter w = sample_writer(weights);
  for (uint32_t alignment : {32u, 64u}) {
    std::string path = dir + "/rt.gguf";
    w.write(path, alignment);
    auto f = GgufFile::open(path);
    EXPECT_EQ(f->version(), 3u);
    EXPECT_EQ(f->architecture(), "test");
    EXPECT_EQ(f->get_int("test.u8"), 200);
    EXPECT_EQ(f->get_int("test.i8"), -100);
    EXPECT_EQ(f->get_int("test.u16"), 60000);
    EXPECT_EQ(f->get_int("test.i16"), -30000);
    EXPECT_EQ(f->get_int("test.u32"), 4000000000);
    EXPECT_EQ(f->get_int("test.i32"), -2000000000);
    EXPECT_EQ(f->get_int("test.u64"), int64_t{1} << 50);
    EXPECT_EQ(f->get_int("test.i64"), -(int64_t{1} << 50));
    EXPECT_EQ(f->get_float("test.f32"), 0.5);
    EXPECT_EQ(f->get_float("test.f64"), 1e-300);
    EXPECT_EQ(f->get_float("test.u8"), 200.0);
    EXPECT_EQ(f->get_bool("test.bool"), true);
    EXPECT_EQ(f->get_strings("test.strings"), (std::vector<std::string>{"a", "", "héllo"}));
    EXPECT_EQ(f->get_ints("test.ints"), (std::vector<int64_t>{1, -2, 3}));
    EXPECT_EQ(f->get_floats("test.floats"), (std::vector<double>{0.25, -1.5}));
    EXPECT_EQ(f->get_floats("test.ints"), (std::vector<double>{1, -2, 3}));
    EXPECT_EQ(f->find("test.bools")->bools, (std::vector<bool>{true, false, true}));
    EXPECT_EQ(f->find("test.bools")->array_size(), 3u);
    if (alignment != 32) {
      EXPECT_EQ(f->get_int("general.alignment"), alignment);
    }
    ASSERT_EQ(f->tensors().size(), 3u);
    const GgufTensor* a = f->find_tensor("a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->shape, (std::vector<int64_t>{3, 32}));
    EXPECT_EQ(a->dtype, DType::kF32);
    EXPECT_EQ(std::memcmp(a->data, weights.data(), a->n_bytes), 0);
    const GgufTensor* b = f->find_tensor("b");
    EXPECT_EQ(b->n_bytes, 20u);
    EXPECT_EQ(std::memcmp(b->data, weights.data(), 20), 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data) % alignment, 0u);
    const GgufTensor* q = f->find_tensor("q");
    EXPECT_EQ(q->dtype, DType::kQ8_0);
    EXPECT_EQ(q->n_bytes, 68u);
    EXPECT_EQ(q->data[67], 7);
  }
}

TEST(Gguf, ProducedTensorsAreWrittenInPlace) {
  std::string dir = testing::make_temp_dir("gguf");
  GgufWriter w;
  w.set_string("general.architecture", "test");
  std::vector<float> a(40, 2.5f);
  w.add_tensor("a", DType::kF32, {40}, a.data(), 160);
  int n_calls = 0;
  w.add_tensor_producer("p", DType::kQ8_0, {2, 32}, 68, [&](uint8_t* dst) {
    ++n_calls;
    for (int i = 0; i < 68; ++i) dst[i] = static_cast<uint8_t>(i);
  });
  w.write(dir + "/p.gguf");
  EXPECT_EQ(n_calls, 1);
  auto f = GgufFile::open(dir + "/p.gguf");
  const GgufTensor* p = f->find_tensor("p");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->shape, (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(p->offset, 160u);
  for (int i = 0; i < 68; ++i) EXPECT_EQ(p->data[i], i);
  EXPECT_EQ(reinterpret_cast<const float*>(f->find_tensor("a")->data)[39], 2.5f);

  // A producer that throws leaves no file behind.
  GgufWriter bad;
  bad.add_tensor_producer("x", DType::kF32, {4}, 16,
                          [](uint8_t*) { throw Error("test", "cannot produce"); });
  EXPECT_THROW(bad.write(dir + "/bad.gguf"), Error);
  EXPECT_FALSE(fs::exists(dir + "/bad.gguf"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

// Every prefix of a valid file is either rejected with an Error or (for the full file) accepted.
TEST(Gguf, EveryTruncationIsAnError) {
  std::string dir = testing::make_temp_dir("gguf");
  std::vector<float> weights;
  sample_writer(weights).write(dir + "/full.gguf");
  std::string bytes = read_file(dir + "/full.gguf");
  // The last tensor, q (68 bytes), is followed by 28 bytes of optional padding to 96.
  const size_t end = bytes.size() - 28;
  std::string path = dir + "/cut.gguf";
  for (size_t n = 0; n < bytes.size(); ++n) {
    write_bytes(dir, "cut.gguf", bytes.substr(0, n));
    if (n < end) {
      EXPECT_THROW(GgufFile::open(path), Error) << "prefix " << n;
    } else {
      EXPECT_NO_THROW(GgufFile::open(path)) << "prefix " << n;
    }
  }
  write_bytes(dir, "cut.gguf", bytes);
  EXPECT_NO_THROW(GgufFile::open(path));
}

// Random byte corruptions of a valid file: each open either succeeds or throws Error, and a file
// that opens has every tensor inside the mapping (run under RUNNEL_SANITIZE to catch stray reads).
TEST(Gguf, CorruptedBytesNeverCrash) {
  std::string dir = testing::make_temp_dir("gguf");
  std::vector<float> weights;
  sample_writer(weights).write(dir + "/full.gguf");
  const std::string bytes = read_file(dir + "/full.gguf");
  std::mt19937 rng(7);
  int n_errors = 0;
  for (int rep = 0; rep < 200; ++rep) {
    std::string b = bytes;
    const int n_flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n_flips; ++i) {
      // Mostly the header and metadata, where the structure lives.
      const size_t at = rng() % std::min<size_t>(b.size(), 700);
      b[at] = static_cast<char>(rng() % 3 == 0 ? 0xff : rng());
    }
    write_bytes(dir, "mut.gguf", b);
    try {
      auto f = GgufFile::open(dir + "/mut.gguf");
      for (const GgufTensor& t : f->tensors()) {
        volatile uint8_t sink = t.data[0] ^ t.data[t.n_bytes - 1];
        (void)sink;
      }
    } catch (const Error& e) {
      EXPECT_EQ(e.component(), "gguf");
      ++n_errors;
    }
  }
  EXPECT_GT(n_errors, 50);
}

// Builds a header by hand: magic, version, counts, then `rest`.
std::string header(uint32_t version, uint64_t n_tensors, uint64_t n_kv, const std::string& rest) {
  std::string b = "GGUF";
  b.append(reinterpret_cast<const char*>(&version), 4);
  b.append(reinterpret_cast<const char*>(&n_tensors), 8);
  b.append(reinterpret_cast<const char*>(&n_kv), 8);
  return b + rest;
}
template <class T>
std::string le(T v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof(T));
}
std::string gstr(const std::string& s) { return le<uint64_t>(s.size()) + s; }

// One F32 tensor info: name, dims (innermost first), offset.
std::string tensor_info(const std::string& name, std::vector<uint64_t> ne, uint32_t type,
                        uint64_t offset) {
  std::string b = gstr(name) + le<uint32_t>(static_cast<uint32_t>(ne.size()));
  for (uint64_t d : ne) b += le<uint64_t>(d);
  return b + le<uint32_t>(type) + le<uint64_t>(offset);
}

std::string with_data(std::string b, size_t n_data) {
  b.resize((b.size() + 31) / 32 * 32, '\0');
  return b + std::string(n_data, '\x01');
}

TEST(Gguf, HostileFilesAreClearErrors) {
  std::string dir = testing::make_temp_dir("gguf");
  auto bad = [&](const std::string& bytes, const std::string& needle) {
    expect_gguf_error(write_bytes(dir, "bad.gguf", bytes), needle);
  };
  bad("GGML", "header: not a GGUF file (bad magic)");
  bad(header(1, 0, 0, ""), "version 1");
  bad(header(4, 0, 0, ""), "version 4");
  bad(header(3, 0, uint64_t{1} << 40, ""), "metadata count");
  bad(header(3, uint64_t{1} << 40, 0, ""), "tensor count");
  // A string length of 2^60.
  bad(header(3, 0, 1, le<uint64_t>(uint64_t{1} << 60) + "abcdefghijklmnop"), "string length");
  bad(header(3, 0, 1, gstr("k") + le<uint32_t>(8) + le<uint64_t>(uint64_t{1} << 60)),
      "string length");
  // Array count larger than the file.
  bad(header(3, 0, 1, gstr("k") + le<uint32_t>(9) + le<uint32_t>(4) + le<uint64_t>(1u << 30)),
      "k: array");
  bad(header(3, 0, 1, gstr("k") + le<uint32_t>(9) + le<uint32_t>(9) + le<uint64_t>(1)),
      "arrays of arrays");
  bad(header(3, 0, 1, gstr("k") + le<uint32_t>(13) + le<uint32_t>(0)), "unknown value type 13");
  bad(header(3, 0, 1, gstr("k") + le<uint32_t>(10) + le<uint64_t>(~uint64_t{0})), "too large");
  bad(header(3, 0, 2, gstr("k") + le<uint32_t>(0) + "x" + gstr("k") + le<uint32_t>(0) + "y"),
      "k: duplicate");
  bad(header(3, 0, 1, gstr("general.alignment") + le<uint32_t>(4) + le<uint32_t>(24)),
      "power of two");
  // Tensors.
  bad(with_data(header(3, 1, 0, tensor_info("t", {4}, 0, 0)), 8), "t: data");
  bad(with_data(header(3, 1, 0, tensor_info("t", {4}, 0, uint64_t{1} << 62)), 16), "t: data");
  bad(with_data(header(3, 1, 0, tensor_info("t", {4}, 0, 4)), 64), "alignment");
  bad(with_data(header(3, 1, 0, tensor_info("t", {4, 1, 1, 1, 1}, 0, 0)), 16), "n_dims 5");
  bad(with_data(header(3, 1, 0, tensor_info("t", {4, 0}, 0, 0)), 16), "t: dimension 1");
  bad(with_data(header(3, 1, 0, tensor_info("t", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0)),
                16),
      "t: element count overflows");
  bad(with_data(header(3, 1, 0, tensor_info("t", {uint64_t{1} << 40}, 0, 0)), 16), "t: data");
  bad(with_data(header(3, 1, 0, tensor_info("t", {4}, 99, 0)), 16), "unsupported tensor type 99");
  bad(with_data(header(3, 1, 0, tensor_info("t", {256}, 16, 0)), 256),
      "t: unsupported tensor type 16 (iq2_xxs)");
  bad(with_data(header(3, 1, 0, tensor_info("t", {64}, 23, 0)), 256),
      "row length 64 is not a multiple of the iq4_xs block size 256");
  bad(with_data(header(3, 1, 0, tensor_info("t", {48}, 8, 0)), 64), "not a multiple");
  bad(with_data(header(3, 2, 0, tensor_info("t", {4}, 0, 0) + tensor_info("t", {4}, 0, 32)), 64),
      "t: duplicate tensor");
  bad(with_data(header(3, 2, 0, tensor_info("t", {16}, 0, 0) + tensor_info("u", {4}, 0, 32)), 64),
      "overlaps tensor t");
  // A valid one of the same shape, for contrast.
  std::string ok =
      with_data(header(2, 2, 0, tensor_info("t", {8}, 0, 0) + tensor_info("u", {4}, 0, 32)), 64);
  auto f = GgufFile::open(write_bytes(dir, "ok.gguf", ok));
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(f->find_tensor("u")->shape, (std::vector<int64_t>{4}));
  expect_gguf_error(dir + "/missing.gguf", "missing.gguf");
}

// GGML's IQ4_NL (type 20: 32 elements in 18 bytes) and IQ4_XS (type 23: 256 in 136), from a
// header built by hand, and through the writer and back.
TEST(Gguf, ReadsAndWritesIQ4Tensors) {
  std::string dir = testing::make_temp_dir("gguf");
  const std::string hand = with_data(
      header(3, 2, 0, tensor_info("nl", {64, 3}, 20, 0) + tensor_info("xs", {512, 2}, 23, 128)),
      128 + 2 * 2 * 136);
  auto f = GgufFile::open(write_bytes(dir, "iq4.gguf", hand));
  const GgufTensor* nl = f->find_tensor("nl");
  const GgufTensor* xs = f->find_tensor("xs");
  ASSERT_NE(nl, nullptr);
  ASSERT_NE(xs, nullptr);
  EXPECT_EQ(nl->dtype, DType::kIQ4_NL);
  EXPECT_EQ(nl->shape, (std::vector<int64_t>{3, 64}));
  EXPECT_EQ(nl->n_bytes, 3u * 2 * 18);
  EXPECT_EQ(xs->dtype, DType::kIQ4_XS);
  EXPECT_EQ(xs->shape, (std::vector<int64_t>{2, 512}));
  EXPECT_EQ(xs->n_bytes, 2u * 2 * 136);
  EXPECT_EQ(ggml_type_of(DType::kIQ4_NL), 20u);
  EXPECT_EQ(ggml_type_of(DType::kIQ4_XS), 23u);

  std::mt19937 rng(3);
  std::vector<uint8_t> a(3 * 2 * 18), b(2 * 2 * 136);
  for (uint8_t& v : a) v = static_cast<uint8_t>(rng());
  for (uint8_t& v : b) v = static_cast<uint8_t>(rng());
  GgufWriter w;
  w.set_string("general.architecture", "test");
  w.add_tensor("nl", DType::kIQ4_NL, {3, 64}, a.data(), a.size());
  w.add_tensor("xs", DType::kIQ4_XS, {2, 512}, b.data(), b.size());
  w.write(dir + "/rt.gguf");
  auto g = GgufFile::open(dir + "/rt.gguf");
  ASSERT_EQ(g->tensors().size(), 2u);
  EXPECT_EQ(g->find_tensor("nl")->dtype, DType::kIQ4_NL);
  EXPECT_EQ(g->find_tensor("nl")->shape, (std::vector<int64_t>{3, 64}));
  ASSERT_EQ(g->find_tensor("nl")->n_bytes, a.size());
  EXPECT_EQ(std::memcmp(g->find_tensor("nl")->data, a.data(), a.size()), 0);
  EXPECT_EQ(g->find_tensor("xs")->dtype, DType::kIQ4_XS);
  EXPECT_EQ(g->find_tensor("xs")->shape, (std::vector<int64_t>{2, 512}));
  ASSERT_EQ(g->find_tensor("xs")->n_bytes, b.size());
  EXPECT_EQ(std::memcmp(g->find_tensor("xs")->data, b.data(), b.size()), 0);
}

}  // namespace
}  // namespace runnel::formats
