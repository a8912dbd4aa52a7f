// The negative JWT matrix: tokens minted by an independent JOSE implementation (the npm package
// `jose`, run by tests/jwt_matrix/mint.mjs under Node) against the real server, with its keys from
// a JWKS file and, once more, from PEM files. Every refused token is a 401 problem with a Bearer
// challenge; the valid RS256, ES256 and HS256-by-kid tokens are accepted.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "support/child_process.h"
#include "support/free_port.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace boxoffice::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

const fs::path kMintDir = fs::path(__FILE__).parent_path().parent_path() / "jwt_matrix";

std::optional<fs::path> find_in_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  std::stringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    const fs::path candidate = fs::path(dir) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Case {
  std::string name;
  std::string token;
  int expect = 0;
  std::string why;  // the problem's detail for a refusal
  bool jwks_only = false;
};

struct Matrix {
  int64_t leeway_seconds = 0;
  std::vector<Case> cases;
};

class JwtMatrixTest : public ::testing::Test {
 protected:
  // Minted once for the suite: RSA key generation is the slow part, and every test reads the same
  // keys and tokens.
  static void SetUpTestSuite() {
    const auto node = find_in_path("node");
    if (!node) {
      skip_reason_ = new std::string(
          "node is not installed: the JWT matrix needs Node and the npm package jose "
          "(scripts/install-deps installs both)");
      return;
    }
    dir_ = new TempDir();
    ChildProcess mint({node->string(), (kMintDir / "mint.mjs").string(), dir_->path().string()});
    const auto code = mint.wait_exit(60s);
    if (code != 0) {
      mint_failure_ = new std::string(
          "node mint.mjs failed (is jose installed? run `npm ci` in tests/jwt_matrix):\n" +
          mint.log());
      return;
    }
    const json::object doc = json::parse(read_file(dir_->path() / "matrix.json")).as_object();
    matrix_ = new Matrix();
    matrix_->leeway_seconds = doc.at("leeway_seconds").to_number<int64_t>();
    for (const auto& item : doc.at("cases").as_array()) {
      const auto& c = item.as_object();
      matrix_->cases.push_back({std::string(c.at("name").as_string()),
                                std::string(c.at("token").as_string()),
                                static_cast<int>(c.at("expect").to_number<int64_t>()),
                                c.contains("why") ? std::string(c.at("why").as_string()) : "",
                                c.contains("jwks_only") && c.at("jwks_only").as_bool()});
    }
  }

  static void TearDownTestSuite() {
    delete matrix_;
    delete dir_;
    delete skip_reason_;
    delete mint_failure_;
    matrix_ = nullptr;
    dir_ = nullptr;
    skip_reason_ = mint_failure_ = nullptr;
  }

  void SetUp() override {
    if (skip_reason_ != nullptr) GTEST_SKIP() << *skip_reason_;
    ASSERT_EQ(mint_failure_, nullptr) << *mint_failure_;
    ASSERT_NE(matrix_, nullptr);
  }

  static fs::path key_file(const std::string& name) { return dir_->path() / name; }

  ServerOptions server_with_keys(const std::string& setting) const {
    ServerOptions options;
    options.args = {"--jwt-keys=" + setting,
                    "--jwt-leeway-seconds=" + std::to_string(matrix_->leeway_seconds)};
    return options;
  }

  // Every case against GET /v1/bookings (a buyer route): the expected status, and for a refusal
  // the whole 401 shape. Returns how many cases ran.
  static int check_matrix(const ServerProcess& server, bool keys_from_jwks) {
    auto client = server.client();
    int ran = 0;
    for (const Case& c : matrix_->cases) {
      if (c.jwks_only && !keys_from_jwks) continue;
      SCOPED_TRACE(c.name);
      ++ran;
      const auto r = client.get("/v1/bookings", {{"Authorization", "Bearer " + c.token}});
      EXPECT_EQ(r.status, c.expect) << r.body;
      if (c.expect != 401 || r.status != 401) continue;
      EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
      const auto body = json::parse(r.body).as_object();
      EXPECT_EQ(body.at("code"), "unauthorized");
      EXPECT_EQ(body.at("status"), 401);
      EXPECT_EQ(std::string(body.at("detail").as_string()), c.why)
          << "refused, but not for the reason the case tests";
      const auto challenge = r.header("WWW-Authenticate");
      EXPECT_EQ(challenge.rfind(R"(Bearer realm="boxoffice", error="invalid_token")", 0), 0u)
          << challenge;
      EXPECT_NE(challenge.find("error_description=\"" + std::string(body.at("detail").as_string())),
                std::string::npos)
          << challenge;
    }
    return ran;
  }

