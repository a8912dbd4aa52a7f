#include "domain/row_index.h"

#include <algorithm>
#include <cassert>
#include <cstdlib>

namespace boxoffice {

RowIndex::RowIndex(const std::vector<uint32_t>& row_seats)
    : rows_(static_cast<uint32_t>(row_seats.size())) {
  while (leaves_ < rows_) leaves_ *= 2;
  row_offsets_.reserve(rows_ + 1);
  uint32_t offset = 0;
  for (auto seats : row_seats) {
    row_offsets_.push_back(offset);
    offset += seats;
  }
  row_offsets_.push_back(offset);
  free_.assign(offset, 1);
  tree_.assign(2 * leaves_, Node{});
  for (uint32_t r = 0; r < rows_; ++r) tree_[leaves_ + r] = Node{row_seats[r], row_seats[r]};
  for (uint32_t i = leaves_ - 1; i >= 1; --i) {
    tree_[i] = Node{std::max(tree_[2 * i].longest_run, tree_[2 * i + 1].longest_run),
                    tree_[2 * i].free + tree_[2 * i + 1].free};
  }
}

uint32_t RowIndex::row_of(uint32_t index) const {
  const auto it = std::upper_bound(row_offsets_.begin(), row_offsets_.end(), index);
  return static_cast<uint32_t>(it - row_offsets_.begin() - 1);
}

void RowIndex::set_taken(const std::vector<uint32_t>& indices) { set(indices, 0); }
void RowIndex::set_free(const std::vector<uint32_t>& indices) { set(indices, 1); }

void RowIndex::set(const std::vector<uint32_t>& indices, uint8_t value) {
  std::vector<uint32_t> rows;
  rows.reserve(indices.size());
  for (auto index : indices) {
    assert(index < free_.size());
    free_[index] = value;
    rows.push_back(row_of(index));
  }
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  for (auto row : rows) recompute_row(row);
}

void RowIndex::recompute_row(uint32_t row) {
  uint32_t longest = 0, run = 0, free = 0;
  for (uint32_t i = row_offsets_[row]; i < row_offsets_[row + 1]; ++i) {
    if (free_[i]) {
      ++free;
      longest = std::max(longest, ++run);
    } else {
      run = 0;
    }
  }
  uint32_t node = leaves_ + row;
  tree_[node] = Node{longest, free};
  for (node /= 2; node >= 1; node /= 2) {
    tree_[node] = Node{std::max(tree_[2 * node].longest_run, tree_[2 * node + 1].longest_run),
                       tree_[2 * node].free + tree_[2 * node + 1].free};
  }
}

uint32_t RowIndex::find_row(uint32_t node, uint32_t lo, uint32_t hi, uint32_t from,
                            uint32_t run) const {
  // Rows [lo, hi) are under node. Prune subtrees entirely before `from` or without a long
  // enough run; the first leaf reached is the answer.
  if (hi <= from || tree_[node].longest_run < run || tree_[node].free == 0) return rows_;
  if (hi - lo == 1) return lo < rows_ ? lo : rows_;
  const uint32_t mid = lo + (hi - lo) / 2;
  const uint32_t left = find_row(2 * node, lo, mid, from, run);
  if (left != rows_) return left;
  return find_row(2 * node + 1, mid, hi, from, run);
}

std::optional<std::vector<uint32_t>> RowIndex::best_available(uint32_t n) const {
  if (n == 0 || free_seats() < n) return std::nullopt;
  std::vector<uint32_t> picked;
  picked.reserve(n);
  const uint32_t row = find_row(1, 0, leaves_, 0, n);
  if (row != rows_) {
    const uint32_t begin = row_offsets_[row], end = row_offsets_[row + 1];
    // Twice the distance between a window's centre and the row's centre, in seat units.
    const int64_t row_centre2 = static_cast<int64_t>(begin) + end - 1;
    uint32_t best_start = end;
    int64_t best_distance = 0;
    uint32_t run = 0;
    for (uint32_t i = begin; i < end; ++i) {
      run = free_[i] ? run + 1 : 0;
      if (run >= n) {
        const uint32_t start = i + 1 - n;
        const int64_t distance = std::llabs(static_cast<int64_t>(start) + i - row_centre2);
        if (best_start == end || distance < best_distance) {
          best_start = start;
          best_distance = distance;
        }
      }
    }
    assert(best_start != end);
    for (uint32_t i = 0; i < n; ++i) picked.push_back(best_start + i);
    return picked;
  }
  // No row has n adjacent seats: the n free seats nearest the front.
  for (uint32_t r = find_row(1, 0, leaves_, 0, 1); r != rows_ && picked.size() < n;
       r = find_row(1, 0, leaves_, r + 1, 1)) {
    for (uint32_t i = row_offsets_[r]; i < row_offsets_[r + 1] && picked.size() < n; ++i) {
      if (free_[i]) picked.push_back(i);
    }
  }
  assert(picked.size() == n);
  return picked;
}

}  // namespace boxoffice
