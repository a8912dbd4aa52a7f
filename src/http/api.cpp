#include "http/api.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <strings.h>
#include <atomic>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <memory>
#include <variant>

#include "http/problem.h"

namespace boxoffice::http {

namespace {

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xF]);
  }
  return out;
}

bool is_valid_idempotency_key(std::string_view key) {
  if (key.empty() || key.size() > 255) return false;
  for (unsigned char c : key) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// RFC 6750 §3: a request without a bearer token gets the bare challenge; a bad token also says
// why. The detail is ours, but it is still made a safe quoted-string.
std::string bearer_challenge(std::string_view error, std::string_view description) {
  std::string challenge = "Bearer realm=\"boxoffice\"";
  if (error.empty()) return challenge;
  challenge += ", error=\"" + std::string(error) + "\", error_description=\"";
  for (char c : description) {
    if (c >= 0x20 && c <= 0x7e && c != '"' && c != '\\') challenge += c;
  }
  return challenge + "\"";
}

HttpResponse refuse(const Error& error, std::string_view challenge_error) {
  auto response = problem(error);
  for (auto& [name, value] : response.headers) {
    if (strcasecmp(name.c_str(), "WWW-Authenticate") == 0) {
      value = bearer_challenge(challenge_error, error.detail);
    }
  }
  return response;
}

// Constant time in the secret's contents, so its bytes cannot be guessed one at a time.
bool secret_matches(std::optional<std::string_view> given, const std::string& secret) {
  return given && given->size() == secret.size() &&
         CRYPTO_memcmp(given->data(), secret.data(), secret.size()) == 0;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string encode_caller(const Caller& caller) {
  std::string value = "sub=";
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char c : caller.buyer) {
    const auto byte = static_cast<unsigned char>(c);
    const bool plain = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
                       (byte >= '0' && byte <= '9') || byte == '-' || byte == '.' || byte == '_' ||
                       byte == '~' || byte == '@';
    if (plain) {
      value.push_back(c);
    } else {
      value.push_back('%');
      value.push_back(kHex[byte >> 4]);
      value.push_back(kHex[byte & 0xF]);
    }
  }
  return value + (caller.admin ? ";admin=1" : ";admin=0");
}

std::optional<Caller> decode_caller(std::string_view value) {
  constexpr std::string_view kSub = "sub=";
  const auto semicolon = value.rfind(';');
  if (!value.starts_with(kSub) || semicolon == std::string_view::npos) return std::nullopt;
  const auto admin = value.substr(semicolon + 1);
  if (admin != "admin=0" && admin != "admin=1") return std::nullopt;
  Caller caller;
  caller.admin = admin == "admin=1";
  const auto sub = value.substr(kSub.size(), semicolon - kSub.size());
  for (size_t i = 0; i < sub.size(); ++i) {
    if (sub[i] != '%') {
      caller.buyer.push_back(sub[i]);
      continue;
    }
    if (i + 2 >= sub.size()) return std::nullopt;
    const int high = hex_value(sub[i + 1]), low = hex_value(sub[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    caller.buyer.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  if (caller.buyer.empty()) return std::nullopt;
  return caller;
}

std::variant<Caller, HttpResponse> authenticate(const HttpRequest& request,
                                                const jwt::VerifierConfig& config, Timestamp now) {
  const auto header = request.header("Authorization");
  if (!header) return Caller{};
  const auto space = header->find(' ');
  const std::string_view scheme = header->substr(0, space);
  const std::string_view token =
      space == std::string_view::npos ? std::string_view{} : header->substr(space + 1);
  const auto wrong_header =
      make_error(Errc::unauthorized, "the Authorization header must be \"Bearer <token>\"");
  // Another scheme (Basic, ...): the client did not try a bearer token, so no error code.
  if (scheme.size() != 6 || strncasecmp(scheme.data(), "Bearer", 6) != 0) {
    return refuse(wrong_header, "");
  }
  if (token.empty()) return refuse(wrong_header, "invalid_request");
  auto claims = jwt::verify(token, config, now);
  if (!claims) return refuse(claims.error(), "invalid_token");
  Caller caller{claims->subject, false};
  for (const auto& role : claims->roles) caller.admin = caller.admin || role == "admin";
  return caller;
}

std::optional<HttpResponse> check_access(Access access, const Caller& caller) {
  if (access != Access::anyone && caller.anonymous()) {
    return refuse(make_error(Errc::unauthorized, "this route needs a bearer token"), "");
  }
  if (access == Access::admin && !caller.admin) {
    return problem(make_error(Errc::forbidden, "this route needs the admin role"));
  }
  return std::nullopt;
}

Api::Api(ApiOptions options, const Clock& clock, BookingService& bookings,
         WaitlistService& waitlist, IdempotencyStore& idempotency)
    : options_(std::move(options)),
      clock_(clock),
      bookings_(bookings),
      waitlist_(waitlist),
      idempotency_(idempotency) {
  add_routes();
  std::vector<std::string> names;
  for (const auto& route : router_.routes()) names.push_back(route.method + " " + route.pattern);
  metrics_ = std::make_unique<Metrics>(std::move(names));
  rate_gate_ = std::make_unique<RateLimitGate>(options_.rate_limits, options_.rate_limiter, clock_,
                                               router_.routes());
}

bool Api::needs_worker(const HttpRequest& request) const {
  const auto match = router_.match(request.method, request.path);
  const auto* found = std::get_if<Router::Match>(&match);
  if (!found) return false;
  if (found->route->blocking || (found->route->creates && request.header("Idempotency-Key"))) {
    return true;
  }
  if (!options_.every_route_blocks) return false;
  return !(found->route->answers_from_memory && found->route->answers_from_memory(found->params));
}

HttpResponse failure_response(const HttpRequest& request, std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const StorageError& e) {
    spdlog::error("storage failure on {} {}: {}", request.method, request.path, e.what());
    return problem(make_error(Errc::unavailable, "a storage engine did not answer; retry later"));
  } catch (const std::exception& e) {
    spdlog::error("unexpected failure on {} {}: {}", request.method, request.path, e.what());
  } catch (...) {
    spdlog::error("unexpected failure on {} {}", request.method, request.path);
  }
  return protocol_problem(500, "internal", "Internal error", "an unexpected error occurred");
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point started) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

}  // namespace

HttpResponse answer_and_record(const HttpRequest& request, Metrics& metrics,
                               const std::function<HttpResponse(size_t& route_index)>& dispatch) {
  const auto started = std::chrono::steady_clock::now();
  size_t route_index = metrics.unmatched();
  HttpResponse response;
  try {
    response = dispatch(route_index);
  } catch (...) {
    response = failure_response(request, std::current_exception());
  }
  metrics.record(route_index, response.status, seconds_since(started));
  return response;
}

std::variant<Router::Match, HttpResponse> match_route(const Router& router,
                                                      const HttpRequest& request) {
  auto match = router.match(request.method, request.path);
  if (std::holds_alternative<Router::NoRoute>(match)) {
    return protocol_problem(404, "not_found", "Not found", "no route " + request.path);
  }
  if (auto* wrong = std::get_if<Router::WrongMethod>(&match)) {
    auto response = protocol_problem(405, "method_not_allowed", "Method not allowed",
                                     request.method + " is not allowed here; use " + wrong->allow);
    response.set_header("Allow", wrong->allow);
    return response;
  }
  return std::get<Router::Match>(std::move(match));
}

HttpResponse Api::handle(const HttpRequest& request) {
  return answer_and_record(request, *metrics_,
                           [&](size_t& route_index) { return dispatch(request, route_index); });
}

bool Api::answers_async(const HttpRequest& request) const {
  // With every engine in this process's memory, handle() on the I/O thread never waits anyway.
  if (!options_.every_route_blocks) return false;
  const auto match = router_.match(request.method, request.path);
  const auto* found = std::get_if<Router::Match>(&match);
  return found && found->route->async_handler &&
         !(found->route->creates && request.header("Idempotency-Key"));
}

void Api::async_handle(const HttpRequest& request, AsyncDone done) {
  struct Call {
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    size_t route_index = 0;
    AsyncDone done;
    std::atomic<bool> answered{false};
  };
  auto call = std::make_shared<Call>();
  call->route_index = metrics_->unmatched();
  call->done = std::move(done);
  Respond respond = [this, &request, call](std::exception_ptr error, HttpResponse response) {
    if (call->answered.exchange(true)) return;  // a handler that threw after answering
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const LockStateLost&) {
        // Rebuilding the event reads the Bookings DB: a worker runs the request instead
        // (RecoveringSeatLockStore), and nothing was taken.
        return call->done(std::nullopt);
      } catch (...) {
        response = failure_response(request, error);
      }
    }
    metrics_->record(call->route_index, response.status, seconds_since(call->started));
    call->done(std::move(response));
  };
  try {
    prepare(request, call->route_index, /*async=*/true, [respond](Prepared::Outcome outcome) {
      if (auto* refusal = std::get_if<HttpResponse>(&outcome)) {
        return respond(nullptr, std::move(*refusal));
      }
      const auto& prepared = std::get<Prepared>(outcome);
      const Route& route = *prepared.route;
      try {
        if (route.async_handler) {
          route.async_handler(prepared.context, respond);
        } else {
          respond(nullptr, route.handler(prepared.context));
        }
      } catch (...) {
        respond(std::current_exception(), {});
      }
    });
  } catch (...) {
    respond(std::current_exception(), {});
  }
}

