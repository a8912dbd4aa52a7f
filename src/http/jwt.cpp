#include "http/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <array>
#include <boost/json.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
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

// OpenSSL objects owned by unique_ptr; every deleter accepts null.
template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using ParamBuildPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using ParamsPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM, OSSL_PARAM_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;

void free_bio(BIO* bio) { BIO_free(bio); }
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, free_bio>>;

std::shared_ptr<EVP_PKEY> share(PkeyPtr key) {
  return std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free);
}

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Size of an ES256 signature (RFC 7518 §3.4): R and S, 32 big-endian bytes each.
constexpr std::size_t kEs256SignatureBytes = 64;
constexpr std::size_t kP256CoordinateBytes = 32;
constexpr std::size_t kKidBytesMax = 255;

// RSASSA-PKCS1-v1_5 or ECDSA over SHA-256 with OpenSSL's EVP interface. False for a bad signature
// and for any OpenSSL failure; the thread's error queue is left empty either way.
bool evp_verify_sha256(EVP_PKEY* key, std::string_view data, const unsigned char* signature,
                       std::size_t signature_size) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  const bool ok =
      ctx != nullptr && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx.get(), signature, signature_size, bytes_of(data), data.size()) == 1;
  ERR_clear_error();
  return ok;
}

bool verify_rs256(EVP_PKEY* key, std::string_view data, std::string_view signature) {
  // PKCS#1 v1.5 signatures are exactly as long as the modulus.
  if (signature.empty() || signature.size() != static_cast<std::size_t>(EVP_PKEY_get_size(key))) {
    return false;
  }
  return evp_verify_sha256(key, data, bytes_of(signature), signature.size());
}

bool verify_es256(EVP_PKEY* key, std::string_view data, std::string_view signature) {
  // JOSE writes R || S; EVP wants the DER SEQUENCE of two INTEGERs. A DER signature (or any
  // other length) is refused rather than guessed at.
  if (signature.size() != kEs256SignatureBytes) return false;
  BignumPtr r(BN_bin2bn(bytes_of(signature), kP256CoordinateBytes, nullptr));
  BignumPtr s(BN_bin2bn(bytes_of(signature) + kP256CoordinateBytes, kP256CoordinateBytes, nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    ERR_clear_error();
    return false;
  }
  (void)r.release();  // owned by sig now
  (void)s.release();
  unsigned char* der = nullptr;
  const int der_size = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_size <= 0) {
    ERR_clear_error();
    return false;
  }
  const bool ok = evp_verify_sha256(key, data, der, static_cast<std::size_t>(der_size));
  OPENSSL_free(der);
  return ok;
}

bool verify_hs256(std::string_view secret, std::string_view data, std::string_view signature) {
  const Digest expected = hmac_sha256(secret, data);
  return signature.size() == expected.size() &&
         CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) == 0;
}

std::optional<Algorithm> algorithm_named(std::string_view name) {
  if (name == "HS256") return Algorithm::hs256;
  if (name == "RS256") return Algorithm::rs256;
  if (name == "ES256") return Algorithm::es256;
  return std::nullopt;
}

// The key a token names, or the HS256 secret for a token without "kid"; the token's alg must be
// the one the key is pinned to.
struct SelectedKey {
  Algorithm alg;
  EVP_PKEY* public_key = nullptr;
  std::string_view secret;
};

Result<SelectedKey> select_key(const json::object& header, const VerifierConfig& config) {
  const json::value* alg_value = header.if_contains("alg");
  if (alg_value == nullptr || !alg_value->is_string()) return unauthorized("alg not allowed");
  const auto alg = algorithm_named(alg_value->get_string());
  if (!alg) return unauthorized("alg not allowed");

  const json::value* kid = header.if_contains("kid");
  if (kid == nullptr) {
    // Only the development secret verifies kid-less tokens: an asymmetric key is always named.
    if (*alg != Algorithm::hs256) return unauthorized("alg not allowed without kid");
    if (config.hs256_secret.empty()) return unauthorized("no verification key");
    return SelectedKey{Algorithm::hs256, nullptr, config.hs256_secret};
  }
  if (!kid->is_string()) return unauthorized("bad kid");
  for (const VerificationKey& key : config.keys) {
    if (key.kid != kid->get_string()) continue;
    if (key.alg != *alg) return unauthorized("alg not allowed for this key");
    return SelectedKey{key.alg, key.public_key.get(), key.secret};
  }
  return unauthorized("unknown kid");
}

