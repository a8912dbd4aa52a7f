#include "http/jwt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <boost/json.hpp>
#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace boxoffice::jwt {
namespace {

namespace json = boost::json;

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// NumericDates past year 9999 are refused rather than clamped: no honest issuer writes them, and
// refusing keeps every conversion to milliseconds far from int64 overflow.
constexpr int64_t kNumericDateSecondsMax = 253402300799;

constexpr std::size_t kSecretBytes = 32;

using Digest = std::array<unsigned char, 32>;

Digest hmac_sha256(std::string_view key, std::string_view data) {
  // OpenSSL may treat a null key pointer as "reuse the previous key"; an empty key must stay empty.
  static const unsigned char kEmpty = 0;
  const auto* key_bytes =
      key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
  Digest digest{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key_bytes, static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data(),
           &length) == nullptr ||
      length != digest.size()) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return digest;
}

std::string sign(std::string_view secret, std::string_view signing_input) {
  const Digest digest = hmac_sha256(secret, signing_input);
  std::string token(signing_input);
  token += '.';
  token += base64url_encode(
      std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
  return token;
}

Error unauthorized(std::string detail) { return make_error(Errc::unauthorized, std::move(detail)); }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// A JSON object from base64url text, or nothing (bad base64, bad JSON, or not an object).
std::optional<json::object> decode_object(std::string_view part) {
  const auto text = base64url_decode(part);
  if (!text) return std::nullopt;
  boost::system::error_code ec;
  json::value value = json::parse(*text, ec);
  if (ec || !value.is_object()) return std::nullopt;
  return std::move(value.as_object());
}

// RFC 7519 NumericDate (seconds, fractions allowed) in milliseconds since the epoch.
std::optional<int64_t> numeric_date_ms(const json::value& value) {
  if (value.is_int64()) {
    const int64_t s = value.get_int64();
    if (s < -kNumericDateSecondsMax || s > kNumericDateSecondsMax) return std::nullopt;
    return s * 1000;
  }
  if (value.is_uint64()) {
    const uint64_t s = value.get_uint64();
    if (s > static_cast<uint64_t>(kNumericDateSecondsMax)) return std::nullopt;
    return static_cast<int64_t>(s) * 1000;
  }
  if (value.is_double()) {
    const double s = value.get_double();
    if (!std::isfinite(s) || std::fabs(s) > static_cast<double>(kNumericDateSecondsMax)) {
      return std::nullopt;
    }
    return static_cast<int64_t>(std::floor(s * 1000.0));
  }
  return std::nullopt;
}

Result<Ok> check_header(const json::object& header) {
  const json::value* alg = header.if_contains("alg");
  if (alg == nullptr || !alg->is_string() || alg->get_string() != "HS256") {
    return unauthorized("alg not allowed");
  }
  if (const json::value* typ = header.if_contains("typ")) {
    if (!typ->is_string() || !iequals(typ->get_string(), "JWT")) {
      return unauthorized("typ not allowed");
    }
  }
  // We understand no extension, and RFC 7515 §4.1.11 says a listed one we do not know must fail.
  if (header.contains("crit")) return unauthorized("crit not supported");
  return Ok{};
}

bool audience_matches(const json::value& aud, std::string_view expected) {
  if (aud.is_string()) return aud.get_string() == expected;
  if (!aud.is_array()) return false;
  for (const json::value& item : aud.get_array()) {
    if (item.is_string() && item.get_string() == expected) return true;
  }
  return false;
}

Result<Claims> check_payload(const json::object& payload, const VerifierConfig& config,
                             Timestamp now) {
  const int64_t now_ms = to_unix_ms(now);
  const int64_t leeway_ms = std::chrono::milliseconds(config.leeway).count();

  const json::value* exp = payload.if_contains("exp");
  if (exp == nullptr) return unauthorized("missing exp");
  const auto exp_ms = numeric_date_ms(*exp);
  if (!exp_ms) return unauthorized("bad exp");
  if (now_ms >= *exp_ms + leeway_ms) return unauthorized("token expired");

  if (const json::value* nbf = payload.if_contains("nbf")) {
    const auto nbf_ms = numeric_date_ms(*nbf);
    if (!nbf_ms) return unauthorized("bad nbf");
    if (now_ms < *nbf_ms - leeway_ms) return unauthorized("token not yet valid");
  }
  if (const json::value* iat = payload.if_contains("iat")) {
    if (!numeric_date_ms(*iat)) return unauthorized("bad iat");
  }

  const json::value* iss = payload.if_contains("iss");
  if (iss == nullptr || !iss->is_string() || iss->get_string() != config.issuer) {
    return unauthorized("wrong issuer");
  }
  const json::value* aud = payload.if_contains("aud");
  if (aud == nullptr || !audience_matches(*aud, config.audience)) {
    return unauthorized("wrong audience");
  }

  const json::value* sub = payload.if_contains("sub");
  if (sub == nullptr || !sub->is_string() || sub->get_string().empty() ||
      sub->get_string().size() > kSubjectBytesMax) {
    return unauthorized("bad sub");
  }

  Claims claims;
  claims.subject = std::string(sub->get_string());
  claims.expires_at = from_unix_ms(*exp_ms);
  if (const json::value* roles = payload.if_contains("roles")) {
    if (!roles->is_array()) return unauthorized("roles must be an array of strings");
    for (const json::value& role : roles->get_array()) {
      if (!role.is_string()) return unauthorized("roles must be an array of strings");
      claims.roles.emplace_back(role.get_string());
    }
  }
  return claims;
}

Result<Claims> verify_unchecked(std::string_view token, const VerifierConfig& config,
                                Timestamp now) {
  if (config.hs256_secret.empty()) return unauthorized("no verification key");
  if (token.size() > kTokenBytesMax) return unauthorized("token too long");

  const auto first_dot = token.find('.');
  if (first_dot == std::string_view::npos) return unauthorized("malformed token");
  const auto second_dot = token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos) return unauthorized("malformed token");
  if (token.find('.', second_dot + 1) != std::string_view::npos) {
    return unauthorized("malformed token");
  }
  const std::string_view header_part = token.substr(0, first_dot);
  const std::string_view payload_part = token.substr(first_dot + 1, second_dot - first_dot - 1);
  const std::string_view signature_part = token.substr(second_dot + 1);

  // The header is checked before the signature so that a token for another algorithm gets the
  // precise answer; nothing in it is trusted beyond being compared with constants.
  const auto header = decode_object(header_part);
  if (!header) return unauthorized("bad header");
  if (auto checked = check_header(*header); !checked) return checked.take_error();

  const auto signature = base64url_decode(signature_part);
  const Digest expected = hmac_sha256(config.hs256_secret, token.substr(0, second_dot));
  if (!signature || signature->size() != expected.size() ||
      CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0) {
    return unauthorized("bad signature");
  }

  const auto payload = decode_object(payload_part);
  if (!payload) return unauthorized("bad payload");
  return check_payload(*payload, config, now);
}

}  // namespace

