// Model store: manifests + content-addressed blobs (see store.h). Blobs are written to a temp file
// and renamed into place, so a crash never leaves a blob whose name does not match its bytes.
#include "server/store.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "base/env.h"
#include "server/sha256.h"

namespace runnel::server {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool valid_part(std::string_view part, size_t max_len) {
  if (part.empty() || part.size() > max_len) return false;
  if (!std::isalnum(static_cast<unsigned char>(part[0]))) return false;
  for (char c : part) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return false;
  }
  return true;
}

int64_t mtime_unix(const fs::path& p) {
  std::error_code ec;
  auto t = fs::last_write_time(p, ec);
  if (ec) return 0;
  auto sys = std::chrono::file_clock::to_sys(t);
  return std::chrono::duration_cast<std::chrono::seconds>(sys.time_since_epoch()).count();
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  check(in.good(), "store", "cannot read ", p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file_atomic(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  fs::path tmp = p;
  tmp += str_cat(".tmp", getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    check(out.good(), "store", "cannot write ", tmp.string());
    out << text;
    check(out.good(), "store", "cannot write ", tmp.string());
  }
  fs::rename(tmp, p);
}

bool is_gguf_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return (in.gcount() == 4 && std::string(magic, 4) == "GGUF") || p.extension() == ".gguf";
}

}  // namespace

int64_t Manifest::total_size() const {
  int64_t n = 0;
  for (const auto& f : files) n += f.size;
  return n;
}

bool is_valid_model_name(const std::string& name) {
  if (name.empty() || name.size() > 256) return false;
  std::string model = name, tag;
  if (size_t colon = name.find(':'); colon != std::string::npos) {
    model = name.substr(0, colon);
    tag = name.substr(colon + 1);
    if (!valid_part(tag, 128)) return false;
  }
  std::vector<std::string> parts = split(model, '/');
  if (parts.empty() || parts.size() > 2) return false;
  for (const auto& p : parts)
    if (!valid_part(p, 128)) return false;
  return true;
}

std::string normalize_model_name(const std::string& name) {
  check(name.find('\0') == std::string::npos, "store", "model name contains a NUL byte");
  check(!name.empty(), "store", "model name is empty");
  check(is_valid_model_name(name), "store", "invalid model name '", name,
        "': use letters, digits, '.', '_', '-' as model[:tag] or namespace/model[:tag]");
  return name.find(':') == std::string::npos ? name + ":latest" : name;
}

ModelStore::ModelStore(std::string root) : root_(std::move(root)) {}

void ModelStore::add_builtin(const std::string& name, const std::string& path) {
  builtins_[normalize_model_name(name)] = path;
}

std::string ModelStore::default_root() {
  if (auto env = env_string("RUNNEL_MODELS"); env && !env->empty()) return *env;
  const char* home = std::getenv("HOME");
  return str_cat(home ? home : ".", "/.runnel/models");
}

std::string ModelStore::manifest_path(const std::string& normalized) const {
  size_t colon = normalized.find(':');
  return str_cat(root_, "/manifests/", normalized.substr(0, colon), "/",
                 normalized.substr(colon + 1));
}

std::string ModelStore::blob_path(const std::string& digest) const {
  check(starts_with(digest, "sha256:") && digest.size() == 71, "store", "bad digest ", digest);
  return str_cat(root_, "/blobs/sha256-", digest.substr(7));
}

Manifest ModelStore::read_manifest(const std::string& path, const std::string& name) const {
  std::string text = read_file(path);
  Manifest m;
  try {
    json j = json::parse(text);
    m.name = name;
    m.format = j.value("format", "");
    m.source = j.value("source", "");
    for (const json& f : j.at("files")) {
      StoreFile sf{f.at("name").get<std::string>(), f.at("digest").get<std::string>(),
                   f.value("size", int64_t{0})};
      check(sf.name.find('/') == std::string::npos && sf.name != ".." && sf.name != ".", "store",
            "manifest ", path, ": bad file name ", sf.name);
      m.files.push_back(std::move(sf));
    }
  } catch (const json::exception& e) {
    fail("store", "manifest ", path, " is corrupt: ", e.what());
  }
  m.digest = "sha256:" + sha256_hex(text);
  m.modified_unix = mtime_unix(path);
  return m;
}

