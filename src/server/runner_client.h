// The server's side of the runner protocol (runner/protocol.h): one Unix-socket connection per
// request. Closing a connection cancels its request in the runner.
#pragma once

#include <memory>
#include <string>

#include "base/error.h"

namespace runnel::server {

class RunnerConnection {
 public:
  // Throws Error("runner", ...) when nothing listens on `socket_path`.
  static std::unique_ptr<RunnerConnection> open(const std::string& socket_path);
  ~RunnerConnection();
  RunnerConnection(const RunnerConnection&) = delete;
  RunnerConnection& operator=(const RunnerConnection&) = delete;

  // Sends one line (a newline is appended). Throws Error("runner", ...) when the runner is gone.
  void send_line(const std::string& line);
  // Next line; false on end of stream (the runner closed, or crashed). `timeout_ms` < 0 waits
  // forever; on timeout returns false with timed_out() set.
  bool read_line(std::string& line, int timeout_ms = -1);
  bool timed_out() const { return timed_out_; }
  int fd() const { return fd_; }
  bool has_line() const { return buffer_.find('\n') != std::string::npos; }
  void close();  // cancels the request when still running
  bool is_open() const { return fd_ >= 0; }

 private:
  explicit RunnerConnection(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::string buffer_;
  bool timed_out_ = false;
};

// Rebuilds an Error from its "[component] message" text (as the runner sends it).
Error error_from_text(const std::string& text);

// One request/one result line (info, tokenize, ...). Returns the "result" line; throws
// Error("runner", message) for an error frame or a broken connection.
std::string runner_call(const std::string& socket_path, const std::string& request_line,
                        int timeout_ms = 30000);

}  // namespace runnel::server
