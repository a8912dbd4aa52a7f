// `boxoffice migrate` against a real PostgreSQL: it applies what is pending and says so, a second
// run has nothing to do, a missing or unreachable database is one clear line and exit code 2; and
// `serve` told not to migrate refuses a database whose schema is behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "adapters/postgres/pg_schema.h"
#include "support/child_process.h"
#include "support/free_port.h"
#include "support/postgres_server.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace boxoffice::testing {
namespace {

using namespace std::chrono_literals;

struct Run {
  std::optional<int> exit_code;
  std::string output;
};

// The variables are emptied (an empty variable counts as unset) unless a test sets them, so the
// environment of the test run cannot point the command at another database.
Run run(std::vector<std::string> args, std::vector<std::string> env = {}) {
  args.insert(args.begin(), BOXOFFICE_BINARY);
  env.insert(env.begin(),
             {"BOXOFFICE_POSTGRES_URL=", "BOXOFFICE_CONFIG=", "BOXOFFICE_MIGRATE_ON_START="});
  ChildProcess child(args, env);
  auto code = child.wait_exit(30s);
  return {code, child.log()};
}

size_t lines(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

const std::string kNeeded = std::to_string(postgres_schema_version_needed());

TEST(Migrate, AppliesWhatIsPendingThenSaysTheSchemaIsUpToDate) {
  auto& postgres = PostgresServer::shared();
  const auto database = postgres.create_database();
  const auto url = postgres.url(database);

  auto before = run({"migrate", "--status", "--postgres-url=" + url});
  ASSERT_EQ(before.exit_code, 0) << before.output;
  EXPECT_NE(before.output.find("schema version 0, this build needs " + kNeeded), std::string::npos)
      << before.output;
  EXPECT_NE(before.output.find("pending migration 1 bookings"), std::string::npos) << before.output;

  auto first = run({"migrate", "--postgres-url=" + url});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  for (const auto& migration : postgres_migrations()) {
    EXPECT_NE(first.output.find("applied migration " + std::to_string(migration.version) + " " +
                                std::string(migration.name)),
              std::string::npos)
        << first.output;
  }
  EXPECT_NE(first.output.find("schema is at version " + kNeeded), std::string::npos)
      << first.output;
  EXPECT_EQ(postgres.execute(database, "SELECT MAX(version) FROM schema_migrations").value,
            kNeeded);

  // Again, with the URL from the environment this time: nothing left to do.
  auto second = run({"migrate"}, {"BOXOFFICE_POSTGRES_URL=" + url});
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(second.output, "schema is up to date (version " + kNeeded + ")\n");
  EXPECT_EQ(postgres.execute(database, "SELECT COUNT(*) FROM schema_migrations").value,
            std::to_string(postgres_migrations().size()));
  postgres.drop_database(database);
}

TEST(Migrate, WithoutAReachableDatabaseStopsWithOneLineAndExitCode2) {
  auto unset = run({"migrate"});
  EXPECT_EQ(unset.exit_code, 2);
  EXPECT_NE(unset.output.find("--postgres-url"), std::string::npos) << unset.output;
  EXPECT_EQ(lines(unset.output), 1u) << unset.output;

  const auto nobody = "postgresql://postgres@127.0.0.1:" + std::to_string(free_port()) + "/x";
  auto unreachable = run({"migrate", "--postgres-url=" + nobody});
  EXPECT_EQ(unreachable.exit_code, 2);
  EXPECT_NE(unreachable.output.find("postgres_url: postgres: cannot connect"), std::string::npos)
      << unreachable.output;
  EXPECT_EQ(lines(unreachable.output), 1u) << unreachable.output;
}

TEST(Migrate, ServeThatMustNotMigrateRefusesABehindSchemaUntilMigrateRan) {
  auto& postgres = PostgresServer::shared();
  const auto database = postgres.create_database();
  const auto url = postgres.url(database);
  TempDir dir;

  auto refused = run({"serve", "--listen=127.0.0.1:" + std::to_string(free_port()),
                      "--data-dir=" + dir.path().string(), "--postgres-url=" + url},
                     {"BOXOFFICE_MIGRATE_ON_START=0"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.output.find("the bookings database is at schema version 0, this build needs " +
                                kNeeded + ": run `boxoffice migrate`"),
            std::string::npos)
      << refused.output;
  EXPECT_EQ(postgres.execute(database, "SELECT to_regclass('schema_migrations') IS NULL").value,
            "t")
      << "serve changed the schema";

  ASSERT_EQ(run({"migrate", "--postgres-url=" + url}).exit_code, 0);
  ServerOptions options;
  options.engines = ServerOptions::Engines::embedded;
  options.args = {"--postgres-url=" + url, "--migrate-on-start=0"};
  ServerProcess server(options);
  auto admin = server.client();
  admin.bearer = server.token("ops", {"admin"});
  EXPECT_EQ(admin.get("/readyz").status, 200) << server.log();
  server.terminate();
  postgres.drop_database(database);
}

}  // namespace
}  // namespace boxoffice::testing
