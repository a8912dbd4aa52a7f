#include "http/jwt.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <memory>
#include <set>
#include <stdexcept>
#include <string>

namespace boxoffice::jwt {
namespace {

using std::chrono::seconds;

constexpr std::string_view kSecret = "test-secret-0123456789abcdef";
constexpr std::string_view kHeader = R"({"alg":"HS256","typ":"JWT"})";
// 2027-01-01T00:00:00Z, in seconds; tokens below are built around it.
constexpr int64_t kNow = 1798761600;

Timestamp now_ts() { return from_unix_ms(kNow * 1000); }

VerifierConfig config() {
  return VerifierConfig{std::string(kSecret), "boxoffice", "boxoffice", seconds(30)};
}

// A payload that passes every check; `extra` members are appended verbatim (JSON keeps the last
// duplicate, so they also override).
std::string payload(const std::string& extra = "") {
  std::string p = R"({"sub":"alice","roles":["admin","buyer"],"iss":"boxoffice","aud":"boxoffice",)"
                  R"("iat":)" +
                  std::to_string(kNow - 10) + R"(,"exp":)" + std::to_string(kNow + 600);
  if (!extra.empty()) p += "," + extra;
  return p + "}";
}

// Payload with the given members only, for the tests about a missing claim.
std::string payload_without(const std::string& members) { return "{" + members + "}"; }

std::string token(std::string_view header = kHeader, const std::string& body = payload()) {
  return sign_hs256_raw(kSecret, header, body);
}

std::string detail_of(std::string_view t) {
  auto result = verify(t, config(), now_ts());
  EXPECT_FALSE(result.ok()) << t;
  if (result.ok()) return "";
  EXPECT_EQ(result.error().code, Errc::unauthorized);
  return result.error().detail;
}

void expect_rejected(std::string_view t, std::string_view expected_detail) {
  EXPECT_EQ(detail_of(t), expected_detail) << t;
}

TEST(Jwt, AcceptsValidTokenWithSubjectRolesAndExpiry) {
  auto claims = verify(token(), config(), now_ts());
  ASSERT_TRUE(claims.ok()) << claims.error().detail;
  EXPECT_EQ(claims->subject, "alice");
  EXPECT_EQ(claims->roles, (std::vector<std::string>{"admin", "buyer"}));
  EXPECT_EQ(claims->expires_at, from_unix_ms((kNow + 600) * 1000));
}

TEST(Jwt, RolesAreOptional) {
  const std::string body = payload_without(R"("sub":"bob","iss":"boxoffice","aud":"boxoffice",)"
                                           R"("exp":)" +
                                           std::to_string(kNow + 60));
  auto claims = verify(token(kHeader, body), config(), now_ts());
  ASSERT_TRUE(claims.ok()) << claims.error().detail;
  EXPECT_EQ(claims->subject, "bob");
  EXPECT_TRUE(claims->roles.empty());
}

TEST(Jwt, TypIsOptionalAndCaseInsensitive) {
  EXPECT_TRUE(verify(token(R"({"alg":"HS256"})"), config(), now_ts()).ok());
  EXPECT_TRUE(verify(token(R"({"alg":"HS256","typ":"jwt"})"), config(), now_ts()).ok());
}

TEST(Jwt, RejectsAlgNone) {
  // The classic downgrade: an unsigned token whose header asks for no verification.
  const std::string unsigned_token =
      base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." + base64url_encode(payload()) + ".";
  expect_rejected(unsigned_token, "alg not allowed");
  expect_rejected(token(R"({"alg":"none"})"), "alg not allowed");
}

TEST(Jwt, RejectsOtherHmacAlgorithms) {
  expect_rejected(token(R"({"alg":"HS512","typ":"JWT"})"), "alg not allowed");
  expect_rejected(token(R"({"alg":"HS384","typ":"JWT"})"), "alg not allowed");
  expect_rejected(token(R"({"alg":"hs256","typ":"JWT"})"), "alg not allowed");
}

TEST(Jwt, RejectsAsymmetricAlgorithmHeader) {
  // Key confusion: an RS256 token "verified" with the HMAC secret as if it were a public key.
  expect_rejected(token(R"({"alg":"RS256","typ":"JWT"})"), "alg not allowed without kid");
  expect_rejected(token(R"({"alg":"ES256","typ":"JWT"})"), "alg not allowed without kid");
}

TEST(Jwt, RejectsMissingOrNonStringAlg) {
  expect_rejected(token(R"({"typ":"JWT"})"), "alg not allowed");
  expect_rejected(token(R"({"alg":256})"), "alg not allowed");
}

TEST(Jwt, RejectsTamperedPayload) {
  const std::string good = token();
  const auto dot1 = good.find('.');
  const auto dot2 = good.find('.', dot1 + 1);
  const std::string forged = good.substr(0, dot1) + "." +
                             base64url_encode(payload(R"("sub":"mallory")")) + good.substr(dot2);
  expect_rejected(forged, "bad signature");
}

TEST(Jwt, RejectsFlippedSignatureBit) {
  std::string t = token();
  // The first signature character carries 6 full bits, so flipping it changes the digest.
  const auto sig = t.rfind('.') + 1;
  t[sig] = t[sig] == 'A' ? 'B' : 'A';
  expect_rejected(t, "bad signature");
}

TEST(Jwt, RejectsTokenSignedWithAnotherSecret) {
  expect_rejected(sign_hs256_raw("another-secret", kHeader, payload()), "bad signature");
}

TEST(Jwt, RejectsEmptySignature) {
  const std::string t = token();
  expect_rejected(t.substr(0, t.rfind('.') + 1), "bad signature");
}

TEST(Jwt, RejectsTruncatedSignature) {
  const std::string t = token();
  expect_rejected(t.substr(0, t.size() - 4), "bad signature");
}

TEST(Jwt, RejectsWrongNumberOfParts) {
  const std::string t = token();
  expect_rejected(t.substr(0, t.rfind('.')), "malformed token");  // 2 parts
  expect_rejected(t + ".AAAA", "malformed token");                // 4 parts
  expect_rejected("", "malformed token");
  expect_rejected("no-dots-at-all", "malformed token");
  expect_rejected("..", "bad header");
}

TEST(Jwt, RejectsBadBase64) {
  const std::string t = token();
  const auto dot1 = t.find('.');
  expect_rejected("e30=" + t.substr(dot1), "bad header");  // padding
  expect_rejected(t.substr(0, dot1) + ".!!!!" + t.substr(t.rfind('.')), "bad signature");
  std::string padded_signature = t + "=";
  expect_rejected(padded_signature, "bad signature");
}

TEST(Jwt, RejectsNonJsonHeader) {
  expect_rejected(token("not json"), "bad header");
  expect_rejected(token(R"(["alg","HS256"])"), "bad header");  // JSON, but not an object
}

TEST(Jwt, RejectsNonJsonPayload) {
  expect_rejected(token(kHeader, "not json"), "bad payload");
  expect_rejected(token(kHeader, R"("alice")"), "bad payload");
}

TEST(Jwt, RejectsMissingExp) {
  expect_rejected(
      token(kHeader, payload_without(R"("sub":"alice","iss":"boxoffice","aud":"boxoffice")")),
      "missing exp");
}

TEST(Jwt, RejectsNonNumericExp) {
  expect_rejected(token(kHeader, payload(R"("exp":")" + std::to_string(kNow + 600) + "\"")),
                  "bad exp");
  expect_rejected(token(kHeader, payload(R"("exp":null)")), "bad exp");
  expect_rejected(token(kHeader, payload(R"("exp":true)")), "bad exp");
  expect_rejected(token(kHeader, payload(R"("exp":1e300)")), "bad exp");
}

TEST(Jwt, RejectsExpiredBeyondLeeway) {
  expect_rejected(token(kHeader, payload(R"("exp":)" + std::to_string(kNow - 30))),
                  "token expired");
  expect_rejected(token(kHeader, payload(R"("exp":)" + std::to_string(kNow - 3600))),
                  "token expired");
}

TEST(Jwt, AcceptsExpiredWithinLeeway) {
  auto claims =
      verify(token(kHeader, payload(R"("exp":)" + std::to_string(kNow - 29))), config(), now_ts());
  EXPECT_TRUE(claims.ok()) << claims.error().detail;
}

TEST(Jwt, LeewayIsConfigurable) {
  VerifierConfig strict = config();
  strict.leeway = seconds(0);
  const std::string just_expired = token(kHeader, payload(R"("exp":)" + std::to_string(kNow)));
  EXPECT_FALSE(verify(just_expired, strict, now_ts()).ok());
  EXPECT_TRUE(verify(just_expired, strict, now_ts() - std::chrono::milliseconds(1)).ok());
}

TEST(Jwt, RejectsNotBeforeInTheFuture) {
  expect_rejected(token(kHeader, payload(R"("nbf":)" + std::to_string(kNow + 31))),
                  "token not yet valid");
  EXPECT_TRUE(
      verify(token(kHeader, payload(R"("nbf":)" + std::to_string(kNow + 30))), config(), now_ts())
          .ok());
  expect_rejected(token(kHeader, payload(R"("nbf":"soon")")), "bad nbf");
}

TEST(Jwt, RejectsNonNumericIat) {
  expect_rejected(token(kHeader, payload(R"("iat":"yesterday")")), "bad iat");
}

TEST(Jwt, RejectsWrongOrMissingIssuer) {
  expect_rejected(token(kHeader, payload(R"("iss":"someone-else")")), "wrong issuer");
  expect_rejected(token(kHeader, payload_without(R"("sub":"alice","aud":"boxoffice","exp":)" +
                                                 std::to_string(kNow + 60))),
                  "wrong issuer");
}

TEST(Jwt, RejectsWrongOrMissingAudience) {
  expect_rejected(token(kHeader, payload(R"("aud":"other-service")")), "wrong audience");
  expect_rejected(token(kHeader, payload(R"("aud":["a","b"])")), "wrong audience");
  expect_rejected(token(kHeader, payload(R"("aud":7)")), "wrong audience");
  expect_rejected(token(kHeader, payload_without(R"("sub":"alice","iss":"boxoffice","exp":)" +
                                                 std::to_string(kNow + 60))),
                  "wrong audience");
}

TEST(Jwt, AcceptsAudienceArrayContainingAudience) {
  auto claims =
      verify(token(kHeader, payload(R"("aud":["billing","boxoffice"])")), config(), now_ts());
  EXPECT_TRUE(claims.ok()) << claims.error().detail;
}

TEST(Jwt, RejectsMissingEmptyOrOversizedSubject) {
  expect_rejected(token(kHeader, payload_without(R"("iss":"boxoffice","aud":"boxoffice","exp":)" +
                                                 std::to_string(kNow + 60))),
                  "bad sub");
  expect_rejected(token(kHeader, payload(R"("sub":"")")), "bad sub");
  expect_rejected(token(kHeader, payload(R"("sub":42)")), "bad sub");
  expect_rejected(token(kHeader, payload(R"("sub":")" + std::string(256, 'a') + "\"")), "bad sub");
  EXPECT_TRUE(verify(token(kHeader, payload(R"("sub":")" + std::string(255, 'a') + "\"")), config(),
                     now_ts())
                  .ok());
}

