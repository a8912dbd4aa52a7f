#pragma once
// A thin RAII layer over the sqlite3 C API, shared by the embedded SQLite adapters.
//
// Every connection is opened the one way an embedded store needs (WAL, synchronous=FULL so a
// committed transaction survives a power cut, foreign keys on, a bounded busy timeout). Every SQL
// statement has a name (userver style): statements are prepared once per connection and cached
// by that name, and the name is in every error message. SQLite result codes become StorageError
// here and nowhere else, except a unique-constraint violation, which is a UniqueViolation so that
// a store can turn it into a business outcome.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/error.h"
#include "domain/time.h"

struct sqlite3;
struct sqlite3_stmt;

namespace boxoffice {

// A statement and the name it is known by in errors and in the per-connection cache.
struct SqlQuery {
  std::string_view name;
  std::string_view sql;
};

// A UNIQUE or PRIMARY KEY constraint refused a write. The transaction is still open (SQLite
// aborts only the statement), so the caller may go on, or roll back.
class UniqueViolation : public StorageError {
 public:
  using StorageError::StorageError;
};

// A prepared statement borrowed from its connection's cache for one use. It is reset and its
// bindings cleared when it goes out of scope, so the next borrower starts clean and no read
// cursor keeps a snapshot open.
class SqliteStatement {
 public:
  SqliteStatement(sqlite3_stmt* stmt, std::string_view name, bool* borrowed);
  ~SqliteStatement();
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  SqliteStatement& operator=(SqliteStatement&&) = delete;

  // Parameters are 1-based, as in SQLite. Text and blobs are copied.
  SqliteStatement& bind(int index, int64_t value);
  SqliteStatement& bind(int index, std::string_view text);
  SqliteStatement& bind_blob(int index, std::string_view bytes);

  template <class... Args>
  SqliteStatement& bind_all(const Args&... args) {
    int index = 0;
    (bind(++index, args), ...);
    return *this;
  }

  // True when a row is ready to be read, false once the statement has finished.
  bool step();
  // Runs a statement that returns no rows; returns how many rows it changed.
  int64_t execute();

  int64_t column_int64(int index) const;
  std::string column_text(int index) const;
  std::string column_blob(int index) const;
  bool column_is_null(int index) const;

 private:
  sqlite3_stmt* stmt_;
  std::string_view name_;
  bool* borrowed_;
};

// One writer at a time among the connections of a process to one file: writers queue here
// instead of sleep-polling SQLite's file lock, which is both slower and unfair. Other processes
// are still kept in order by SQLite's lock and its busy timeout. (Not a std::timed_mutex: its
// timed lock is invisible to ThreadSanitizer with this toolchain.)
class SqliteWriterGate {
 public:
  // The gate of every pool of this process on the file at `path`: the bookings store and the
  // payment queue share one file, and their writers must queue at the same gate. It lives as
  // long as a pool holds it.
  static std::shared_ptr<SqliteWriterGate> for_file(const std::string& path);

  // False when the gate stayed taken for `timeout`.
  bool enter(Millis timeout);
  void leave();

 private:
  std::mutex mutex_;
  std::condition_variable left_;
  bool taken_ = false;
};

class SqliteConnection {
 public:
  // `writer_gate`, when given, is shared by every connection of the process to the same file.
  SqliteConnection(const std::string& path, Millis busy_timeout,
                   SqliteWriterGate* writer_gate = nullptr);
  ~SqliteConnection();
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  // The cached statement for this query, prepared on first use.
  SqliteStatement prepare(const SqlQuery& query);

  template <class... Args>
  SqliteStatement query(const SqlQuery& query, const Args&... args) {
    SqliteStatement statement = prepare(query);
    statement.bind_all(args...);
    return statement;
  }

  // Runs several statements at once (schema migrations); not cached.
  void execute_script(std::string_view name, std::string_view sql);

  bool in_transaction() const;
  Millis busy_timeout() const { return busy_timeout_; }
  SqliteWriterGate* writer_gate() const { return writer_gate_; }

 private:
  struct CachedStatement {
    std::string sql;
    sqlite3_stmt* stmt = nullptr;
    bool borrowed = false;
  };

  sqlite3* db_ = nullptr;
  Millis busy_timeout_;
  SqliteWriterGate* writer_gate_;
  std::map<std::string, CachedStatement, std::less<>> statements_;
};

enum class TxMode {
  read,   // BEGIN (deferred): a consistent snapshot, never waits for writers in WAL mode
  write,  // BEGIN IMMEDIATE: takes the write lock up front, so the transaction cannot fail
          // half-way with SQLITE_BUSY when it would upgrade a read lock
};

// Rolls back unless commit() was called.
class SqliteTransaction {
 public:
  SqliteTransaction(SqliteConnection& connection, TxMode mode);
  ~SqliteTransaction();
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;

  void commit();
  void rollback();

 private:
  void leave_gate();

  SqliteConnection& connection_;
  SqliteWriterGate* entered_gate_ = nullptr;
  bool open_ = false;
};

// A bounded set of connections to one file (1 to connections_max, whatever is asked). A thread
// borrows one for a call and gives it back; when none is free it waits, at most the busy
// timeout, then gets a StorageError.
class SqlitePool {
 public:
  static constexpr size_t connections_max = 64;

  SqlitePool(const std::string& path, size_t connections, Millis busy_timeout);
  ~SqlitePool();
  SqlitePool(const SqlitePool&) = delete;
  SqlitePool& operator=(const SqlitePool&) = delete;

  class Lease {
   public:
    Lease(SqlitePool& pool, SqliteConnection* connection) : pool_(&pool), connection_(connection) {}
    ~Lease();
    Lease(Lease&& other) noexcept
        : pool_(other.pool_), connection_(std::exchange(other.connection_, nullptr)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;

    SqliteConnection& operator*() const { return *connection_; }
    SqliteConnection* operator->() const { return connection_; }

   private:
    SqlitePool* pool_;
    SqliteConnection* connection_;
  };

  Lease acquire();

 private:
  void give_back(SqliteConnection* connection);

  Millis busy_timeout_;
  std::shared_ptr<SqliteWriterGate> writer_gate_;
  std::vector<std::unique_ptr<SqliteConnection>> connections_;
  std::mutex mutex_;
  std::condition_variable idle_changed_;
  std::vector<SqliteConnection*> idle_;
};

}  // namespace boxoffice