std::vector<Manifest> ModelStore::list() const {
  std::vector<Manifest> out;
  fs::path dir = fs::path(root_) / "manifests";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::end(it); it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file() || it->path().filename().string().find(".tmp") != std::string::npos)
      continue;
    fs::path rel = fs::relative(it->path(), dir);
    std::string name = rel.parent_path().generic_string() + ":" + rel.filename().string();
    if (!is_valid_model_name(name)) continue;
    try {
      out.push_back(read_manifest(it->path().string(), name));
    } catch (const Error&) {
      // A corrupt manifest is skipped in listings; `show` reports it.
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Manifest& a, const Manifest& b) { return a.name < b.name; });
  return out;
}

std::optional<Manifest> ModelStore::find(const std::string& name) const {
  std::string n = normalize_model_name(name);
  std::string path = manifest_path(n);
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  return read_manifest(path, n);
}

Manifest ModelStore::create(const std::string& name, const std::string& from_path,
                            const ProgressFn& progress) {
  std::string n = normalize_model_name(name);
  std::error_code ec;
  fs::path src(from_path);
  check(fs::exists(src, ec), "store", "cannot create ", n, ": ", from_path, " does not exist");
  std::vector<fs::path> files;
  std::string format;
  if (fs::is_regular_file(src, ec)) {
    check(is_gguf_file(src), "store", from_path, " is not a GGUF file");
    files.push_back(src);
    format = "gguf";
  } else {
    for (const auto& e : fs::directory_iterator(src, ec)) {
      std::string fname = e.path().filename().string();
      if (e.is_regular_file() && fname[0] != '.') files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    bool has_st = std::any_of(files.begin(), files.end(),
                              [](const fs::path& p) { return p.extension() == ".safetensors"; });
    bool has_config = std::any_of(files.begin(), files.end(),
                                  [](const fs::path& p) { return p.filename() == "config.json"; });
    check(has_st && has_config, "store", from_path,
          " is neither a .gguf file nor a folder with config.json and *.safetensors");
    format = "safetensors";
  }
  int64_t total = 0;
  for (const auto& f : files) total += static_cast<int64_t>(fs::file_size(f));
  fs::create_directories(fs::path(root_) / "blobs");

  json jfiles = json::array();
  int64_t done_before = 0;
  for (const auto& f : files) {
    std::string tmp = str_cat(root_, "/blobs/.partial-", getpid(), "-", f.filename().string());
    std::string hex;
    try {
      hex = sha256_copy_file(f.string(), tmp, [&](int64_t done) {
        if (progress) progress(done_before + done, total);
      });
    } catch (...) {
      fs::remove(tmp, ec);
      throw;
    }
    std::string digest = "sha256:" + hex;
    std::string blob = blob_path(digest);
    if (fs::exists(blob, ec)) {
      fs::remove(tmp, ec);
    } else {
      fs::rename(tmp, blob);
    }
    int64_t size = static_cast<int64_t>(fs::file_size(blob));
    done_before += size;
    jfiles.push_back({{"name", f.filename().string()}, {"digest", digest}, {"size", size}});
  }
  if (progress) progress(total, total);
  json manifest = {{"schemaVersion", 1},
                   {"name", n},
                   {"format", format},
                   {"source", fs::absolute(src).string()},
                   {"files", jfiles}};
  write_file_atomic(manifest_path(n), manifest.dump(2));
  return *find(n);
}

void ModelStore::remove(const std::string& name) {
  std::string n = normalize_model_name(name);
  std::string path = manifest_path(n);
  std::error_code ec;
  if (!fs::remove(path, ec)) throw NotFoundError(str_cat("model '", name, "' not found"));
  // Drop now-empty manifest folders (best effort).
  fs::path dir = fs::path(path).parent_path();
  while (dir != fs::path(root_) / "manifests" && fs::is_empty(dir, ec) && !ec) {
    fs::remove(dir, ec);
    dir = dir.parent_path();
  }
  collect_garbage();
}

void ModelStore::copy(const std::string& source, const std::string& destination) {
  std::string src = normalize_model_name(source);
  std::string dst = normalize_model_name(destination);
  std::string from = manifest_path(src);
  std::error_code ec;
  if (!fs::is_regular_file(from, ec))
    throw NotFoundError(str_cat("model '", source, "' not found"));
  json j = json::parse(read_file(from));
  j["name"] = dst;
  write_file_atomic(manifest_path(dst), j.dump(2));
}

void ModelStore::collect_garbage() {
  std::set<std::string> used;
  for (const Manifest& m : list())
    for (const StoreFile& f : m.files) used.insert(blob_path(f.digest));
  std::error_code ec;
  fs::path blobs = fs::path(root_) / "blobs";
  if (!fs::is_directory(blobs, ec)) return;
  for (const auto& e : fs::directory_iterator(blobs, ec)) {
    std::string fname = e.path().filename().string();
    if (starts_with(fname, "sha256-") && !used.count(e.path().string())) fs::remove(e.path(), ec);
  }
  fs::remove_all(fs::path(root_) / "trees", ec);  // rebuilt on demand
}

std::string ModelStore::materialize_tree(const Manifest& m) const {
  fs::path dir = fs::path(root_) / "trees" / m.digest.substr(7);
  std::error_code ec;
  fs::create_directories(dir, ec);
  for (const StoreFile& f : m.files) {
    fs::path link = dir / f.name;
    if (fs::exists(fs::symlink_status(link, ec))) continue;
    fs::create_symlink(blob_path(f.digest), link, ec);
    check(!ec, "store", "cannot link ", link.string(), ": ", ec.message());
  }
  return dir.string();
}

ResolvedModel ModelStore::resolve(const std::string& ref) const {
  check(ref.find('\0') == std::string::npos, "store", "model name contains a NUL byte");
  check(!ref.empty(), "store", "model is required");
  ResolvedModel r;
  if (is_valid_model_name(ref)) {
    if (auto m = find(ref)) {
      r.name = m->name;
      r.format = m->format;
      r.size_bytes = m->total_size();
      r.digest = m->digest;
      r.modified_unix = m->modified_unix;
      for (const StoreFile& f : m->files)
        check(fs::exists(blob_path(f.digest)), "store", "model ", m->name, ": blob ", f.digest,
              " is missing");
      // Runners see the original file names (a GGUF is known by its extension too), as links.
      r.path = materialize_tree(*m);
      if (m->format == "gguf" && m->files.size() == 1) r.path += "/" + m->files[0].name;
      return r;
    }
  }
  if (is_valid_model_name(ref)) {
    if (auto it = builtins_.find(normalize_model_name(ref)); it != builtins_.end()) {
      ResolvedModel b = resolve(it->second);
      b.name = it->first;
      return b;
    }
  }
  std::error_code ec;
  fs::path p(ref);
  if (fs::is_regular_file(p, ec) && is_gguf_file(p)) {
    r.name = ref;
    r.path = fs::absolute(p).string();
    r.format = "gguf";
    r.size_bytes = static_cast<int64_t>(fs::file_size(p));
    r.modified_unix = mtime_unix(p);
    return r;
  }
  if (fs::is_directory(p, ec)) {
    r.name = ref;
    r.path = fs::absolute(p).string();
    r.format = "safetensors";
    for (const auto& e : fs::directory_iterator(p, ec))
      if (e.is_regular_file()) r.size_bytes += static_cast<int64_t>(e.file_size());
    r.modified_unix = mtime_unix(p);
    return r;
  }
  if (!is_valid_model_name(ref) && ref.find('/') == std::string::npos && !ends_with(ref, ".gguf"))
    fail("store", "invalid model name '", ref, "'");
  throw NotFoundError(str_cat("model '", ref, "' not found"));
}

}  // namespace runnel::server
