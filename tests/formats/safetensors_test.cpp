// safetensors: writer round trip, sharded folders (index, missing shard), MLX-style quantized
// triples, and lying headers (sizes, offsets, malformed JSON, header past EOF, every truncation).
#include "formats/safetensors.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "base/error.h"
#include "base/mmap.h"
#include "testing/testing.h"

namespace runnel::formats {
namespace {

void write_bytes(const std::string& path, const std::string& b) {
  // Unlink first: truncating a file in place makes ext4 flush it (auto_da_alloc), slowly.
  std::remove(path.c_str());
  std::ofstream(path, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
}

// A file whose header is `header_json` followed by `n_data` bytes.
std::string raw_file(const std::string& header_json, size_t n_data) {
  uint64_t n = header_json.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + header_json + std::string(n_data, 'x');
}

void expect_error(const std::string& path, const std::string& needle) {
  try {
    SafetensorsFile::open(path);
    ADD_FAILURE() << "no error for " << path << " (expected " << needle << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.component(), "safetensors");
    EXPECT_NE(e.message().find(needle), std::string::npos) << e.message();
    EXPECT_NE(e.message().find(path), std::string::npos) << e.message();
  }
}

TEST(Safetensors, WriterRoundTripsEveryDType) {
  std::string dir = testing::make_temp_dir("st");
  std::vector<uint8_t> bytes(8 * 6);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + 1);
  std::vector<SafeTensorToWrite> ts;
  const DType dtypes[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kF64,
                          DType::kI64, DType::kI32, DType::kI16,  DType::kI8,
                          DType::kU8,  DType::kU32, DType::kBool};
  std::vector<std::string> names;
  for (DType d : dtypes) names.push_back(str_cat("t_", dtype_name(d)));
  for (size_t i = 0; i < std::size(dtypes); ++i) {
    ts.push_back({names[i], dtypes[i], {2, 3}, bytes.data(), 6 * dtype_size(dtypes[i])});
  }
  ts.push_back({"scalar", DType::kF32, {}, bytes.data(), 4});
  ts.push_back({"empty", DType::kF32, {0, 4}, bytes.data(), 0});
  write_safetensors(dir + "/a.safetensors", ts, {{"format", "pt"}});
  auto f = SafetensorsFile::open(dir + "/a.safetensors");
  EXPECT_EQ(f->metadata().at("format"), "pt");
  ASSERT_EQ(f->tensors().size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    const SafeTensor& t = f->tensors()[i];  // file order == write order
    EXPECT_EQ(t.name, ts[i].name);
    EXPECT_EQ(t.dtype, ts[i].dtype);
    EXPECT_EQ(t.shape, ts[i].shape);
    EXPECT_EQ(t.n_bytes, ts[i].n_bytes);
    EXPECT_EQ(t.file, dir + "/a.safetensors");
    EXPECT_EQ(std::memcmp(t.data, bytes.data(), t.n_bytes), 0) << t.name;
  }
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f->tensors()[0].data) % 8, 0u);

  // Every truncation fails cleanly.
  std::string full = read_file(dir + "/a.safetensors");
  for (size_t n = 0; n < full.size(); ++n) {
    write_bytes(dir + "/cut.safetensors", full.substr(0, n));
    EXPECT_THROW(SafetensorsFile::open(dir + "/cut.safetensors"), Error) << n;
  }
}

TEST(Safetensors, CorruptedBytesNeverCrash) {
  std::string dir = testing::make_temp_dir("st");
  std::vector<float> x(64, 1.0f);
  write_safetensors(dir + "/a.safetensors", {{"a", DType::kF32, {4, 8}, x.data(), 128},
                                             {"b", DType::kF16, {16}, x.data(), 32},
                                             {"c", DType::kI64, {2, 2}, x.data(), 32}});
  const std::string bytes = read_file(dir + "/a.safetensors");
  std::mt19937 rng(9);
  int n_errors = 0;
  for (int rep = 0; rep < 200; ++rep) {
    std::string b = bytes;
    const size_t at = rng() % (bytes.size() - 192);  // the length and the JSON header
    b[at] = "0123456789[]{},:\"-e \xff"[rng() % 21];
    write_bytes(dir + "/mut.safetensors", b);
    try {
      auto f = SafetensorsFile::open(dir + "/mut.safetensors");
      for (const SafeTensor& t : f->tensors()) {
        if (t.n_bytes > 0) {
          volatile uint8_t sink = t.data[0] ^ t.data[t.n_bytes - 1];
          (void)sink;
        }
      }
    } catch (const Error& e) {
      EXPECT_EQ(e.component(), "safetensors");
      ++n_errors;
    }
  }
  EXPECT_GT(n_errors, 60);
}

