#include "adapters/nats/jetstream_payment_queue.h"

#include <nats/nats.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "domain/error.h"

namespace boxoffice {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr int64_t kNanosPerMilli = 1'000'000;
// A receive fetches at most this many messages per pull request...
constexpr size_t kFetchBatchMax = 256;
// ...and makes at most this many pull requests (each one fills the batch or buries a job).
constexpr int kFetchRoundsMax = 64;
// A publish whose PubAck did not come (a server restarting) is sent again, same Nats-Msg-Id.
constexpr int kPublishAttemptsMax = 2;
// counts() checks at most this many lapsed or retried leases of this instance for having been
// settled elsewhere.
constexpr size_t kLeaseChecksMax = 64;

// Where a job's fields travel: headers, readable with `nats stream get`.
constexpr const char* kHeaderJobId = "Bo-Job-Id";
constexpr const char* kHeaderKind = "Bo-Job-Kind";
constexpr const char* kHeaderBookingId = "Bo-Booking-Id";
constexpr const char* kHeaderEnqueuedAtMs = "Bo-Enqueued-At-Ms";
// Dead letters only: deliveries made, and the job's sequence in the work stream (its age).
constexpr const char* kHeaderDeliveries = "Bo-Deliveries";
constexpr const char* kHeaderJobSequence = "Bo-Job-Sequence";

// Acknowledgement bodies of the JetStream protocol.
constexpr const char* kAckDone = "+ACK";
constexpr const char* kAckInProgress = "+WPI";
constexpr const char* kAckTerminate = "+TERM";
constexpr const char* kAckRetry = "-NAK";

struct NatsDeleter {
  void operator()(natsOptions* p) const { natsOptions_Destroy(p); }
  void operator()(natsConnection* p) const { natsConnection_Destroy(p); }
  void operator()(jsCtx* p) const { jsCtx_Destroy(p); }
  void operator()(natsSubscription* p) const { natsSubscription_Destroy(p); }
  void operator()(natsMsg* p) const { natsMsg_Destroy(p); }
  void operator()(jsPubAck* p) const { jsPubAck_Destroy(p); }
  void operator()(jsStreamInfo* p) const { jsStreamInfo_Destroy(p); }
  void operator()(jsConsumerInfo* p) const { jsConsumerInfo_Destroy(p); }
  void operator()(jsMsgMetaData* p) const { jsMsgMetaData_Destroy(p); }
};
template <class T>
using Owned = std::unique_ptr<T, NatsDeleter>;

class MsgList {
 public:
  MsgList() = default;
  ~MsgList() { natsMsgList_Destroy(&list_); }
  MsgList(const MsgList&) = delete;
  MsgList& operator=(const MsgList&) = delete;
  natsMsgList* get() { return &list_; }
  int size() const { return list_.Count; }
  natsMsg* operator[](int i) const { return list_.Msgs[i]; }

 private:
  natsMsgList list_{};
};

jsErrCode no_js_error() { return static_cast<jsErrCode>(0); }

[[noreturn]] void fail(std::string_view what, natsStatus status, jsErrCode code = no_js_error()) {
  std::string message = "nats: " + std::string(what) + ": " + natsStatus_GetText(status);
  if (code != no_js_error()) message += " (JetStream error " + std::to_string(code) + ")";
  if (const char* detail = nats_GetLastError(nullptr); detail != nullptr && *detail != '\0') {
    message += ": ";
    message += detail;
  }
  throw StorageError(message);
}

void check(natsStatus status, std::string_view what, jsErrCode code = no_js_error()) {
  if (status != NATS_OK) fail(what, status, code);
}

bool last_error_contains(std::string_view text) {
  const char* detail = nats_GetLastError(nullptr);
  return detail != nullptr && std::string_view(detail).find(text) != std::string_view::npos;
}

int64_t to_nanos(Millis ms) {
  constexpr int64_t kMaxMs = std::numeric_limits<int64_t>::max() / kNanosPerMilli;
  return std::clamp<int64_t>(ms.count(), 0, kMaxMs) * kNanosPerMilli;
}

// A job id as one subject token: letters, digits, '_', '-' and ':' as they are ("charge:bkg_1"),
// any other byte as %XX, so '.', '*', '>' and spaces cannot change the subject's meaning.
std::string subject_token(std::string_view id) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string token;
  token.reserve(id.size());
  for (const char c : id) {
    const auto byte = static_cast<unsigned char>(c);
    const bool plain = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
                       (byte >= '0' && byte <= '9') || byte == '_' || byte == '-' || byte == ':';
    if (plain) {
      token += c;
    } else {
      token += '%';
      token += kHex[byte >> 4];
      token += kHex[byte & 0x0F];
    }
  }
  return token;
}