HttpResponse Api::dispatch(const HttpRequest& request, size_t& route_index) {
  std::optional<Prepared::Outcome> outcome;
  prepare(request, route_index, /*async=*/false,
          [&outcome](Prepared::Outcome prepared) { outcome.emplace(std::move(prepared)); });
  if (auto* refusal = std::get_if<HttpResponse>(&*outcome)) return std::move(*refusal);
  auto& [route, context] = std::get<Prepared>(*outcome);
  if (route->creates) {
    if (auto key = request.header("Idempotency-Key")) {
      if (!is_valid_idempotency_key(*key)) {
        return problem(make_error(Errc::invalid_request,
                                  "Idempotency-Key must be 1-255 visible ASCII characters"));
      }
      return run_idempotent(*route, context, *key);
    }
  }
  return route->handler(context);
}

void Api::admit(bool async, size_t route_index, RateScope scope, std::string_view who,
                RateLimitGate::Admitted next) {
  if (async) return rate_gate_->async_admit(route_index, scope, who, std::move(next));
  next(rate_gate_->admit(route_index, scope, who));
}

void Api::prepare(const HttpRequest& request, size_t& route_index, bool async,
                  Prepared::Done done) {
  auto match = match_route(router_, request);
  if (auto* refusal = std::get_if<HttpResponse>(&match)) return done(std::move(*refusal));
  auto found = std::make_shared<Router::Match>(std::get<Router::Match>(std::move(match)));
  route_index = found->index;
  const Route& route = *found->route;
  if (!options_.internal_secret.empty()) {
    // Behind a gateway, which authenticated and rate-limited this request; only it knows the
    // secret.
    Caller caller;
    if (request.path.starts_with("/v1/")) {
      if (!secret_matches(request.header(kInternalSecretHeader), options_.internal_secret)) {
        return done(problem(make_error(Errc::forbidden, "this role serves its gateway only (" +
                                                            std::string{kInternalSecretHeader} +
                                                            " missing or wrong)")));
      }
      if (const auto forwarded = request.header(kCallerHeader)) {
        auto decoded = decode_caller(*forwarded);
        if (!decoded) {
          return done(problem(
              make_error(Errc::invalid_request, std::string{kCallerHeader} + " is malformed")));
        }
        caller = std::move(*decoded);
      }
    }
    if (auto refused = check_access(route.access, caller)) return done(std::move(*refused));
    return done(
        Prepared{&route, RouteContext{request, std::move(caller), std::move(found->params)}});
  }
  // Per address before authentication, so a flood of bad tokens is limited too. With `async`,
  // what follows each admit may run on the limiter's thread: a failure there is answered here.
  admit(async, found->index, RateScope::address, request.remote_address,
        [this, &request, found, async, done](std::optional<HttpResponse> refused) {
          if (refused) return done(std::move(*refused));
          try {
            auto authenticated = authenticate(request, options_.jwt, clock_.now());
            if (auto* refusal = std::get_if<HttpResponse>(&authenticated)) {
              return done(std::move(*refusal));
            }
            auto caller = std::make_shared<Caller>(std::move(std::get<Caller>(authenticated)));
            if (auto denied = check_access(found->route->access, *caller)) {
              return done(std::move(*denied));
            }
            admit(async, found->index, RateScope::buyer, caller->buyer,
                  [&request, found, caller, done](std::optional<HttpResponse> limited) {
                    if (limited) return done(std::move(*limited));
                    done(Prepared{found->route, RouteContext{request, std::move(*caller),
                                                             std::move(found->params)}});
                  });
          } catch (...) {
            done(failure_response(request, std::current_exception()));
          }
        });
}

