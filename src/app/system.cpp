#include "app/system.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <optional>
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
#include "http/gateway.h"
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

constexpr size_t kPostgresConnectionsMax = 16;  // per process

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

/// Which roles this process runs (BOXOFFICE_ROLES); all four by default.
struct Roles {
  bool gateway = false, booking = false, waitlist = false, payments = false;

  bool any_backend() const { return booking || waitlist || payments; }
  bool serves_api() const { return booking || waitlist; }
  /// Some backend roles here and some elsewhere: they share state through the engines only.
  bool backends_apart() const { return any_backend() && !(booking && waitlist && payments); }
  std::string describe() const {
    std::string text;
    for (auto [on, name] : {std::pair{gateway, "gateway"}, std::pair{booking, "booking"},
                            std::pair{waitlist, "waitlist"}, std::pair{payments, "payments"}}) {
      if (on) text += (text.empty() ? "" : ",") + std::string{name};
    }
    return text;
  }
};

Roles parse_roles(const std::string& text) {
  if (text.empty()) return {true, true, true, true};
  Roles roles;
  size_t start = 0;
  for (;;) {
    const auto comma = text.find(',', start);
    auto name = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!name.empty() && name.front() == ' ') name.erase(0, 1);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    if (name == "gateway") {
      roles.gateway = true;
    } else if (name == "booking") {
      roles.booking = true;
    } else if (name == "waitlist") {
      roles.waitlist = true;
    } else if (name == "payments") {
      roles.payments = true;
    } else {
      throw ConfigError("roles \"" + text + "\": unknown role \"" + name +
                        "\" (the roles are gateway, booking, waitlist and payments)");
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return roles;
}

/// Gives the waitlist role's event cache the events the booking role (another process) created
/// since its last refresh, before a join that names one: a join must not fail for an event that
/// exists. Only for requests forwarded by a gateway (they are authenticated and rate-limited
/// there), so an anonymous client cannot turn cache misses into database reads.
class RefreshEventsOnJoin final : public http::RequestHandler {
 public:
  RefreshEventsOnJoin(http::RequestHandler& inner, BookingService& bookings)
      : inner_(inner), bookings_(bookings) {}
  bool needs_worker(const http::HttpRequest& request) const override {
    return inner_.needs_worker(request);
  }
  http::HttpResponse handle(const http::HttpRequest& request) override {
    constexpr std::string_view kPrefix = "/v1/events/", kSuffix = "/waitlist";
    const std::string_view path = request.path;
    if (request.method == "POST" && path.starts_with(kPrefix) && path.ends_with(kSuffix) &&
        path.size() > kPrefix.size() + kSuffix.size() && request.header(http::kCallerHeader)) {
      const std::string event_id{
          path.substr(kPrefix.size(), path.size() - kPrefix.size() - kSuffix.size())};
      if (event_id.find('/') == std::string::npos && !bookings_.get_event(event_id)) {
        try {
          bookings_.refresh_events();
        } catch (const StorageError& e) {
          spdlog::warn("refreshing events: {}", e.what());
        }
      }
    }
    return inner_.handle(request);
  }
  void connection_opened() override { inner_.connection_opened(); }
  void connection_closed() override { inner_.connection_closed(); }

 private:
  http::RequestHandler& inner_;
  BookingService& bookings_;
};

}  // namespace

