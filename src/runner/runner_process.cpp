// Runner process socket loop (see runner_process.h). Threads: the accept loop, and per connection
// a handler (runs the engine call) plus, for generations, a writer draining the frame queue.
#include "runner/runner_process.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "base/log.h"

namespace runnel::runner {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<int64_t> g_requests{0}, g_cancelled{0}, g_active{0};
std::atomic<int> g_connections{0};

void on_signal(int) { g_stop = true; }

constexpr size_t kMaxRequestBytes = 64u << 20;

// Reads one '\n'-terminated line; false on EOF/error or when too long.
bool read_line(int fd, std::string& line) {
  line.clear();
  char buf[4096];
  while (true) {
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    const char* nl = static_cast<const char*>(memchr(buf, '\n', static_cast<size_t>(n)));
    size_t take = nl ? static_cast<size_t>(nl - buf) + 1 : static_cast<size_t>(n);
    ssize_t got = recv(fd, buf, take, 0);
    if (got <= 0) return false;
    line.append(buf, static_cast<size_t>(got));
    if (nl) {
      line.pop_back();
      return true;
    }
    if (line.size() > kMaxRequestBytes) return false;
  }
}

bool write_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Frames of one generation: queued by the engine, written by a writer thread.
class SocketSink : public ChunkSink {
 public:
  explicit SocketSink(int fd) : fd_(fd), writer_([this] { write_loop(); }) {}
  ~SocketSink() override { finish(); }

  void accept() override {
    bool expected = false;
    if (accepted_.compare_exchange_strong(expected, true)) push(encode_accepted());
  }
  void chunk(const Chunk& c) override {
    accept();
    push(encode_chunk(c));
  }
  bool cancelled() const override {
    if (broken_) return true;
    // The server closes the connection to cancel: the peer's FIN shows up as POLLRDHUP.
    pollfd p{fd_, POLLRDHUP, 0};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) broken_ = true;
    return broken_;
  }
  bool was_accepted() const { return accepted_; }
  void push(std::string line) {
    line.push_back('\n');
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(line));
    cv_.notify_one();
  }
  // Flushes what is queued and stops the writer.
  void finish() {
    {
      std::lock_guard lock(mu_);
      if (done_) return;
      done_ = true;
      cv_.notify_one();
    }
    writer_.join();
  }

 private:
  void write_loop() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return done_ || !queue_.empty(); });
      if (queue_.empty() && done_) return;
      std::string line = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      if (!broken_ && !write_all(fd_, line)) broken_ = true;
      lock.lock();
    }
  }

  int fd_;
  std::atomic<bool> accepted_{false};
  mutable std::atomic<bool> broken_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool done_ = false;
  std::thread writer_;
};

void handle_generate(Engine& engine, int fd, const std::string& line) {
  GenerateRequest request;
  try {
    request = decode_generate(line);
  } catch (const Error& e) {
    write_all(fd, encode_error(e.what(), 400) + "\n");
    return;
  }
  ++g_requests;
  ++g_active;
  SocketSink sink(fd);
  try {
    GenerateResult result = engine.generate(request, sink);
    if (sink.cancelled()) {
      ++g_cancelled;
    } else {
      sink.accept();
      sink.push(encode_done(result));
    }
  } catch (const Error& e) {
    if (sink.cancelled()) ++g_cancelled;
    sink.push(encode_error(e.what(), sink.was_accepted() ? 500 : 400));
  } catch (const std::exception& e) {
    if (sink.cancelled()) ++g_cancelled;
    sink.push(encode_error(str_cat("[runner] ", e.what()), 500));
  }
  --g_active;
  sink.finish();
}

void handle_connection(Engine& engine, int fd) {
  std::string line;
  if (read_line(fd, line)) {
    std::string reply;
    try {
      std::string op = decode_op(line);
      if (op == "generate") {
        handle_generate(engine, fd, line);
      } else if (op == "tokenize") {
        auto [text, add_special] = decode_tokenize(line);
        reply = encode_tokens(engine.tokenize(text, add_special));
      } else if (op == "detokenize") {
        auto [ids, skip] = decode_detokenize(line);
        reply = encode_text(engine.detokenize(ids, skip));
      } else if (op == "info") {
        reply = encode_info(engine.info());
      } else if (op == "cache") {
        reply = encode_cache(engine.cache_stats_json());
      } else if (op == "stats") {
        reply = encode_stats({g_requests.load(), g_cancelled.load(), g_active.load()});
      } else if (op == "health") {
        reply = R"({"type":"result","ok":true})";
      } else {
        reply = encode_error(str_cat("[protocol] unknown op '", op, "'"), 400);
      }
    } catch (const Error& e) {
      reply = encode_error(e.what(), 400);
    } catch (const std::exception& e) {
      reply = encode_error(str_cat("[runner] ", e.what()), 500);
    }
    if (!reply.empty()) write_all(fd, reply + "\n");
  }
  close(fd);
  --g_connections;
}

}  // namespace

int run_runner_process(Engine& engine, const RunnerProcessOptions& options) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  pid_t parent = getppid();
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  check(options.socket_path.size() < sizeof(addr.sun_path), "runner",
        "socket path too long: ", options.socket_path);
  std::memcpy(addr.sun_path, options.socket_path.c_str(), options.socket_path.size() + 1);
  int listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  check(listen_fd >= 0, "runner", "socket(): ", std::strerror(errno));
  unlink(options.socket_path.c_str());
  if (bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd, 256) != 0) {
    int err = errno;
    close(listen_fd);
    fail("runner", "cannot listen on ", options.socket_path, ": ", std::strerror(err));
  }
  RUNNEL_INFO("runner", "listening on ", options.socket_path);

  while (!g_stop) {
    if (getppid() != parent) break;  // the server is gone
    pollfd p{listen_fd, POLLIN, 0};
    int r = poll(&p, 1, 200);
    if (r <= 0) continue;
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++g_connections;
    std::thread([&engine, fd] { handle_connection(engine, fd); }).detach();
  }
  close(listen_fd);
  unlink(options.socket_path.c_str());
  // Give running requests a moment to see their connections close, then leave.
  for (int i = 0; i < 50 && g_connections > 0; ++i) usleep(20000);
  return 0;
}

}  // namespace runnel::runner