HttpResponse Api::run_idempotent(const Route& route, const RouteContext& context,
                                 std::string_view key_view) {
  const std::string key{key_view};
  const auto& request = context.request;
  const auto fingerprint =
      sha256_hex(request.method + " " + request.path + "?" + request.query + "\n" + request.body);
  const auto outcome = idempotency_.begin(context.caller.buyer, key, fingerprint, clock_.now(),
                                          options_.idempotency_lease);
  if (std::holds_alternative<IdempotencyInFlight>(outcome)) {
    return problem(make_error(Errc::request_in_progress,
                              "the first request with this Idempotency-Key has not finished"));
  }
  if (std::holds_alternative<IdempotencyMismatch>(outcome)) {
    return problem(make_error(Errc::idempotency_key_reused,
                              "this Idempotency-Key was used with a different request"));
  }
  if (const auto* stored = std::get_if<StoredResponse>(&outcome)) {
    HttpResponse replay;
    replay.status = stored->status;
    replay.content_type = stored->content_type;
    replay.body = stored->body;
    replay.set_header("Idempotent-Replayed", "true");
    return replay;
  }
  HttpResponse response;
  try {
    response = route.handler(context);
  } catch (...) {
    idempotency_.abandon(context.caller.buyer, key);
    throw;
  }
  // A server-side failure is not an answer worth repeating: let a retry run again.
  if (response.status >= 500) {
    idempotency_.abandon(context.caller.buyer, key);
    return response;
  }
  try {
    idempotency_.complete(context.caller.buyer, key,
                          {response.status, response.content_type, response.body}, clock_.now());
  } catch (const StorageError& e) {
    // The request took effect; only its record is missing. Answer it, and free the key rather
    // than leave it in flight (a retry would then wait out the lease and run again).
    spdlog::warn("idempotency record for {} not stored: {}", key, e.what());
    try {
      idempotency_.abandon(context.caller.buyer, key);
    } catch (const StorageError&) {
    }
  }
  return response;
}

}  // namespace boxoffice::http
