#pragma once

#include <string>
#include <vector>

namespace boxoffice {

/// Who is asking: the verified `sub` of a token (empty when anonymous) and whether they are admin.
struct Caller {
  std::string buyer;
  bool admin = false;

  bool anonymous() const { return buyer.empty(); }
  /// A buyer sees only their own objects; admins see all.
  bool may_see(const std::string& owner) const {
    return admin || (!buyer.empty() && owner == buyer);
  }
};

}  // namespace boxoffice
