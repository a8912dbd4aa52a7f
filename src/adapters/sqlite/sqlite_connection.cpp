#include "adapters/sqlite/sqlite_connection.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <thread>

namespace boxoffice {

namespace {

constexpr SqlQuery kBegin{"tx.begin", "BEGIN"};
constexpr SqlQuery kBeginImmediate{"tx.begin_immediate", "BEGIN IMMEDIATE"};
constexpr SqlQuery kCommit{"tx.commit", "COMMIT"};
constexpr SqlQuery kRollback{"tx.rollback", "ROLLBACK"};

[[noreturn]] void crash(std::string_view what, std::string_view detail) {
  std::fprintf(stderr, "boxoffice: sqlite: %.*s: %.*s\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(detail.size()), detail.data());
  std::abort();
}

[[noreturn]] void throw_sqlite(int rc, std::string_view what, std::string_view message) {
  std::string text = "sqlite: ";
  text += what;
  text += ": ";
  text += message;
  text += " (";
  text += sqlite3_errstr(rc);
  text += ", code ";
  text += std::to_string(rc);
  text += ")";
  if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    throw UniqueViolation(text);
  }
  throw StorageError(text);
}

[[noreturn]] void throw_sqlite(sqlite3* db, int rc, std::string_view what) {
  throw_sqlite(rc, what, db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

// Runs `sql` (any number of statements); the first column of the last row it returns, if any,
// lands in `first_column`. A busy file is tried again until `busy_timeout` has passed: SQLite's
// busy handler is not called when two connections that both hold a shared lock want an exclusive
// one (as when two of them switch a new file to WAL at once), since one of them must give way.
void exec(sqlite3* db, std::string_view what, const std::string& sql,
          std::string* first_column = nullptr, Millis busy_timeout = Millis::zero()) {
  auto capture = [](void* out, int columns, char** values, char**) -> int {
    if (out != nullptr && columns > 0 && values[0] != nullptr) {
      *static_cast<std::string*>(out) = values[0];
    }
    return 0;
  };
  const auto deadline = std::chrono::steady_clock::now() + busy_timeout;
  Millis pause{1};
  for (;;) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), capture, first_column, &message);
    if (rc == SQLITE_OK) return;
    const std::string text = message != nullptr ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    if ((rc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline) {
      throw_sqlite(rc, what, text);
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, Millis{50});
  }
}

}  // namespace

// --- SqliteStatement ---------------------------------------------------------------------------

SqliteStatement::SqliteStatement(sqlite3_stmt* stmt, std::string_view name, bool* borrowed)
    : stmt_(stmt), name_(name), borrowed_(borrowed) {}

SqliteStatement::SqliteStatement(SqliteStatement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      name_(other.name_),
      borrowed_(std::exchange(other.borrowed_, nullptr)) {}

SqliteStatement::~SqliteStatement() {
  if (stmt_ == nullptr) return;
  // reset() repeats the last step's error, which was already reported when it happened.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  *borrowed_ = false;
}

SqliteStatement& SqliteStatement::bind(int index, int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) throw_sqlite(sqlite3_db_handle(stmt_), rc, name_);
  return *this;
}

SqliteStatement& SqliteStatement::bind(int index, std::string_view text) {
  const int rc =
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) throw_sqlite(sqlite3_db_handle(stmt_), rc, name_);
  return *this;
}

SqliteStatement& SqliteStatement::bind_blob(int index, std::string_view bytes) {
  // A zero-length blob bound from a null pointer would read as NULL, not as an empty blob.
  const int rc = bytes.empty() ? sqlite3_bind_zeroblob(stmt_, index, 0)
                               : sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(),
                                                     SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) throw_sqlite(sqlite3_db_handle(stmt_), rc, name_);
  return *this;
}

bool SqliteStatement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  throw_sqlite(sqlite3_db_handle(stmt_), rc, name_);
}

int64_t SqliteStatement::execute() {
  while (step()) {
  }
  return sqlite3_changes64(sqlite3_db_handle(stmt_));
}

