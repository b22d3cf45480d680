// Unix-socket client for runner processes (see runner_client.h).
#include "server/runner_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"
#include "runner/protocol.h"

namespace runnel::server {

std::unique_ptr<RunnerConnection> RunnerConnection::open(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  check(socket_path.size() < sizeof(addr.sun_path), "runner", "socket path too long");
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  check(fd >= 0, "runner", "socket(): ", std::strerror(errno));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(fd);
    fail("runner", "cannot reach the runner at ", socket_path, ": ", std::strerror(err));
  }
  return std::unique_ptr<RunnerConnection>(new RunnerConnection(fd));
}

RunnerConnection::~RunnerConnection() { close(); }

void RunnerConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void RunnerConnection::send_line(const std::string& line) {
  std::string data = line + "\n";
  size_t off = 0;
  while (off < data.size()) {
    check(fd_ >= 0, "runner", "connection closed");
    ssize_t n = send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    check(n > 0, "runner", "the runner closed the connection: ", std::strerror(errno));
    off += static_cast<size_t>(n);
  }
}

bool RunnerConnection::read_line(std::string& line, int timeout_ms) {
  timed_out_ = false;
  while (true) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return true;
    }
    if (fd_ < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      timed_out_ = true;
      return false;
    }
    char buf[16384];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

Error error_from_text(const std::string& text) {
  if (text.size() > 2 && text[0] == '[') {
    size_t close = text.find("] ");
    if (close != std::string::npos) return Error(text.substr(1, close - 1), text.substr(close + 2));
  }
  return Error("runner", text);
}

std::string runner_call(const std::string& socket_path, const std::string& request_line,
                        int timeout_ms) {
  auto conn = RunnerConnection::open(socket_path);
  conn->send_line(request_line);
  std::string line;
  if (!conn->read_line(line, timeout_ms))
    fail("runner", conn->timed_out() ? "the runner did not answer in time"
                                     : "the runner closed the connection (crashed?)");
  runner::Frame f = runner::decode_frame(line);
  if (f.type == runner::Frame::Type::kError) throw error_from_text(f.error);
  check(f.type == runner::Frame::Type::kResult, "runner", "unexpected answer from the runner");
  return line;
}

}  // namespace runnel::server
