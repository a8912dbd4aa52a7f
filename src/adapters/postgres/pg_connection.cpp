#include "adapters/postgres/pg_connection.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <iostream>

namespace boxoffice {

namespace {

constexpr PgQuery kBegin{"tx.begin", "BEGIN"};
constexpr PgQuery kBeginSerializable{"tx.begin_serializable", "BEGIN ISOLATION LEVEL SERIALIZABLE"};
constexpr PgQuery kCommit{"tx.commit", "COMMIT"};
constexpr PgQuery kRollback{"tx.rollback", "ROLLBACK"};

// Dead peers are noticed within about keepalives_idle + interval * count seconds, not the
// kernel's two hours, so a request on a connection to a vanished server fails in bounded time.
constexpr const char* kKeepalivesIdleSeconds = "10";
constexpr const char* kKeepalivesIntervalSeconds = "5";
constexpr const char* kKeepalivesCount = "3";

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

[[noreturn]] void crash(std::string_view name, std::string_view why) {
  std::cerr << "postgres: statement " << name << ": " << why << '\n';
  std::abort();
}

}  // namespace

// --- PgResult ----------------------------------------------------------------------------------

PgResult::~PgResult() {
  if (result_ != nullptr) PQclear(result_);
}

int PgResult::rows() const { return PQntuples(result_); }

int64_t PgResult::affected() const {
  const char* text = PQcmdTuples(result_);
  int64_t value = 0;
  if (text != nullptr) std::from_chars(text, text + std::char_traits<char>::length(text), value);
  return value;
}

bool PgResult::is_null(int row, int column) const { return PQgetisnull(result_, row, column) != 0; }

std::string PgResult::text(int row, int column) const {
  return std::string(PQgetvalue(result_, row, column),
                     static_cast<size_t>(PQgetlength(result_, row, column)));
}

int64_t PgResult::int64(int row, int column) const {
  const char* begin = PQgetvalue(result_, row, column);
  const char* end = begin + PQgetlength(result_, row, column);
  int64_t value = 0;
  const auto [ptr, error] = std::from_chars(begin, end, value);
  if (error != std::errc{} || ptr != end) {
    throw StorageError("postgres: column " + std::to_string(column) + " is not an integer: \"" +
                       std::string(begin, end) + "\"");
  }
  return value;
}

bool PgResult::boolean(int row, int column) const {
  return PQgetlength(result_, row, column) > 0 && PQgetvalue(result_, row, column)[0] == 't';
}

std::string PgResult::bytes(int row, int column) const {
  if (is_null(row, column)) return {};
  size_t length = 0;
  unsigned char* raw = PQunescapeBytea(
      reinterpret_cast<const unsigned char*>(PQgetvalue(result_, row, column)), &length);
  if (raw == nullptr) throw StorageError("postgres: out of memory decoding a bytea column");
  std::string bytes(reinterpret_cast<const char*>(raw), length);
  PQfreemem(raw);
  return bytes;
}

// --- PgConnection ------------------------------------------------------------------------------

PgConnection::PgConnection(const std::string& url, Millis connect_timeout,
                           Millis statement_timeout) {
  // libpq takes whole seconds; round up so a short timeout is not "none" (0).
  const std::string connect_seconds =
      std::to_string(std::max<int64_t>(1, (connect_timeout.count() + 999) / 1000));
  // Later entries win, and the URL comes last: what it says overrides these defaults.
  const char* keywords[] = {"connect_timeout",
                            "application_name",
                            "keepalives_idle",
                            "keepalives_interval",
                            "keepalives_count",
                            "dbname",
                            nullptr};
  const char* values[] = {connect_seconds.c_str(),
                          "boxoffice",
                          kKeepalivesIdleSeconds,
                          kKeepalivesIntervalSeconds,
                          kKeepalivesCount,
                          url.c_str(),
                          nullptr};
  conn_ = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn_ == nullptr) throw StorageError("postgres: out of memory opening a connection");
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string message = trimmed(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    throw StorageError("postgres: cannot connect: " + message);
  }
  // NOTICEs ("relation ... already exists, skipping") are chatter for a DBA, not for our log;
  // libpq would print them on stderr.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  try {
    // A SET cannot take a parameter; the value is a number we formatted.
    execute_script("connection.statement_timeout",
                   "SET statement_timeout = " + std::to_string(statement_timeout.count()));
  } catch (...) {
    PQfinish(conn_);
    conn_ = nullptr;
    throw;
  }
}

PgConnection::~PgConnection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

