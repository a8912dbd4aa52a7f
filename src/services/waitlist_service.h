#pragma once
// The Waitlist Service: a FIFO line per event section. Seats that come back to a section where
// buyers wait (an expired or released hold, a declined payment, a refund) are kept for the line by
// the Seat Lock Store and offered, in join order, as holds owned by the waiting buyers. A sweeper
// thread does the serving, so callers on I/O threads only poke it.

#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "domain/caller.h"
#include "domain/result.h"
#include "domain/waitlist.h"
#include "ports/clock.h"
#include "ports/seat_lock_store.h"
#include "ports/waitlist_store.h"
#include "services/booking_service.h"

namespace boxoffice {

struct WaitlistOptions {
  /// How long a waiting buyer has to check out an offer.
  Millis offer_window{std::chrono::minutes{10}};
  /// How often the sweeper runs when nothing pokes it.
  Millis sweep_interval{std::chrono::milliseconds{500}};
  /// Holds expired and offers lapsed per sweep, at most.
  size_t sweep_batch_max = 1000;
  /// Offers made per section per sweep, at most (the rest wait for the next sweep).
  size_t offers_per_section_max = 1000;
};

/// Hold ids of offers carry this prefix, so checkout knows which holds to look up.
inline constexpr std::string_view kOfferHoldPrefix = "ofr_";

class WaitlistService {
 public:
  WaitlistService(const Clock& clock, SeatLockStore& locks, WaitlistStore& store,
                  BookingService& bookings, WaitlistOptions options = {});
  ~WaitlistService();

  /// Start-up, after the booking service's recovery: tells the lock store who waits where and
  /// puts back the holds of outstanding offers (holds do not survive a restart of the embedded
  /// lock store; offers do).
  void recover();
  void start();
  void stop();

  /// Errors: not_found, sale_not_open, invalid_request, limit_exceeded (order cap),
  /// seats_available (the public can buy now), conflict (already in this line).
  Result<WaitlistEntry> join(const Caller& caller, const std::string& event_id,
                             const std::string& section, uint32_t quantity);
  Result<WaitlistEntry> get(const Caller& caller, const std::string& entry_id);
  /// Waiting or offered → left; an offer's hold is released and goes to the next in line.
  Result<WaitlistEntry> leave(const Caller& caller, const std::string& entry_id);

  /// A hold was checked out: if it was an offer, its entry is converted. Blocking (store).
  void on_checkout(const std::string& hold_id);
  /// Seats came back in a section: serve that line soon. Never blocks; safe on I/O threads.
  void poke(const std::string& event_id, const std::string& section);
  /// A buyer released a hold. If it was an offer, the offer is declined: its entry expires and
  /// the seats go to the next in line. Never blocks; safe on I/O threads.
  void on_hold_released(const Hold& hold);

  /// One sweeper round: expire due holds, lapse due offers, serve every line with buyers.
  /// Returns the offers made. Public for tests; the sweeper thread calls it.
  size_t sweep();

  WaitlistCounts counts(const std::string& event_id) { return store_.counts(event_id); }

 private:
  size_t serve(const std::string& event_id, const std::string& section);
  void update_gate(const std::string& event_id, const std::string& section);
  void run();

  const Clock& clock_;
  SeatLockStore& locks_;
  WaitlistStore& store_;
  BookingService& bookings_;
  const WaitlistOptions options_;

  std::mutex serve_mutex_;  // one sweep at a time: offers in a line are made in order

  std::mutex mutex_;
  std::condition_variable wake_;
  std::set<std::pair<std::string, std::string>> poked_;
  std::vector<std::string> declined_offers_;  // hold ids, settled by the next sweep
  bool stopping_ = false;
  std::thread sweeper_;
};

}  // namespace boxoffice