TEST(Safetensors, LyingHeadersAreClearErrors) {
  std::string dir = testing::make_temp_dir("st");
  std::string path = dir + "/bad.safetensors";
  auto bad = [&](const std::string& bytes, const std::string& needle) {
    write_bytes(path, bytes);
    expect_error(path, needle);
  };
  const std::string t = R"("t":{"dtype":"F32","shape":[2,2],"data_offsets":)";
  bad("1234", "too short");
  bad(std::string("\xff\xff\xff\xff\xff\xff\xff\x0f", 8) + "{}", "runs past the end");
  bad(raw_file("{\"t\":", 0), "malformed JSON");
  bad(raw_file("[1,2]", 0), "not an object");
  bad(raw_file("{" + t + "[0,16]}}", 8), "run past the data");
  bad(raw_file("{" + t + "[0,12]}}", 12), "need 4 x 4");
  bad(raw_file("{" + t + "[8,4]}}", 16), "bad data_offsets");
  bad(raw_file("{" + t + "[-1,15]}}", 16), "bad data_offsets");
  bad(raw_file("{" + t + "[0]}}", 16), "data_offsets must be");
  bad(raw_file("{" + t + "[0,16]}}", 20), "trailing bytes");
  bad(raw_file("{" + t + "[4,20]}}", 20), "gap of 4 bytes");
  bad(raw_file("{" + t + R"([0,16]},"u":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 16),
      "overlaps");
  bad(raw_file(R"({"t":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2),
      "unsupported dtype F8_E4M3");
  bad(raw_file(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "bad dimension");
  bad(raw_file(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],)"
               R"("data_offsets":[0,8]}})",
               8),
      "overflows");
  bad(raw_file(R"({"t":{"shape":[2],"data_offsets":[0,8]}})", 8), "missing dtype");
  bad(raw_file(R"({"__metadata__":{"a":1}})", 0), "not a string");
  bad(raw_file("{" + t + "[0,16]}," + t + "[0,16]}}", 16), "t: duplicate");
  expect_error(dir + "/absent.safetensors", "absent.safetensors");
  // A valid file of the same form, for contrast.
  write_bytes(path, raw_file("{" + t + "[0,16]}}   ", 16));
  EXPECT_EQ(SafetensorsFile::open(path)->tensors().at(0).shape, (std::vector<int64_t>{2, 2}));
}

TEST(Safetensors, ShardedFolderWithMlxQuantizedWeights) {
  std::string dir = testing::make_temp_dir("st");
  std::vector<uint32_t> packed(4 * 8, 0x12345678u);  // 4 rows of 64 4-bit values
  std::vector<uint16_t> scales(4, 0x3c00), biases(4, 0);
  std::vector<float> norm(64, 1.0f);
  write_safetensors(dir + "/model-00001-of-00002.safetensors",
                    {{"l.weight", DType::kU32, {4, 8}, packed.data(), packed.size() * 4},
                     {"l.scales", DType::kF16, {4, 1}, scales.data(), 8},
                     {"l.biases", DType::kF16, {4, 1}, biases.data(), 8}});
  write_safetensors(dir + "/model-00002-of-00002.safetensors",
                    {{"norm.weight", DType::kF32, {64}, norm.data(), 256}});
  std::string index = R"({"metadata":{"total_size":280},"weight_map":{
      "l.weight":"model-00001-of-00002.safetensors","l.scales":"model-00001-of-00002.safetensors",
      "l.biases":"model-00001-of-00002.safetensors","norm.weight":"model-00002-of-00002.safetensors"}})";
  write_bytes(dir + "/model.safetensors.index.json", index);
  auto m = SafetensorsModel::open_dir(dir);
  EXPECT_EQ(m->names(),
            (std::vector<std::string>{"l.biases", "l.scales", "l.weight", "norm.weight"}));
  const SafeTensor* w = m->find("l.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, DType::kU32);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(reinterpret_cast<const uint32_t*>(w->data)[31], 0x12345678u);
  EXPECT_EQ(m->find("norm.weight")->file, dir + "/model-00002-of-00002.safetensors");
  EXPECT_EQ(m->find("nope"), nullptr);
  ASSERT_EQ(m->files().size(), 2u);
  EXPECT_EQ(m->files()[1]->path(), dir + "/model-00002-of-00002.safetensors");

  // An index entry whose tensor is not in its shard.
  std::string lying = index;
  lying.replace(lying.find("\"norm.weight\""), 13, "\"norm.bias\"");
  write_bytes(dir + "/model.safetensors.index.json", lying);
  try {
    SafetensorsModel::open_dir(dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("norm.bias: listed in the index"), std::string::npos) << e.message();
  }
  // A missing shard.
  write_bytes(dir + "/model.safetensors.index.json", index);
  std::remove((dir + "/model-00002-of-00002.safetensors").c_str());
  try {
    SafetensorsModel::open_dir(dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.component(), "safetensors");
    EXPECT_NE(e.message().find("model-00002-of-00002.safetensors: missing shard"),
              std::string::npos)
        << e.message();
  }
  // Without an index: every *.safetensors in the folder.
  std::remove((dir + "/model.safetensors.index.json").c_str());
  EXPECT_EQ(SafetensorsModel::open_dir(dir)->names().size(), 3u);
  // A shard path may not leave the folder.
  write_bytes(dir + "/model.safetensors.index.json",
              R"({"weight_map":{"x":"../elsewhere.safetensors"}})");
  EXPECT_THROW(SafetensorsModel::open_dir(dir), Error);
  EXPECT_THROW(SafetensorsModel::open_dir(testing::make_temp_dir("st-empty")), Error);
}

}  // namespace
}  // namespace runnel::formats