std::optional<std::string> header(natsMsg* msg, const char* key) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(msg, key, &value) != NATS_OK || value == nullptr) return std::nullopt;
  return std::string(value);
}

std::optional<int64_t> parse_int(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc{} || end != text->data() + text->size()) return std::nullopt;
  return value;
}

struct StoredJob {
  PaymentJob job;
  int64_t enqueued_at_ms = 0;
};

StoredJob read_job(natsMsg* msg) {
  const auto id = header(msg, kHeaderJobId);
  const auto kind = header(msg, kHeaderKind);
  const auto booking_id = header(msg, kHeaderBookingId);
  const auto enqueued_at_ms = parse_int(header(msg, kHeaderEnqueuedAtMs));
  StoredJob stored;
  if (kind == to_string(PaymentJobKind::charge)) {
    stored.job.kind = PaymentJobKind::charge;
  } else if (kind == to_string(PaymentJobKind::refund)) {
    stored.job.kind = PaymentJobKind::refund;
  } else {
    throw StorageError(std::string("nats: corrupt payment job on ") + natsMsg_GetSubject(msg) +
                       ": kind \"" + kind.value_or("") + "\"");
  }
  if (!id || id->empty() || !booking_id || !enqueued_at_ms) {
    throw StorageError(std::string("nats: corrupt payment job on ") + natsMsg_GetSubject(msg));
  }
  stored.job.id = *id;
  stored.job.booking_id = *booking_id;
  stored.enqueued_at_ms = *enqueued_at_ms;
  return stored;
}

Owned<natsMsg> job_message(const std::string& subject, const StoredJob& stored) {
  natsMsg* raw = nullptr;
  check(natsMsg_Create(&raw, subject.c_str(), nullptr, nullptr, 0), "create message");
  Owned<natsMsg> msg(raw);
  const std::string kind(to_string(stored.job.kind));
  const std::string enqueued_at_ms = std::to_string(stored.enqueued_at_ms);
  check(natsMsgHeader_Set(msg.get(), kHeaderJobId, stored.job.id.c_str()), "set header");
  check(natsMsgHeader_Set(msg.get(), kHeaderKind, kind.c_str()), "set header");
  check(natsMsgHeader_Set(msg.get(), kHeaderBookingId, stored.job.booking_id.c_str()),
        "set header");
  check(natsMsgHeader_Set(msg.get(), kHeaderEnqueuedAtMs, enqueued_at_ms.c_str()), "set header");
  return msg;
}

// Unique per publish() call, shared by its attempts: the stream stores one of them.
std::string publish_nonce() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  char text[17];
  const auto [end, error] = std::to_chars(text, text + 16, random(), 16);
  (void)error;
  return std::string(text, end);
}

QueuePolicy checked(QueuePolicy policy) {
  if (policy.max_deliveries == 0) {
    throw std::invalid_argument("payment queue: max_deliveries must be at least 1");
  }
  if (policy.visibility_timeout <= Millis::zero()) {
    throw std::invalid_argument("payment queue: the visibility timeout must be positive");
  }
  return policy;
}

}  // namespace

struct JetStreamPaymentQueue::Engine {
  // One delivery this instance handed out and has not seen settled.
  struct Lease {
    uint64_t stream_sequence = 0;
    uint32_t delivery = 0;
    int64_t enqueued_at_ms = 0;
    std::string ack_subject;
    bool retried = false;  // NAKed: waits out its delay, no longer the worker's
    // Measured from before the pull request, so never later than the server's own deadline.
    SteadyClock::time_point visible_again_at;

    bool held(SteadyClock::time_point now) const { return !retried && now < visible_again_at; }
  };

