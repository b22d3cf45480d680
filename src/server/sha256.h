// SHA-256 of files and strings (OpenSSL's EVP), as lower-case hex.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace runnel::server {

std::string sha256_hex(const std::string& data);

// Streams `src` into `dst` (when not empty) while hashing it; `progress(done, total)` per 4 MiB.
// Returns the hex digest. Throws Error("store", ...) on I/O errors.
std::string sha256_copy_file(const std::string& src, const std::string& dst,
                             const std::function<void(int64_t)>& progress);

}  // namespace runnel::server
