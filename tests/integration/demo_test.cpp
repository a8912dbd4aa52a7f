// `boxoffice demo`, the README's first command: a small flash sale end to end in the real binary,
// whose report must show the sale happened, a waitlist served, and every invariant check passing.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "support/child_process.h"

namespace boxoffice::testing {
namespace {

using namespace std::chrono_literals;

TEST(Demo, SmallSaleSellsOutAndEveryInvariantHolds) {
  ChildProcess demo({BOXOFFICE_BINARY, "demo", "--small", "--seed", "1"});
  const auto code = demo.wait_exit(120s);
  const auto log = demo.log();
  ASSERT_EQ(code, 0) << log;

  for (const char* check : {"no seat sold twice", "sold within capacity", "no double charge",
                            "no booking left pending", "waitlist served in order"}) {
    EXPECT_NE(log.find(std::string{"- PASS "} + check + ": "), std::string::npos) << check << "\n"
                                                                                  << log;
  }
  EXPECT_NE(log.find("PASS: 5 of 5 invariant checks passed."), std::string::npos) << log;
  EXPECT_EQ(log.find("FAIL"), std::string::npos) << log;

  // The checks prove something only if the sale happened: seats ran out, money moved.
  std::smatch sold_out;
  EXPECT_TRUE(std::regex_search(log, sold_out,
                                std::regex{R"(\| sold out \(no seat available in any section\) \| )"
                                           R"(\d+\.\d s \|)"}))
      << log;
  std::smatch ledger;
  ASSERT_TRUE(std::regex_search(
      log, ledger,
      std::regex{R"(charges made \(the simulator's ledger\): ([\d,]+): ([\d,]+) approved)"}))
      << log;
  EXPECT_NE(ledger[2], "0") << log;

  // The waitlist checks prove something only if people waited and seats came back to them.
  std::smatch joined;
  ASSERT_TRUE(std::regex_search(log, joined, std::regex{R"(- joined: ([\d,]+) entries)"})) << log;
  EXPECT_NE(joined[1], "0") << log;
  std::smatch offers;
  ASSERT_TRUE(std::regex_search(log, offers, std::regex{R"(- offers made: ([\d,]+) )"})) << log;
  EXPECT_NE(offers[1], "0") << log;
  std::smatch converted;
  ASSERT_TRUE(
      std::regex_search(log, converted, std::regex{R"(- converted: ([\d,]+) offers checked out)"}))
      << log;
  EXPECT_NE(converted[1], "0") << log;

  // The default data directory is a fresh temporary one, gone once the demo is over.
  std::smatch data;
  ASSERT_TRUE(std::regex_search(log, data, std::regex{R"(data in (\S+),)"})) << log;
  EXPECT_FALSE(std::filesystem::exists(data[1].str())) << data[1];
}

}  // namespace
}  // namespace boxoffice::testing