TEST(Jwt, RejectsRolesThatAreNotAnArrayOfStrings) {
  expect_rejected(token(kHeader, payload(R"("roles":"admin")")),
                  "roles must be an array of strings");
  expect_rejected(token(kHeader, payload(R"("roles":["admin",1])")),
                  "roles must be an array of strings");
}

TEST(Jwt, RejectsOtherTyp) {
  expect_rejected(token(R"({"alg":"HS256","typ":"JOSE+JSON"})"), "typ not allowed");
  expect_rejected(token(R"({"alg":"HS256","typ":1})"), "typ not allowed");
}

TEST(Jwt, RejectsCriticalExtensions) {
  expect_rejected(token(R"({"alg":"HS256","crit":["exp"]})"), "crit not supported");
}

TEST(Jwt, RejectsOversizedToken) {
  const std::string big = token(kHeader, payload(R"("pad":")" + std::string(9000, 'x') + "\""));
  ASSERT_GT(big.size(), kTokenBytesMax);
  expect_rejected(big, "token too long");
}

TEST(Jwt, EmptyConfiguredSecretRejectsEverything) {
  VerifierConfig no_key = config();
  no_key.hs256_secret.clear();
  EXPECT_FALSE(verify(sign_hs256_raw("", kHeader, payload()), no_key, now_ts()).ok());
}