Result<Ok> check_header(const json::object& header) {
  if (const json::value* typ = header.if_contains("typ")) {
    // RFC 7519 §5.1 "JWT", or RFC 9068's access-token type; media types ignore case.
    if (!typ->is_string() ||
        !(iequals(typ->get_string(), "JWT") || iequals(typ->get_string(), "at+jwt"))) {
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

  // The header is read before the signature is checked: it names the key, and a token for another
  // algorithm gets the precise answer. Nothing in it is trusted beyond being compared with the
  // configuration.
  if (header_part.size() > kHeaderBytesMax) return unauthorized("header too long");
  const auto header = decode_object(header_part);
  if (!header) return unauthorized("bad header");
  auto key = select_key(*header, config);
  if (!key) return key.take_error();
  if (auto checked = check_header(*header); !checked) return checked.take_error();

  const auto signature = base64url_decode(signature_part);
  if (!signature) return unauthorized("bad signature");
  const std::string_view signing_input = token.substr(0, second_dot);
  bool valid = false;
  switch (key->alg) {
    case Algorithm::hs256:
      valid = verify_hs256(key->secret, signing_input, *signature);
      break;
    case Algorithm::rs256:
      valid =
          key->public_key != nullptr && verify_rs256(key->public_key, signing_input, *signature);
      break;
    case Algorithm::es256:
      valid =
          key->public_key != nullptr && verify_es256(key->public_key, signing_input, *signature);
      break;
  }
  if (!valid) return unauthorized("bad signature");

  const auto payload = decode_object(payload_part);
  if (!payload) return unauthorized("bad payload");
  return check_payload(*payload, config, now);
}

// --- key loading --------------------------------------------------------------------------------

Error bad_key(std::string detail) { return make_error(Errc::invalid_request, std::move(detail)); }

std::string describe_kid(std::string_view kid) { return "key \"" + std::string(kid) + "\""; }

// RSA keys between kRsaBitsMin and kRsaBitsMax bits, EC keys on P-256; anything else is refused.
Result<Algorithm> algorithm_of(EVP_PKEY* key, std::string_view kid) {
  if (EVP_PKEY_is_a(key, "RSA")) {
    const int bits = EVP_PKEY_get_bits(key);
    if (bits < kRsaBitsMin || bits > kRsaBitsMax) {
      return bad_key(describe_kid(kid) + ": an RSA key of " + std::to_string(bits) +
                     " bits; RS256 needs " + std::to_string(kRsaBitsMin) + " to " +
                     std::to_string(kRsaBitsMax));
    }
    return Algorithm::rs256;
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    std::array<char, 64> group{};
    std::size_t length = 0;
    if (EVP_PKEY_get_group_name(key, group.data(), group.size(), &length) != 1 ||
        std::string_view(group.data(), length) != SN_X9_62_prime256v1) {
      ERR_clear_error();
      return bad_key(describe_kid(kid) + ": an EC key not on P-256; ES256 needs P-256");
    }
    return Algorithm::es256;
  }
  return bad_key(describe_kid(kid) + ": neither an RSA nor an EC P-256 public key");
}

// OpenSSL's own consistency check of a public key (RSA: odd modulus and exponent; EC: the point
// is on the curve and not the identity).
Result<Ok> check_public_key(EVP_PKEY* key, std::string_view kid) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  const bool ok = ctx != nullptr && EVP_PKEY_public_check(ctx.get()) == 1;
  ERR_clear_error();
  if (!ok) return bad_key(describe_kid(kid) + ": OpenSSL refuses the public key as invalid");
  return Ok{};
}

Result<std::string> jwk_bytes(const json::object& jwk, std::string_view member,
                              std::string_view kid) {
  const json::value* value = jwk.if_contains(member);
  std::optional<std::string> bytes;
  if (value != nullptr && value->is_string()) bytes = base64url_decode(value->get_string());
  if (!bytes || bytes->empty()) {
    return bad_key(describe_kid(kid) + ": \"" + std::string(member) +
                   "\" must be a non-empty base64url string");
  }
  return std::move(*bytes);
}

Result<PkeyPtr> public_key_from_params(const char* type, OSSL_PARAM_BLD* build,
                                       std::string_view kid) {
  ParamsPtr params(OSSL_PARAM_BLD_to_param(build));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  const bool ok = params && ctx && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
                  EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) == 1;
  PkeyPtr key(raw);
  ERR_clear_error();
  if (!ok || !key) return bad_key(describe_kid(kid) + ": OpenSSL cannot build the public key");
  return key;
}

