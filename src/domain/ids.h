#pragma once
// Object ids: a short type prefix and 128 random bits in lowercase hex ("hld_3f2a..."). Ids are
// unguessable, so knowing one grants nothing; ownership is still checked on every access.

#include <string>
#include <string_view>

namespace boxoffice {

std::string new_id(std::string_view prefix);

/// True for the shape new_id makes and for ids created by admins ([A-Za-z0-9_-], 1..64).
bool is_valid_id(std::string_view id);

}  // namespace boxoffice