  // libnats spins up to 2,000 times on a contended mutex before it sleeps, by default. Its
  // connection, delivery and publish threads share a few mutexes with our workers, and on a
  // machine with fewer cores than busy threads a spinning thread only keeps the holder off the
  // CPU: perf showed natsMutex_Lock at ~5% of the server's time in a checkout run. The spin count
  // is set once, by the library's first opening; later calls change nothing.
  static void open_library_without_spinning() {
    static std::once_flag once;
    std::call_once(once, [] { nats_Open(0); });
  }

  Engine(JetStreamQueueOptions options_in, const Clock& clock_in, QueuePolicy policy_in)
      : options(std::move(options_in)),
        clock(clock_in),
        policy(checked(policy_in)),
        jobs_prefix(options.subject_prefix + ".jobs."),
        dead_prefix(options.subject_prefix + ".dead.") {
    connect();
    ensure_streams();
    ensure_consumer();
    subscribe();
  }

  void connect() {
    open_library_without_spinning();
    natsOptions* raw_options = nullptr;
    check(natsOptions_Create(&raw_options), "options");
    Owned<natsOptions> nats_options(raw_options);
    check(natsOptions_SetURL(nats_options.get(), options.url.c_str()), "url " + options.url);
    check(natsOptions_SetName(nats_options.get(), "boxoffice payment queue"), "options");
    check(natsOptions_SetTimeout(nats_options.get(), options.request_timeout.count()), "options");
    // A restarted server is joined again by the client itself, however long it takes.
    check(natsOptions_SetMaxReconnect(nats_options.get(), -1), "options");
    check(natsOptions_SetReconnectWait(nats_options.get(), options.reconnect_wait.count()),
          "options");
    natsConnection* raw_connection = nullptr;
    check(natsConnection_Connect(&raw_connection, nats_options.get()), "connect to " + options.url);
    connection.reset(raw_connection);

    jsOptions js_options;
    check(jsOptions_Init(&js_options), "jetstream options");
    js_options.Wait = options.request_timeout.count();
    jsCtx* raw_js = nullptr;
    check(natsConnection_JetStream(&raw_js, connection.get(), &js_options), "jetstream");
    js.reset(raw_js);
  }

  // Creates the stream, or brings an existing one to `config` (JetStream refuses changes of
  // retention or storage: that is reported, not papered over).
  void ensure_stream(jsStreamConfig& config) {
    jsErrCode code = no_js_error();
    jsStreamInfo* info = nullptr;
    natsStatus status = js_AddStream(&info, js.get(), &config, nullptr, &code);
    if (status == NATS_OK) {
      jsStreamInfo_Destroy(info);
      return;
    }
    if (code != JSStreamNameExistErr)
      fail(std::string("create stream ") + config.Name, status, code);
    code = no_js_error();
    status = js_UpdateStream(&info, js.get(), &config, nullptr, &code);
    check(status, std::string("update stream ") + config.Name, code);
    jsStreamInfo_Destroy(info);
  }

  void ensure_streams() {
    const std::string jobs_subject = jobs_prefix + ">";
    const char* jobs_subjects[] = {jobs_subject.c_str()};
    jsStreamConfig jobs;
    check(jsStreamConfig_Init(&jobs), "stream config");
    jobs.Name = options.stream.c_str();
    jobs.Subjects = jobs_subjects;
    jobs.SubjectsLen = 1;
    jobs.Retention = js_WorkQueuePolicy;
    jobs.Storage = js_FileStorage;
    // One message per job id while the queue holds it: the server refuses a second.
    jobs.MaxMsgsPerSubject = 1;
    jobs.Discard = js_DiscardNew;
    jobs.DiscardNewPerSubject = true;
    jobs.Duplicates = to_nanos(options.duplicates_window);
    ensure_stream(jobs);

    const std::string dead_subject = dead_prefix + ">";
    const char* dead_subjects[] = {dead_subject.c_str()};
    jsStreamConfig dead;
    check(jsStreamConfig_Init(&dead), "stream config");
    dead.Name = options.dead_letter_stream.c_str();
    dead.Subjects = dead_subjects;
    dead.SubjectsLen = 1;
    dead.Retention = js_LimitsPolicy;
    dead.Storage = js_FileStorage;
    dead.Duplicates = to_nanos(options.duplicates_window);
    dead.AllowDirect = true;  // dead_letters() reads them by "next by subject"
    ensure_stream(dead);
  }

