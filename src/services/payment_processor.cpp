#include "services/payment_processor.h"

#include <spdlog/spdlog.h>

namespace boxoffice {

namespace {

PaymentJob job_for(const OutboxJob& row) {
  const auto kind = row.kind == "refund" ? PaymentJobKind::refund : PaymentJobKind::charge;
  return {std::string{to_string(kind)} + ":" + row.booking_id, kind, row.booking_id};
}

PaymentJob job_for(PaymentJobKind kind, const std::string& booking_id) {
  return {std::string{to_string(kind)} + ":" + booking_id, kind, booking_id};
}

}  // namespace

PaymentProcessor::PaymentProcessor(const Clock& clock, BookingStore& bookings, PaymentQueue& queue,
                                   PaymentProvider& provider, SeatLockStore& locks,
                                   PaymentProcessorOptions options)
    : clock_(clock),
      bookings_(bookings),
      queue_(queue),
      provider_(provider),
      locks_(locks),
      options_(std::move(options)) {}

PaymentProcessor::~PaymentProcessor() { stop(); }

void PaymentProcessor::start() {
  std::lock_guard lock(mutex_);
  if (pump_.joinable()) return;
  stopping_ = false;
  for (size_t i = 0; i < std::max<size_t>(1, options_.concurrency); ++i) {
    workers_.emplace_back([this] { work(); });
  }
  pump_ = std::thread([this] { pump(); });
}

void PaymentProcessor::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!pump_.joinable()) return;
    stopping_ = true;
  }
  wake_pump_.notify_all();
  wake_workers_.notify_all();
  pump_.join();
  for (auto& w : workers_) w.join();
  workers_.clear();
  // Deliveries received but not started are simply not acked: the queue delivers them again.
  work_.clear();
  in_flight_ = 0;
}

void PaymentProcessor::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wake_pump_.notify_one();
}

void PaymentProcessor::pump() {
  auto next_maintenance = std::chrono::steady_clock::now();
  for (;;) {
    size_t room = 0;
    {
      std::unique_lock lock(mutex_);
      if (stopping_) return;
      room = options_.concurrency > in_flight_ ? options_.concurrency - in_flight_ : 0;
      woken_ = false;
    }
    size_t received = 0;
    try {
      relay_outbox();
      if (room > 0) {
        auto deliveries = queue_.receive(room);
        received = deliveries.size();
        if (received) {
          std::lock_guard lock(mutex_);
          in_flight_ += received;
          for (auto& d : deliveries) work_.push_back(std::move(d));
        }
      }
      if (received) wake_workers_.notify_all();
      if (std::chrono::steady_clock::now() >= next_maintenance) {
        reconcile_dead_letters();
        requeue_stale();
        next_maintenance = std::chrono::steady_clock::now() + options_.maintenance_interval;
      }
    } catch (const std::exception& e) {
      spdlog::warn("payments: {}; retrying shortly", e.what());
    }
    std::unique_lock lock(mutex_);
    if (stopping_) return;
    const bool full = in_flight_ >= options_.concurrency;
    if (received == 0 || full) {
      // Full: a worker that finishes a job frees a slot, and the pump fills it at once (waiting
      // for the poll instead capped throughput at `concurrency` jobs per idle_poll).
      wake_pump_.wait_for(lock, options_.idle_poll, [this, full] {
        return stopping_ || woken_ || (full && in_flight_ < options_.concurrency);
      });
    }
  }
}

void PaymentProcessor::work() {
  for (;;) {
    Delivery delivery;
    {
      std::unique_lock lock(mutex_);
      wake_workers_.wait(lock, [this] { return stopping_ || !work_.empty(); });
      if (stopping_) return;
      delivery = std::move(work_.front());
      work_.pop_front();
    }
    try {
      process(delivery);
    } catch (const std::exception& e) {
      // An engine failed mid-job: not acked, so the queue delivers it again.
      spdlog::warn("payments: job {} failed: {}", delivery.job.id, e.what());
    }
    {
      std::lock_guard lock(mutex_);
      --in_flight_;
    }
    wake_pump_.notify_one();
  }
}