int64_t SqliteStatement::column_int64(int index) const {
  return sqlite3_column_int64(stmt_, index);
}

std::string SqliteStatement::column_text(int index) const {
  // The pointer must be fetched before the size: fetching it may convert the value.
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index));
  const auto size = static_cast<size_t>(sqlite3_column_bytes(stmt_, index));
  return text == nullptr ? std::string{} : std::string(text, size);
}

std::string SqliteStatement::column_blob(int index) const {
  const auto* bytes = static_cast<const char*>(sqlite3_column_blob(stmt_, index));
  const auto size = static_cast<size_t>(sqlite3_column_bytes(stmt_, index));
  return bytes == nullptr ? std::string{} : std::string(bytes, size);
}

bool SqliteStatement::column_is_null(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

// --- SqliteConnection --------------------------------------------------------------------------

SqliteConnection::SqliteConnection(const std::string& path, Millis busy_timeout,
                                   SqliteWriterGate* writer_gate)
    : busy_timeout_(busy_timeout), writer_gate_(writer_gate) {
  // Connections are used by one thread at a time (the pool sees to it), so SQLite's own mutexes
  // are not needed, but the library must have been built able to run in several threads.
  if (sqlite3_threadsafe() == 0) {
    throw StorageError("sqlite: the library was built single-threaded");
  }
  const int flags =
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw_sqlite(rc, "open " + path, message);
  }
  try {
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout.count()));
    std::string journal_mode;
    exec(db_, "open.journal_mode", "PRAGMA journal_mode=WAL", &journal_mode, busy_timeout);
    if (journal_mode != "wal") {
      throw StorageError("sqlite: " + path + " cannot use WAL (journal_mode is " + journal_mode +
                         ")");
    }
    exec(db_, "open.synchronous", "PRAGMA synchronous=FULL");
    exec(db_, "open.foreign_keys", "PRAGMA foreign_keys=ON");
  } catch (...) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw;
  }
}

SqliteConnection::~SqliteConnection() {
  for (auto& [name, cached] : statements_) sqlite3_finalize(cached.stmt);
  sqlite3_close_v2(db_);
}

SqliteStatement SqliteConnection::prepare(const SqlQuery& query) {
  auto it = statements_.find(query.name);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    const int rc = sqlite3_prepare_v3(db_, query.sql.data(), static_cast<int>(query.sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, query.name);
    for (; tail != query.sql.data() + query.sql.size(); ++tail) {
      if (*tail != ' ' && *tail != '\n' && *tail != '\t' && *tail != '\r' && *tail != ';') {
        sqlite3_finalize(stmt);
        crash(query.name, "a named query must be exactly one statement");
      }
    }
    it = statements_.emplace(std::string{query.name}, CachedStatement{std::string{query.sql}, stmt})
             .first;
  } else if (it->second.sql != query.sql) {
    crash(query.name, "two different statements share this name");
  }
  if (it->second.borrowed) crash(query.name, "statement used again before the last use ended");
  it->second.borrowed = true;
  return SqliteStatement(it->second.stmt, it->first, &it->second.borrowed);
}

void SqliteConnection::execute_script(std::string_view name, std::string_view sql) {
  exec(db_, name, std::string{sql});
}

bool SqliteConnection::in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

// --- SqliteWriterGate --------------------------------------------------------------------------

std::shared_ptr<SqliteWriterGate> SqliteWriterGate::for_file(const std::string& path) {
  // Two spellings of one file ("data/b.sqlite3", "./data/b.sqlite3") must find the same gate.
  std::error_code error;
  std::filesystem::path key = std::filesystem::weakly_canonical(path, error);
  if (error) key = path;

  static std::mutex registry_mutex;
  static std::map<std::filesystem::path, std::weak_ptr<SqliteWriterGate>> registry;
  std::lock_guard lock(registry_mutex);
  std::erase_if(registry, [](const auto& entry) { return entry.second.expired(); });
  auto& slot = registry[key];
  std::shared_ptr<SqliteWriterGate> gate = slot.lock();
  if (gate == nullptr) {
    gate = std::make_shared<SqliteWriterGate>();
    slot = gate;
  }
  return gate;
}

