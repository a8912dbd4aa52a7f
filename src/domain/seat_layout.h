#pragma once
// Where every seat of an event is: seat ids ("orch:A:12") to (section, flat index) and back, in
// constant time whatever the size of the event.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "domain/event.h"
#include "domain/hold.h"
#include "domain/result.h"

namespace boxoffice {

struct SeatAddress {
  uint32_t section = 0;  // index into Event::sections
  uint32_t row = 0;      // index into Section::rows
  uint32_t number = 0;   // 1-based seat number in its row
  uint32_t index = 0;    // flat index of the seat in its section (rows in order)
};

/// What a hold asks for, checked against the event: its section and seat count, and for exact
/// seats their addresses in the order given (empty for a quantity).
struct ResolvedSelection {
  uint32_t section = 0;
  uint32_t quantity = 0;
  std::vector<SeatAddress> seats;
};

class SeatLayout {
 public:
  explicit SeatLayout(const Event& event);

  const Event& event() const { return event_; }
  std::optional<uint32_t> section_index(std::string_view section_id) const;
  /// nullopt for a malformed id or a seat that does not exist.
  std::optional<SeatAddress> parse(std::string_view seat_id) const;
  std::string seat_id(uint32_t section, uint32_t index) const;
  /// Errors: not_found (a seat or the section), invalid_request (no seats, seats of two
  /// sections, a seat listed twice, quantity 0). Whether the seats are free is the store's call.
  Result<ResolvedSelection> resolve(const HoldSelection& selection) const;
  /// The address of the index-th seat of a reserved section.
  SeatAddress address(uint32_t section, uint32_t index) const;
  uint32_t row_offset(uint32_t section, uint32_t row) const {
    return sections_[section].row_offsets[row];
  }

 private:
  struct SectionLayout {
    std::unordered_map<std::string, uint32_t> rows;  // row name -> row index
    std::vector<uint32_t> row_offsets;               // flat index of each row's first seat
  };
  Event event_;
  std::unordered_map<std::string, uint32_t> section_by_id_;
  std::vector<SectionLayout> sections_;
};

}  // namespace boxoffice
