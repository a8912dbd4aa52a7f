#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "domain/time.h"

namespace boxoffice {

struct StoredResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

/// What begin() found for (buyer, key).
struct IdempotencyStarted {};   // first use: the caller runs the request, then complete()s it
struct IdempotencyInFlight {};  // another request with this key has not finished
struct IdempotencyMismatch {};  // the key was used with a different request
using IdempotencyOutcome =
    std::variant<IdempotencyStarted, IdempotencyInFlight, IdempotencyMismatch, StoredResponse>;

/// Remembers the response to each (buyer, Idempotency-Key) so a retried request gets the first
/// answer again. A request is identified by its fingerprint (a digest of method, path and body).
/// Records are kept at least `retention`; an in-flight record older than `lease` is considered
/// abandoned (its process died) and may be started again.
///
/// Thread-safe; engine failures are thrown as StorageError.
class IdempotencyStore {
 public:
  virtual ~IdempotencyStore() = default;

  virtual IdempotencyOutcome begin(const std::string& buyer, const std::string& key,
                                   const std::string& fingerprint, Timestamp now, Millis lease) = 0;
  /// Stores the response for a started key.
  virtual void complete(const std::string& buyer, const std::string& key,
                        const StoredResponse& response, Timestamp now) = 0;
  /// Forgets a started key whose request failed for a transient reason, so a retry runs again.
  virtual void abandon(const std::string& buyer, const std::string& key) = 0;
  /// Deletes records older than now - retention; returns how many.
  virtual size_t purge(Timestamp now, Millis retention) = 0;
};

}  // namespace boxoffice
