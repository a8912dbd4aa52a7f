#include "domain/seat_layout.h"

#include <algorithm>
#include <charconv>

namespace boxoffice {

SeatLayout::SeatLayout(const Event& event) : event_(event) {
  sections_.resize(event.sections.size());
  for (uint32_t s = 0; s < event.sections.size(); ++s) {
    const auto& section = event.sections[s];
    section_by_id_.emplace(section.id, s);
    uint32_t offset = 0;
    for (uint32_t r = 0; r < section.rows.size(); ++r) {
      sections_[s].rows.emplace(section.rows[r].name, r);
      sections_[s].row_offsets.push_back(offset);
      offset += section.rows[r].seats;
    }
  }
}

std::optional<uint32_t> SeatLayout::section_index(std::string_view section_id) const {
  auto it = section_by_id_.find(std::string{section_id});
  if (it == section_by_id_.end()) return std::nullopt;
  return it->second;
}

std::optional<SeatAddress> SeatLayout::parse(std::string_view seat_id) const {
  const auto first = seat_id.find(':');
  if (first == std::string_view::npos) return std::nullopt;
  const auto second = seat_id.find(':', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  const auto section = section_index(seat_id.substr(0, first));
  if (!section || event_.sections[*section].kind != SectionKind::reserved) return std::nullopt;
  const auto& layout = sections_[*section];
  auto row_it = layout.rows.find(std::string{seat_id.substr(first + 1, second - first - 1)});
  if (row_it == layout.rows.end()) return std::nullopt;
  const auto number_text = seat_id.substr(second + 1);
  if (number_text.empty() || number_text.front() == '0') return std::nullopt;
  uint32_t number = 0;
  auto [end, ec] =
      std::from_chars(number_text.data(), number_text.data() + number_text.size(), number);
  if (ec != std::errc{} || end != number_text.data() + number_text.size()) return std::nullopt;
  const uint32_t row = row_it->second;
  if (number < 1 || number > event_.sections[*section].rows[row].seats) return std::nullopt;
  return SeatAddress{*section, row, number, layout.row_offsets[row] + number - 1};
}

SeatAddress SeatLayout::address(uint32_t section, uint32_t index) const {
  const auto& offsets = sections_[section].row_offsets;
  const auto it = std::upper_bound(offsets.begin(), offsets.end(), index);
  const auto row = static_cast<uint32_t>(it - offsets.begin() - 1);
  return SeatAddress{section, row, index - offsets[row] + 1, index};
}

std::string SeatLayout::seat_id(uint32_t section, uint32_t index) const {
  const auto a = address(section, index);
  const auto& s = event_.sections[section];
  return s.id + ":" + s.rows[a.row].name + ":" + std::to_string(a.number);
}

Result<ResolvedSelection> SeatLayout::resolve(const HoldSelection& selection) const {
  ResolvedSelection resolved;
  if (const auto* wanted = std::get_if<SectionQuantity>(&selection)) {
    const auto section = section_index(wanted->section);
    if (!section) return make_error(Errc::not_found, "no section " + wanted->section);
    if (wanted->quantity == 0) {
      return make_error(Errc::invalid_request, "quantity must be at least 1");
    }
    resolved.section = *section;
    resolved.quantity = wanted->quantity;
    return resolved;
  }
  const auto& exact = std::get<ExactSeats>(selection);
  if (exact.seat_ids.empty()) return make_error(Errc::invalid_request, "seats is empty");
  for (const auto& id : exact.seat_ids) {
    const auto address = parse(id);
    if (!address) return make_error(Errc::not_found, "no seat " + id + " in this event");
    if (!resolved.seats.empty() && resolved.seats.front().section != address->section) {
      return make_error(Errc::invalid_request, "all seats of one hold must be in one section");
    }
    resolved.seats.push_back(*address);
  }
  std::vector<uint32_t> indices;
  for (const auto& seat : resolved.seats) indices.push_back(seat.index);
  std::sort(indices.begin(), indices.end());
  if (std::adjacent_find(indices.begin(), indices.end()) != indices.end()) {
    return make_error(Errc::invalid_request, "a seat is listed twice");
  }
  resolved.section = resolved.seats.front().section;
  resolved.quantity = static_cast<uint32_t>(resolved.seats.size());
  return resolved;
}

}  // namespace boxoffice