void PgConnection::prepare(const PgStatement& statement) {
  const std::string_view name = statement.query().name;
  if (prepared_.contains(name)) return;
  PGresult* prepared =
      PQprepare(conn_, std::string(name).c_str(), std::string(statement.query().sql).c_str(),
                static_cast<int>(statement.params_.size()), nullptr);
  if (PQresultStatus(prepared) != PGRES_COMMAND_OK) fail(name, prepared);
  PQclear(prepared);
  prepared_.emplace(name);
}

// libpq's view of a statement's parameters; points into the statement, which must outlive it.
struct PgParamArrays {
  explicit PgParamArrays(const PgStatement& statement) {
    const auto& params = statement.params_;
    values.reserve(params.size());
    lengths.reserve(params.size());
    formats.reserve(params.size());
    for (const auto& param : params) {
      values.push_back(param.value ? param.value->c_str() : nullptr);
      lengths.push_back(param.value ? static_cast<int>(param.value->size()) : 0);
      formats.push_back(param.binary ? 1 : 0);
    }
  }
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
};

PgResult PgConnection::run(const PgStatement& statement) {
  prepare(statement);
  const PgParamArrays arrays(statement);
  const std::string name(statement.query().name);
  PGresult* result = PQexecPrepared(conn_, name.c_str(), static_cast<int>(arrays.values.size()),
                                    arrays.values.data(), arrays.lengths.data(),
                                    arrays.formats.data(), /*resultFormat=text*/ 0);
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(name, result);
  return PgResult(result);
}

std::vector<PgAnswer> PgConnection::pipeline(const std::vector<PgStatement>& statements) {
  // Prepared beforehand (a round trip each, on first use only), so that a statement's answer is
  // its execution's, never its preparation's.
  for (const auto& statement : statements) prepare(statement);
  if (PQenterPipelineMode(conn_) != 1) {
    throw StorageError("postgres: cannot enter pipeline mode: " + trimmed(PQerrorMessage(conn_)));
  }
  // From here on, any surprise leaves the connection mid-pipeline: it is given up (lose).
  for (const auto& statement : statements) {
    const PgParamArrays arrays(statement);
    // Copied into libpq's output buffer (flushed as it fills; while a send would block, libpq
    // reads what the server answers, so neither side can stall the other).
    if (PQsendQueryPrepared(conn_, std::string(statement.query().name).c_str(),
                            static_cast<int>(arrays.values.size()), arrays.values.data(),
                            arrays.lengths.data(), arrays.formats.data(),
                            /*resultFormat=text*/ 0) != 1) {
      lose(statement.query().name, trimmed(PQerrorMessage(conn_)));
    }
  }
  // Marks the end of the flight and sends it.
  if (PQpipelineSync(conn_) != 1) lose("pipeline.sync", trimmed(PQerrorMessage(conn_)));

  std::vector<PgAnswer> answers(statements.size());
  for (size_t i = 0; i < statements.size(); ++i) {
    const std::string_view name = statements[i].query().name;
    PGresult* result = PQgetResult(conn_);
    if (result == nullptr) lose(name, "no answer: " + trimmed(PQerrorMessage(conn_)));
    switch (PQresultStatus(result)) {
      case PGRES_COMMAND_OK:
      case PGRES_TUPLES_OK:
        answers[i].result.emplace(result);
        break;
      case PGRES_PIPELINE_ABORTED:
        PQclear(result);
        answers[i].error = std::make_exception_ptr(StorageError(
            "postgres: " + std::string(name) + ": not run, a statement before it failed"));
        break;
      default:
        try {
          fail(name, result);
        } catch (const StorageError&) {
          answers[i].error = std::current_exception();
        }
        break;
    }
    // Each statement's answer ends with a null result.
    if (PGresult* extra = PQgetResult(conn_); extra != nullptr) {
      PQclear(extra);
      lose(name, "more than one result");
    }
    if (PQstatus(conn_) != CONNECTION_OK) lose(name, trimmed(PQerrorMessage(conn_)));
  }
  PGresult* sync = PQgetResult(conn_);
  const bool synced = sync != nullptr && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  if (sync != nullptr) PQclear(sync);
  if (!synced) lose("pipeline.sync", trimmed(PQerrorMessage(conn_)));
  if (PQexitPipelineMode(conn_) != 1) lose("pipeline.exit", trimmed(PQerrorMessage(conn_)));
  return answers;
}

void PgConnection::lose(std::string_view name, std::string_view why) {
  lost_ = true;
  throw StorageError("postgres: " + std::string(name) + ": " + std::string(why));
}

void PgConnection::execute_script(std::string_view name, std::string_view sql) {
  PGresult* result = PQexec(conn_, std::string(sql).c_str());
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(name, result);
  PQclear(result);
}