  static TempDir* dir_;
  static Matrix* matrix_;
  static std::string* skip_reason_;
  static std::string* mint_failure_;
};

TempDir* JwtMatrixTest::dir_ = nullptr;
Matrix* JwtMatrixTest::matrix_ = nullptr;
std::string* JwtMatrixTest::skip_reason_ = nullptr;
std::string* JwtMatrixTest::mint_failure_ = nullptr;

TEST_F(JwtMatrixTest, MatrixIsBigEnough) {
  int refused = 0;
  int accepted = 0;
  for (const Case& c : matrix_->cases) {
    (c.expect == 401 ? refused : accepted)++;
    EXPECT_TRUE(c.expect == 200 || c.expect == 401) << c.name;
    EXPECT_EQ(c.expect == 401, !c.why.empty()) << c.name;
  }
  EXPECT_GE(refused, 20);
  EXPECT_GE(accepted, 2);
}

TEST_F(JwtMatrixTest, KeysFromJwks) {
  ServerProcess server(server_with_keys(key_file("jwks.json").string()));
  EXPECT_EQ(check_matrix(server, true), static_cast<int>(matrix_->cases.size()));
}

TEST_F(JwtMatrixTest, KeysFromPemFiles) {
  ServerProcess server(
      server_with_keys(key_file("rs-main.pem").string() + "," + key_file("es-main.pem").string()));
  EXPECT_GT(check_matrix(server, false), 0);
}

TEST_F(JwtMatrixTest, HsSecretStillVerifiesKidLessTokens) {
  // Development tokens (HS256, no kid, the configured secret) keep working next to a key set.
  ServerProcess server(server_with_keys(key_file("jwks.json").string()));
  auto client = server.client();
  client.bearer = server.token("alice");
  EXPECT_EQ(client.get("/v1/bookings").status, 200);
}

TEST_F(JwtMatrixTest, MissingTokenGetsTheBareChallenge) {
  ServerProcess server(server_with_keys(key_file("jwks.json").string()));
  auto client = server.client();
  const auto r = client.get("/v1/bookings");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.header("WWW-Authenticate"), R"(Bearer realm="boxoffice")");
  const auto basic = client.get("/v1/bookings", {{"Authorization", "Basic YWxpY2U6cHc="}});
  EXPECT_EQ(basic.status, 401);
  EXPECT_EQ(basic.header("WWW-Authenticate"), R"(Bearer realm="boxoffice")");
  const auto empty = client.get("/v1/bookings", {{"Authorization", "Bearer"}});
  EXPECT_EQ(empty.status, 401);
  EXPECT_EQ(empty.header("WWW-Authenticate")
                .rfind(R"(Bearer realm="boxoffice", error="invalid_request")", 0),
            0u)
      << empty.header("WWW-Authenticate");
}

// A key set the server cannot use stops it at start with exit code 2 and a message naming the
// setting, rather than serving with fewer keys than configured.
TEST_F(JwtMatrixTest, UnusableKeysStopTheServer) {
  TempDir data;
  const fs::path bad_pem = data.path() / "bad.pem";
  std::ofstream(bad_pem) << "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n";
  const fs::path no_alg = data.path() / "no-alg.json";
  {
    auto jwks = json::parse(read_file(key_file("jwks.json"))).as_object();
    jwks["keys"].as_array()[0].as_object().erase("alg");
    std::ofstream(no_alg) << json::serialize(jwks);
  }
  const std::vector<std::pair<std::string, std::string>> cases = {
      {key_file("weak.jwks.json").string(), "1024 bits"},
      {key_file("weak.pem").string(), "1024 bits"},
      {bad_pem.string(), "not a PEM"},
      {no_alg.string(), "no \"alg\""},
      {(data.path() / "missing.json").string(), "cannot read"},
  };
  for (const auto& [setting, message] : cases) {
    SCOPED_TRACE(setting);
    ChildProcess child({BOXOFFICE_BINARY, "serve", "--data-dir=" + data.path().string(),
                        "--listen=127.0.0.1:" + std::to_string(free_port()), "--jwt-secret=s",
                        "--jwt-keys=" + setting});
    EXPECT_EQ(child.wait_exit(30s), 2) << child.log();
    EXPECT_NE(child.log().find("jwt_keys: "), std::string::npos) << child.log();
    EXPECT_NE(child.log().find(message), std::string::npos) << child.log();
  }
}

}  // namespace
}  // namespace boxoffice::testing
