#pragma once
// A thin RAII layer over libpq, shared by the PostgreSQL adapters.
//
// Every SQL statement has a name (userver style): it is prepared once per connection under that
// name and the name is in every error message. libpq failures become exceptions here and nowhere
// else, mirroring SQLSTATE classes: a unique violation (23505) is a PgUniqueViolation, so a
// store can turn it into a business outcome; a serialization failure or deadlock (40001, 40P01)
// is a PgRetryable, so a store can run the transaction again; everything else, and above all a
// connection that broke, is a plain StorageError.

#include <libpq-fe.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/error.h"
#include "domain/time.h"

namespace boxoffice {

// A statement and the name it is prepared under.
struct PgQuery {
  std::string_view name;
  std::string_view sql;
};

// A UNIQUE or PRIMARY KEY constraint refused a write. The transaction is aborted (PostgreSQL
// aborts the whole transaction on an error): the caller rolls back.
class PgUniqueViolation : public StorageError {
 public:
  PgUniqueViolation(const std::string& what, std::string constraint)
      : StorageError(what), constraint_(std::move(constraint)) {}
  const std::string& constraint() const { return constraint_; }

 private:
  std::string constraint_;
};

// The transaction lost a serialization conflict or a deadlock: running it again may succeed.
class PgRetryable : public StorageError {
 public:
  using StorageError::StorageError;
};

// Throws what a failed statement throws for this SQLSTATE (PgUniqueViolation, PgRetryable, else
// StorageError), its message naming the statement: also for errors a function reports in its
// result instead of raising them.
[[noreturn]] void throw_pg_error(std::string_view statement, std::string_view message,
                                 const std::string& sqlstate, std::string constraint = {});

// A bytea parameter, sent in binary so that any byte survives.
struct PgBytes {
  std::string_view bytes;
};

// One statement's result rows (text format). Columns are 0-based.
class PgResult {
 public:
  explicit PgResult(PGresult* result) : result_(result) {}
  PgResult(PgResult&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  PgResult& operator=(PgResult&&) = delete;
  ~PgResult();

  int rows() const;
  // Rows changed by an INSERT, UPDATE or DELETE.
  int64_t affected() const;
  bool is_null(int row, int column) const;
  std::string text(int row, int column) const;
  int64_t int64(int row, int column) const;
  bool boolean(int row, int column) const;
  std::string bytes(int row, int column) const;  // a bytea column

 private:
  PGresult* result_;
};

// A statement and its parameters (text, but bytea in binary), ready to run: for
// PgConnection::pipeline, which sends several at once.
class PgStatement {
 public:
  template <class... Args>
  explicit PgStatement(const PgQuery& query, const Args&... args) : query_(&query) {
    params_.reserve(sizeof...(args));
    (add(args), ...);
  }

  const PgQuery& query() const { return *query_; }

 private:
  friend class PgConnection;
  friend struct PgParamArrays;
  struct Param {
    std::optional<std::string> value;
    bool binary = false;
  };

  void add(int64_t value) { params_.push_back(Param{std::to_string(value), false}); }
  void add(int value) { add(int64_t{value}); }
  void add(uint32_t value) { add(int64_t{value}); }
  void add(std::string_view text) { params_.push_back(Param{std::string(text), false}); }
  void add(const std::string& text) { add(std::string_view{text}); }
  void add(const char* text) { add(std::string_view{text}); }
  void add(PgBytes bytes) { params_.push_back(Param{std::string(bytes.bytes), true}); }

  const PgQuery* query_;
  std::vector<Param> params_;
};

// One statement's answer in a pipeline: its rows, or the error query() would have thrown.
struct PgAnswer {
  std::optional<PgResult> result;
  std::exception_ptr error;
};

class PgConnection {
 public:
  // Connects (throws StorageError when the server cannot be reached). `url` is a libpq URL or
  // key=value string; a connect_timeout in it wins over `connect_timeout`.
  PgConnection(const std::string& url, Millis connect_timeout, Millis statement_timeout);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs a named statement, preparing it on its first use on this connection.
  template <class... Args>
  PgResult query(const PgQuery& query, const Args&... args) {
    return run(PgStatement(query, args...));
  }
  PgResult run(const PgStatement& statement);

