#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace boxoffice::http {

struct ListenAddress {
  std::string host;
  uint16_t port = 0;
};

/// "host:port" or "[v6]:port"; port 0 means any free port.
std::optional<ListenAddress> parse_listen(const std::string& text);

}  // namespace boxoffice::http
