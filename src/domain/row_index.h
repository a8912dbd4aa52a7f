#pragma once
// Free-seat index of one reserved section, for "best available" without scanning the section.
//
// The rule (also in the README): for a quantity n, take n adjacent seats in one row, in the
// front-most row (lowest row index) that has such a run; in that row, the run whose centre is
// nearest the row's centre (ties: lower seat numbers). When no row has n adjacent free seats,
// take the n free seats nearest the front: front-most rows first, lower seat numbers first.
//
// Cost: finding a row is O(log rows) through a segment tree of (longest free run, free seats)
// per row; work inside a row is O(seats in that row). Neither grows with the event.

#include <cstdint>
#include <optional>
#include <vector>

namespace boxoffice {

class RowIndex {
 public:
  /// row_seats[i] is the number of seats in row i; every seat starts free.
  explicit RowIndex(const std::vector<uint32_t>& row_seats);

  uint32_t free_seats() const { return tree_.empty() ? 0 : tree_[1].free; }
  bool is_free(uint32_t index) const { return free_[index] != 0; }

  /// Marks seats taken or free. Indices are flat section indices; each touched row is
  /// recomputed once per call.
  void set_taken(const std::vector<uint32_t>& indices);
  void set_free(const std::vector<uint32_t>& indices);

  /// The seats the rule above picks, or nullopt when fewer than n seats are free. Does not take
  /// them: the caller does, with set_taken.
  std::optional<std::vector<uint32_t>> best_available(uint32_t n) const;

 private:
  struct Node {
    uint32_t longest_run = 0;
    uint32_t free = 0;
  };
  void set(const std::vector<uint32_t>& indices, uint8_t value);
  void recompute_row(uint32_t row);
  uint32_t row_of(uint32_t index) const;
  /// First row >= from whose longest run >= run and free >= free_needed; or rows_ when none.
  uint32_t find_row(uint32_t node, uint32_t lo, uint32_t hi, uint32_t from, uint32_t run) const;

  uint32_t rows_ = 0;
  uint32_t leaves_ = 1;
  std::vector<uint32_t> row_offsets_;  // rows_ + 1 entries
  std::vector<uint8_t> free_;          // one per seat: 1 free, 0 taken
  std::vector<Node> tree_;             // 1-based heap layout, 2 * leaves_
};

}  // namespace boxoffice