struct System::Impl {
  Config config;
  Roles roles;
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
  std::unique_ptr<RefreshEventsOnJoin> refreshing_api;
  std::unique_ptr<http::Gateway> gateway;
  std::unique_ptr<http::OperationsHandler> operations;
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
  s.roles = parse_roles(c.roles);
  const Roles& roles = s.roles;
  if (!roles.gateway && !roles.any_backend()) throw ConfigError("roles: name at least one role");
  // Booking, waitlist and payments in different processes see each other's holds, offers and
  // bookings only through shared engines; embedded ones would each have their own.
  if (roles.backends_apart() && (c.redis_url.empty() || c.postgres_url.empty())) {
    throw ConfigError("roles \"" + roles.describe() +
                      "\": booking, waitlist and payments running in separate processes share "
                      "seat locks, the waitlist and bookings through Redis and PostgreSQL; set "
                      "redis_url and postgres_url (and nats_url, for the payment queue)");
  }
  const bool forwards = roles.gateway && !(roles.booking && roles.waitlist);
  if (forwards) {
    if (!roles.booking && c.booking_url.empty())
      throw ConfigError("roles \"" + roles.describe() +
                        "\": a gateway without the booking role "
                        "needs booking_url (the booking role's http://host:port)");
    if (!roles.waitlist && c.waitlist_url.empty())
      throw ConfigError("roles \"" + roles.describe() +
                        "\": a gateway without the waitlist role "
                        "needs waitlist_url (the waitlist role's http://host:port)");
  }
  // A backend role without a gateway trusts the identity a request names only with the secret.
  const bool behind_gateway = !roles.gateway && roles.serves_api();
  constexpr size_t kInternalSecretMin = 16;
  if ((forwards || behind_gateway) && c.internal_secret.size() < kInternalSecretMin) {
    throw ConfigError("roles \"" + roles.describe() +
                      "\": internal_secret must be set, at least 16 characters, and the same for "
                      "the gateway and the roles behind it");
  }
  const bool uses_engines = roles.any_backend();
  std::error_code ec;
  if (uses_engines) std::filesystem::create_directories(c.data_dir, ec);
  if (ec) throw ConfigError("cannot create data directory " + c.data_dir + ": " + ec.message());
  // With verification keys configured, no secret means no HS256 tokens at all: a generated one
  // printed in the log would let whoever reads the log mint tokens. A role behind a gateway
  // verifies no token.
  if (c.jwt_secret.empty() && c.jwt_keys.empty() && roles.gateway) {
    c.jwt_secret = jwt::random_secret();
    spdlog::warn("no JWT secret configured; generated one for this run: {}", c.jwt_secret);
    spdlog::warn("set BOXOFFICE_JWT_SECRET to keep tokens valid across restarts");
  }
  if (c.payment_max_deliveries < 1) throw ConfigError("payment_max_deliveries must be at least 1");
  if (c.payment_concurrency < 1) throw ConfigError("payment_concurrency must be at least 1");
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t io_threads = c.io_threads ? c.io_threads : cores;
  // With a remote engine every route waits on the network, and a waiting worker costs a stack,
  // not a core: enough of them that checkouts waiting on a commit do not hold up the reads and
  // holds behind them (measured in a production sellout: 8 workers were all in checkouts).
  const bool remote_engines = !c.redis_url.empty() || !c.postgres_url.empty();
  const size_t workers =
      c.worker_threads ? c.worker_threads : std::max(remote_engines ? 64u : 8u, 4 * cores);

