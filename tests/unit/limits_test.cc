// The listener's limits with an injected clock: exact counts for each limit
// alone and combined (connection N served, N+1 refused, served again after
// the window), eviction, the memory bound, IPv6 prefix grouping, v4-mapped
// addresses, and FreeBSD's log lines.
#include <arpa/inet.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "listener/limits.h"

using namespace inetd::listener;
using V = PerIpTable::Verdict;

namespace {

constexpr int64_t kMin = int64_t{60} * 1000;
constexpr int64_t kT0 = 1'000'000;  // a clock that is not at zero

sockaddr_storage Addr(const char* text) {
  sockaddr_storage ss{};
  if (strchr(text, ':') != nullptr) {
    auto& a = reinterpret_cast<sockaddr_in6&>(ss);
    a.sin6_family = AF_INET6;
    EXPECT_EQ(inet_pton(AF_INET6, text, &a.sin6_addr), 1) << text;
  } else {
    auto& a = reinterpret_cast<sockaddr_in&>(ss);
    a.sin_family = AF_INET;
    EXPECT_EQ(inet_pton(AF_INET, text, &a.sin_addr), 1) << text;
  }
  return ss;
}

PeerKey Key(const char* text, int prefix = kDefaultV6Prefix) {
  std::optional<PeerKey> k = KeyOf(Addr(text), prefix);
  EXPECT_TRUE(k.has_value()) << text;
  return k.value_or(PeerKey{});
}

PerIpTable::Settings Small(uint32_t capacity = 64, uint32_t children = 64) {
  PerIpTable::Settings s;
  s.capacity = capacity;
  s.max_children = children;
  s.hash_key = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  return s;
}

// ---- source addresses ------------------------------------------------------

TEST(PeerKeyTest, GroupsAsDocumented) {
  struct Row {
    const char* a;
    const char* b;
    int prefix;
    bool same;
  };
  const Row rows[] = {
      {"192.0.2.1", "192.0.2.1", 64, true},
      {"192.0.2.1", "192.0.2.2", 64, false},             // IPv4: whole address
      {"192.0.2.1", "::ffff:192.0.2.1", 64, true},       // v4-mapped is IPv4
      {"192.0.2.1", "::ffff:192.0.2.2", 64, false},
      {"::ffff:192.0.2.1", "::ffff:192.0.2.2", 0, false},  // prefix never cuts IPv4
      {"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", 64, true},  // same /64
      {"2001:db8:1:2::1", "2001:db8:1:3::1", 64, false},      // next /64
      {"2001:db8:1:2::1", "2001:db8:1:3::1", 48, true},       // same /48
      {"2001:db8:1:2::1", "2001:db8:1:2::2", 128, false},     // per address
      {"2001:db8:1:2::1", "2001:db8:1:2::1", 128, true},
      {"2001:db8::1", "2001:db9::1", 31, true},   // /31 leaves the last bit out
      {"2001:db8::1", "2001:db9::1", 32, false},
      {"2001:db8::1", "::1", 0, true},            // /0: all IPv6 one group
  };
  for (const Row& r : rows)
    EXPECT_EQ(Key(r.a, r.prefix) == Key(r.b, r.prefix), r.same)
        << r.a << " vs " << r.b << " /" << r.prefix;
}

TEST(PeerKeyTest, UnixHasNoKeyAndTextIsNumeric) {
  sockaddr_storage un{};
  un.ss_family = AF_UNIX;
  EXPECT_FALSE(KeyOf(un).has_value());
  EXPECT_STREQ(TextOf(Addr("192.0.2.7")).text, "192.0.2.7");
  EXPECT_STREQ(TextOf(Addr("::ffff:192.0.2.7")).text, "192.0.2.7");
  EXPECT_STREQ(TextOf(Addr("2001:db8::7")).text, "2001:db8::7");
  EXPECT_STREQ(TextOf(un).text, "unix");
}

// ---- per-IP rate -----------------------------------------------------------

// One connection: (ms after the previous one, source, expected verdict).
struct Step {
  int64_t after;
  const char* from;
  V want;
};

void Replay(PerIpTable& t, uint32_t per_min, uint32_t per_child, const std::vector<Step>& steps) {
  int64_t now = kT0;
  for (size_t i = 0; i < steps.size(); ++i) {
    now += steps[i].after;
    PerIpTable::Ticket ticket;
    EXPECT_EQ(t.Admit(1, Key(steps[i].from), per_min, per_child, now, &ticket), steps[i].want)
        << "connection " << i + 1 << " from " << steps[i].from << " at +" << now - kT0 << " ms";
  }
}

TEST(PerIpRate, ExactCounts) {
  struct Case {
    const char* name;
    uint32_t per_min;
    std::vector<Step> steps;
  };
  const Case cases[] = {
      {"limit 1", 1, {{0, "10.0.0.1", V::kOk}, {0, "10.0.0.1", V::kRate}}},
      {"limit 3: the fourth is refused",
       3,
       {{0, "10.0.0.1", V::kOk},
        {1, "10.0.0.1", V::kOk},
        {1, "10.0.0.1", V::kOk},
        {1, "10.0.0.1", V::kRate},
        {1, "10.0.0.2", V::kOk}}},  // another source is counted apart
      {"after the window: served again",
       2,
       {{0, "10.0.0.1", V::kOk},
        {0, "10.0.0.1", V::kOk},
        {0, "10.0.0.1", V::kRate},
        {kMin + kMin / 6, "10.0.0.1", V::kOk},  // 7 buckets of 10 s later
        {0, "10.0.0.1", V::kOk},
        {0, "10.0.0.1", V::kRate}}},
      {"a connection counts for at least a minute",
       2,
       {{0, "10.0.0.1", V::kOk},
        {0, "10.0.0.1", V::kOk},
        {kMin - 1, "10.0.0.1", V::kRate}}},
      {"refused connections count too (FreeBSD)",
       1,
       {{0, "10.0.0.1", V::kOk},
        {kMin / 2, "10.0.0.1", V::kRate},   // keeps the window busy
        {kMin - 1000, "10.0.0.1", V::kRate},  // 59 s after that one: still refused
        {kMin + kMin / 6, "10.0.0.1", V::kOk}}},
      {"spread out: the window slides",
       2,
       {{0, "10.0.0.1", V::kOk},
        {30'000, "10.0.0.1", V::kOk},
        {30'000, "10.0.0.1", V::kRate},  // the first still counts (< 70 s)
        {20'000, "10.0.0.1", V::kRate},  // 80 s: the first has left, the refused one not
        {70'000, "10.0.0.1", V::kOk}}},
      {"IPv6: one /64 is one source",
       2,
       {{0, "2001:db8:0:1::1", V::kOk},
        {0, "2001:db8:0:1::2", V::kOk},
        {0, "2001:db8:0:1:abcd::3", V::kRate},
        {0, "2001:db8:0:2::1", V::kOk}}},
      {"v4-mapped and IPv4 are one source",
       1,
       {{0, "192.0.2.1", V::kOk}, {0, "::ffff:192.0.2.1", V::kRate}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    PerIpTable t(Small());
    Replay(t, c.per_min, 0, c.steps);
  }
}

TEST(PerIpRate, ServicesAreCountedApart) {
  PerIpTable t(Small());
  PerIpTable::Ticket tk;
  EXPECT_EQ(t.Admit(1, Key("10.0.0.1"), 1, 0, kT0, &tk), V::kOk);
  EXPECT_EQ(t.Admit(1, Key("10.0.0.1"), 1, 0, kT0, &tk), V::kRate);
  EXPECT_EQ(t.Admit(2, Key("10.0.0.1"), 1, 0, kT0, &tk), V::kOk);
  EXPECT_EQ(tk, PerIpTable::kNoTicket);
}

TEST(PerIpRate, NoLimitNoEntry) {
  PerIpTable t(Small());
  PerIpTable::Ticket tk;
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(t.Admit(1, Key("10.0.0.1"), 0, 0, kT0, &tk), V::kOk);
  EXPECT_EQ(t.size(), 0u);
}

TEST(PerIpRate, ConfigurableWindow) {
  PerIpTable::Settings s = Small();
  s.window_ms = 600;  // buckets of 100 ms
  PerIpTable t(s);
  Replay(t, 2,0,
         {{0, "10.0.0.1", V::kOk},
          {0, "10.0.0.1", V::kOk},
          {599, "10.0.0.1", V::kRate},
          {700, "10.0.0.1", V::kOk}});
}

// ---- per-IP children -------------------------------------------------------

TEST(PerIpChildren, ExactCountsAndRelease) {
  PerIpTable t(Small());
  const PeerKey a = Key("10.0.0.1"), b = Key("10.0.0.2");
  PerIpTable::Ticket t1, t2, t3, t4;
  EXPECT_EQ(t.Admit(1, a, 0, 2, kT0, &t1), V::kOk);
  EXPECT_EQ(t.Admit(1, a, 0, 2, kT0, &t2), V::kOk);
  EXPECT_EQ(t.Admit(1, a, 0, 2, kT0, &t3), V::kChildren);  // the third, while two run
  EXPECT_EQ(t3, PerIpTable::kNoTicket);
  EXPECT_EQ(t.Admit(1, b, 0, 2, kT0, &t4), V::kOk);         // another source
  EXPECT_EQ(t.ChildrenOf(1, a), 2);
  t.Started(t1, 100);
  t.Started(t2, 101);
  t.Started(t4, 102);
  EXPECT_EQ(t.children(), 3u);
  EXPECT_EQ(t.Admit(1, a, 0, 2, kT0, &t3), V::kChildren);
  t.Exited(100);
  EXPECT_EQ(t.ChildrenOf(1, a), 1);
  EXPECT_EQ(t.Admit(1, a, 0, 2, kT0, &t3), V::kOk);  // served again
  EXPECT_EQ(t.Admit(1, a, 0, 2, kT0, &t1), V::kChildren);
  t.Cancel(t3);  // the monitor refused it: the slot comes back
  EXPECT_EQ(t.ChildrenOf(1, a), 1);
  t.Exited(999);  // unknown pids change nothing
  t.Exited(101);
  t.Exited(102);
  EXPECT_EQ(t.ChildrenOf(1, a), 0);
  EXPECT_EQ(t.ChildrenOf(1, b), 0);
  EXPECT_EQ(t.children(), 0u);
}

// ---- combined --------------------------------------------------------------

TEST(PerIpCombined, RateIsCheckedFirstAndCountsRefusedChildren) {
  PerIpTable t(Small());
  const PeerKey a = Key("10.0.0.1");
  PerIpTable::Ticket t1, tk;
  EXPECT_EQ(t.Admit(1, a, 3, 1, kT0, &t1), V::kOk);         // 1: served
  EXPECT_EQ(t.Admit(1, a, 3, 1, kT0, &tk), V::kChildren);   // 2: one child already
  t.Started(t1, 200);
  t.Exited(200);
  EXPECT_EQ(t.Admit(1, a, 3, 1, kT0, &t1), V::kOk);         // 3: served
  EXPECT_EQ(t.Admit(1, a, 3, 1, kT0, &tk), V::kRate);       // 4: over 3/min first
  t.Cancel(t1);
  EXPECT_EQ(t.Admit(1, a, 3, 1, kT0 + kMin + kMin / 6, &tk), V::kOk);  // the window passed
}

// ---- -R ----------------------------------------------------------------------

TEST(InvocationRateTest, ExactCountsLoopingAndComeback) {
  using R = InvocationRate::Verdict;
  InvocationRate r;
  int64_t now = kT0;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r.Invoke(now + i, 3), R::kOk) << i + 1;
  EXPECT_EQ(r.Invoke(now + 3, 3), R::kLooping);  // the fourth within the minute
  EXPECT_EQ(r.terminated_until(), now + 3 + kLoopingPauseMs);
  EXPECT_TRUE(r.Terminated(now + 3 + kLoopingPauseMs - 1));
  EXPECT_EQ(r.Invoke(now + 4, 3), R::kTerminated);
  EXPECT_EQ(r.Invoke(now + 3 + kLoopingPauseMs - 1, 3), R::kTerminated);
  // Ten minutes later: back, with a fresh window.
  now += 3 + kLoopingPauseMs;
  EXPECT_FALSE(r.Terminated(now));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r.Invoke(now, 3), R::kOk);
  EXPECT_EQ(r.Invoke(now, 3), R::kLooping);
}

TEST(InvocationRateTest, WindowAndUnlimited) {
  using R = InvocationRate::Verdict;
  InvocationRate r;
  EXPECT_EQ(r.Invoke(kT0, 2), R::kOk);
  EXPECT_EQ(r.Invoke(kT0 + 1, 2), R::kOk);
  EXPECT_EQ(r.Invoke(kT0 + kMin, 2), R::kOk);  // a new window opens a minute on
  EXPECT_EQ(r.Invoke(kT0 + kMin, 2), R::kOk);
  EXPECT_EQ(r.Invoke(kT0 + kMin + 1, 2), R::kLooping);
  InvocationRate unlimited;
  for (int i = 0; i < 100000; ++i) ASSERT_EQ(unlimited.Invoke(kT0, 0), R::kOk);
}

TEST(InvocationRateTest, ConfigurableWindowAndPause) {
  using R = InvocationRate::Verdict;
  InvocationRate r(100, 1000);
  EXPECT_EQ(r.Invoke(0, 1), R::kOk);
  EXPECT_EQ(r.Invoke(99, 1), R::kLooping);
  EXPECT_EQ(r.Invoke(1098, 1), R::kTerminated);
  EXPECT_EQ(r.Invoke(1099, 1), R::kOk);
}

// ---- the bound ---------------------------------------------------------------

TEST(PerIpTableBound, EvictsTheLeastRecentlySeen) {
  PerIpTable t(Small(4));
  PerIpTable::Ticket tk;
  const char* ips[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"};
  int64_t now = kT0;
  for (const char* ip : ips) {
    EXPECT_EQ(t.Admit(1, Key(ip), 1, 0, now++, &tk), V::kOk);
    EXPECT_EQ(t.Admit(1, Key(ip), 1, 0, now++, &tk), V::kRate);
  }
  EXPECT_EQ(t.size(), 4u);
  // 10.0.0.1 seen again: now 10.0.0.2 is the least recent.
  EXPECT_EQ(t.Admit(1, Key("10.0.0.1"), 1, 0, now++, &tk), V::kRate);
  EXPECT_EQ(t.Admit(1, Key("10.0.0.5"), 1, 0, now++, &tk), V::kOk);
  EXPECT_EQ(t.size(), 4u);
  EXPECT_EQ(t.TakeEvictions(), 1u);
  EXPECT_EQ(t.TakeEvictions(), 0u);
  EXPECT_EQ(t.ChildrenOf(1, Key("10.0.0.2")), -1);       // forgotten
  EXPECT_EQ(t.Admit(1, Key("10.0.0.2"), 1, 0, now++, &tk), V::kOk);  // so counted afresh
  EXPECT_EQ(t.Admit(1, Key("10.0.0.1"), 1, 0, now++, &tk), V::kRate);  // kept
}

TEST(PerIpTableBound, NeverEvictsAnEntryWithChildren) {
  PerIpTable t(Small(2));
  PerIpTable::Ticket a, b, tk;
  EXPECT_EQ(t.Admit(1, Key("10.0.0.1"), 0, 5, kT0, &a), V::kOk);
  EXPECT_EQ(t.Admit(1, Key("10.0.0.2"), 0, 5, kT0 + 1, &b), V::kOk);
  t.Started(a, 300);
  // Both entries hold a child: a new source is refused, and told so.
  EXPECT_EQ(t.Admit(1, Key("10.0.0.3"), 0, 5, kT0 + 2, &tk), V::kTableFull);
  EXPECT_EQ(t.Admit(1, Key("10.0.0.3"), 7, 0, kT0 + 2, &tk), V::kTableFull);
  // Known sources still work.
  EXPECT_EQ(t.Admit(1, Key("10.0.0.1"), 0, 5, kT0 + 3, &tk), V::kOk);
  t.Cancel(tk);
  // A child exits: its entry may go, and the new source gets it.
  t.Exited(300);
  EXPECT_EQ(t.Admit(1, Key("10.0.0.3"), 0, 5, kT0 + 4, &tk), V::kOk);
  EXPECT_EQ(t.ChildrenOf(1, Key("10.0.0.1")), -1);
  EXPECT_EQ(t.ChildrenOf(1, Key("10.0.0.2")), 1);  // the reserved one stayed
}

TEST(PerIpTableBound, ChildSlotsAreBounded) {
  PerIpTable t(Small(64, 2));
  PerIpTable::Ticket a, b, c;
  EXPECT_EQ(t.Admit(1, Key("10.0.0.1"), 0, 9, kT0, &a), V::kOk);
  EXPECT_EQ(t.Admit(1, Key("10.0.0.2"), 0, 9, kT0, &b), V::kOk);
  EXPECT_EQ(t.Admit(1, Key("10.0.0.3"), 0, 9, kT0, &c), V::kTableFull);
  t.Started(a, 1);
  t.Cancel(b);
  EXPECT_EQ(t.Admit(1, Key("10.0.0.3"), 0, 9, kT0, &c), V::kOk);
  t.Started(c, 2);
  t.Exited(1);
  t.Exited(2);
  EXPECT_EQ(t.children(), 0u);
}

TEST(PerIpTableBound, MemoryIsFixedWhateverTheTraffic) {
  PerIpTable::Settings s;  // the daemon's own sizes
  PerIpTable t(s);
  // Nothing is allocated until a per-IP limit first applies.
  EXPECT_LT(t.MemoryBytes(), 1024u);
  PerIpTable::Ticket first;
  ASSERT_EQ(t.Admit(1, PeerKey{}, 10, 0, kT0, &first), PerIpTable::Verdict::kOk);
  const size_t before = t.MemoryBytes();
  EXPECT_LE(before, s.capacity * PerIpTable::kBytesPerEntry +
                        s.max_children * PerIpTable::kBytesPerChild + 4096);
  PerIpTable::Ticket tk;
  // 200,000 distinct sources, some with children: the table never grows.
  int64_t now = kT0;
  pid_t pid = 1;
  for (uint32_t i = 0; i < 200000; ++i) {
    PeerKey k{};
    k.bytes[10] = k.bytes[11] = 0xff;
    memcpy(&k.bytes[12], &i, 4);
    V v = t.Admit(1, k, 10, i % 100 == 0 ? 1 : 0, now++, &tk);
    ASSERT_NE(v, V::kRate);
    if (tk != PerIpTable::kNoTicket) {
      t.Started(tk, pid);
      if (pid % 2 == 0) t.Exited(pid);  // half of them end
      ++pid;
    }
  }
  EXPECT_EQ(t.size(), s.capacity);
  EXPECT_EQ(t.MemoryBytes(), before);
  printf("per-IP table: %zu bytes per entry, %zu per child slot; %u entries, %u child "
         "slots: %zu bytes in all\n",
         PerIpTable::kBytesPerEntry, PerIpTable::kBytesPerChild, s.capacity, s.max_children,
         t.MemoryBytes());
}

// ---- log lines -------------------------------------------------------------

TEST(LogLines, AreFreeBSDs) {
  EXPECT_EQ(RefusalMessage(V::kRate, "ftp", "192.0.2.1", 10),
            "ftp from 192.0.2.1 exceeded counts/min (limit 10/min)");
  EXPECT_EQ(RefusalMessage(V::kChildren, "ftp", "2001:db8::1", 5),
            "ftp from 2001:db8::1 exceeded counts (limit 5)");
  EXPECT_EQ(RefusalMessage(V::kTableFull, "ftp", "192.0.2.1", 5),
            "ftp from 192.0.2.1 refused: per-IP table full (every slot holds a running child)");
  EXPECT_EQ(RefusalMessage(V::kOk, "ftp", "192.0.2.1", 5), "");
  EXPECT_EQ(LoopingMessage("telnet", "tcp"),
            "telnet/tcp server failing (looping), service terminated");
  // Long names are cut, never overflow.
  std::string huge(5000, 'x');
  EXPECT_LT(RefusalMessage(V::kRate, huge, huge, 1).size(), 512u);
  EXPECT_LT(LoopingMessage(huge, huge).size(), 512u);
}

TEST(HashKey, DiffersFromTheRawAuxvBytes) {
  std::array<uint64_t, 2> k = RandomHashKey();
  EXPECT_TRUE(k[0] != 0 || k[1] != 0);
  EXPECT_NE(k[0], k[1]);
}

}  // namespace
