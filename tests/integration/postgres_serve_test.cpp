// `serve` with its Bookings DB in a real PostgreSQL: the flow and a crash keep working.
#include <gtest/gtest.h>

#include "integration/api_fixture.h"
#include "support/postgres_server.h"

namespace boxoffice::testing::api {
namespace {

TEST(PostgresServe, BookingsLiveInPostgresAndSurviveACrash) {
  auto& postgres = PostgresServer::shared();
  const auto database = postgres.create_database();
  ServerOptions options;
  options.args = {"--postgres-url=" + postgres.url(database), "--payment-visibility-seconds=2"};
  ServerProcess server(options);
  auto admin = server.client();
  admin.bearer = server.token("ops", {"admin"});
  auto alice = server.client();
  alice.bearer = server.token("alice-pg");

  auto ready = expect_status(admin.get("/readyz"), 200, "readyz");
  EXPECT_EQ(ready.at("engines").at("bookings_db:postgres"), "ok");

  auto event = expect_status(admin.post("/v1/events", text(event_body())), 201, "create event");
  const auto event_id = str(event.at("id"));
  auto hold = expect_status(
      alice.post("/v1/events/" + event_id + "/holds", text(seats_body({"orch:A:1", "orch:A:2"}))),
      201, "hold");
  auto booking =
      expect_status(alice.post("/v1/holds/" + str(hold.at("id")) + "/checkout", std::string{kPay}),
                    202, "checkout");
  const auto booking_id = str(booking.at("id"));
  EXPECT_EQ(wait_for_booking(alice, booking_id, {"confirmed", "payment_failed"}).at("status"),
            "confirmed");
  // The row is in PostgreSQL, not in the SQLite file.
  auto row =
      postgres.execute(database, "SELECT status FROM bookings WHERE id = '" + booking_id + "'");
  EXPECT_EQ(row.value, "confirmed") << row.sqlstate;

  server.kill9();
  server.restart();
  alice = server.client();
  alice.bearer = server.token("alice-pg");
  auto after = expect_status(alice.get("/v1/bookings/" + booking_id), 200, "booking after crash");
  EXPECT_EQ(after.at("status"), "confirmed");
  auto seats = seat_map(alice, event_id, "orch", "?row=A");
  EXPECT_EQ(seats.at("orch:A:1"), "sold");
  EXPECT_EQ(seats.at("orch:A:2"), "sold");
  expect_problem(alice.post("/v1/events/" + event_id + "/holds", text(seats_body({"orch:A:1"}))),
                 409, "seats_unavailable");
  postgres.drop_database(database);
}

}  // namespace
}  // namespace boxoffice::testing::api
