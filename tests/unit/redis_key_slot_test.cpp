// The Cluster hash slot of a key, against values Redis itself gives (CLUSTER KEYSLOT).

#include <gtest/gtest.h>

#include "adapters/redis/redis_client.h"

namespace boxoffice::redis {
namespace {

TEST(RedisKeySlot, MatchesTheValuesOfRedis) {
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("hello"), 866);
  EXPECT_EQ(key_slot("123456789"), 12739);  // CRC16/XMODEM check value 0x31C3 mod 16384
  EXPECT_EQ(key_slot(""), 0);
}

TEST(RedisKeySlot, OnlyTheHashTagCounts) {
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  // Only the first {...}; an empty {} means the whole key.
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
  EXPECT_EQ(key_slot("foo{}{bar}"), key_slot("foo{}{bar}"));
  EXPECT_NE(key_slot("foo{}{bar}"), key_slot("bar"));
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));
  EXPECT_EQ(key_slot("{unclosed"), key_slot("{unclosed"));
}

TEST(RedisKeySlot, EverySlotIsBelow16384) {
  for (int i = 0; i < 100000; ++i) EXPECT_LT(key_slot("key:" + std::to_string(i)), 16384);
}

}  // namespace
}  // namespace boxoffice::redis