  const auto db_path = (std::filesystem::path{c.data_dir} / "bookings.sqlite3").string();
  QueuePolicy policy;
  policy.visibility_timeout = std::chrono::seconds{c.payment_visibility_seconds};
  policy.max_deliveries = c.payment_max_deliveries;
  // The embedded engines share one SQLite file; it is opened only for the parts still embedded.
  if (uses_engines) {
    try {
      if (c.postgres_url.empty()) {
        s.sqlite_bookings = std::make_unique<SqliteBookingStore>(db_path, workers);
        s.bookings_db = s.sqlite_bookings.get();
        s.idempotency = s.sqlite_bookings.get();
        s.bookings_engine = "sqlite";
      }
      if (c.nats_url.empty()) {
        s.sqlite_queue = std::make_unique<SqlitePaymentQueue>(db_path, s.clock, policy,
                                                              c.payment_concurrency + 2);
        s.payment_queue = s.sqlite_queue.get();
      }
      if (c.redis_url.empty()) {
        s.sqlite_waitlist = std::make_unique<SqliteWaitlistStore>(db_path, workers);
        s.waitlist_store = s.sqlite_waitlist.get();
      }
    } catch (const std::exception& e) {
      throw ConfigError("cannot open the bookings database " + db_path + ": " + e.what());
    }
  }
  if (uses_engines && !c.postgres_url.empty()) {
    if (c.migrate_on_start > 1) throw ConfigError("migrate_on_start must be 0 or 1");
    try {
      PostgresStoreOptions options;
      // Opened on need; bounded apart from the workers, since PostgreSQL's own limit
      // (max_connections, 100 by default) is shared by every process of a deployment.
      options.connections = std::min<size_t>(workers, kPostgresConnectionsMax);
      options.migrate = c.migrate_on_start == 1;
      s.postgres_bookings = std::make_unique<PostgresBookingStore>(c.postgres_url, options);
    } catch (const std::exception& e) {
      throw ConfigError("postgres_url: cannot use the bookings database: " + std::string{e.what()});
    }
    s.bookings_db = s.postgres_bookings.get();
    s.idempotency = s.postgres_bookings.get();
    s.bookings_engine = "postgres";
  }
  if (uses_engines && !c.nats_url.empty()) {
    try {
      JetStreamQueueOptions options;
      options.url = c.nats_url;
      s.jetstream_queue = std::make_unique<JetStreamPaymentQueue>(options, s.clock, policy);
    } catch (const std::exception& e) {
      throw ConfigError("nats_url: cannot use the payment queue: " + std::string{e.what()});
    }
    s.payment_queue = s.jetstream_queue.get();
  }
  // A gateway alone uses Redis only for the rate limits it shares with other gateways.
  if (!c.redis_url.empty()) {
    try {
      redis::ClientOptions options;
      options.url = c.redis_url;
      options.io_threads = 0;
      s.redis = std::make_shared<redis::Client>(options);
      if (!s.redis->ping()) throw StorageError("Redis does not answer PING");
      if (uses_engines) {
        s.redis_locks = std::make_unique<RedisSeatLockStore>(*s.redis);
        s.redis_waitlist = std::make_unique<RedisWaitlistStore>(s.redis);
      }
    } catch (const std::exception& e) {
      throw ConfigError("redis_url: cannot use Redis: " + std::string{e.what()});
    }
  }
  if (uses_engines && s.redis) {
    s.waitlist_store = s.redis_waitlist.get();
    s.locks = std::make_unique<RecoveringSeatLockStore>(*s.redis_locks, *s.bookings_db);
  } else if (uses_engines) {
    s.memory_locks = std::make_unique<MemorySeatLockStore>();
    s.locks = std::make_unique<RecoveringSeatLockStore>(*s.memory_locks, *s.bookings_db);
  }

  if (roles.payments) {
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
  }

  if (roles.serves_api()) {
    s.booking_service = std::make_unique<BookingService>(s.clock, *s.locks, *s.bookings_db);
    s.booking_service->set_availability_max_age(Millis{c.availability_cache_ms});
    try {
      s.booking_service->recover();
    } catch (const StorageError& e) {
      throw ConfigError("cannot load the events into the seat lock store: " +
                        std::string{e.what()});
    }
  }

