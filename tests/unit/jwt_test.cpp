#include "http/jwt.h"

#include <gtest/gtest.h>

#include <set>
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
  expect_rejected(token(R"({"alg":"RS256","typ":"JWT"})"), "alg not allowed");
  expect_rejected(token(R"({"alg":"ES256","typ":"JWT"})"), "alg not allowed");
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