TEST(Jwt, MintThenVerifyRoundTrips) {
  MintOptions options{"carol", {"admin"}, seconds(120), "boxoffice", "boxoffice"};
  const std::string minted = mint_hs256(kSecret, options, now_ts());
  auto claims = verify(minted, config(), now_ts());
  ASSERT_TRUE(claims.ok()) << claims.error().detail;
  EXPECT_EQ(claims->subject, "carol");
  EXPECT_EQ(claims->roles, std::vector<std::string>{"admin"});
  EXPECT_EQ(claims->expires_at, now_ts() + seconds(120));
  // Past ttl + leeway the same token is refused.
  EXPECT_FALSE(verify(minted, config(), now_ts() + seconds(150)).ok());
  EXPECT_FALSE(verify(minted, VerifierConfig{"other", "boxoffice", "boxoffice"}, now_ts()).ok());
}

TEST(Jwt, MintedTokenOmitsEmptyIssuerAndAudience) {
  const std::string minted =
      mint_hs256(kSecret, MintOptions{"dave", {}, seconds(60), "", ""}, now_ts());
  EXPECT_EQ(detail_of(minted), "wrong issuer");
}

// --- RS256 and ES256: keys made here with OpenSSL's EVP interface, in memory only -----------

using Pkey = std::shared_ptr<EVP_PKEY>;