Result<PkeyPtr> rsa_from_jwk(const json::object& jwk, std::string_view kid) {
  auto n = jwk_bytes(jwk, "n", kid);
  if (!n) return n.take_error();
  auto e = jwk_bytes(jwk, "e", kid);
  if (!e) return e.take_error();
  BignumPtr n_bn(BN_bin2bn(bytes_of(*n), static_cast<int>(n->size()), nullptr));
  BignumPtr e_bn(BN_bin2bn(bytes_of(*e), static_cast<int>(e->size()), nullptr));
  ParamBuildPtr build(OSSL_PARAM_BLD_new());
  if (!n_bn || !e_bn || !build ||
      OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, n_bn.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, e_bn.get()) != 1) {
    ERR_clear_error();
    return bad_key(describe_kid(kid) + ": OpenSSL cannot read n and e");
  }
  return public_key_from_params("RSA", build.get(), kid);
}

Result<PkeyPtr> ec_from_jwk(const json::object& jwk, std::string_view kid) {
  const json::value* crv = jwk.if_contains("crv");
  if (crv == nullptr || !crv->is_string() || crv->get_string() != "P-256") {
    return bad_key(describe_kid(kid) + ": crv must be \"P-256\"");
  }
  auto x = jwk_bytes(jwk, "x", kid);
  if (!x) return x.take_error();
  auto y = jwk_bytes(jwk, "y", kid);
  if (!y) return y.take_error();
  // RFC 7518 §6.2.1.2: each coordinate is the full size of the field, leading zeros kept.
  if (x->size() != kP256CoordinateBytes || y->size() != kP256CoordinateBytes) {
    return bad_key(describe_kid(kid) + ": x and y must be 32 bytes each");
  }
  std::string point = "\x04" + *x + *y;  // SEC 1 uncompressed point
  ParamBuildPtr build(OSSL_PARAM_BLD_new());
  if (!build ||
      OSSL_PARAM_BLD_push_utf8_string(build.get(), OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1,
                                      0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    ERR_clear_error();
    return bad_key(describe_kid(kid) + ": OpenSSL cannot read x and y");
  }
  return public_key_from_params("EC", build.get(), kid);
}

Result<VerificationKey> key_from_jwk(const json::value& value) {
  if (!value.is_object()) return bad_key("every entry of \"keys\" must be an object");
  const json::object& jwk = value.get_object();
  const json::value* kid_value = jwk.if_contains("kid");
  if (kid_value == nullptr || !kid_value->is_string() || kid_value->get_string().empty() ||
      kid_value->get_string().size() > kKidBytesMax) {
    return bad_key("a key without \"kid\" (every key needs a kid of 1-255 characters)");
  }
  VerificationKey key;
  key.kid = std::string(kid_value->get_string());
  const json::value* alg_value = jwk.if_contains("alg");
  if (alg_value == nullptr || !alg_value->is_string()) {
    return bad_key(describe_kid(key.kid) + ": no \"alg\" (every key is pinned to one algorithm)");
  }
  const auto alg = algorithm_named(alg_value->get_string());
  if (!alg) {
    return bad_key(describe_kid(key.kid) + ": alg \"" + std::string(alg_value->get_string()) +
                   "\" is not one of HS256, RS256, ES256");
  }
  key.alg = *alg;
  if (const json::value* use = jwk.if_contains("use")) {
    if (!use->is_string() || use->get_string() != "sig") {
      return bad_key(describe_kid(key.kid) + ": \"use\" must be \"sig\"");
    }
  }
  if (const json::value* ops = jwk.if_contains("key_ops")) {
    bool verifies = false;
    if (ops->is_array()) {
      for (const json::value& op : ops->get_array()) {
        verifies = verifies || (op.is_string() && op.get_string() == "verify");
      }
    }
    if (!verifies) return bad_key(describe_kid(key.kid) + ": \"key_ops\" lacks \"verify\"");
  }
  const json::value* kty = jwk.if_contains("kty");
  std::string_view kty_name;
  if (kty != nullptr && kty->is_string()) kty_name = kty->get_string();
  const std::string_view wanted_kty = key.alg == Algorithm::rs256   ? "RSA"
                                      : key.alg == Algorithm::es256 ? "EC"
                                                                    : "oct";
  if (kty_name != wanted_kty) {
    return bad_key(describe_kid(key.kid) + ": alg " + std::string(to_string(key.alg)) +
                   " needs kty \"" + std::string(wanted_kty) + "\"");
  }
  if (key.alg == Algorithm::hs256) {
    auto secret = jwk_bytes(jwk, "k", key.kid);
    if (!secret) return secret.take_error();
    if (secret->size() < kHmacKeyBytesMin) {
      return bad_key(describe_kid(key.kid) + ": an HS256 key needs at least 32 bytes");
    }
    key.secret = std::move(*secret);
    return key;
  }
  // A verification key set holds public keys only; a private one here is a leak waiting to happen.
  for (const char* private_member : {"d", "p", "q", "dp", "dq", "qi", "oth"}) {
    if (jwk.contains(private_member)) {
      return bad_key(describe_kid(key.kid) + ": has private key material (\"" +
                     std::string(private_member) + "\"); publish public keys only");
    }
  }
  auto pkey = key.alg == Algorithm::rs256 ? rsa_from_jwk(jwk, key.kid) : ec_from_jwk(jwk, key.kid);
  if (!pkey) return pkey.take_error();
  auto actual = algorithm_of(pkey->get(), key.kid);
  if (!actual) return actual.take_error();
  if (auto checked = check_public_key(pkey->get(), key.kid); !checked) return checked.take_error();
  key.public_key = share(std::move(*pkey));
  return key;
}

Result<std::string> read_key_file(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return bad_key("cannot read " + path.string() + ": " + ec.message());
  if (size > kKeyFileBytesMax) {
    return bad_key(path.string() + " is larger than " + std::to_string(kKeyFileBytesMax) +
                   " bytes");
  }
  std::ifstream in(path, std::ios::binary);
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (!in && !in.eof()) return bad_key("cannot read " + path.string());
  return text;
}

bool looks_like_json(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '{';
}

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
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

std::string_view to_string(Algorithm alg) {
  switch (alg) {
    case Algorithm::hs256:
      return "HS256";
    case Algorithm::rs256:
      return "RS256";
    case Algorithm::es256:
      return "ES256";
  }
  return "?";
}

Result<std::vector<VerificationKey>> parse_jwks(std::string_view document) {
  try {
    boost::system::error_code ec;
    const json::value value = json::parse(document, ec);
    if (ec) return bad_key("not JSON: " + ec.message());
    const json::value* keys = value.is_object() ? value.get_object().if_contains("keys") : nullptr;
    if (keys == nullptr || !keys->is_array()) {
      return bad_key("a JWKS is an object with a \"keys\" array");
    }
    if (keys->get_array().empty()) return bad_key("the JWKS has no keys");
    if (keys->get_array().size() > kKeysMax) {
      return bad_key("more than " + std::to_string(kKeysMax) + " keys");
    }
    std::vector<VerificationKey> out;
    std::set<std::string> kids;
    for (const json::value& jwk : keys->get_array()) {
      auto key = key_from_jwk(jwk);
      if (!key) return key.take_error();
      if (!kids.insert(key->kid).second) return bad_key(describe_kid(key->kid) + " appears twice");
      out.push_back(std::move(*key));
    }
    return out;
  } catch (const std::exception& e) {
    return bad_key(std::string("cannot read the JWKS: ") + e.what());
  }
}

Result<VerificationKey> parse_public_key_pem(std::string_view pem, std::string kid) {
  if (kid.empty() || kid.size() > kKidBytesMax) return bad_key("a key needs a kid of 1-255 bytes");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr pkey(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  if (!pkey) {
    return bad_key(describe_kid(kid) + ": not a PEM \"PUBLIC KEY\" (SubjectPublicKeyInfo)");
  }
  auto alg = algorithm_of(pkey.get(), kid);
  if (!alg) return alg.take_error();
  if (auto checked = check_public_key(pkey.get(), kid); !checked) return checked.take_error();
  VerificationKey key;
  key.kid = std::move(kid);
  key.alg = *alg;
  key.public_key = share(std::move(pkey));
  return key;
}

Result<std::vector<VerificationKey>> load_keys(std::string_view setting) {
  std::vector<std::filesystem::path> paths;
  for (std::size_t begin = 0; begin <= setting.size();) {
    auto end = setting.find(',', begin);
    if (end == std::string_view::npos) end = setting.size();
    const auto item = trim(setting.substr(begin, end - begin));
    if (item.empty()) return bad_key("an empty file name in \"" + std::string(setting) + "\"");
    paths.emplace_back(item);
    begin = end + 1;
  }
  if (paths.size() > kKeysMax) return bad_key("more than " + std::to_string(kKeysMax) + " keys");
  std::vector<VerificationKey> keys;
  std::set<std::string> kids;
  for (const auto& path : paths) {
    auto text = read_key_file(path);
    if (!text) return text.take_error();
    if (looks_like_json(*text)) {
      if (paths.size() != 1) {
        return bad_key(path.string() + " is a JWKS; a JWKS must be the only key file");
      }
      auto jwks = parse_jwks(*text);
      if (!jwks) return bad_key(path.string() + ": " + jwks.error().detail);
      return jwks;
    }
    auto key = parse_public_key_pem(*text, path.stem().string());
    if (!key) return bad_key(path.string() + ": " + key.error().detail);
    if (!kids.insert(key->kid).second) {
      return bad_key(path.string() + ": " + describe_kid(key->kid) + " appears twice");
    }
    keys.push_back(std::move(*key));
  }
  return keys;
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