bool SqliteWriterGate::enter(Millis timeout) {
  std::unique_lock lock(mutex_);
  if (!left_.wait_for(lock, timeout, [this] { return !taken_; })) return false;
  taken_ = true;
  return true;
}

void SqliteWriterGate::leave() {
  {
    std::lock_guard lock(mutex_);
    taken_ = false;
  }
  left_.notify_one();
}

// --- SqliteTransaction -------------------------------------------------------------------------

SqliteTransaction::SqliteTransaction(SqliteConnection& connection, TxMode mode)
    : connection_(connection) {
  if (mode == TxMode::write && connection.writer_gate() != nullptr) {
    if (!connection.writer_gate()->enter(connection.busy_timeout())) {
      throw StorageError("sqlite: no write lock after " +
                         std::to_string(connection.busy_timeout().count()) + " ms");
    }
    entered_gate_ = connection.writer_gate();
  }
  try {
    connection_.prepare(mode == TxMode::write ? kBeginImmediate : kBegin).execute();
  } catch (...) {
    leave_gate();
    throw;
  }
  open_ = true;
}

SqliteTransaction::~SqliteTransaction() {
  try {
    rollback();
  } catch (const StorageError&) {
    // The pool rolls back a connection that comes back inside a transaction.
  }
}

void SqliteTransaction::commit() {
  connection_.prepare(kCommit).execute();
  open_ = false;
  leave_gate();
}

void SqliteTransaction::rollback() {
  if (open_) {
    open_ = false;
    try {
      // Some errors (a full disk, an I/O error) make SQLite roll back on its own.
      if (connection_.in_transaction()) connection_.prepare(kRollback).execute();
    } catch (...) {
      leave_gate();
      throw;
    }
  }
  leave_gate();
}

void SqliteTransaction::leave_gate() {
  if (entered_gate_ != nullptr) std::exchange(entered_gate_, nullptr)->leave();
}

// --- SqlitePool --------------------------------------------------------------------------------

SqlitePool::SqlitePool(const std::string& path, size_t connections, Millis busy_timeout)
    : busy_timeout_(busy_timeout), writer_gate_(SqliteWriterGate::for_file(path)) {
  // Callers size the pool by their worker count; past the cap more connections buy nothing,
  // since SQLite lets one writer in at a time.
  connections = std::clamp<size_t>(connections, 1, connections_max);
  connections_.reserve(connections);
  idle_.reserve(connections);
  for (size_t i = 0; i < connections; ++i) {
    connections_.push_back(
        std::make_unique<SqliteConnection>(path, busy_timeout, writer_gate_.get()));
    idle_.push_back(connections_.back().get());
  }
}

SqlitePool::~SqlitePool() = default;

SqlitePool::Lease SqlitePool::acquire() {
  std::unique_lock lock(mutex_);
  if (!idle_changed_.wait_for(lock, busy_timeout_, [this] { return !idle_.empty(); })) {
    throw StorageError("sqlite: no free connection after " + std::to_string(busy_timeout_.count()) +
                       " ms (pool of " + std::to_string(connections_.size()) + ")");
  }
  SqliteConnection* connection = idle_.back();
  idle_.pop_back();
  return Lease(*this, connection);
}

void SqlitePool::give_back(SqliteConnection* connection) {
  if (connection->in_transaction()) {
    try {
      connection->execute_script("pool.rollback_leftover", "ROLLBACK");
    } catch (const StorageError&) {
      // The next BEGIN on this connection will fail loudly, which is where it can be reported.
    }
  }
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(connection);
  }
  idle_changed_.notify_one();
}

SqlitePool::Lease::~Lease() {
  if (connection_ != nullptr) pool_->give_back(connection_);
}

}  // namespace boxoffice
