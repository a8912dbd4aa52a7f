#pragma once
// Time in boxoffice is milliseconds since the Unix epoch, UTC. Formatting and parsing follow
// RFC 3339 (the contract's time format).

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace boxoffice {

using Timestamp = std::chrono::sys_time<std::chrono::milliseconds>;
using Millis = std::chrono::milliseconds;

/// "2027-06-01T19:00:00Z", or with ".123" when the milliseconds are not zero.
std::string format_rfc3339(Timestamp t);

/// Accepts "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)" ('t' and ' ' separators too).
std::optional<Timestamp> parse_rfc3339(std::string_view text);

inline int64_t to_unix_ms(Timestamp t) { return t.time_since_epoch().count(); }
inline Timestamp from_unix_ms(int64_t ms) { return Timestamp{Millis{ms}}; }

}  // namespace boxoffice