Pkey generate(const char* type, const char* parameter) {
  EVP_PKEY* key =
      std::string_view(type) == "RSA"
          ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(std::stoul(parameter)))
          : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", parameter);
  if (key == nullptr) throw std::runtime_error(std::string("cannot generate a key: ") + type);
  return Pkey(key, EVP_PKEY_free);
}

// Generated once: RSA key generation is slow under the sanitizers.
struct TestKeys {
  Pkey rsa = generate("RSA", "2048");
  Pkey rsa_other = generate("RSA", "2048");
  Pkey rsa_weak = generate("RSA", "1024");
  Pkey ec = generate("EC", "P-256");
  Pkey ec_other = generate("EC", "P-256");
  Pkey ec_p384 = generate("EC", "P-384");
};

const TestKeys& keys() {
  static const TestKeys instance;
  return instance;
}

std::string evp_sign(EVP_PKEY* key, std::string_view data, int rsa_padding = RSA_PKCS1_PADDING) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  std::size_t length = 0;
  if (EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha256(), nullptr, key) != 1 ||
      (EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_CTX_set_rsa_padding(pctx, rsa_padding) != 1) ||
      EVP_DigestSign(ctx.get(), nullptr, &length,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    throw std::runtime_error("EVP_DigestSign failed");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    throw std::runtime_error("EVP_DigestSign failed");
  }
  signature.resize(length);
  return signature;
}

// EVP writes ECDSA signatures in DER; JOSE wants R || S, 32 bytes each.
std::string der_to_jose(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())), ECDSA_SIG_free);
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(64, '\0');
  BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  return raw;
}

enum class Encoding { jose, der };

std::string sign_raw(EVP_PKEY* key, std::string_view header_json,
                     std::string_view payload_json = payload(),
                     Encoding encoding = Encoding::jose) {
  const std::string input = base64url_encode(header_json) + "." + base64url_encode(payload_json);
  std::string signature = evp_sign(key, input);
  if (EVP_PKEY_is_a(key, "EC") && encoding == Encoding::jose) signature = der_to_jose(signature);
  return input + "." + base64url_encode(signature);
}

std::string bn_param(EVP_PKEY* key, const char* name, int pad_to = 0) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) throw std::runtime_error(name);
  std::string bytes(pad_to > 0 ? pad_to : BN_num_bytes(bn), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  BN_free(bn);
  return base64url_encode(bytes);
}

