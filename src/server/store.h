// The model store under $RUNNEL_MODELS (default ~/.runnel/models): manifests/<model>/<tag> (JSON)
// name the files of a model, each a content-addressed blob blobs/sha256-<hex>, so names that share
// weights share bytes. Names are validated before they touch the file system: "model[:tag]" or
// "namespace/model[:tag]" of [A-Za-z0-9._-] parts that start with a letter or digit, so a name can
// never escape the store (no "..", no absolute path, no NUL).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace runnel::server {

// A model reference that names nothing (HTTP 404, unlike a malformed request's 400).
class NotFoundError : public Error {
 public:
  explicit NotFoundError(std::string_view message) : Error("store", message) {}
};

struct StoreFile {
  std::string name;    // file name inside the model ("model.gguf", "config.json")
  std::string digest;  // "sha256:<hex>"
  int64_t size = 0;    // bytes
};

struct Manifest {
  std::string name;    // normalized, "model:tag"
  std::string format;  // "gguf" or "safetensors"
  std::string source;  // the path it was created from
  std::vector<StoreFile> files;
  std::string digest;         // sha256 of the manifest text
  int64_t modified_unix = 0;  // seconds
  int64_t total_size() const;
};

// What a MODEL reference names, ready to hand to a runner.
struct ResolvedModel {
  std::string name;  // store name, or the path as given
  std::string path;  // a .gguf file or a folder (a folder of links to blobs for stored folders)
  std::string format;
  int64_t size_bytes = 0;
  std::string digest;  // manifest digest, or empty for plain paths
  int64_t modified_unix = 0;
};

// bytes done, bytes total.
using ProgressFn = std::function<void(int64_t, int64_t)>;

// "qwen3" → "qwen3:latest"; throws Error("store", ...) naming the problem for a bad name.
std::string normalize_model_name(const std::string& name);
bool is_valid_model_name(const std::string& name);

class ModelStore {
 public:
  explicit ModelStore(std::string root);
  // $RUNNEL_MODELS, else ~/.runnel/models.
  static std::string default_root();
  const std::string& root() const { return root_; }

  std::vector<Manifest> list() const;  // sorted by name
  std::optional<Manifest> find(const std::string& name) const;
  // Imports a .gguf file or a model folder (its top-level regular files) under `name`.
  Manifest create(const std::string& name, const std::string& from_path,
                  const ProgressFn& progress = nullptr);
  // Throws NotFoundError when absent. Blobs no manifest references any more are deleted.
  void remove(const std::string& name);
  void copy(const std::string& source, const std::string& destination);
  // Store name, else a path to a .gguf file, else a folder. NotFoundError when none;
  // Error for a reference that is neither a valid name nor an existing path.
  ResolvedModel resolve(const std::string& ref) const;
  std::string blob_path(const std::string& digest) const;
  // A model that ships with runnel (the embedded default model): `name` resolves to the folder
  // `path` unless the store holds a model of that name.
  void add_builtin(const std::string& name, const std::string& path);

 private:
  std::string manifest_path(const std::string& normalized) const;
  Manifest read_manifest(const std::string& path, const std::string& name) const;
  std::string materialize_tree(const Manifest& m) const;
  void collect_garbage();

  std::string root_;
  std::map<std::string, std::string> builtins_;  // normalized name -> folder
};

}  // namespace runnel::server
