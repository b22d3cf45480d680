// SHA-256 through OpenSSL's EVP interface; copying and hashing in one pass over the file.
#include "server/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "base/error.h"

namespace runnel::server {
namespace {

struct Hasher {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Hasher() {
    check(ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1, "store",
          "sha256 init failed");
  }
  ~Hasher() { EVP_MD_CTX_free(ctx); }
  void update(const void* data, size_t n) { EVP_DigestUpdate(ctx, data, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out.push_back(digits[md[i] >> 4]);
      out.push_back(digits[md[i] & 15]);
    }
    return out;
  }
};

}  // namespace

std::string sha256_hex(const std::string& data) {
  Hasher h;
  h.update(data.data(), data.size());
  return h.hex();
}

std::string sha256_copy_file(const std::string& src, const std::string& dst,
                             const std::function<void(int64_t)>& progress) {
  std::unique_ptr<FILE, int (*)(FILE*)> in(std::fopen(src.c_str(), "rb"), std::fclose);
  check(in != nullptr, "store", "cannot read ", src);
  std::unique_ptr<FILE, int (*)(FILE*)> out(nullptr, std::fclose);
  if (!dst.empty()) {
    out.reset(std::fopen(dst.c_str(), "wb"));
    check(out != nullptr, "store", "cannot write ", dst);
  }
  Hasher h;
  std::vector<char> buf(4 << 20);
  int64_t done = 0;
  while (true) {
    size_t n = std::fread(buf.data(), 1, buf.size(), in.get());
    if (n == 0) break;
    h.update(buf.data(), n);
    if (out) check(std::fwrite(buf.data(), 1, n, out.get()) == n, "store", "cannot write ", dst);
    done += static_cast<int64_t>(n);
    if (progress) progress(done);
  }
  check(!std::ferror(in.get()), "store", "error reading ", src);
  if (out) check(std::fflush(out.get()) == 0, "store", "cannot write ", dst);
  return h.hex();
}

}  // namespace runnel::server
