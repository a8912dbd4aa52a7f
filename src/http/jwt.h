#pragma once
// Bearer tokens (RFC 7519) signed with HS256. The verifier's key decides the algorithm: a token's
// "alg" header is only checked against it, never used to pick how to verify (CONTRACT.md, Auth).

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/result.h"
#include "domain/time.h"

namespace boxoffice::jwt {

/// Longest token verify() looks at; anything longer is refused before any parsing.
inline constexpr std::size_t kTokenBytesMax = std::size_t{8} * 1024;
/// Longest accepted "sub" (a buyer id).
inline constexpr std::size_t kSubjectBytesMax = 255;

struct VerifierConfig {
  std::string hs256_secret;
  std::string issuer;    // "iss" must equal this
  std::string audience;  // "aud" must equal this, or be an array that contains it
  // Tolerated clock skew between the token's issuer and this process, for "exp" and "nbf".
  std::chrono::seconds leeway{30};
};

struct Claims {
  std::string subject;
  std::vector<std::string> roles;
  Timestamp expires_at;
};

/// Checks the signature, then the claims. Never throws: every failure is Errc::unauthorized with
/// a short human detail ("token expired", "bad signature", "alg not allowed", ...). An empty
/// configured secret refuses every token.
Result<Claims> verify(std::string_view token, const VerifierConfig& config, Timestamp now);

struct MintOptions {
  std::string subject;
  std::vector<std::string> roles;
  std::chrono::seconds ttl{3600};
  std::string issuer;    // omitted from the token when empty
  std::string audience;  // omitted from the token when empty
};

/// A token with "sub", "roles", "iat" = now, "exp" = now + ttl (whole seconds).
std::string mint_hs256(std::string_view secret, const MintOptions& options, Timestamp now);

/// For tests that need odd tokens: signs base64url(header_json).base64url(payload_json) with
/// HS256, whatever the JSON says.
std::string sign_hs256_raw(std::string_view secret, std::string_view header_json,
                           std::string_view payload_json);

/// RFC 4648 §5 alphabet, without padding.
std::string base64url_encode(std::string_view bytes);
/// Strict inverse of base64url_encode: refuses padding, characters outside the alphabet, an
/// impossible length and non-zero unused bits, so every byte string has exactly one encoding.
std::optional<std::string> base64url_decode(std::string_view text);

/// 32 bytes from OpenSSL's CSPRNG, base64url-encoded. Throws std::runtime_error if the CSPRNG
/// cannot be seeded.
std::string random_secret();

}  // namespace boxoffice::jwt