size_t PaymentProcessor::relay_outbox() {
  auto rows = bookings_.pending_outbox(options_.relay_batch_max);
  if (rows.empty()) return 0;
  std::vector<int64_t> sequences;
  for (const auto& row : rows) {
    queue_.publish(job_for(row));
    sequences.push_back(row.sequence);
  }
  // A crash before this line publishes the jobs again: the queue drops the duplicates.
  bookings_.mark_outbox_published(sequences);
  return rows.size();
}

Millis PaymentProcessor::backoff_for(uint32_t delivery) const {
  if (options_.backoff.empty()) return Millis{0};
  const size_t index =
      std::min<size_t>(delivery == 0 ? 0 : delivery - 1, options_.backoff.size() - 1);
  return options_.backoff[index];
}

void PaymentProcessor::process(const Delivery& delivery) {
  auto booking = bookings_.get_booking(delivery.job.booking_id);
  if (!booking) {
    spdlog::error("payments: job {} names no booking; dropped", delivery.job.id);
    queue_.ack(delivery);
    return;
  }
  if (delivery.job.kind == PaymentJobKind::charge) {
    charge(delivery, *booking);
  } else {
    refund(delivery, *booking);
  }
}

void PaymentProcessor::settle_seats(const Booking& booking) {
  const auto now = clock_.now();
  switch (booking.status) {
    case BookingStatus::confirmed:
    case BookingStatus::cancelled:
      (void)locks_.mark_sold(booking.hold_id, now);
      break;
    case BookingStatus::payment_failed:
    case BookingStatus::refunded:
      if (locks_.release_booked(booking.hold_id, now) && seats_released_) {
        seats_released_(booking.event_id, booking.section);
      }
      break;
    case BookingStatus::pending_payment:
      break;
  }
}

void PaymentProcessor::confirm(const Booking& booking) {
  auto moved = bookings_.transition(booking.id, BookingStatus::pending_payment,
                                    BookingStatus::confirmed, clock_.now());
  if (!moved) {
    // Someone settled it first (a duplicate delivery); apply whatever it became.
    if (auto current = bookings_.get_booking(booking.id)) {
      settle_seats(*current);
      // Failed meanwhile (a dead letter settled as "never charged"): the charge is returned.
      if (current->status == BookingStatus::payment_failed && !refund_orphan_charge(*current)) {
        // The provider did not answer: a charge job makes the next attempt.
        queue_.publish({"charge:" + current->id + ":orphan", PaymentJobKind::charge, current->id});
      }
    }
    return;
  }
  settle_seats(*moved);
}

void PaymentProcessor::fail(const Booking& booking, const std::string& reason) {
  auto moved = bookings_.transition(booking.id, BookingStatus::pending_payment,
                                    BookingStatus::payment_failed, clock_.now(), reason);
  if (!moved) {
    if (auto current = bookings_.get_booking(booking.id)) settle_seats(*current);
    return;
  }
  settle_seats(*moved);
}

bool PaymentProcessor::refund_orphan_charge(const Booking& booking) {
  // The booking failed, yet the provider may hold an approved charge for it (it answered after
  // the dead letter was settled): that money goes back, so no charge outlives its booking.
  auto found = provider_.find_charge(booking.id);
  if (std::holds_alternative<ProviderError>(found)) return false;
  const auto& charge = std::get<std::optional<Charge>>(found);
  if (!charge || charge->status != ChargeStatus::approved || charge->refunded) return true;
  spdlog::warn("payments: booking {} failed but was charged; refunding", booking.id);
  auto refunded = provider_.refund(booking.id);
  if (std::holds_alternative<ProviderError>(refunded)) return false;
  ++refunded_;
  return true;
}