std::string rsa_jwk(EVP_PKEY* key, std::string_view kid, std::string_view extra = "") {
  return R"({"kty":"RSA","kid":")" + std::string(kid) + R"(","alg":"RS256","n":")" +
         bn_param(key, OSSL_PKEY_PARAM_RSA_N) + R"(","e":")" +
         bn_param(key, OSSL_PKEY_PARAM_RSA_E) + "\"" + std::string(extra) + "}";
}

std::string ec_jwk(EVP_PKEY* key, std::string_view kid, std::string_view extra = "") {
  return R"({"kty":"EC","crv":"P-256","kid":")" + std::string(kid) + R"(","alg":"ES256","x":")" +
         bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, 32) + R"(","y":")" +
         bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32) + "\"" + std::string(extra) + "}";
}

std::string jwks_of(std::initializer_list<std::string> keys) {
  std::string out = R"({"keys":[)";
  for (const auto& key : keys) out += (out.back() == '[' ? "" : ",") + key;
  return out + "]}";
}

std::string public_pem(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PUBKEY(bio.get(), key);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

const std::string kHsKey(32, 'k');

// The key set most tests use: "rs" (RS256), "es" (ES256), "hs" (HS256, a JWKS oct key).
VerifierConfig keyed_config() {
  VerifierConfig c = config();
  auto parsed = parse_jwks(jwks_of(
      {rsa_jwk(keys().rsa.get(), "rs"), ec_jwk(keys().ec.get(), "es"),
       R"({"kty":"oct","kid":"hs","alg":"HS256","k":")" + base64url_encode(kHsKey) + "\"}"}));
  if (!parsed) throw std::runtime_error(parsed.error().detail);
  c.keys = std::move(*parsed);
  return c;
}

std::string keyed_detail(std::string_view t) {
  auto result = verify(t, keyed_config(), now_ts());
  EXPECT_FALSE(result.ok()) << t;
  if (result.ok()) return "";
  EXPECT_EQ(result.error().code, Errc::unauthorized);
  return result.error().detail;
}

constexpr std::string_view kRsHeader = R"({"alg":"RS256","kid":"rs","typ":"JWT"})";
constexpr std::string_view kEsHeader = R"({"alg":"ES256","kid":"es","typ":"JWT"})";

TEST(JwtKeys, JwksYieldsKeysPinnedToTheirAlgorithms) {
  const auto c = keyed_config();
  ASSERT_EQ(c.keys.size(), 3u);
  EXPECT_EQ(c.keys[0].kid, "rs");
  EXPECT_EQ(c.keys[0].alg, Algorithm::rs256);
  EXPECT_NE(c.keys[0].public_key, nullptr);
  EXPECT_EQ(c.keys[1].kid, "es");
  EXPECT_EQ(c.keys[1].alg, Algorithm::es256);
  EXPECT_EQ(c.keys[2].alg, Algorithm::hs256);
  EXPECT_EQ(c.keys[2].secret, kHsKey);
}