  void ensure_consumer() {
    const std::string filter = jobs_prefix + ">";
    jsConsumerConfig config;
    check(jsConsumerConfig_Init(&config), "consumer config");
    config.Durable = options.consumer.c_str();
    config.DeliverPolicy = js_DeliverAll;
    config.AckPolicy = js_AckExplicit;
    config.AckWait = to_nanos(policy.visibility_timeout);
    config.MaxDeliver = int64_t{policy.max_deliveries} + burial_deliveries_max;
    config.FilterSubject = filter.c_str();
    // No BackOff: redelivery after a lapse is the visibility timeout, and a retry's delay is the
    // caller's, sent with each NAK.
    jsErrCode code = no_js_error();
    jsConsumerInfo* info = nullptr;
    natsStatus status =
        js_AddConsumer(&info, js.get(), options.stream.c_str(), &config, nullptr, &code);
    if (status == NATS_OK) {
      jsConsumerInfo_Destroy(info);
      return;
    }
    // It exists with another configuration (a new policy): update it in place.
    const std::string add_error = nats_GetLastError(nullptr);
    code = no_js_error();
    status = js_UpdateConsumer(&info, js.get(), options.stream.c_str(), &config, nullptr, &code);
    if (status != NATS_OK) {
      fail("create consumer " + options.consumer + " (" + add_error + "), then update it", status,
           code);
    }
    jsConsumerInfo_Destroy(info);
  }

  void subscribe() {
    // Bound to the durable consumer created above, so closing the subscription never deletes it.
    jsSubOptions sub_options;
    check(jsSubOptions_Init(&sub_options), "subscription options");
    sub_options.Stream = options.stream.c_str();
    sub_options.Consumer = options.consumer.c_str();
    const std::string filter = jobs_prefix + ">";
    jsErrCode code = no_js_error();
    natsSubscription* raw = nullptr;
    check(js_PullSubscribe(&raw, js.get(), filter.c_str(), options.consumer.c_str(), nullptr,
                           &sub_options, &code),
          "subscribe to consumer " + options.consumer, code);
    subscription.reset(raw);
  }

  // Sends an acknowledgement and waits until the server has applied it.
  void settle(const std::string& ack_subject, const std::string& body, std::string_view what) {
    natsMsg* reply = nullptr;
    const natsStatus status =
        natsConnection_RequestString(&reply, connection.get(), ack_subject.c_str(), body.c_str(),
                                     options.request_timeout.count());
    natsMsg_Destroy(reply);
    check(status, what);
  }

  // The lease `delivery` is the receipt of, if it is still the current delivery of its job.
  std::map<std::string, Lease>::iterator current(const Delivery& delivery) {
    const auto it = leases.find(delivery.job.id);
    if (it == leases.end() || it->second.delivery != delivery.delivery ||
        it->second.enqueued_at_ms != to_unix_ms(delivery.first_enqueued_at)) {
      return leases.end();
    }
    return it;
  }

  void forget(const std::string& job_id, uint64_t stream_sequence, uint32_t delivery) {
    std::lock_guard lock(leases_mutex);
    const auto it = leases.find(job_id);
    if (it != leases.end() && it->second.stream_sequence == stream_sequence &&
        it->second.delivery == delivery) {
      leases.erase(it);
    }
  }

  // Whether the dead-letter stream holds a job under `token`.
  bool is_dead(const std::string& token) {
    natsMsg* raw = nullptr;
    jsErrCode code = no_js_error();
    const std::string subject = dead_prefix + token;
    const natsStatus status = js_GetLastMsg(&raw, js.get(), options.dead_letter_stream.c_str(),
                                            subject.c_str(), nullptr, &code);
    natsMsg_Destroy(raw);
    if (status == NATS_OK) return true;
    if (status == NATS_NOT_FOUND || code == JSNoMessageFoundErr) return false;
    fail("look up dead letter " + subject, status, code);
  }

