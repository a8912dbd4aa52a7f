#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace boxoffice::testing {

/// A program started with fork/exec, stdin from /dev/null, stdout and stderr into one log file.
/// The child leads its own process group and gets SIGKILL if the thread that started it dies, so
/// a crashed test run leaves no server behind. Not thread-safe.
class ChildProcess {
 public:
  /// argv[0] is the program: a path, or a name looked up in $PATH. `env` entries ("K=V") are added
  /// to this process's environment, replacing variables of the same name. Output is appended to
  /// `log_path`, or to a temporary file (removed on destruction) when it is empty. Throws
  /// std::system_error when the program cannot be executed.
  explicit ChildProcess(std::vector<std::string> argv, const std::vector<std::string>& env = {},
                        std::filesystem::path log_path = {});
  /// SIGKILLs the child's process group if the child is still running, then reaps it.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int pid() const { return pid_; }

  /// Sends `signal` to the child itself; does nothing once it has been reaped, so a recycled pid
  /// is never signalled.
  void kill(int signal);

  /// The exit code, or 128 + the signal that ended it (as a shell reports it); nullopt if it is
  /// still running after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

  bool running();

  /// Everything the child wrote so far, for failure messages.
  std::string log() const;
  const std::filesystem::path& log_path() const { return log_path_; }

 private:
  bool try_reap();

  int pid_ = -1;
  std::optional<int> exit_code_;
  std::filesystem::path log_path_;
  bool owns_log_ = false;
};

}  // namespace boxoffice::testing
