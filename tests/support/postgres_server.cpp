#include "support/postgres_server.h"

#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "support/free_port.h"

namespace boxoffice::testing {
namespace {

namespace fs = std::filesystem;

constexpr auto kInitdbTimeout = std::chrono::seconds(60);
constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr auto kStopTimeout = std::chrono::seconds(10);
constexpr auto kReadyPollInterval = std::chrono::milliseconds(20);
// Another process may take the free port before the postmaster binds it.
constexpr int kStartAttemptsMax = 3;
constexpr const char* kServerUser = "postgres";

// $BOXOFFICE_PG_BINDIR, else the newest /usr/lib/postgresql/<major>/bin (Debian's layout).
fs::path server_bindir() {
  if (const char* env = std::getenv("BOXOFFICE_PG_BINDIR"); env != nullptr && *env != '\0') {
    return env;
  }
  fs::path newest;
  int newest_major = -1;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(),
                                     [](unsigned char c) { return std::isdigit(c) != 0; }))
      continue;
    if (!fs::exists(entry.path() / "bin" / "initdb")) continue;
    if (const int major = std::stoi(name); major > newest_major) {
      newest_major = major;
      newest = entry.path() / "bin";
    }
  }
  if (newest.empty()) {
    throw std::runtime_error(
        "PostgreSQL server binaries not found under /usr/lib/postgresql (scripts/install-deps "
        "installs them; BOXOFFICE_PG_BINDIR overrides)");
  }
  return newest;
}

bool running_as_root() { return ::geteuid() == 0; }

// As root, runs `argv` as the server's user (initdb and postgres refuse root), in `dir` (the
// test's working directory may be closed to that user). setpriv execs rather than forks, so the
// pid stays the postmaster's; it sets the parent-death signal again after changing user, which
// clears it.
std::vector<std::string> as_server_user(const fs::path& dir, std::vector<std::string> argv) {
  std::vector<std::string> command;
  if (running_as_root()) {
    command = {"setpriv",
               std::string("--reuid=") + kServerUser,
               std::string("--regid=") + kServerUser,
               "--init-groups",
               "--pdeathsig=KILL",
               "--"};
  }
  command.push_back("env");
  command.push_back("--chdir=" + dir.string());
  command.insert(command.end(), argv.begin(), argv.end());
  return command;
}

void give_to_server_user(const fs::path& dir) {
  if (!running_as_root()) return;
  const passwd* user = ::getpwnam(kServerUser);
  if (user == nullptr) {
    throw std::runtime_error(std::string("no user \"") + kServerUser +
                             "\" to run PostgreSQL as (apt-get install postgresql creates it)");
  }
  if (::chown(dir.c_str(), user->pw_uid, user->pw_gid) != 0) {
    throw std::system_error(errno, std::generic_category(), "chown " + dir.string());
  }
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

PostgresServer::PostgresServer() : PostgresServer(Options{}) {}

PostgresServer::PostgresServer(Options options) : options_(options) {
  give_to_server_user(dir_.path());
  const fs::path bindir = server_bindir();
  {
    ChildProcess initdb(
        as_server_user(dir_.path(),
                       {(bindir / "initdb").string(), "-D", (dir_.path() / "data").string(),
                        "--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C",
                        "--no-sync", "--no-instructions"}),
        {}, dir_.path() / "initdb.log");
    const auto code = initdb.wait_exit(kInitdbTimeout);
    if (code != 0) {
      throw std::runtime_error("initdb failed: " + read_file(dir_.path() / "initdb.log"));
    }
  }
  start();
}

PostgresServer::~PostgresServer() {
  if (postmaster_ != nullptr && postmaster_->running()) {
    postmaster_->kill(SIGQUIT);  // immediate shutdown: the data is thrown away anyway
    (void)postmaster_->wait_exit(kStopTimeout);
  }
  postmaster_.reset();  // SIGKILLs what is left
}

PostgresServer& PostgresServer::shared() {
  static PostgresServer server;
  return server;
}

void PostgresServer::crash() {
  if (postmaster_ == nullptr || !postmaster_->running()) return;
  postmaster_->kill(SIGQUIT);
  (void)postmaster_->wait_exit(kStopTimeout);
  postmaster_.reset();
}

void PostgresServer::start_again() {
  crash();
  start(/*keep_port=*/true);
}

bool PostgresServer::running() const { return postmaster_ != nullptr && postmaster_->running(); }

void PostgresServer::start(bool keep_port) {
  const fs::path bindir = server_bindir();
  for (int attempt = 1; attempt <= kStartAttemptsMax; ++attempt) {
    if (!keep_port) port_ = free_port();
    const std::string durable = options_.fsync ? "on" : "off";
    postmaster_ = std::make_unique<ChildProcess>(
        as_server_user(dir_.path(),
                       {(bindir / "postgres").string(), "-D", (dir_.path() / "data").string(), "-p",
                        std::to_string(port_), "-k", dir_.path().string(), "-c",
                        "listen_addresses=127.0.0.1", "-c", "fsync=" + durable, "-c",
                        "synchronous_commit=" + durable, "-c", "full_page_writes=" + durable}),
        std::vector<std::string>{}, dir_.path() / "postgres.log");
    const std::string ping = "host=127.0.0.1 port=" + std::to_string(port_) +
                             " user=postgres dbname=postgres connect_timeout=2";
    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (std::chrono::steady_clock::now() < deadline && postmaster_->running()) {
      if (PQping(ping.c_str()) == PQPING_OK) return;
      std::this_thread::sleep_for(kReadyPollInterval);
    }
    postmaster_.reset();
  }
  throw std::runtime_error("postgres did not start: " + log());
}

std::string PostgresServer::url(const std::string& database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

std::string PostgresServer::create_database() {
  const std::string name = "test_" + std::to_string(++databases_created_);
  const SqlOutcome outcome = execute("postgres", "CREATE DATABASE " + name);
  if (!outcome.sqlstate.empty()) {
    throw std::runtime_error("CREATE DATABASE " + name + ": SQLSTATE " + outcome.sqlstate);
  }
  return name;
}

void PostgresServer::drop_database(const std::string& database) {
  const SqlOutcome outcome =
      execute("postgres", "DROP DATABASE IF EXISTS " + database + " WITH (FORCE)");
  if (!outcome.sqlstate.empty()) {
    throw std::runtime_error("DROP DATABASE " + database + ": SQLSTATE " + outcome.sqlstate);
  }
}

PostgresServer::SqlOutcome PostgresServer::execute(const std::string& database,
                                                   const std::string& sql) const {
  PGconn* conn = PQconnectdb(url(database).c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("cannot connect to " + url(database) + ": " + message);
  }
  PGresult* result = PQexec(conn, sql.c_str());
  SqlOutcome outcome;
  const ExecStatusType status = PQresultStatus(result);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    if (PQntuples(result) > 0 && PQnfields(result) > 0 && PQgetisnull(result, 0, 0) == 0) {
      outcome.value = PQgetvalue(result, 0, 0);
    }
  } else {
    const char* sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    outcome.sqlstate = sqlstate != nullptr ? sqlstate : "?????";
  }
  PQclear(result);
  PQfinish(conn);
  return outcome;
}

std::string PostgresServer::log() const { return read_file(dir_.path() / "postgres.log"); }

}  // namespace boxoffice::testing
