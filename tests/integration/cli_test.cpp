// The command line: settings from flags, variables and the config file, in that order, and one
// clear message with exit code 2 for a bad one.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "http/jwt.h"
#include "support/child_process.h"
#include "support/free_port.h"
#include "support/http_client.h"
#include "support/temp_dir.h"

namespace boxoffice::testing {
namespace {

using namespace std::chrono_literals;

struct Run {
  std::optional<int> exit_code;
  std::string output;
};

Run run(std::vector<std::string> args, std::vector<std::string> env = {}) {
  args.insert(args.begin(), BOXOFFICE_BINARY);
  ChildProcess child(args, env);
  auto code = child.wait_exit(10s);
  return {code, child.log()};
}

TEST(Cli, BadSettingsStopWithOneClearMessage) {
  TempDir dir;
  const auto data = "--data-dir=" + dir.path().string();
  auto bad_listen = run({"serve", data, "--listen", "nonsense"});
  EXPECT_EQ(bad_listen.exit_code, 2);
  EXPECT_NE(bad_listen.output.find("must be host:port"), std::string::npos) << bad_listen.output;

  auto bad_number = run({"serve", data}, {"BOXOFFICE_WORKER_THREADS=lots"});
  EXPECT_EQ(bad_number.exit_code, 2);
  EXPECT_NE(bad_number.output.find("BOXOFFICE_WORKER_THREADS"), std::string::npos)
      << bad_number.output;

  auto unknown_role = run({"serve", data, "--roles", "gateway,box-office"});
  EXPECT_EQ(unknown_role.exit_code, 2);
  EXPECT_NE(unknown_role.output.find("unknown role \"box-office\""), std::string::npos)
      << unknown_role.output;

  // An engine that does not answer, or a URL of the wrong kind: one line naming the setting.
  const auto nobody = "redis://127.0.0.1:" + std::to_string(free_port());
  auto no_redis = run({"serve", data, "--redis-url", nobody});
  EXPECT_EQ(no_redis.exit_code, 2);
  EXPECT_NE(no_redis.output.find("redis_url"), std::string::npos) << no_redis.output;
  auto wrong_scheme = run({"serve", data, "--redis-url", "http://127.0.0.1:6379"});
  EXPECT_EQ(wrong_scheme.exit_code, 2);
  EXPECT_NE(wrong_scheme.output.find("redis_url"), std::string::npos) << wrong_scheme.output;
  auto no_nats =
      run({"serve", data, "--nats-url", "nats://127.0.0.1:" + std::to_string(free_port())});
  EXPECT_EQ(no_nats.exit_code, 2);
  EXPECT_NE(no_nats.output.find("nats_url"), std::string::npos) << no_nats.output;

  const auto file = dir.path() / "boxoffice.toml";
  std::ofstream(file) << "listen = \"127.0.0.1:1\"\ncolour = \"red\"\n";
  auto unknown = run({"serve", data, "--config", file.string()});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.output.find("unknown key \"colour\""), std::string::npos) << unknown.output;

  auto bad_level = run({"serve", data, "--log-level", "loud"});
  EXPECT_EQ(bad_level.exit_code, 2);
  EXPECT_NE(bad_level.output.find("log_level"), std::string::npos) << bad_level.output;
}

/// Starts serve with the given sources and returns the port it answered on, if any.
bool answers_on(uint16_t port) {
  for (int i = 0; i < 250; ++i) {
    try {
      HttpClient client(port, 1s);
      if (client.get("/healthz").status == 200) return true;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

TEST(Cli, FlagBeatsVariableBeatsFile) {
  TempDir dir;
  const auto file_port = free_port(), env_port = free_port(), flag_port = free_port();
  const auto file = dir.path() / "boxoffice.toml";
  std::ofstream(file) << "listen = \"127.0.0.1:" << file_port << "\"\ndata_dir = \""
                      << (dir.path() / "data").string() << "\"\n";
  const auto base = std::vector<std::string>{BOXOFFICE_BINARY, "serve", "--config", file.string()};
  {
    ChildProcess from_file(base);
    EXPECT_TRUE(answers_on(file_port)) << from_file.log();
    EXPECT_TRUE(std::filesystem::exists(dir.path() / "data" / "bookings.sqlite3"));
  }
  {
    ChildProcess from_env(base, {"BOXOFFICE_LISTEN=127.0.0.1:" + std::to_string(env_port)});
    EXPECT_TRUE(answers_on(env_port)) << from_env.log();
  }
  {
    auto args = base;
    args.push_back("--listen=127.0.0.1:" + std::to_string(flag_port));
    ChildProcess from_flag(args, {"BOXOFFICE_LISTEN=127.0.0.1:" + std::to_string(env_port)});
    EXPECT_TRUE(answers_on(flag_port)) << from_flag.log();
  }
}

TEST(Cli, TokenIsSignedWithTheConfiguredSecret) {
  ChildProcess child(
      {BOXOFFICE_BINARY, "token", "--sub", "alice", "--role", "admin", "--ttl", "60"},
      {"BOXOFFICE_JWT_SECRET=cli-secret"});
  ASSERT_EQ(child.wait_exit(10s), 0) << child.log();
  auto token = child.log();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  const auto now = std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());
  auto claims =
      jwt::verify(token, {"cli-secret", "boxoffice", "boxoffice", std::chrono::seconds{0}}, now);
  ASSERT_TRUE(claims.ok()) << claims.error().detail << " token: " << token;
  EXPECT_EQ(claims->subject, "alice");
  EXPECT_EQ(claims->roles, std::vector<std::string>{"admin"});
  EXPECT_LE(claims->expires_at, now + std::chrono::seconds{61});

  auto no_secret = run({"token", "--sub", "alice"});
  EXPECT_EQ(no_secret.exit_code, 2);
  EXPECT_NE(no_secret.output.find("no JWT secret"), std::string::npos) << no_secret.output;
}

}  // namespace
}  // namespace boxoffice::testing
