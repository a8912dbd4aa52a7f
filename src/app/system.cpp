#include "app/system.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <thread>

#include "adapters/http_provider/http_payment_provider.h"
#include "adapters/memory/memory_seat_lock_store.h"
#include "adapters/nats/jetstream_payment_queue.h"
#include "adapters/postgres/postgres_booking_store.h"
#include "adapters/redis/redis_client.h"
#include "adapters/redis/redis_rate_limiter.h"
#include "adapters/redis/redis_seat_lock_store.h"
#include "adapters/redis/redis_waitlist_store.h"
#include "adapters/sqlite/sqlite_booking_store.h"
#include "adapters/sqlite/sqlite_payment_queue.h"
#include "adapters/sqlite/sqlite_waitlist_store.h"
#include "http/api.h"
#include "http/jwt.h"
#include "http/listen_address.h"
#include "http/server.h"
#include "payment_sim/sim_server.h"
#include "ports/clock.h"
#include "services/booking_service.h"
#include "services/payment_processor.h"
#include "services/seat_lock_recovery.h"
#include "services/waitlist_service.h"

namespace boxoffice::app {

namespace {

/// Runs a task every `period` on its own thread until destroyed.
class Periodic {
 public:
  Periodic(std::chrono::milliseconds period, std::function<void()> task)
      : thread_([this, period, task = std::move(task)] {
          std::unique_lock lock(mutex_);
          while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
            lock.unlock();
            try {
              task();
            } catch (const std::exception& e) {
              spdlog::warn("maintenance task failed: {}", e.what());
            }
            lock.lock();
          }
        }) {}
  ~Periodic() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

struct System::Impl {
  Config config;
  SystemClock clock;
  // The Bookings DB and the idempotency keys: PostgreSQL when configured, else the SQLite file.
  std::unique_ptr<SqliteBookingStore> sqlite_bookings;
  std::unique_ptr<PostgresBookingStore> postgres_bookings;
  BookingStore* bookings_db = nullptr;
  IdempotencyStore* idempotency = nullptr;
  std::string bookings_engine;
  // The Payment Queue: JetStream when configured, else the SQLite file.
  std::unique_ptr<SqlitePaymentQueue> sqlite_queue;
  std::unique_ptr<JetStreamPaymentQueue> jetstream_queue;
  PaymentQueue* payment_queue = nullptr;
  // Seat locks and the waitlist: Redis when configured, else memory and the SQLite file.
  std::shared_ptr<redis::Client> redis;
  std::unique_ptr<RedisSeatLockStore> redis_locks;
  std::unique_ptr<MemorySeatLockStore> memory_locks;
  std::unique_ptr<RecoveringSeatLockStore> locks;  // what every service uses
  std::unique_ptr<SqliteWaitlistStore> sqlite_waitlist;
  std::unique_ptr<RedisWaitlistStore> redis_waitlist;
  WaitlistStore* waitlist_store = nullptr;
  std::unique_ptr<payment_sim::InProcessPaymentSim> simulator;
  std::unique_ptr<HttpPaymentProvider> provider;
  std::string provider_url;
  std::unique_ptr<BookingService> booking_service;
  std::unique_ptr<PaymentProcessor> processor;
  std::unique_ptr<WaitlistService> waitlist;
  std::unique_ptr<http::Api> api;
  std::unique_ptr<http::HttpServer> server;
  std::unique_ptr<Periodic> purge;
  std::unique_ptr<Periodic> refresh;
};

System::System(Config config, bool handle_signals) : impl_(std::make_unique<Impl>()) {
  auto& s = *impl_;
  s.config = std::move(config);
  auto& c = s.config;
  const auto listen = http::parse_listen(c.listen);
  if (!listen) throw ConfigError("--listen \"" + c.listen + "\" must be host:port");
  std::error_code ec;
  std::filesystem::create_directories(c.data_dir, ec);
  if (ec) throw ConfigError("cannot create data directory " + c.data_dir + ": " + ec.message());
  // With verification keys configured, no secret means no HS256 tokens at all: a generated one
  // printed in the log would let whoever reads the log mint tokens.
  if (c.jwt_secret.empty() && c.jwt_keys.empty()) {
    c.jwt_secret = jwt::random_secret();
    spdlog::warn("no JWT secret configured; generated one for this run: {}", c.jwt_secret);
    spdlog::warn("set BOXOFFICE_JWT_SECRET to keep tokens valid across restarts");
  }
  if (c.payment_max_deliveries < 1) throw ConfigError("payment_max_deliveries must be at least 1");
  if (c.payment_concurrency < 1) throw ConfigError("payment_concurrency must be at least 1");
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t io_threads = c.io_threads ? c.io_threads : cores;
  const size_t workers = c.worker_threads ? c.worker_threads : std::max(8u, 4 * cores);

  const auto db_path = (std::filesystem::path{c.data_dir} / "bookings.sqlite3").string();
  QueuePolicy policy;
  policy.visibility_timeout = std::chrono::seconds{c.payment_visibility_seconds};
  policy.max_deliveries = c.payment_max_deliveries;
  // The embedded engines share one SQLite file; it is opened only for the parts still embedded.
  try {
    if (c.postgres_url.empty()) {
      s.sqlite_bookings = std::make_unique<SqliteBookingStore>(db_path, workers);
      s.bookings_db = s.sqlite_bookings.get();
      s.idempotency = s.sqlite_bookings.get();
      s.bookings_engine = "sqlite";
    }
    if (c.nats_url.empty()) {
      s.sqlite_queue =
          std::make_unique<SqlitePaymentQueue>(db_path, s.clock, policy, c.payment_concurrency + 2);
      s.payment_queue = s.sqlite_queue.get();
    }
    if (c.redis_url.empty()) {
      s.sqlite_waitlist = std::make_unique<SqliteWaitlistStore>(db_path, workers);
      s.waitlist_store = s.sqlite_waitlist.get();
    }
  } catch (const std::exception& e) {
    throw ConfigError("cannot open the bookings database " + db_path + ": " + e.what());
  }
  if (!c.postgres_url.empty()) {
    if (c.migrate_on_start > 1) throw ConfigError("migrate_on_start must be 0 or 1");
    try {
      PostgresStoreOptions options;
      options.connections = workers;
      options.migrate = c.migrate_on_start == 1;
      s.postgres_bookings = std::make_unique<PostgresBookingStore>(c.postgres_url, options);
    } catch (const std::exception& e) {
      throw ConfigError("postgres_url: cannot use the bookings database: " + std::string{e.what()});
    }
    s.bookings_db = s.postgres_bookings.get();
    s.idempotency = s.postgres_bookings.get();
    s.bookings_engine = "postgres";
  }
  if (!c.nats_url.empty()) {
    try {
      JetStreamQueueOptions options;
      options.url = c.nats_url;
      s.jetstream_queue = std::make_unique<JetStreamPaymentQueue>(options, s.clock, policy);
    } catch (const std::exception& e) {
      throw ConfigError("nats_url: cannot use the payment queue: " + std::string{e.what()});
    }
    s.payment_queue = s.jetstream_queue.get();
  }
  if (!c.redis_url.empty()) {
    try {
      redis::ClientOptions options;
      options.url = c.redis_url;
      options.io_threads = 0;
      s.redis = std::make_shared<redis::Client>(options);
      if (!s.redis->ping()) throw StorageError("Redis does not answer PING");
      s.redis_locks = std::make_unique<RedisSeatLockStore>(*s.redis);
      s.redis_waitlist = std::make_unique<RedisWaitlistStore>(s.redis);
    } catch (const std::exception& e) {
      throw ConfigError("redis_url: cannot use Redis: " + std::string{e.what()});
    }
    s.waitlist_store = s.redis_waitlist.get();
    s.locks = std::make_unique<RecoveringSeatLockStore>(*s.redis_locks, *s.bookings_db);
  } else {
    s.memory_locks = std::make_unique<MemorySeatLockStore>();
    s.locks = std::make_unique<RecoveringSeatLockStore>(*s.memory_locks, *s.bookings_db);
  }

  s.provider_url = c.payment_provider_url;
  if (s.provider_url.empty()) {
    // No provider configured: the same simulator `boxoffice payment-sim` runs, on loopback in
    // this process, reached over HTTP exactly like a real provider.
    payment_sim::SimulatorOptions sim_options;
    sim_options.latency = Millis{c.sim_latency_ms};
    s.simulator = std::make_unique<payment_sim::InProcessPaymentSim>(sim_options);
    s.provider_url = s.simulator->base_url();
  }
  try {
    s.provider = std::make_unique<HttpPaymentProvider>(
        s.provider_url, Millis{c.payment_attempt_timeout_ms}, c.payment_concurrency);
  } catch (const std::exception& e) {
    throw ConfigError("payment_provider_url \"" + s.provider_url + "\": " + e.what());
  }

  s.booking_service = std::make_unique<BookingService>(s.clock, *s.locks, *s.bookings_db);
  try {
    s.booking_service->recover();
  } catch (const StorageError& e) {
    throw ConfigError("cannot load the events into the seat lock store: " + std::string{e.what()});
  }

  PaymentProcessorOptions payment_options;
  payment_options.concurrency = c.payment_concurrency;
  payment_options.reconcile_after = std::chrono::seconds{c.payment_reconcile_seconds};
  s.processor = std::make_unique<PaymentProcessor>(s.clock, *s.bookings_db, *s.payment_queue,
                                                   *s.provider, *s.locks, payment_options);
  if (c.waitlist_offer_seconds < 10)
    throw ConfigError("waitlist_offer_seconds must be at least 10");
  WaitlistOptions waitlist_options;
  waitlist_options.offer_window = std::chrono::seconds{c.waitlist_offer_seconds};
  s.waitlist = std::make_unique<WaitlistService>(s.clock, *s.locks, *s.waitlist_store,
                                                 *s.booking_service, waitlist_options);
  s.waitlist->recover();
  auto* waitlist = s.waitlist.get();
  auto* processor = s.processor.get();
  s.booking_service->set_hooks(
      {[processor, waitlist](const Booking& booking) {
         processor->wake();
         // Checkout of an offer converts its waitlist entry; a blocking store call, but checkout
         // already runs on a worker.
         waitlist->on_checkout(booking.hold_id);
       },
       [waitlist](const Hold& hold) { waitlist->on_hold_released(hold); }});
  processor->on_seats_released([waitlist](const std::string& event_id, const std::string& section) {
    waitlist->poke(event_id, section);
  });

  http::ApiOptions api_options;
  api_options.jwt = {c.jwt_secret, c.jwt_issuer, c.jwt_audience,
                     std::chrono::seconds{c.jwt_leeway_seconds}};
  if (!c.jwt_keys.empty()) {
    auto keys = jwt::load_keys(c.jwt_keys);
    if (!keys) throw ConfigError("jwt_keys: " + keys.error().detail);
    for (const auto& key : *keys) {
      spdlog::info("JWT verification key \"{}\" ({})", key.kid, jwt::to_string(key.alg));
    }
    api_options.jwt.keys = std::move(*keys);
  }
  // /readyz names each engine and asks it something cheap.
  if (s.redis) {
    api_options.readiness.push_back({"seat_lock_store:redis", [&s] { return s.redis->ping(); }});
  } else {
    api_options.readiness.push_back({"seat_lock_store:memory", [] { return true; }});
  }
  api_options.readiness.push_back({"bookings_db:" + s.bookings_engine, [&s] {
                                     s.bookings_db->max_fence();
                                     return true;
                                   }});
  api_options.readiness.push_back(
      {std::string{"waitlist_store:"} + (s.redis ? "redis" : "sqlite"), [&s] {
         if (s.redis) return s.redis->ping();
         s.waitlist_store->active_sections();
         return true;
       }});
  api_options.readiness.push_back(
      {std::string{"payment_queue:"} + (s.jetstream_queue ? "jetstream" : "sqlite"), [&s] {
         s.payment_queue->counts();
         return true;
       }});
  api_options.every_route_blocks = s.redis != nullptr;
  // Rate limits: shared through Redis when there is one, so gateways together allow what one would.
  try {
    api_options.rate_limits = http::parse_rate_limits(c.rate_limits);
  } catch (const std::invalid_argument& e) {
    throw ConfigError("rate_limits " + std::string{e.what()});
  }
  if (s.redis) {
    api_options.rate_limiter = std::make_shared<RedisRateLimiter>(s.redis);
  } else {
    api_options.rate_limiter = std::make_shared<http::MemoryRateLimiter>();
  }
  spdlog::info("rate limits ({}): {}", s.redis ? "redis" : "memory",
               http::describe(api_options.rate_limits));
  s.api = std::make_unique<http::Api>(std::move(api_options), s.clock, *s.booking_service,
                                      *s.waitlist, *s.idempotency);

  http::ServerOptions server_options;
  server_options.address = listen->host;
  server_options.port = listen->port;
  server_options.io_threads = io_threads;
  server_options.worker_threads = workers;
  server_options.worker_queue_max = c.worker_queue_max;
  server_options.connections_max = c.connections_max;
  server_options.request_timeout = std::chrono::seconds{c.request_timeout_seconds};
  server_options.drain_timeout = std::chrono::seconds{c.drain_timeout_seconds};
  server_options.handle_signals = handle_signals;
  s.server = std::make_unique<http::HttpServer>(server_options, *s.api);
  try {
    s.server->listen();
  } catch (const std::exception& e) {
    throw ConfigError(e.what());
  }
  // Idempotency keys are kept 24 h (the contract's minimum) and then purged.
  s.purge = std::make_unique<Periodic>(std::chrono::minutes{10}, [&s] {
    const auto purged = s.idempotency->purge(s.clock.now(), std::chrono::hours{25});
    if (purged) spdlog::info("purged {} idempotency records", purged);
  });
  // The hot path reads events from the cache only; events created by another instance sharing
  // the bookings store arrive here.
  s.refresh = std::make_unique<Periodic>(std::chrono::seconds{2}, [&s] {
    if (auto added = s.booking_service->refresh_events())
      spdlog::info("loaded {} new events", added);
  });
  spdlog::info(
      "boxoffice listening on http://{}:{} (data in {}, {} I/O threads, {} workers, "
      "payments via {})",
      listen->host, s.server->port(), c.data_dir, io_threads, workers, s.provider_url);
}

System::~System() {
  if (impl_->waitlist) impl_->waitlist->stop();
  if (impl_->processor) impl_->processor->stop();
}

uint16_t System::port() const { return impl_->server->port(); }
const Config& System::config() const { return impl_->config; }
std::string System::payment_provider_url() const { return impl_->provider_url; }
BookingService& System::bookings() { return *impl_->booking_service; }
PaymentProcessor& System::payments() { return *impl_->processor; }
WaitlistService& System::waitlist() { return *impl_->waitlist; }

void System::run() {
  impl_->processor->start();
  impl_->waitlist->start();
  impl_->server->run();
  // Requests are drained; jobs in flight finish, the rest stay queued for the next start.
  impl_->waitlist->stop();
  impl_->processor->stop();
}

void System::stop() { impl_->server->stop(); }

}  // namespace boxoffice::app