TEST(JwtKeys, JwksRefusesKeysItCannotPinOrTrust) {
  EVP_PKEY* rsa = keys().rsa.get();
  EVP_PKEY* ec = keys().ec.get();
  const std::string no_kid = R"({"kty":"RSA","alg":"RS256","n":")" +
                             bn_param(rsa, OSSL_PKEY_PARAM_RSA_N) + R"(","e":"AQAB"})";
  const std::string no_alg = R"({"kty":"EC","crv":"P-256","kid":"e","x":")" +
                             bn_param(ec, OSSL_PKEY_PARAM_EC_PUB_X, 32) + R"(","y":")" +
                             bn_param(ec, OSSL_PKEY_PARAM_EC_PUB_Y, 32) + R"("})";
  std::string off_curve = ec_jwk(ec, "e");
  off_curve.replace(off_curve.find(R"("y":")") + 5, 4, "AAAA");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not JSON"},
      {R"({"keys":{}})", "\"keys\" array"},
      {R"({"keys":[]})", "no keys"},
      {jwks_of({no_kid}), "without \"kid\""},
      {jwks_of({no_alg}), "no \"alg\""},
      {jwks_of({rsa_jwk(rsa, "r", R"(,"use":"enc")")}), "\"use\" must be \"sig\""},
      {jwks_of({rsa_jwk(rsa, "r", R"(,"key_ops":["encrypt"])")}), "lacks \"verify\""},
      {jwks_of({rsa_jwk(rsa, "r", R"(,"d":"AQAB")")}), "private key material"},
      {jwks_of({rsa_jwk(keys().rsa_weak.get(), "r")}), "1024 bits"},
      {jwks_of({rsa_jwk(rsa, "same"), rsa_jwk(keys().rsa_other.get(), "same")}), "appears twice"},
      {jwks_of({off_curve}), "OpenSSL"},
      {jwks_of({R"({"kty":"EC","crv":"P-384","kid":"e","alg":"ES256","x":"AA","y":"AA"})"}),
       "P-256"},
      {jwks_of({R"({"kty":"EC","crv":"P-256","kid":"e","alg":"ES256","x":"AAAA","y":"AAAA"})"}),
       "32 bytes"},
      {jwks_of({R"({"kty":"oct","kid":"h","alg":"HS256","k":"c2hvcnQ"})"}), "at least 32 bytes"},
      {jwks_of({R"({"kty":"RSA","kid":"x","alg":"PS256","n":"AQAB","e":"AQAB"})"}),
       "not one of HS256, RS256, ES256"},
  };
  // An EC key announced as RS256 (and the other way round) is refused: kty and alg must agree.
  std::string ec_as_rs = ec_jwk(ec, "e");
  ec_as_rs.replace(ec_as_rs.find("ES256"), 5, "RS256");
  EXPECT_NE(parse_jwks(jwks_of({ec_as_rs})).ok(), true);
  for (const auto& [document, message] : cases) {
    SCOPED_TRACE(document.substr(0, 80));
    const auto parsed = parse_jwks(document);
    ASSERT_FALSE(parsed.ok());
    EXPECT_NE(parsed.error().detail.find(message), std::string::npos) << parsed.error().detail;
  }
}

TEST(JwtKeys, PemPublicKeysTakeTheirAlgorithmFromTheKeyType) {
  auto rs = parse_public_key_pem(public_pem(keys().rsa.get()), "signer");
  ASSERT_TRUE(rs.ok()) << rs.error().detail;
  EXPECT_EQ(rs->kid, "signer");
  EXPECT_EQ(rs->alg, Algorithm::rs256);
  auto es = parse_public_key_pem(public_pem(keys().ec.get()), "ec");
  ASSERT_TRUE(es.ok()) << es.error().detail;
  EXPECT_EQ(es->alg, Algorithm::es256);

  auto weak = parse_public_key_pem(public_pem(keys().rsa_weak.get()), "weak");
  ASSERT_FALSE(weak.ok());
  EXPECT_NE(weak.error().detail.find("1024 bits"), std::string::npos) << weak.error().detail;
  auto p384 = parse_public_key_pem(public_pem(keys().ec_p384.get()), "p384");
  ASSERT_FALSE(p384.ok());
  EXPECT_NE(p384.error().detail.find("P-256"), std::string::npos) << p384.error().detail;
  EXPECT_FALSE(parse_public_key_pem("not a pem", "x").ok());
  EXPECT_FALSE(parse_public_key_pem(public_pem(keys().ec.get()), "").ok());
}

TEST(JwtKeys, PemKeyVerifiesItsTokens) {
  VerifierConfig c = config();
  auto key = parse_public_key_pem(public_pem(keys().ec.get()), "es");
  ASSERT_TRUE(key.ok()) << key.error().detail;
  c.keys.push_back(std::move(*key));
  auto claims = verify(sign_raw(keys().ec.get(), kEsHeader), c, now_ts());
  ASSERT_TRUE(claims.ok()) << claims.error().detail;
  EXPECT_EQ(claims->subject, "alice");
}

