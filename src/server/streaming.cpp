// Generation plumbing shared by the routes (see streaming.h).
#include "server/streaming.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "base/time.h"

namespace runnel::server {
using nlohmann::json;
using runner::Frame;

int status_for(const std::exception& e) {
  if (auto* h = dynamic_cast<const HttpError*>(&e)) return h->status();
  if (dynamic_cast<const NotFoundError*>(&e)) return 404;
  if (auto* err = dynamic_cast<const Error*>(&e)) {
    const std::string& c = err->component();
    if (c == "api" || c == "store") return 400;
  }
  return 500;
}

void error_response(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace),
                  "application/json");
}

std::string iso_time(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  tm utc{};
  gmtime_r(&t, &utc);
  char buf[64];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

std::string iso_time_now() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
  time_t t = static_cast<time_t>(ns / 1000000000);
  tm utc{};
  gmtime_r(&t, &utc);
  char buf[64];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &utc);
  char frac[16];
  snprintf(frac, sizeof(frac), ".%09lldZ", static_cast<long long>(ns % 1000000000));
  return std::string(buf) + frac;
}

namespace {

std::pair<std::string, int> address_of(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
    return {buf, ntohs(in->sin_port)};
  }
  if (a.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
    return {buf, ntohs(in6->sin6_port)};
  }
  return {"", -1};
}

// httplib 0.11 does not expose a request's socket; find it among our descriptors by its two
// endpoints. -1 when not found (then disconnects are noticed on the next write only).
int find_client_socket(const httplib::Request& req) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  while (dirent* e = readdir(dir)) {
    int fd = atoi(e->d_name);
    if (fd <= 2 || fd == dirfd(dir)) continue;
    sockaddr_storage peer{}, local{};
    socklen_t pl = sizeof(peer), ll = sizeof(local);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;
    if (address_of(peer) == std::pair{req.remote_addr, req.remote_port} &&
        address_of(local).second == req.local_port) {
      found = fd;
      break;
    }
  }
  closedir(dir);
  return found;
}

}  // namespace

Frame Generation::next() {
  if (pending) {
    Frame f = std::move(*pending);
    pending.reset();
    return f;
  }
  std::string line;
  Frame f;
  // Wait for the runner while watching the client: a hang-up cancels at once.
  while (client_fd >= 0 && conn && conn->is_open() && !conn->has_line()) {
    pollfd p[2] = {{conn->fd(), POLLIN, 0}, {client_fd, POLLRDHUP, 0}};
    if (poll(p, 2, 1000) < 0 && errno != EINTR) break;
    if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) {
      client_gone = true;
      conn.reset();  // cancels the request in the runner
      f.type = Frame::Type::kError;
      f.error = "[server] the client disconnected";
      return f;
    }
    if (p[0].revents) break;
  }
  if (!conn || !conn->read_line(line)) {
    f.type = Frame::Type::kError;
    f.error = "[runner] the model's runner stopped unexpectedly (crashed?)";
    if (lease) RUNNEL_WARN("server", "runner for ", lease->model().name, " closed mid-stream");
    return f;
  }
  try {
    return runner::decode_frame(line);
  } catch (const Error& e) {
    f.type = Frame::Type::kError;
    f.error = e.what();
    return f;
  }
}

namespace {

int64_t keep_alive_of(const GenerationParams& p) {
  return p.keep_alive_ns.value_or(kDefaultKeepAliveNs);
}

}  // namespace

int64_t load_only(ServerContext& ctx, const GenerationParams& params) {
  ResolvedModel model = ctx.store.resolve(params.model);
  int64_t keep = keep_alive_of(params);
  auto lease = ctx.scheduler.acquire(model, keep);
  int64_t load = lease->load_duration_ns();
  lease.reset();
  if (keep == 0) ctx.scheduler.unload(model);
  return load;
}

std::shared_ptr<Generation> start_generation(ServerContext& ctx, const GenerationParams& params,
                                             const httplib::Request& req) {
  auto gen = std::make_shared<Generation>();
  gen->client_fd = find_client_socket(req);
  gen->start_ns = now_ns();
  ResolvedModel model = ctx.store.resolve(params.model);
  std::string request = runner::encode_generate(params.request);
  for (int attempt = 0;; ++attempt) {
    gen->lease = ctx.scheduler.acquire(model, keep_alive_of(params));
    std::string line;
    try {
      gen->conn = RunnerConnection::open(gen->lease->socket_path());
      gen->conn->send_line(request);
      if (!gen->conn->read_line(line)) fail("runner", "the runner closed the connection");
    } catch (const Error& e) {
      // A runner that died between requests: forget it and start a new one, once.
      ctx.scheduler.report_broken(*gen->lease);
      gen->conn.reset();
      gen->lease.reset();
      if (attempt == 0) continue;
      throw HttpError(500, str_cat("the model's runner failed: ", e.what()));
    }
    Frame f = runner::decode_frame(line);
    if (f.type == Frame::Type::kError) throw HttpError(f.status == 400 ? 400 : 500, f.error);
    if (f.type != Frame::Type::kAccepted) gen->pending = std::move(f);
    return gen;
  }
}