  if (roles.payments) {
    PaymentProcessorOptions payment_options;
    payment_options.concurrency = c.payment_concurrency;
    payment_options.reconcile_after = std::chrono::seconds{c.payment_reconcile_seconds};
    if (!roles.booking) {
      try {
        s.locks->load_events();
      } catch (const StorageError& e) {
        throw ConfigError("cannot load the events: " + std::string{e.what()});
      }
    }
    s.processor = std::make_unique<PaymentProcessor>(s.clock, *s.bookings_db, *s.payment_queue,
                                                     *s.provider, *s.locks, payment_options);
  }
  if (c.waitlist_offer_seconds < 10)
    throw ConfigError("waitlist_offer_seconds must be at least 10");
  if (roles.serves_api()) {
    // The booking role uses the waitlist's store too (an offer's checkout converts its entry, the
    // event stats count the line); only the waitlist role runs its sweeper.
    WaitlistOptions waitlist_options;
    waitlist_options.offer_window = std::chrono::seconds{c.waitlist_offer_seconds};
    s.waitlist = std::make_unique<WaitlistService>(s.clock, *s.locks, *s.waitlist_store,
                                                   *s.booking_service, waitlist_options);
    if (roles.waitlist) s.waitlist->recover();
  }
  auto* waitlist = s.waitlist.get();
  auto* processor = s.processor.get();
  if (roles.booking) {
    BookingService::Hooks hooks;
    hooks.payment_job_committed = [processor, waitlist](const Booking& booking) {
      // Without the payments role here, its pump finds the job within its idle poll (100 ms).
      if (processor) processor->wake();
      // Checkout of an offer converts its waitlist entry; a blocking store call, but checkout
      // already runs on a worker.
      waitlist->on_checkout(booking.hold_id);
    };
    if (roles.waitlist) {
      hooks.hold_released = [waitlist](const Hold& hold) { waitlist->on_hold_released(hold); };
    } else {
      // The sweeper runs in the waitlist role's process: decline a released offer here, in the
      // shared store (blocking, but with Redis every route runs on a worker), and that sweeper
      // serves the line on its next round (every 0.5 s), as it does for any seats that came back.
      auto* store = s.waitlist_store;
      const Clock* clock = &s.clock;
      hooks.hold_released = [store, clock](const Hold& hold) {
        if (hold.id.rfind(kOfferHoldPrefix, 0) != 0) return;
        try {
          auto entry = store->find_by_offer(hold.id);
          if (!entry || entry->status != WaitlistStatus::offered) return;
          (void)store->transition(entry->id, WaitlistStatus::offered, WaitlistStatus::expired,
                                  clock->now());
        } catch (const StorageError& e) {
          // The hold is released either way; the offer then lapses at the end of its window.
          spdlog::warn("declining offer {}: {}", hold.id, e.what());
        }
      };
    }
    s.booking_service->set_hooks(std::move(hooks));
  }
  // Seats of a failed or refunded booking: poke the sweeper when it runs here; in another
  // process its periodic round finds them.
  if (processor && roles.waitlist) {
    processor->on_seats_released(
        [waitlist](const std::string& event_id, const std::string& section) {
          waitlist->poke(event_id, section);
        });
  }

