// `boxoffice loadgen` against a real `boxoffice serve` (charging through a real payment-sim): a
// closed-model sale sells a small event out with every invariant holding, an open-model run
// accounts latency from the intended send times, and bad flags are refused with exit code 2.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/child_process.h"
#include "support/free_port.h"
#include "support/http_client.h"
#include "support/payment_sim_process.h"
#include "support/postgres_server.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace boxoffice::testing {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

/// A real payment-sim process on a free port.
struct PaymentSim : PaymentSimProcess {
  PaymentSim() : PaymentSimProcess(BOXOFFICE_BINARY, {"--slow-delay-ms=1200"}) {}
};

// Offers and holds longer than the loadgen lets expire (60 s): nobody walks away or lets an offer
// lapse, so the sale is over as soon as every payment is final.
constexpr const char* kLongWindow = "61";

class LoadgenTest : public ::testing::Test {
 protected:
  void SetUp() override { start_server(); }

  void start_server(std::vector<std::string> more = {}) {
    ServerOptions options;
    options.args = {"--payment-provider-url=" + sim.url(), "--rate-limits=off",
                    "--payment-attempt-timeout-ms=1000",
                    std::string{"--waitlist-offer-seconds="} + kLongWindow};
    options.args.insert(options.args.end(), more.begin(), more.end());
    server = std::make_unique<ServerProcess>(options);
  }