  // Copies a spent job to the dead letters, then terminates it in the work queue.
  void bury(natsMsg* msg, const StoredJob& stored, uint64_t stream_sequence) {
    const std::string token = subject_token(stored.job.id);
    Owned<natsMsg> letter = job_message(dead_prefix + token, stored);
    const std::string deliveries = std::to_string(policy.max_deliveries);
    const std::string sequence = std::to_string(stream_sequence);
    check(natsMsgHeader_Set(letter.get(), kHeaderDeliveries, deliveries.c_str()), "set header");
    check(natsMsgHeader_Set(letter.get(), kHeaderJobSequence, sequence.c_str()), "set header");
    // A burial retried after a crash between these two steps is stored once.
    const std::string msg_id = "dead:" + options.stream + ":" + sequence;
    jsPubOptions pub_options;
    check(jsPubOptions_Init(&pub_options), "publish options");
    pub_options.MsgId = msg_id.c_str();
    jsPubAck* raw_ack = nullptr;
    jsErrCode code = no_js_error();
    const natsStatus status = js_PublishMsg(&raw_ack, js.get(), letter.get(), &pub_options, &code);
    jsPubAck_Destroy(raw_ack);
    check(status, "dead-letter job " + stored.job.id, code);
    settle(natsMsg_GetReply(msg), kAckTerminate, "terminate dead job " + stored.job.id);
    std::lock_guard lock(leases_mutex);
    leases.erase(stored.job.id);  // its receipts settle nothing any more
  }

  JetStreamQueueOptions options;
  const Clock& clock;
  const QueuePolicy policy;
  const std::string jobs_prefix;
  const std::string dead_prefix;
  // Declared in the order they are created, so they are destroyed in reverse.
  Owned<natsConnection> connection;
  Owned<jsCtx> js;
  Owned<natsSubscription> subscription;

  std::mutex fetch_mutex;  // one pull request at a time on the subscription
  std::mutex leases_mutex;
  std::map<std::string, Lease> leases;  // by job id: the latest delivery this instance received
};

JetStreamPaymentQueue::JetStreamPaymentQueue(JetStreamQueueOptions options, const Clock& clock,
                                             QueuePolicy policy)
    : engine_(std::make_unique<Engine>(std::move(options), clock, policy)) {}

JetStreamPaymentQueue::~JetStreamPaymentQueue() = default;

const QueuePolicy& JetStreamPaymentQueue::policy() const { return engine_->policy; }

void JetStreamPaymentQueue::publish(const PaymentJob& job) {
  if (job.id.empty()) throw std::invalid_argument("payment queue: a job needs an id");
  Engine& e = *engine_;
  const std::string token = subject_token(job.id);
  if (e.is_dead(token)) return;

  const StoredJob stored{job, to_unix_ms(e.clock.now())};
  Owned<natsMsg> msg = job_message(e.jobs_prefix + token, stored);
  const std::string msg_id =
      job.id + "@" + std::to_string(stored.enqueued_at_ms) + "#" + publish_nonce();
  jsPubOptions pub_options;
  check(jsPubOptions_Init(&pub_options), "publish options");
  pub_options.MsgId = msg_id.c_str();
  for (int attempt = 1;; ++attempt) {
    jsPubAck* raw_ack = nullptr;
    jsErrCode code = no_js_error();
    const natsStatus status = js_PublishMsg(&raw_ack, e.js.get(), msg.get(), &pub_options, &code);
    jsPubAck_Destroy(raw_ack);
    if (status == NATS_OK) return;  // stored, or a duplicate of an attempt that was
    // The stream still holds a job under this id (ready or in flight).
    if (code == JSStreamStoreFailedErr && last_error_contains("maximum messages per subject")) {
      return;
    }
    const bool lost_in_transit = status == NATS_TIMEOUT || status == NATS_NO_RESPONDERS;
    if (!lost_in_transit || attempt == kPublishAttemptsMax) {
      fail("publish job " + job.id, status, code);
    }
  }
}