  jwt::VerifierConfig verifier{c.jwt_secret, c.jwt_issuer, c.jwt_audience,
                               std::chrono::seconds{c.jwt_leeway_seconds}};
  if (!c.jwt_keys.empty() && roles.gateway) {
    auto keys = jwt::load_keys(c.jwt_keys);
    if (!keys) throw ConfigError("jwt_keys: " + keys.error().detail);
    for (const auto& key : *keys) {
      spdlog::info("JWT verification key \"{}\" ({})", key.kid, jwt::to_string(key.alg));
    }
    verifier.keys = std::move(*keys);
  }
  // /readyz names each engine and asks it something cheap.
  std::vector<http::ReadinessCheck> engine_checks;
  if (uses_engines) {
    if (s.redis) {
      engine_checks.push_back({"seat_lock_store:redis", [&s] { return s.redis->ping(); }});
    } else {
      engine_checks.push_back({"seat_lock_store:memory", [] { return true; }});
    }
    engine_checks.push_back({"bookings_db:" + s.bookings_engine, [&s] {
                               s.bookings_db->max_fence();
                               return true;
                             }});
    engine_checks.push_back({std::string{"waitlist_store:"} + (s.redis ? "redis" : "sqlite"), [&s] {
                               if (s.redis) return s.redis->ping();
                               s.waitlist_store->active_sections();
                               return true;
                             }});
    engine_checks.push_back(
        {std::string{"payment_queue:"} + (s.jetstream_queue ? "jetstream" : "sqlite"), [&s] {
           s.payment_queue->counts();
           return true;
         }});
  }
  // Rate limits: shared through Redis when there is one, so gateways together allow what one would.
  http::RateLimitSettings rate_limits;
  try {
    rate_limits = http::parse_rate_limits(c.rate_limits);
  } catch (const std::invalid_argument& e) {
    throw ConfigError("rate_limits " + std::string{e.what()});
  }
  std::shared_ptr<http::RateLimiter> rate_limiter;
  if (s.redis) {
    rate_limiter = std::make_shared<RedisRateLimiter>(s.redis);
  } else {
    rate_limiter = std::make_shared<http::MemoryRateLimiter>();
  }
  if (roles.gateway) {
    spdlog::info("rate limits ({}): {}", s.redis ? "redis" : "memory", http::describe(rate_limits));
  }
  if (roles.serves_api()) {
    http::ApiOptions api_options;
    api_options.jwt = verifier;
    api_options.readiness = engine_checks;
    api_options.every_route_blocks = s.redis != nullptr;
    api_options.rate_limits = rate_limits;
    api_options.rate_limiter = rate_limiter;
    if (behind_gateway) api_options.internal_secret = c.internal_secret;
    s.api = std::make_unique<http::Api>(std::move(api_options), s.clock, *s.booking_service,
                                        *s.waitlist, *s.idempotency);
  }
  http::RequestHandler* api = s.api.get();
  if (api && roles.waitlist && !roles.booking) {
    s.refreshing_api = std::make_unique<RefreshEventsOnJoin>(*s.api, *s.booking_service);
    api = s.refreshing_api.get();
  }
  http::RequestHandler* handler = api;
  if (forwards) {
    http::GatewayOptions gateway_options;
    gateway_options.jwt = verifier;
    gateway_options.rate_limits = rate_limits;
    gateway_options.rate_limiter = rate_limiter;
    gateway_options.internal_secret = c.internal_secret;
    if (!roles.booking) gateway_options.booking_url = c.booking_url;
    if (!roles.waitlist) gateway_options.waitlist_url = c.waitlist_url;
    // One connection per worker at most is ever busy: the pool never makes a worker wait.
    gateway_options.backend_connections_max = workers;
    gateway_options.readiness = engine_checks;
    if (s.redis && !uses_engines) {
      gateway_options.readiness.push_back({"rate_limiter:redis", [&s] { return s.redis->ping(); }});
    }
    try {
      s.gateway = std::make_unique<http::Gateway>(std::move(gateway_options), s.clock, api);
    } catch (const std::invalid_argument& e) {
      throw ConfigError(std::string{"booking_url / waitlist_url: "} + e.what());
    }
    handler = s.gateway.get();
  }
  if (!handler) {
    s.operations = std::make_unique<http::OperationsHandler>(engine_checks);
    handler = s.operations.get();
  }

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
  s.server = std::make_unique<http::HttpServer>(server_options, *handler);
  try {
    s.server->listen();
  } catch (const std::exception& e) {
    throw ConfigError(e.what());
  }
  if (s.idempotency && roles.serves_api()) {
    // Idempotency keys are kept 24 h (the contract's minimum) and then purged.
    s.purge = std::make_unique<Periodic>(std::chrono::minutes{10}, [&s] {
      const auto purged = s.idempotency->purge(s.clock.now(), std::chrono::hours{25});
      if (purged) spdlog::info("purged {} idempotency records", purged);
    });
  }
  if (s.booking_service) {
    // The hot path reads events from the cache only; events created by another instance sharing
    // the bookings store arrive here.
    s.refresh = std::make_unique<Periodic>(std::chrono::seconds{2}, [&s] {
      if (auto added = s.booking_service->refresh_events())
        spdlog::info("loaded {} new events", added);
    });
  }
  spdlog::info(
      "boxoffice ({}) listening on http://{}:{} (data in {}, {} I/O threads, {} workers{}{})",
      roles.describe(), listen->host, s.server->port(), c.data_dir, io_threads, workers,
      s.provider_url.empty() ? "" : ", payments via " + s.provider_url,
      forwards
          ? ", forwarding to " + (roles.booking ? std::string{"this process"} : c.booking_url) +
                " and " + (roles.waitlist ? std::string{"this process"} : c.waitlist_url)
          : "");
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
  if (impl_->processor) impl_->processor->start();
  if (impl_->roles.waitlist) impl_->waitlist->start();
  impl_->server->run();
  // Requests are drained; jobs in flight finish, the rest stay queued for the next start.
  if (impl_->waitlist) impl_->waitlist->stop();
  if (impl_->processor) impl_->processor->stop();
}

void System::stop() { impl_->server->stop(); }

}  // namespace boxoffice::app