Result<Claims> verify(std::string_view token, const VerifierConfig& config, Timestamp now) {
  // A verifier that throws would turn a hostile header into a 500; every surprise is a refusal.
  try {
    return verify_unchecked(token, config, now);
  } catch (const std::exception&) {
    return unauthorized("invalid token");
  }
}

std::string mint_hs256(std::string_view secret, const MintOptions& options, Timestamp now) {
  const int64_t iat = std::chrono::floor<std::chrono::seconds>(now).time_since_epoch().count();
  json::object payload;
  payload["sub"] = options.subject;
  json::array roles;
  for (const auto& role : options.roles) roles.emplace_back(role);
  payload["roles"] = std::move(roles);
  if (!options.issuer.empty()) payload["iss"] = options.issuer;
  if (!options.audience.empty()) payload["aud"] = options.audience;
  payload["iat"] = iat;
  payload["exp"] = iat + options.ttl.count();
  return sign_hs256_raw(secret, R"({"alg":"HS256","typ":"JWT"})", json::serialize(payload));
}

std::string sign_hs256_raw(std::string_view secret, std::string_view header_json,
                           std::string_view payload_json) {
  return sign(secret, base64url_encode(header_json) + "." + base64url_encode(payload_json));
}

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) |
                       (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
  } else if (rest == 2) {
    const uint32_t n =
        (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  // A lone trailing character carries 6 bits, less than a byte: no encoder produces it.
  if (text.size() % 4 == 1) return std::nullopt;
  auto sextet = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t bits = 0;
  int bit_count = 0;
  for (char c : text) {
    const int value = sextet(c);
    if (value < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(value);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out += static_cast<char>((bits >> bit_count) & 0xFF);
    }
  }
  // Leftover bits must be zero, or two different texts would decode to the same bytes.
  if ((bits & ((1u << bit_count) - 1)) != 0) return std::nullopt;
  return out;
}

std::string random_secret() {
  std::array<unsigned char, kSecretBytes> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed: no secure randomness available");
  }
  return base64url_encode(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace boxoffice::jwt