std::vector<Delivery> JetStreamPaymentQueue::receive(size_t max) {
  std::vector<Delivery> deliveries;
  if (max == 0) return deliveries;
  Engine& e = *engine_;
  std::lock_guard fetch_lock(e.fetch_mutex);
  for (int round = 0; round < kFetchRoundsMax && deliveries.size() < max; ++round) {
    const size_t batch = std::min(max - deliveries.size(), kFetchBatchMax);
    jsFetchRequest request;
    check(jsFetchRequest_Init(&request), "fetch request");
    request.Batch = static_cast<int>(batch);
    request.NoWait = true;  // what is visible now; waits receive_wait only when nothing is
    request.Expires = to_nanos(e.options.receive_wait);
    const SteadyClock::time_point requested_at = SteadyClock::now();
    MsgList list;
    const natsStatus status =
        natsSubscription_FetchRequest(list.get(), e.subscription.get(), &request);
    if (status == NATS_TIMEOUT || status == NATS_NOT_FOUND) break;  // nothing visible
    check(status, "fetch payment jobs");

    size_t buried = 0;
    for (int i = 0; i < list.size(); ++i) {
      natsMsg* msg = list[i];
      jsMsgMetaData* raw_meta = nullptr;
      check(natsMsg_GetMetaData(&raw_meta, msg), "delivery metadata");
      const Owned<jsMsgMetaData> meta(raw_meta);
      const StoredJob stored = read_job(msg);
      const uint64_t sequence = meta->Sequence.Stream;
      if (meta->NumDelivered > e.policy.max_deliveries) {
        e.bury(msg, stored, sequence);
        ++buried;
        continue;
      }
      Engine::Lease lease;
      lease.stream_sequence = sequence;
      lease.delivery = static_cast<uint32_t>(meta->NumDelivered);
      lease.enqueued_at_ms = stored.enqueued_at_ms;
      lease.ack_subject = natsMsg_GetReply(msg);
      lease.visible_again_at = requested_at + e.policy.visibility_timeout;
      {
        std::lock_guard lock(e.leases_mutex);
        e.leases.insert_or_assign(stored.job.id, std::move(lease));
      }
      deliveries.push_back(Delivery{stored.job, static_cast<uint32_t>(meta->NumDelivered),
                                    from_unix_ms(stored.enqueued_at_ms)});
    }
    // A short batch without burials means nothing more is visible.
    if (static_cast<size_t>(list.size()) < batch && buried == 0) break;
  }
  return deliveries;
}

void JetStreamPaymentQueue::ack(const Delivery& delivery) {
  Engine& e = *engine_;
  Engine::Lease lease;
  {
    std::lock_guard lock(e.leases_mutex);
    const auto it = e.current(delivery);
    if (it == e.leases.end()) return;
    lease = it->second;
  }
  e.settle(lease.ack_subject, kAckDone, "ack job " + delivery.job.id);
  e.forget(delivery.job.id, lease.stream_sequence, lease.delivery);
}

void JetStreamPaymentQueue::retry_later(const Delivery& delivery, Millis delay) {
  Engine& e = *engine_;
  std::string ack_subject;
  {
    std::lock_guard lock(e.leases_mutex);
    const auto it = e.current(delivery);
    if (it == e.leases.end()) return;
    ack_subject = it->second.ack_subject;
  }
  const std::string body =
      delay <= Millis::zero()
          ? std::string(kAckRetry)
          : std::string(kAckRetry) + " {\"delay\": " + std::to_string(to_nanos(delay)) + "}";
  e.settle(ack_subject, body, "retry job " + delivery.job.id);
  std::lock_guard lock(e.leases_mutex);
  if (const auto it = e.current(delivery); it != e.leases.end()) it->second.retried = true;
}

void JetStreamPaymentQueue::extend(const Delivery& delivery) {
  Engine& e = *engine_;
  std::string ack_subject;
  const SteadyClock::time_point requested_at = SteadyClock::now();
  {
    std::lock_guard lock(e.leases_mutex);
    const auto it = e.current(delivery);
    // A lapsed lease is already queued for redelivery on the server: too late to keep it.
    if (it == e.leases.end() || !it->second.held(requested_at)) return;
    ack_subject = it->second.ack_subject;
  }
  e.settle(ack_subject, kAckInProgress, "extend job " + delivery.job.id);
  std::lock_guard lock(e.leases_mutex);
  if (const auto it = e.current(delivery); it != e.leases.end()) {
    it->second.visible_again_at = requested_at + e.policy.visibility_timeout;
  }
}