  std::vector<std::string> loadgen(std::vector<std::string> args) const {
    std::vector<std::string> argv{
        BOXOFFICE_BINARY,  "loadgen",
        "--url",           "http://127.0.0.1:" + std::to_string(server->port()),
        "--jwt-secret",    server->secret(),
        "--provider-url",  sim.url(),
        "--offer-seconds", kLongWindow,
        "--hold-ttl",      kLongWindow,
        "--seed",          "7"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  /// The holds scenario checks no invariants: no payment ledger to read.
  std::vector<std::string> holds_loadgen(std::vector<std::string> args) const {
    std::vector<std::string> argv{
        BOXOFFICE_BINARY, "loadgen",
        "--url",          "http://127.0.0.1:" + std::to_string(server->port()),
        "--jwt-secret",   server->secret(),
        "--scenario",     "holds"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  static json::object read_json(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return json::parse(text.str()).as_object();
  }

  static int64_t num(const json::value& v) { return v.to_number<int64_t>(); }

  PaymentSim sim;
  std::unique_ptr<ServerProcess> server;
  TempDir dir;
};

TEST_F(LoadgenTest, ClosedModelSellsOutAndEveryInvariantHolds) {
  const auto report = dir.path() / "closed.json";
  const auto markdown = dir.path() / "closed.md";
  ChildProcess run(
      loadgen({"--sections", "floor=ga:40,orch=4x15", "--buyers", "250", "--concurrency", "24",
               "--json", report.string(), "--markdown", markdown.string()}));
  const auto code = run.wait_exit(90s);
  const auto log = run.log();
  ASSERT_EQ(code, 0) << log;
  EXPECT_NE(log.find("PASS: 5 of 5 invariant checks passed."), std::string::npos) << log;
  EXPECT_TRUE(std::filesystem::exists(markdown));

  const auto doc = read_json(report);
  EXPECT_TRUE(doc.at("passed").as_bool()) << log;
  const auto& invariants = doc.at("invariants").as_array();
  ASSERT_EQ(invariants.size(), 5u);
  for (const auto& check : invariants) {
    EXPECT_TRUE(check.at("pass").as_bool()) << json::serialize(check);
    EXPECT_FALSE(check.at("skipped").as_bool()) << json::serialize(check);  // the ledger was read
  }

  // The sale happened: 100 seats, all sold (three buyers a seat), none twice.
  const auto& seats = doc.at("seats").as_object();
  EXPECT_EQ(num(seats.at("capacity")), 100);
  EXPECT_LE(num(seats.at("sold")), num(seats.at("capacity")));
  EXPECT_EQ(num(seats.at("sold")), num(seats.at("confirmed_in_bookings")));
  EXPECT_GT(num(seats.at("sold")), 0);
  EXPECT_FALSE(doc.at("timeline_seconds").at("sold_out").is_null()) << log;
  EXPECT_FALSE(doc.at("timeline_seconds").at("payments_final").is_null()) << log;
  const auto& bookings = doc.at("bookings").as_object();
  EXPECT_EQ(num(bookings.at("pending_payment")), 0);
  EXPECT_GT(num(bookings.at("confirmed")), 0);
  EXPECT_GT(num(doc.at("charges").at("approved")), 0);
  EXPECT_EQ(num(doc.at("buyers").at("started")), 250);
  EXPECT_EQ(doc.at("model").at("kind").as_string(), "closed");

  // Requests add up: routes, status counts and the total agree.
  int64_t by_route = 0, by_status = 0;
  bool hold_seen = false;
  for (const auto& r : doc.at("routes").as_array()) {
    const auto& route = r.as_object();
    by_route += num(route.at("requests"));
    EXPECT_LE(route.at("p50_ms").to_number<double>(), route.at("p99_ms").to_number<double>());
    EXPECT_LE(route.at("p99_ms").to_number<double>(), route.at("p999_ms").to_number<double>());
    EXPECT_LE(route.at("p999_ms").to_number<double>(), route.at("max_ms").to_number<double>());
    hold_seen = hold_seen || route.at("route").as_string() == "hold";
  }
  for (const auto& [status, n] : doc.at("status_counts").as_object()) by_status += num(n);
  EXPECT_TRUE(hold_seen);
  EXPECT_EQ(by_route, num(doc.at("requests")));
  EXPECT_EQ(by_status, num(doc.at("requests")));
  EXPECT_GT(doc.at("overhead").at("cpu_seconds").to_number<double>(), 0);
}

TEST_F(LoadgenTest, OpenModelMeasuresFromTheIntendedSendTime) {
  const auto report = dir.path() / "open.json";
  ChildProcess run(loadgen({"--seats", "400", "--rate", "40", "--duration", "2", "--concurrency",
                            "8", "--json", report.string()}));
  const auto code = run.wait_exit(90s);
  const auto log = run.log();
  ASSERT_EQ(code, 0) << log;
  const auto doc = read_json(report);
  EXPECT_EQ(doc.at("model").at("kind").as_string(), "open");
  EXPECT_EQ(doc.at("model").at("rate_per_second").to_number<double>(), 40.0);
  // 2 s at 40/s: 80 arrivals (give or take the one due at exactly 2 s), each one accounted for.
  const auto started = num(doc.at("buyers").at("started"));
  EXPECT_NEAR(started, 80, 1) << log;
  const auto& arrivals = doc.at("arrivals").as_object();
  EXPECT_EQ(num(arrivals.at("count")), started);
  EXPECT_GE(arrivals.at("max_ms").to_number<double>(), 0);
  bool availability = false;
  for (const auto& r : doc.at("routes").as_array()) {
    const auto& route = r.as_object();
    if (route.at("route").as_string() != "availability") continue;
    availability = true;
    EXPECT_GE(num(route.at("requests")), started);
    EXPECT_GT(route.at("p50_ms").to_number<double>(), 0);
  }
  EXPECT_TRUE(availability) << log;
  EXPECT_NE(log.find("from the intended send time"), std::string::npos) << log;
  EXPECT_TRUE(doc.at("passed").as_bool()) << log;
}

// Buyer names repeat from one sale to the next (buyer-00001, ...) and the server keeps their
// idempotency keys for a day: a second sale must not replay the first one's waitlist joins.
TEST_F(LoadgenTest, ASecondSaleOnTheSameServerIsItsOwn) {
  for (const char* name : {"first.json", "second.json"}) {
    const auto report = dir.path() / name;
    ChildProcess run(loadgen({"--sections", "floor=ga:12", "--buyers", "60", "--concurrency", "8",
                              "--json", report.string()}));
    const auto code = run.wait_exit(90s);
    const auto log = run.log();
    ASSERT_EQ(code, 0) << name << "\n" << log;
    const auto doc = read_json(report);
    EXPECT_TRUE(doc.at("passed").as_bool()) << log;
    EXPECT_FALSE(doc.at("status_counts").as_object().contains("422")) << name << "\n" << log;
    EXPECT_GT(num(doc.at("buyers").at("joined_waitlist")), 0) << name << "\n" << log;
  }
}

class LoadgenPostgresTest : public LoadgenTest {
 protected:
  void SetUp() override {
    auto& postgres = PostgresServer::shared();
    url = postgres.url(postgres.create_database());
    start_server({"--postgres-url=" + url});
  }
  std::string url;
};

TEST_F(LoadgenPostgresTest, InvariantsHoldInTheDatabaseToo) {
  const auto report = dir.path() / "pg.json";
  ChildProcess run(
      loadgen({"--sections", "floor=ga:30,orch=2x15", "--buyers", "150", "--concurrency", "16",
               "--postgres-url", url, "--json", report.string()}));
  const auto code = run.wait_exit(90s);
  const auto log = run.log();
  ASSERT_EQ(code, 0) << log;
  const auto doc = read_json(report);
  std::vector<std::string> database_checks;
  for (const auto& check : doc.at("invariants").as_array()) {
    EXPECT_TRUE(check.at("pass").as_bool()) << json::serialize(check);
    const std::string name{check.at("name").as_string()};
    if (name.rfind("database: ", 0) == 0) database_checks.push_back(name);
  }
  EXPECT_EQ(database_checks.size(), 3u) << log;
  EXPECT_NE(log.find("PASS: 8 of 8 invariant checks passed."), std::string::npos) << log;
}

TEST_F(LoadgenTest, AnUnreachableDatabaseFailsTheChecks) {
  ChildProcess run(loadgen({"--sections", "floor=ga:10", "--buyers", "20", "--concurrency", "4",
                            "--postgres-url",
                            "postgresql://127.0.0.1:" + std::to_string(free_port()) + "/none"}));
  const auto code = run.wait_exit(90s);
  const auto log = run.log();
  EXPECT_EQ(code, 1) << log;
  EXPECT_NE(log.find("- FAIL database: no seat in two live bookings: "), std::string::npos) << log;
  EXPECT_NE(log.find("could not read the database"), std::string::npos) << log;
}

// --join-rate 0: nobody who finds the event sold out joins a line (and the sale still sells out,
// with every check passing); --seats cuts the reserved rows into sections of at most 2,000.
TEST_F(LoadgenTest, JoinRateZeroKeepsTheLinesEmptyAndSeatsMakeSectionsOf2000AtMost) {
  const auto report = dir.path() / "no-lines.json";
  ChildProcess run(loadgen({"--sections", "floor=ga:40,orch=4x15", "--buyers", "250",
                            "--concurrency", "24", "--join-rate", "0", "--json", report.string()}));
  ASSERT_EQ(run.wait_exit(90s), 0) << run.log();
  const auto doc = read_json(report);
  EXPECT_EQ(num(doc.at("buyers").at("joined_waitlist")), 0) << run.log();
  EXPECT_FALSE(doc.at("timeline_seconds").at("sold_out").is_null()) << run.log();
  EXPECT_FALSE(doc.at("timeline_seconds").at("last_hold").is_null()) << run.log();
  EXPECT_LE(doc.at("timeline_seconds").at("last_hold").to_number<double>(),
            doc.at("timeline_seconds").at("sale_over").to_number<double>());

  const auto big = dir.path() / "big.json";
  ChildProcess sale(
      loadgen({"--seats", "9000", "--buyers", "8", "--concurrency", "8", "--json", big.string()}));
  ASSERT_EQ(sale.wait_exit(90s), 0) << sale.log();
  int64_t seats = 0;
  size_t sections = 0;
  const auto big_doc = read_json(big);
  for (const auto& [id, section] : big_doc.at("seats").at("sections").as_object()) {
    EXPECT_LE(num(section.at("capacity")), id == "floor" ? 9000 : 2000) << id;
    seats += num(section.at("capacity"));
    ++sections;
  }
  EXPECT_EQ(seats, 9000);
  EXPECT_GT(sections, 3u);  // floor, and the 5,400 reserved seats in three or more blocks
}

// The holds scenario: one hold of 4 adjacent seats after another, each block taken once, and
// what it counts is what the server holds afterwards.
TEST_F(LoadgenTest, HoldsScenarioHoldsEachBlockOnceAndCountsWhatTheServerHolds) {
  const auto report = dir.path() / "holds.json";
  const auto timeline = dir.path() / "holds.dat";
  ChildProcess run(holds_loadgen({"--sections", "hall=400x1000", "--concurrency", "4", "--warmup",
                                  "0", "--duration", "1", "--json", report.string(), "--timeline",
                                  timeline.string()}));
  const auto code = run.wait_exit(60s);
  const auto log = run.log();
  ASSERT_EQ(code, 0) << log;
  const auto doc = read_json(report);
  EXPECT_TRUE(doc.at("passed").as_bool()) << log;
  const auto completed = num(doc.at("completed"));
  ASSERT_GT(completed, 0) << log;
  int64_t held_201 = 0;
  for (const auto& r : doc.at("routes").as_array()) {
    if (r.at("route").as_string() == "hold") held_201 = num(r.at("statuses").at("201"));
  }
  // Operations still in flight at the end are made but not measured: one per connection.
  EXPECT_GE(held_201, completed) << log;
  EXPECT_LE(held_201, completed + 4) << log;
  EXPECT_EQ(num(doc.at("conflicts")), 0) << log;  // no block was handed out twice

  HttpClient http(server->port());
  const auto availability =
      http.get("/v1/events/" + std::string{doc.at("event_id").as_string()} + "/availability");
  ASSERT_EQ(availability.status, 200) << availability.body;
  const auto seat_counts = availability.json();
  const auto& section = seat_counts.at("sections").as_array().at(0);
  EXPECT_EQ(num(section.at("held")), 4 * held_201) << availability.body;
  // Its holds outlive the run (a minute past warmup + duration): holds are measured, not expiry.
  const auto event = http.get("/v1/events/" + std::string{doc.at("event_id").as_string()});
  ASSERT_EQ(event.status, 200) << event.body;
  EXPECT_EQ(num(event.json().at("hold_ttl_seconds")), 61) << event.body;

  // The timeline: one line per second under a header, whose holds add up to at most the total.
  std::ifstream in(timeline);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line.rfind("# second requests hold_2xx", 0), 0u) << line;
  int64_t seconds = 0, holds = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    int64_t second = 0, requests = 0, ok = 0;
    fields >> second >> requests >> ok;
    EXPECT_EQ(second, seconds++);
    holds += ok;
  }
  EXPECT_GE(seconds, 1);
  EXPECT_GT(holds, 0);
  EXPECT_LE(holds, held_201);
}

TEST_F(LoadgenTest, HoldsScenarioReleasesAndChecksOutWhatItHolds) {
  for (const std::string after : {"release", "checkout"}) {
    const auto report = dir.path() / (after + ".json");
    ChildProcess run(holds_loadgen({"--after-hold", after, "--sections", "hall=2x8",
                                    "--concurrency", "2", "--warmup", "0", "--duration",
                                    after == "release" ? "1" : "2", "--json", report.string()}));
    const auto code = run.wait_exit(60s);
    const auto log = run.log();
    const auto doc = read_json(report);
    const auto completed = num(doc.at("completed"));
    HttpClient http(server->port());
    const auto event = std::string{doc.at("event_id").as_string()};
    const auto availability = http.get("/v1/events/" + event + "/availability");
    ASSERT_EQ(availability.status, 200) << availability.body;
    const auto seat_counts = availability.json();
    const auto& section = seat_counts.at("sections").as_array().at(0);
    if (after == "release") {
      // 4 blocks of 4 seats taken in turn over and over: every hold released again.
      ASSERT_EQ(code, 0) << log;
      EXPECT_GT(completed, 4) << log;
      EXPECT_EQ(num(section.at("held")), 0) << availability.body;
      EXPECT_EQ(num(section.at("available")), 16) << availability.body;
    } else {
      // 4 blocks: each checked out once, then the event has no block left (a failed run).
      EXPECT_EQ(code, 1) << log;
      EXPECT_TRUE(doc.at("ran_out_of_seats").as_bool()) << log;
      EXPECT_EQ(completed, 4) << log;
      EXPECT_EQ(num(section.at("held")) + num(section.at("sold")), 16) << availability.body;
      EXPECT_EQ(num(section.at("available")), 0) << availability.body;
    }
  }
}

TEST(LoadgenFlags, BadFlagsExitTwoWithOneLine) {
  auto run = [](std::vector<std::string> args) {
    args.insert(args.begin(), {BOXOFFICE_BINARY, "loadgen"});
    ChildProcess child(args);
    const auto code = child.wait_exit(10s);
    return std::make_pair(code, child.log());
  };
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--jwt-secret", "s"},                          // no --url
           {"--url", "https://x:1", "--jwt-secret", "s"},  // not http://
           {"--url", "http://127.0.0.1:1", "--jwt-secret", "s", "--rate", "-3"},
           {"--url", "http://127.0.0.1:1", "--jwt-secret", "s", "--sections", "floor=big"},
           {"--url", "http://127.0.0.1:1", "--jwt-secret", "s", "--colour", "red"},
           {"--url", "http://127.0.0.1:1", "--jwt-secret", "s", "--seats", "10", "--event-id", "e"},
           {"--url", "http://127.0.0.1:1", "--jwt-secret", "s", "--scenario", "crowd"},
           {"--url", "http://127.0.0.1:1", "--jwt-secret", "s", "--scenario", "holds",
            "--postgres-url", "postgresql://x"},
           {"--url", "http://127.0.0.1:1", "--jwt-secret", "s", "--after-hold", "cancel"}}) {
    const auto [code, log] = run(args);
    EXPECT_EQ(code, 2) << log;
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
    EXPECT_EQ(log.rfind("boxoffice loadgen: ", 0), 0u) << log;
  }
}

}  // namespace
}  // namespace boxoffice::testing