TEST(JwtKeys, AcceptsRs256AndEs256ByKid) {
  for (const auto& t : {sign_raw(keys().rsa.get(), kRsHeader), sign_raw(keys().ec.get(), kEsHeader),
                        sign_raw(keys().rsa.get(), R"({"alg":"RS256","kid":"rs","typ":"at+jwt"})"),
                        sign_raw(keys().ec.get(), R"({"alg":"ES256","kid":"es"})"),
                        sign_hs256_raw(kHsKey, R"({"alg":"HS256","kid":"hs"})", payload())}) {
    auto claims = verify(t, keyed_config(), now_ts());
    ASSERT_TRUE(claims.ok()) << claims.error().detail << " " << t;
    EXPECT_EQ(claims->subject, "alice");
    EXPECT_EQ(claims->roles, (std::vector<std::string>{"admin", "buyer"}));
  }
}

TEST(JwtKeys, TheKeyPinsTheAlgorithm) {
  EVP_PKEY* rsa = keys().rsa.get();
  EVP_PKEY* ec = keys().ec.get();
  // ES256 under the RSA key's kid, RS256 under the EC key's.
  EXPECT_EQ(keyed_detail(sign_raw(ec, R"({"alg":"ES256","kid":"rs"})")),
            "alg not allowed for this key");
  EXPECT_EQ(keyed_detail(sign_raw(rsa, R"({"alg":"RS256","kid":"es"})")),
            "alg not allowed for this key");
  // The classic confusion: HS256 keyed with the RSA public key's bytes.
  const std::string pem = public_pem(rsa);
  EXPECT_EQ(keyed_detail(sign_hs256_raw(pem, R"({"alg":"HS256","kid":"rs"})", payload())),
            "alg not allowed for this key");
  EXPECT_EQ(keyed_detail(sign_hs256_raw(pem, R"({"alg":"HS256"})", payload())), "bad signature");
  EXPECT_EQ(keyed_detail(sign_hs256_raw(kHsKey, R"({"alg":"HS512","kid":"hs"})", payload())),
            "alg not allowed");
  // Asymmetric tokens always name their key.
  EXPECT_EQ(keyed_detail(sign_raw(rsa, R"({"alg":"RS256"})")), "alg not allowed without kid");
  EXPECT_EQ(keyed_detail(sign_raw(rsa, R"({"alg":"RS256","kid":"nobody"})")), "unknown kid");
  EXPECT_EQ(keyed_detail(sign_raw(rsa, R"({"alg":"RS256","kid":7})")), "bad kid");
  EXPECT_EQ(keyed_detail(sign_raw(rsa, R"({"alg":"none","kid":"rs"})")), "alg not allowed");
}

TEST(JwtKeys, RefusesSignaturesOfOtherKeysAndOtherEncodings) {
  EXPECT_EQ(keyed_detail(sign_raw(keys().rsa_other.get(), kRsHeader)), "bad signature");
  EXPECT_EQ(keyed_detail(sign_raw(keys().ec_other.get(), kEsHeader)), "bad signature");
  EXPECT_EQ(keyed_detail(sign_raw(keys().ec.get(), kEsHeader, payload(), Encoding::der)),
            "bad signature");
  EXPECT_EQ(keyed_detail(sign_raw(keys().rsa_weak.get(), kRsHeader)), "bad signature");
  // RSA-PSS is another algorithm (PS256), even with the right key.
  const std::string input = base64url_encode(kRsHeader) + "." + base64url_encode(payload());
  EXPECT_EQ(
      keyed_detail(input + "." +
                   base64url_encode(evp_sign(keys().rsa.get(), input, RSA_PKCS1_PSS_PADDING))),
      "bad signature");
  // A JOSE ES256 signature is exactly 64 bytes.
  const std::string es = sign_raw(keys().ec.get(), kEsHeader);
  const auto raw = *base64url_decode(es.substr(es.rfind('.') + 1));
  const std::string signed_part = es.substr(0, es.rfind('.') + 1);
  EXPECT_EQ(keyed_detail(signed_part + base64url_encode(raw.substr(0, 63))), "bad signature");
  EXPECT_EQ(keyed_detail(signed_part + base64url_encode(raw + '\0')), "bad signature");
  EXPECT_EQ(keyed_detail(signed_part), "bad signature");
  // R = S = 0 must not pass.
  EXPECT_EQ(keyed_detail(signed_part + base64url_encode(std::string(64, '\0'))), "bad signature");
  const std::string rs = sign_raw(keys().rsa.get(), kRsHeader);
  const std::string forged = rs.substr(0, rs.find('.') + 1) +
                             base64url_encode(payload(R"("sub":"mallory")")) +
                             rs.substr(rs.rfind('.'));
  EXPECT_EQ(keyed_detail(forged), "bad signature");
}

