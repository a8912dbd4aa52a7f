#pragma once
// The composition root: configuration → adapters → services → roles → server. `serve` runs one
// System until SIGTERM; `demo` runs one in the background and sells out an event against it.
// Roles (gateway, booking, waitlist, payments; all four by default) may run in separate
// processes: a gateway then forwards to the others (http/gateway.h).

#include <memory>
#include <stdexcept>
#include <string>

#include "app/config.h"

namespace boxoffice {
class BookingService;
class PaymentProcessor;
class WaitlistService;
}  // namespace boxoffice

namespace boxoffice::app {

/// A configuration the process cannot run with: the message names the setting.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class System {
 public:
  /// Opens every engine, recovers state and binds the listening socket. Throws ConfigError.
  /// `handle_signals`: SIGTERM/SIGINT drain the server (off when something else owns them).
  explicit System(Config config, bool handle_signals = true);
  ~System();

  uint16_t port() const;
  const Config& config() const;
  /// The base URL of the payment provider in use (the in-process simulator's when none is set).
  std::string payment_provider_url() const;

  /// Serves until SIGTERM/SIGINT or stop(), then drains and stops the payment workers.
  void run();
  /// From any thread: begins the drain; run() returns when it is done.
  void stop();

  /// The services of the roles this process runs (all four by default); calling one of a role
  /// that runs elsewhere is a programming error.
  BookingService& bookings();
  PaymentProcessor& payments();
  WaitlistService& waitlist();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace boxoffice::app