namespace {

// Sends the next frame of `gen` to the client; false when the client is gone.
bool pump(ServerContext& ctx, Generation* gen, Formatter* formatter, int64_t load_ns,
          httplib::DataSink& sink) {
  if (gen->finished) {
    sink.done();
    return true;
  }
  Frame f = gen->next();
  if (gen->client_gone) return false;
  std::string out;
  if (f.type == Frame::Type::kChunk) {
    ++ctx.metrics.generated_tokens;
    out = formatter->chunk(f.chunk);
  } else if (f.type == Frame::Type::kDone) {
    f.result.load_duration += load_ns;
    f.result.total_duration = now_ns() - gen->start_ns;
    ctx.metrics.prompt_tokens += f.result.prompt_eval_count;
    ctx.metrics.cached_tokens += f.result.cached_tokens;
    out = formatter->done(f.result);
    gen->finished = true;
  } else if (f.type == Frame::Type::kError) {
    ++ctx.metrics.generation_errors;
    out = formatter->error(f.error);
    gen->finished = true;
  } else {
    return true;  // a late "accepted": nothing to send
  }
  if (!out.empty() && !sink.write(out.data(), out.size())) {
    // The client is gone: closing the runner connection cancels the request there.
    gen->conn.reset();
    return false;
  }
  if (gen->finished) {
    gen->conn.reset();
    gen->lease.reset();
    sink.done();
  }
  return true;
}

}  // namespace

void stream_response(ServerContext& ctx, httplib::Response& res, std::shared_ptr<Generation> gen,
                     std::shared_ptr<Formatter> formatter, const std::string& content_type) {
  ++ctx.metrics.generations;
  ++ctx.metrics.generations_active;
  int64_t load_ns = gen->lease->load_duration_ns();
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      content_type,
      [&ctx, gen, formatter, load_ns](size_t, httplib::DataSink& sink) {
        try {
          return pump(ctx, gen.get(), formatter.get(), load_ns, sink);
        } catch (const std::exception& e) {
          // Never let an exception escape into httplib's thread: end the stream with it.
          RUNNEL_WARN("server", "stream failed: ", e.what());
          std::string out = formatter->error(e.what());
          gen->finished = true;
          gen->conn.reset();
          gen->lease.reset();
          if (!sink.write(out.data(), out.size())) return false;
          sink.done();
          return true;
        }
      },
      [&ctx, gen](bool success) {
        if (!gen->finished) ++ctx.metrics.client_disconnects;
        gen->finished = true;
        gen->conn.reset();
        gen->lease.reset();
        --ctx.metrics.generations_active;
        (void)success;
      });
}

Collected collect(ServerContext& ctx, Generation& gen) {
  ++ctx.metrics.generations;
  Collected c;
  json tool_calls = json::array(), logprobs = json::array();
  while (true) {
    Frame f = gen.next();
    if (f.type == Frame::Type::kChunk) {
      ++ctx.metrics.generated_tokens;
      c.text += f.chunk.text;
      c.thinking += f.chunk.thinking;
      if (!f.chunk.tool_calls_json.empty())
        for (auto& t : json::parse(f.chunk.tool_calls_json)) tool_calls.push_back(t);
      if (!f.chunk.logprobs_json.empty())
        for (auto& t : json::parse(f.chunk.logprobs_json)) logprobs.push_back(t);
    } else if (f.type == Frame::Type::kDone) {
      c.result = f.result;
      c.result.load_duration += gen.lease->load_duration_ns();
      c.result.total_duration = now_ns() - gen.start_ns;
      ctx.metrics.prompt_tokens += c.result.prompt_eval_count;
      ctx.metrics.cached_tokens += c.result.cached_tokens;
      break;
    } else if (f.type == Frame::Type::kError) {
      if (gen.client_gone) {
        ++ctx.metrics.client_disconnects;
      } else {
        ++ctx.metrics.generation_errors;
      }
      c.error = f.error;
      break;
    }
  }
  gen.conn.reset();
  gen.lease.reset();
  c.tool_calls_json = tool_calls.dump();
  c.logprobs_json = logprobs.dump();
  return c;
}

}  // namespace runnel::server
