#pragma once
// The Lua scripts of the Redis Seat Lock Store (private to redis_seat_lock_store.cpp). One script
// per operation; each runs atomically on the node owning its keys.
//
// Section scripts take the seven keys of one section, all under the section's hash tag
// (SectionKeys in redis_seat_lock_store.cpp), and ARGV[1] = now (ms), ARGV[2] = retention of
// finished holds (ms); the rest is per script. Every one of them first checks that the section
// is ready (restored) and answers {"lost"} when it is not, then expires every hold of the section
// due at `now`, so correctness never depends on the sweeper.
//
// Replies are arrays whose first element names the outcome ("ok", "lost", "not_found"...).

#include <string>

namespace boxoffice::redis_seat_locks {

// Section scripts.
extern const char* const kHoldScript;
extern const char* const kGetScript;
extern const char* const kReleaseScript;
extern const char* const kCheckoutScript;
extern const char* const kAbortScript;
extern const char* const kMarkSoldScript;
extern const char* const kReleaseBookedScript;
extern const char* const kCountsScript;
extern const char* const kSeatMapScript;
extern const char* const kSweepScript;
extern const char* const kRestoreSectionScript;

// Buyer-claim scripts (keys under an event's buyer bucket tag), each run as claims_script(body).
extern const char* const kReserveClaimScript;
extern const char* const kRestoreClaimsScript;
extern const char* const kSetClaimScript;

// The hold index's clean-up (keys under one index bucket's tag).
extern const char* const kForgetIndexScript;

/// The common start of every section script followed by `body`.
std::string section_script(const char* body);
/// The buyer-claims functions (read_claims, write_claims, set_claim) followed by `body`.
std::string claims_script(const char* body);

/// A whole hold in one script, for one server (its keys are in several slots, so not for a
/// Cluster, where a hold is the two steps): the hold index, the buyer's claim and the section.
/// KEYS: the hold index bucket, the buyer bucket's ready marker, its claims, the section's seven
/// keys, the index bucket's forget-by ZSET. ARGV[1..3]: the hold id, its index entry and when the
/// entry may be forgotten (ms); ARGV[4..9]: kReserveClaimScript's ARGV; ARGV[10..]: kHoldScript's
/// ARGV. Replies: kReserveClaimScript's when it refuses ({"lost"}, {"limit", held}; the index
/// entry is removed), else kHoldScript's (a refusal or "lost" gives the claim back and removes
/// the index entry).
std::string hold_with_claim_script();

}  // namespace boxoffice::redis_seat_locks