  // Runs `statements` in one flight (libpq's pipeline mode): sent together, run by the server
  // one after another, answered in order, so they cost one round trip in all. As in a script, a
  // statement after one that failed is not run (its answer is a StorageError saying so), and
  // inside a transaction block the failure aborts the transaction. Throws StorageError when the
  // connection broke (what ran, we cannot tell); the connection is then not healthy(). (Before
  // PostgreSQL 17 the statement timeout runs from the first statement of a flight to its last.)
  std::vector<PgAnswer> pipeline(const std::vector<PgStatement>& statements);

  // Runs several statements at once (a migration): not prepared, no parameters.
  void execute_script(std::string_view name, std::string_view sql);

  // False once the connection broke; the pool replaces it.
  bool healthy() const;
  bool in_transaction() const;
  // Inside a transaction that a failed statement aborted: only a ROLLBACK (TO SAVEPOINT) works
  // now, and a COMMIT would quietly roll back.
  bool transaction_aborted() const;

 private:
  void prepare(const PgStatement& statement);
  // Marks the connection broken (the pool drops it) and throws StorageError.
  [[noreturn]] void lose(std::string_view name, std::string_view why);
  [[noreturn]] void fail(std::string_view name, PGresult* result);

  PGconn* conn_ = nullptr;
  bool lost_ = false;  // left in a state we cannot use it from (mid-pipeline)
  std::set<std::string, std::less<>> prepared_;
};

// Rolls back unless commit() was called. READ COMMITTED (the server's default) unless asked.
class PgTransaction {
 public:
  enum class Isolation { read_committed, serializable };

  explicit PgTransaction(PgConnection& connection, Isolation isolation = Isolation::read_committed);
  ~PgTransaction();
  PgTransaction(const PgTransaction&) = delete;
  PgTransaction& operator=(const PgTransaction&) = delete;

  // Throws StorageError, committing nothing, when a statement failed since the last savepoint
  // rolled back to: PostgreSQL would answer such a COMMIT by rolling back.
  void commit();
  void rollback();
  bool open() const { return open_; }

 private:
  PgConnection& connection_;
  bool open_ = false;
};

// A bounded set of connections to one database (1 to connections_max), opened on first need
// and reopened when one broke. A thread borrows one for a call; when none is free it waits at
// most `acquire_timeout`, then gets a StorageError.
class PgPool {
 public:
  static constexpr size_t connections_max = 64;
  static constexpr Millis acquire_timeout_default{5'000};
  static constexpr Millis connect_timeout_default{5'000};
  // A statement that runs longer is cancelled (SQLSTATE 57014, a StorageError), so a request
  // fails within a bound instead of tying up a worker behind a stuck lock or server.
  static constexpr Millis statement_timeout_default{10'000};

  PgPool(std::string url, size_t connections, Millis acquire_timeout = acquire_timeout_default);
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  class Lease {
   public:
    Lease(PgPool& pool, std::unique_ptr<PgConnection> connection)
        : pool_(&pool), connection_(std::move(connection)) {}
    ~Lease();
    Lease(Lease&& other) noexcept = default;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;

    PgConnection& operator*() const { return *connection_; }
    PgConnection* operator->() const { return connection_.get(); }

   private:
    PgPool* pool_;
    std::unique_ptr<PgConnection> connection_;
  };

  Lease acquire();
  // Connections open at most.
  size_t size() const { return size_; }

 private:
  void give_back(std::unique_ptr<PgConnection> connection);

  std::string url_;
  size_t size_;
  Millis acquire_timeout_;
  std::mutex mutex_;
  std::condition_variable idle_changed_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  size_t opened_ = 0;  // connections in idle_ or lent out
};

}  // namespace boxoffice