void PaymentProcessor::charge(const Delivery& delivery, const Booking& booking) {
  if (booking.status == BookingStatus::payment_failed) {
    settle_seats(booking);
    if (!refund_orphan_charge(booking)) {
      queue_.retry_later(delivery, backoff_for(delivery.delivery));
      return;
    }
    queue_.ack(delivery);
    return;
  }
  if (booking.status != BookingStatus::pending_payment) {
    settle_seats(booking);
    queue_.ack(delivery);
    return;
  }
  auto result =
      provider_.charge({booking.id, booking.amount, booking.currency, booking.payment_method});
  if (auto* error = std::get_if<ProviderError>(&result)) {
    ++transient_;
    (void)bookings_.record_payment_attempt(booking.id, error->detail, clock_.now());
    queue_.retry_later(delivery, backoff_for(delivery.delivery));
    return;
  }
  const auto& charge = std::get<Charge>(result);
  if (charge.status == ChargeStatus::approved) {
    ++approved_;
    (void)bookings_.record_payment_attempt(booking.id, "", clock_.now());
    confirm(booking);
  } else {
    ++declined_;
    const auto reason =
        "declined: " + (charge.decline_reason.empty() ? "card_declined" : charge.decline_reason);
    (void)bookings_.record_payment_attempt(booking.id, reason, clock_.now());
    fail(booking, reason);
  }
  queue_.ack(delivery);
}

void PaymentProcessor::refund(const Delivery& delivery, const Booking& booking) {
  if (booking.status != BookingStatus::cancelled) {
    settle_seats(booking);
    queue_.ack(delivery);
    return;
  }
  auto result = provider_.refund(booking.id);
  if (auto* error = std::get_if<ProviderError>(&result)) {
    ++transient_;
    spdlog::info("payments: refund of {} failed ({}); retrying", booking.id, error->detail);
    queue_.retry_later(delivery, backoff_for(delivery.delivery));
    return;
  }
  ++refunded_;
  auto moved = bookings_.transition(booking.id, BookingStatus::cancelled, BookingStatus::refunded,
                                    clock_.now());
  if (moved) settle_seats(*moved);
  queue_.ack(delivery);
}

size_t PaymentProcessor::reconcile_dead_letters() {
  size_t settled = 0;
  // Each provider call may take its whole timeout: bound the pass so the pump keeps pumping.
  const auto deadline = std::chrono::steady_clock::now() + options_.maintenance_budget;
  for (const auto& dead : queue_.dead_letters(options_.reconcile_batch_max)) {
    if (std::chrono::steady_clock::now() > deadline) break;
    auto booking = bookings_.get_booking(dead.job.booking_id);
    if (!booking) {
      queue_.remove_dead_letter(dead.job.id);
      continue;
    }
    bookings_.mark_dead_lettered(booking->id);
    if (dead.job.kind == PaymentJobKind::charge &&
        booking->status == BookingStatus::pending_payment) {
      // Never guess: ask the provider what happened to this booking's charge.
      auto found = provider_.find_charge(booking->id);
      if (std::holds_alternative<ProviderError>(found)) continue;  // next round
      const auto& charge = std::get<std::optional<Charge>>(found);
      if (charge && charge->status == ChargeStatus::approved) {
        confirm(*booking);
      } else {
        fail(*booking, charge ? "declined: " + charge->decline_reason
                              : "the payment provider did not answer; no charge was made");
      }
    } else if (dead.job.kind == PaymentJobKind::refund &&
               booking->status == BookingStatus::cancelled) {
      auto refunded = provider_.refund(booking->id);
      if (std::holds_alternative<ProviderError>(refunded)) continue;
      auto moved = bookings_.transition(booking->id, BookingStatus::cancelled,
                                        BookingStatus::refunded, clock_.now());
      if (moved) settle_seats(*moved);
    } else {
      settle_seats(*booking);
    }
    ++reconciled_;
    ++settled;
    queue_.remove_dead_letter(dead.job.id);
  }
  return settled;
}

size_t PaymentProcessor::requeue_stale() {
  const auto before = clock_.now() - options_.reconcile_after;
  size_t published = 0;
  for (auto [status, kind] : {std::pair{BookingStatus::pending_payment, PaymentJobKind::charge},
                              std::pair{BookingStatus::cancelled, PaymentJobKind::refund}}) {
    for (const auto& booking :
         bookings_.stale_bookings(status, before, options_.reconcile_batch_max)) {
      // A no-op while the queue still holds the job; a new job if an engine lost it.
      queue_.publish(job_for(kind, booking.id));
      ++published;
    }
  }
  return published;
}

PaymentOutcomeCounts PaymentProcessor::outcomes() const {
  return {approved_.load(), declined_.load(), transient_.load(), refunded_.load(),
          reconciled_.load()};
}

}  // namespace boxoffice