TEST(JwtKeys, ClaimsAreCheckedForEveryAlgorithm) {
  EXPECT_EQ(keyed_detail(sign_raw(keys().rsa.get(), kRsHeader,
                                  payload(R"("exp":)" + std::to_string(kNow - 31)))),
            "token expired");
  EXPECT_EQ(keyed_detail(sign_raw(keys().ec.get(), kEsHeader,
                                  payload(R"("nbf":)" + std::to_string(kNow + 31)))),
            "token not yet valid");
  EXPECT_EQ(keyed_detail(sign_raw(keys().ec.get(), kEsHeader, payload(R"("aud":"x")"))),
            "wrong audience");
  EXPECT_EQ(keyed_detail(sign_raw(keys().rsa.get(), kRsHeader, payload(R"("iss":"x")"))),
            "wrong issuer");
  EXPECT_EQ(
      keyed_detail(sign_raw(keys().rsa.get(), kRsHeader,
                            payload_without(R"("sub":"a","iss":"boxoffice","aud":"boxoffice")"))),
      "missing exp");
}

TEST(JwtKeys, HeaderChecksApplyToKeyedTokens) {
  EXPECT_EQ(keyed_detail(sign_raw(keys().rsa.get(), R"({"alg":"RS256","kid":"rs","typ":"JWE"})")),
            "typ not allowed");
  EXPECT_EQ(
      keyed_detail(sign_raw(keys().rsa.get(), R"({"alg":"RS256","kid":"rs","crit":["x"],"x":1})")),
      "crit not supported");
  const std::string huge = R"({"alg":"RS256","kid":"rs","pad":")" + std::string(2000, 'x') + "\"}";
  EXPECT_EQ(keyed_detail(sign_raw(keys().rsa.get(), huge)), "header too long");
}

TEST(Base64Url, RoundTripsEveryLengthAndByte) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) {
    bytes.push_back(static_cast<char>(i));
    const std::string encoded = base64url_encode(bytes);
    EXPECT_EQ(encoded.find_first_of("+/="), std::string::npos);
    auto decoded = base64url_decode(encoded);
    ASSERT_TRUE(decoded.has_value()) << encoded;
    EXPECT_EQ(*decoded, bytes);
  }
}

TEST(Base64Url, MatchesRfc4648Vectors) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64url_decode("-_8"), std::string("\xfb\xff"));
}

TEST(Base64Url, DecodeIsStrict) {
  EXPECT_FALSE(base64url_decode("Zg==").has_value());     // padding
  EXPECT_FALSE(base64url_decode("Zm9v+/8").has_value());  // standard alphabet
  EXPECT_FALSE(base64url_decode("Zm 9v").has_value());
  EXPECT_FALSE(base64url_decode("Zm9vY").has_value());  // a length no encoder produces
  EXPECT_FALSE(base64url_decode("Zh").has_value());     // non-zero unused bits ("Zg" is canonical)
  EXPECT_FALSE(base64url_decode(std::string_view("Zg\0", 3)).has_value());
  EXPECT_EQ(base64url_decode(""), std::string());
}

TEST(RandomSecret, Is32RandomBytes) {
  std::set<std::string> seen;
  for (int i = 0; i < 8; ++i) {
    const std::string secret = random_secret();
    auto bytes = base64url_decode(secret);
    ASSERT_TRUE(bytes.has_value());
    EXPECT_EQ(bytes->size(), 32u);
    seen.insert(secret);
  }
  EXPECT_EQ(seen.size(), 8u);
}

}  // namespace
}  // namespace boxoffice::jwt
