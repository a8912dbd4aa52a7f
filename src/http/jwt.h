#pragma once
// Bearer tokens (RFC 7519) signed with HS256, RS256 or ES256 (RFC 7518 §3). Every verification key
// is pinned to one algorithm; a token's "kid" picks the key and its "alg" is only compared with
// the key's, never used to choose how to verify (CONTRACT.md, Auth). The cryptography is
// OpenSSL 3's EVP interface.

#include <openssl/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/result.h"
#include "domain/time.h"

namespace boxoffice::jwt {

/// Longest token verify() looks at; anything longer is refused before any parsing.
inline constexpr std::size_t kTokenBytesMax = std::size_t{8} * 1024;
/// Longest encoded header verify() decodes. Ours name alg, kid and typ; a bigger one (embedded
/// keys, certificate chains) is nothing this verifier uses, and parsing it is wasted work.
inline constexpr std::size_t kHeaderBytesMax = 2048;
/// Longest accepted "sub" (a buyer id).
inline constexpr std::size_t kSubjectBytesMax = 255;
/// Smallest RSA modulus a key set accepts (RFC 7518 §3.3 asks for 2048 bits or more).
inline constexpr int kRsaBitsMin = 2048;
/// Largest RSA modulus a key set accepts: verification cost grows with it, and nobody needs more.
inline constexpr int kRsaBitsMax = 8192;
/// Shortest HMAC secret a JWKS "oct" key may have (RFC 7518 §3.2: at least the hash size).
inline constexpr std::size_t kHmacKeyBytesMin = 32;
/// Most keys one key set holds.
inline constexpr std::size_t kKeysMax = 64;
/// Largest key file (JWKS or PEM) load_keys() reads.
inline constexpr std::size_t kKeyFileBytesMax = std::size_t{1} << 20;

enum class Algorithm { hs256, rs256, es256 };

/// "HS256", "RS256", "ES256".
std::string_view to_string(Algorithm alg);

/// One verification key, pinned to one algorithm. Immutable once loaded, so one key is shared by
/// every I/O thread.
struct VerificationKey {
  std::string kid;
  Algorithm alg = Algorithm::rs256;
  /// The public key, for RS256 (RSA) and ES256 (EC P-256); null for HS256.
  std::shared_ptr<EVP_PKEY> public_key;
  /// The HMAC secret, for HS256 only.
  std::string secret;
};

struct VerifierConfig {
  /// Verifies tokens without "kid" whose alg is HS256 (development). Empty: no such token passes.
  std::string hs256_secret;
  std::string issuer;    // "iss" must equal this
  std::string audience;  // "aud" must equal this, or be an array that contains it
  // Tolerated clock skew between the token's issuer and this process, for "exp" and "nbf".
  std::chrono::seconds leeway{30};
  /// Tokens with a "kid" are verified with the key of that kid, and only with its algorithm.
  std::vector<VerificationKey> keys{};
};

struct Claims {
  std::string subject;
  std::vector<std::string> roles;
  Timestamp expires_at;
};

/// Checks the header, the signature, then the claims. Never throws: every failure is
/// Errc::unauthorized with a short human detail ("token expired", "bad signature", "unknown
/// kid", ...).
Result<Claims> verify(std::string_view token, const VerifierConfig& config, Timestamp now);

// --- key loading: every failure is Errc::invalid_request whose detail says what is wrong -------

/// A JWKS document (RFC 7517 §5): {"keys": [...]}, each key with "kid" and "alg"; kty "RSA" (n, e)
/// for RS256, "EC" with crv "P-256" (x, y) for ES256, "oct" (k) for HS256. "use", when present,
/// must be "sig". Keys with private parts, duplicate kids, weak or unknown keys are refused.
Result<std::vector<VerificationKey>> parse_jwks(std::string_view document);

/// One PEM "PUBLIC KEY" (SubjectPublicKeyInfo): RSA of 2048 bits or more → RS256, EC P-256 → ES256.
Result<VerificationKey> parse_public_key_pem(std::string_view pem, std::string kid);

/// The jwt_keys setting: the path of a JWKS file, or a comma-separated list of PEM public key
/// files (each one's kid is its file name without the extension). Reads the files.
Result<std::vector<VerificationKey>> load_keys(std::string_view setting);

// --- minting (HS256: the `token` command and tests) --------------------------------------------

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
