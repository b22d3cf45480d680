// StopMatcher: stops spanning pieces, held-back partial matches, and release of false alarms.
#include "sample/stop.h"

#include <gtest/gtest.h>

namespace runnel::sample {
namespace {

// Feeds pieces; returns everything emitted and whether it stopped.
std::pair<std::string, bool> feed(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) {
    const auto r = m.push(p);
    out += r.emit;
    if (r.stopped) return {out, true};
  }
  return {out + m.flush(), false};
}

TEST(StopMatcher, StopInsideOnePiece) {
  StopMatcher m({"END"});
  EXPECT_EQ(feed(m, {"hello END world"}), std::make_pair(std::string("hello "), true));
  EXPECT_EQ(m.matched(), "END");
  EXPECT_TRUE(m.push("more").emit.empty());
}

TEST(StopMatcher, StopAcrossPiecesIsHeldBack) {
  StopMatcher m({"\n\nUser:"});
  auto r = m.push("Answer.\n");
  EXPECT_EQ(r.emit, "Answer.");  // "\n" may start the stop
  r = m.push("\nUs");
  EXPECT_EQ(r.emit, "");
  r = m.push("er: hi");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.emit, "");
}

TEST(StopMatcher, FalseAlarmIsReleased) {
  StopMatcher m({"abc"});
  auto r = m.push("xab");
  EXPECT_EQ(r.emit, "x");
  r = m.push("d");
  EXPECT_EQ(r.emit, "abd");
  EXPECT_FALSE(r.stopped);
  // Held text comes out at the end.
  r = m.push("ab");
  EXPECT_EQ(r.emit, "");
  EXPECT_EQ(m.flush(), "ab");
}

TEST(StopMatcher, OverlappingPrefixes) {
  // "aab" inside "aaab": the first 'a' is released once it cannot start a match.
  StopMatcher m({"aab"});
  EXPECT_EQ(feed(m, {"a", "a", "a", "b", "c"}), std::make_pair(std::string("a"), true));
}

TEST(StopMatcher, EarliestOfSeveralStops) {
  StopMatcher m({"world", "lo w"});
  EXPECT_EQ(feed(m, {"hel", "lo wor", "ld"}), std::make_pair(std::string("hel"), true));
  EXPECT_EQ(m.matched(), "lo w");
}

TEST(StopMatcher, NoStopsPassesEverything) {
  StopMatcher m({});
  EXPECT_EQ(m.push("abc").emit, "abc");
  StopMatcher e({""});  // empty stop strings are ignored
  EXPECT_EQ(e.push("abc").emit, "abc");
}

TEST(StopMatcher, ByteByByteMatchesWholeText) {
  const std::string text = "The answer is 42.\n###\nignored";
  StopMatcher m({"###"});
  std::vector<std::string> pieces;
  for (char c : text) pieces.emplace_back(1, c);
  EXPECT_EQ(feed(m, pieces), std::make_pair(std::string("The answer is 42.\n"), true));
}

}  // namespace
}  // namespace runnel::sample
