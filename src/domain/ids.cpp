#include "domain/ids.h"

#include <sys/random.h>

#include <array>
#include <cstdint>
#include <cstdlib>

namespace boxoffice {

namespace {

// Ids must be unguessable, so the bits come from the kernel's CSPRNG, fetched a page at a time.
class RandomBytes {
 public:
  uint8_t next() {
    if (pos_ == buffer_.size()) refill();
    return buffer_[pos_++];
  }

 private:
  void refill() {
    size_t filled = 0;
    while (filled < buffer_.size()) {
      const ssize_t n = getrandom(buffer_.data() + filled, buffer_.size() - filled, 0);
      if (n < 0) std::abort();  // the kernel's CSPRNG does not fail after boot
      filled += static_cast<size_t>(n);
    }
    pos_ = 0;
  }
  std::array<uint8_t, 4096> buffer_{};
  size_t pos_ = buffer_.size();
};

}  // namespace

std::string new_id(std::string_view prefix) {
  thread_local RandomBytes random;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id{prefix};
  id.push_back('_');
  for (int i = 0; i < 16; ++i) {
    const uint8_t byte = random.next();
    id.push_back(kHex[byte >> 4]);
    id.push_back(kHex[byte & 0xF]);
  }
  return id;
}

bool is_valid_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace boxoffice