std::vector<Delivery> JetStreamPaymentQueue::dead_letters(size_t max) {
  std::vector<Delivery> dead;
  if (max == 0) return dead;
  Engine& e = *engine_;
  // Burial order is not age order (a job buried late may be old): read them all, sort by the
  // job's sequence in the work stream.
  std::vector<std::pair<int64_t, Delivery>> found;
  const std::string filter = e.dead_prefix + ">";
  uint64_t next_sequence = 1;
  while (found.size() < e.options.dead_letters_scan_max) {
    jsDirectGetMsgOptions get;
    check(jsDirectGetMsgOptions_Init(&get), "direct get options");
    get.Sequence = next_sequence;
    get.NextBySubject = filter.c_str();
    natsMsg* raw = nullptr;
    const natsStatus status =
        js_DirectGetMsg(&raw, e.js.get(), e.options.dead_letter_stream.c_str(), nullptr, &get);
    if (status == NATS_NOT_FOUND) break;
    check(status, "read dead letters");
    const Owned<natsMsg> msg(raw);
    const StoredJob stored = read_job(msg.get());
    const auto deliveries = parse_int(header(msg.get(), kHeaderDeliveries));
    const auto job_sequence = parse_int(header(msg.get(), kHeaderJobSequence));
    if (!deliveries || !job_sequence) {
      throw StorageError("nats: corrupt dead letter for job " + stored.job.id);
    }
    found.emplace_back(*job_sequence, Delivery{stored.job, static_cast<uint32_t>(*deliveries),
                                               from_unix_ms(stored.enqueued_at_ms)});
    next_sequence = natsMsg_GetSequence(msg.get()) + 1;
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [sequence, delivery] : found) {
    if (dead.size() == max) break;
    dead.push_back(std::move(delivery));
  }
  return dead;
}

void JetStreamPaymentQueue::remove_dead_letter(const std::string& job_id) {
  Engine& e = *engine_;
  const std::string subject = e.dead_prefix + subject_token(job_id);
  jsOptions purge;
  check(jsOptions_Init(&purge), "purge options");
  purge.Wait = e.options.request_timeout.count();
  purge.Stream.Purge.Subject = subject.c_str();
  jsErrCode code = no_js_error();
  check(js_PurgeStream(e.js.get(), e.options.dead_letter_stream.c_str(), &purge, &code),
        "remove dead letter " + job_id, code);
}

QueueCounts JetStreamPaymentQueue::counts() {
  Engine& e = *engine_;
  jsErrCode code = no_js_error();
  jsConsumerInfo* raw_consumer = nullptr;
  check(js_GetConsumerInfo(&raw_consumer, e.js.get(), e.options.stream.c_str(),
                           e.options.consumer.c_str(), nullptr, &code),
        "consumer info " + e.options.consumer, code);
  const Owned<jsConsumerInfo> consumer(raw_consumer);
  jsStreamInfo* raw_dead = nullptr;
  code = no_js_error();
  check(
      js_GetStreamInfo(&raw_dead, e.js.get(), e.options.dead_letter_stream.c_str(), nullptr, &code),
      "stream info " + e.options.dead_letter_stream, code);
  const Owned<jsStreamInfo> dead(raw_dead);

  // Unacked deliveries of this instance that lapsed or wait out a retry: ready, not in flight.
  // One that was settled elsewhere since (its message is gone) is forgotten.
  std::vector<std::pair<std::string, Engine::Lease>> not_held;
  {
    std::lock_guard lock(e.leases_mutex);
    const SteadyClock::time_point now = SteadyClock::now();
    for (const auto& [id, lease] : e.leases) {
      if (!lease.held(now)) not_held.emplace_back(id, lease);
    }
  }
  uint64_t waiting = 0;
  for (size_t i = 0; i < not_held.size(); ++i) {
    const auto& [id, lease] = not_held[i];
    if (i >= kLeaseChecksMax) {
      ++waiting;
      continue;
    }
    natsMsg* raw = nullptr;
    code = no_js_error();
    const natsStatus status = js_GetMsg(&raw, e.js.get(), e.options.stream.c_str(),
                                        lease.stream_sequence, nullptr, &code);
    natsMsg_Destroy(raw);
    if (status == NATS_OK) {
      ++waiting;
    } else if (status == NATS_NOT_FOUND || code == JSNoMessageFoundErr) {
      e.forget(id, lease.stream_sequence, lease.delivery);
    } else {
      fail("look up job " + id, status, code);
    }
  }
  const auto unacked = static_cast<uint64_t>(std::max<int64_t>(consumer->NumAckPending, 0));
  waiting = std::min(waiting, unacked);
  QueueCounts counts;
  counts.ready = consumer->NumPending + waiting;
  counts.in_flight = unacked - waiting;
  counts.dead = dead->State.Msgs;
  return counts;
}

}  // namespace boxoffice
