#include "support/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace boxoffice::testing {
namespace {

constexpr auto kReapPollInterval = std::chrono::milliseconds(5);

[[noreturn]] void throw_errno(int error, const std::string& what) {
  throw std::system_error(error, std::generic_category(), what);
}

std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  throw_errno(ENOENT, "exec " + name);
}

std::vector<std::string> merged_environment(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> by_name;
  auto add = [&](const std::string& entry) {
    const auto eq = entry.find('=');
    if (eq == std::string::npos)
      throw std::invalid_argument("environment entry without '=': " + entry);
    by_name[entry.substr(0, eq)] = entry;
  };
  for (char** e = environ; *e != nullptr; ++e) add(*e);
  for (const auto& entry : extra) add(entry);
  std::vector<std::string> merged;
  merged.reserve(by_name.size());
  for (auto& [name, entry] : by_name) merged.push_back(std::move(entry));
  return merged;
}

std::vector<char*> pointers_to(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

int open_log(std::filesystem::path& path, bool& owns) {
  if (!path.empty()) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw_errno(errno, "open " + path.string());
    return fd;
  }
  const char* tmpdir = std::getenv("TMPDIR");
  std::string pattern = (tmpdir != nullptr && *tmpdir != '\0') ? tmpdir : "/tmp";
  pattern += "/boxoffice-child-XXXXXX.log";
  const int fd = ::mkostemps(pattern.data(), 4, O_APPEND | O_CLOEXEC);
  if (fd < 0) throw_errno(errno, "mkostemps " + pattern);
  path = pattern;
  owns = true;
  return fd;
}

// Between fork and exec only async-signal-safe calls are allowed: the parent has other threads
// (ASan's, gtest's) whose locks may be held in the copied address space.
[[noreturn]] void exec_child(const char* program, char* const* argv, char* const* envp,
                             int stdin_fd, int log_fd, int error_fd, pid_t parent) {
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (::dup2(stdin_fd, 0) < 0 || ::dup2(log_fd, 1) < 0 || ::dup2(log_fd, 2) < 0) {
    const int error = errno;
    (void)!::write(error_fd, &error, sizeof error);
    ::_exit(127);
  }
  // Descriptors the test process left inheritable (sockets, listeners) must not keep ports or
  // connections alive in the child. Failure means an old kernel: harmless, so ignored.
  ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  ::execve(program, argv, envp);
  const int error = errno;
  (void)!::write(error_fd, &error, sizeof error);
  ::_exit(127);
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv, const std::vector<std::string>& env,
                           std::filesystem::path log_path)
    : log_path_(std::move(log_path)) {
  if (argv.empty()) throw std::invalid_argument("ChildProcess: empty argv");
  const std::string program = resolve_program(argv[0]);
  std::vector<std::string> environment = merged_environment(env);
  const std::vector<char*> argv_pointers = pointers_to(argv);
  const std::vector<char*> env_pointers = pointers_to(environment);

  const int log_fd = open_log(log_path_, owns_log_);
  const int stdin_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int error_pipe[2];
  if (stdin_fd < 0 || ::pipe2(error_pipe, O_CLOEXEC) != 0) {
    const int error = errno;
    ::close(log_fd);
    if (stdin_fd >= 0) ::close(stdin_fd);
    throw_errno(error, "ChildProcess setup");
  }

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    exec_child(program.c_str(), argv_pointers.data(), env_pointers.data(), stdin_fd, log_fd,
               error_pipe[1], parent);
  }
  const int fork_error = errno;
  ::close(error_pipe[1]);
  ::close(log_fd);
  ::close(stdin_fd);
  if (pid < 0) {
    ::close(error_pipe[0]);
    throw_errno(fork_error, "fork");
  }
  pid_ = pid;

  // The pipe closes on a successful exec (O_CLOEXEC) and carries errno otherwise, so a missing
  // binary is an exception here rather than a mysterious exit code 127 later.
  int exec_error = 0;
  ssize_t n;
  do {
    n = ::read(error_pipe[0], &exec_error, sizeof exec_error);
  } while (n < 0 && errno == EINTR);
  ::close(error_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof exec_error)) {
    wait_exit(std::chrono::seconds(5));
    throw_errno(exec_error, "exec " + program);
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !try_reap()) {
    // The group takes grandchildren too (a `sh -c` wrapper's child); the direct kill covers a
    // child that has not reached setpgid yet.
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (owns_log_) {
    std::error_code ignored;
    std::filesystem::remove(log_path_, ignored);
  }
}

void ChildProcess::kill(int signal) {
  if (!try_reap()) ::kill(pid_, signal);
}

bool ChildProcess::try_reap() {
  if (exit_code_) return true;
  int status = 0;
  pid_t reaped;
  do {
    reaped = ::waitpid(pid_, &status, WNOHANG);
  } while (reaped < 0 && errno == EINTR);
  if (reaped == 0) return false;
  if (reaped < 0) {
    // ECHILD: someone else reaped it (a SIGCHLD handler set to SIG_IGN); the code is lost.
    exit_code_ = -1;
    return true;
  }
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

std::optional<int> ChildProcess::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!try_reap()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kReapPollInterval);
  }
  return exit_code_;
}

bool ChildProcess::running() { return !try_reap(); }

std::string ChildProcess::log() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

}  // namespace boxoffice::testing