void PgConnection::fail(std::string_view name, PGresult* result) {
  auto field = [&](int code) -> std::string {
    const char* value = result != nullptr ? PQresultErrorField(result, code) : nullptr;
    return value != nullptr ? value : "";
  };
  const std::string sqlstate = field(PG_DIAG_SQLSTATE);
  const std::string constraint = field(PG_DIAG_CONSTRAINT_NAME);
  std::string message = trimmed(result != nullptr && *PQresultErrorMessage(result) != '\0'
                                    ? PQresultErrorMessage(result)
                                    : PQerrorMessage(conn_));
  if (result != nullptr) PQclear(result);
  if (sqlstate == "26000" || sqlstate == "42P05") {
    // Our cache of prepared names and the server disagree: a bug here, not a server failure.
    crash(name, message);
  }
  throw_pg_error(name, message, sqlstate, constraint);
}

void throw_pg_error(std::string_view statement, std::string_view message,
                    const std::string& sqlstate, std::string constraint) {
  const std::string what = "postgres: " + std::string(statement) + ": " + std::string(message) +
                           (sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")");
  if (sqlstate == "23505") throw PgUniqueViolation(what, std::move(constraint));
  if (sqlstate == "40001" || sqlstate == "40P01") throw PgRetryable(what);
  throw StorageError(what);
}

bool PgConnection::healthy() const {
  return !lost_ && PQstatus(conn_) == CONNECTION_OK &&
         PQtransactionStatus(conn_) != PQTRANS_UNKNOWN &&
         PQtransactionStatus(conn_) != PQTRANS_ACTIVE;
}

bool PgConnection::transaction_aborted() const {
  return PQtransactionStatus(conn_) == PQTRANS_INERROR;
}

bool PgConnection::in_transaction() const {
  const PGTransactionStatusType status = PQtransactionStatus(conn_);
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR;
}

// --- PgTransaction -----------------------------------------------------------------------------

PgTransaction::PgTransaction(PgConnection& connection, Isolation isolation)
    : connection_(connection) {
  connection_.query(isolation == Isolation::serializable ? kBeginSerializable : kBegin);
  open_ = true;
}

PgTransaction::~PgTransaction() {
  try {
    rollback();
  } catch (const StorageError&) {
    // The pool rolls back (or drops) a connection that comes back inside a transaction.
  }
}

void PgTransaction::commit() {
  if (connection_.transaction_aborted()) {
    rollback();
    throw StorageError("postgres: commit of a transaction a failed statement aborted");
  }
  open_ = false;  // whatever COMMIT answers, the transaction is over
  connection_.query(kCommit);
}

void PgTransaction::rollback() {
  if (!open_) return;
  open_ = false;
  if (connection_.healthy() && connection_.in_transaction()) connection_.query(kRollback);
}

// --- PgPool ------------------------------------------------------------------------------------

PgPool::PgPool(std::string url, size_t connections, Millis acquire_timeout)
    : url_(std::move(url)),
      size_(std::clamp<size_t>(connections, 1, connections_max)),
      acquire_timeout_(acquire_timeout) {
  idle_.reserve(size_);
}

PgPool::~PgPool() = default;

PgPool::Lease PgPool::acquire() {
  {
    std::unique_lock lock(mutex_);
    if (!idle_changed_.wait_for(lock, acquire_timeout_,
                                [this] { return !idle_.empty() || opened_ < size_; })) {
      throw StorageError("postgres: no free connection after " +
                         std::to_string(acquire_timeout_.count()) + " ms (pool of " +
                         std::to_string(size_) + ")");
    }
    if (!idle_.empty()) {
      std::unique_ptr<PgConnection> connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(connection));
    }
    ++opened_;
  }
  // Connecting takes a round trip or a timeout: not under the lock.
  try {
    return Lease(*this, std::make_unique<PgConnection>(url_, connect_timeout_default,
                                                       statement_timeout_default));
  } catch (...) {
    {
      std::lock_guard lock(mutex_);
      --opened_;
    }
    idle_changed_.notify_one();
    throw;
  }
}

void PgPool::give_back(std::unique_ptr<PgConnection> connection) {
  if (connection->healthy() && connection->in_transaction()) {
    try {
      connection->query(kRollback);
    } catch (const StorageError&) {
      connection.reset();
    }
  }
  // A broken connection is dropped; its slot is reopened by the next acquire().
  if (connection != nullptr && !connection->healthy()) connection.reset();
  {
    std::lock_guard lock(mutex_);
    if (connection != nullptr) {
      idle_.push_back(std::move(connection));
    } else {
      --opened_;
    }
  }
  idle_changed_.notify_one();
}

PgPool::Lease::~Lease() {
  if (connection_ != nullptr) pool_->give_back(std::move(connection_));
}

}  // namespace boxoffice
