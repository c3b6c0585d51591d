// The limits of inetd(8) the listener enforces before it asks for a fork:
// per-IP connections per minute (-C, max-connections-per-ip-per-minute),
// per-IP children (-s, max-child-per-ip) and the per-service invocation rate
// (-R, "looping" detection). Pure logic on an injected clock (ms): no system
// call, so the unit tests drive time. Memory is fixed at construction,
// whatever the traffic.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace inetd::listener {

// FreeBSD's CNT_INTVL and RETRYTIME: -R counts invocations per minute, and a
// service that exceeds it is terminated for ten minutes.
constexpr int64_t kRateWindowMs = int64_t{60} * 1000;
constexpr int64_t kLoopingPauseMs = int64_t{10} * 60 * 1000;
// IPv6 sources are counted per /64 (one subnet, what one host or one
// customer usually holds): a client cannot escape the per-IP limits by
// walking the 2^64 addresses of its own prefix.
constexpr int kDefaultV6Prefix = 64;

// A source address as the per-IP limits count it, in IPv6 form: IPv4 (and
// v4-mapped IPv6) as ::ffff:a.b.c.d, whole; other IPv6 addresses cut to
// their first `v6_prefix` bits. Nothing for other families (unix sockets
// have no per-IP limits, as in FreeBSD).
struct PeerKey {
  std::array<uint8_t, 16> bytes{};
  bool operator==(const PeerKey&) const = default;
};
std::optional<PeerKey> KeyOf(const sockaddr_storage& peer, int v6_prefix = kDefaultV6Prefix);

// The numeric text of a peer for log lines; v4-mapped addresses as IPv4.
struct PeerText {
  char text[INET6_ADDRSTRLEN + 1] = "?";
};
PeerText TextOf(const sockaddr_storage& peer);

// -R: the invocations of one service. A fixed window opens at the first
// invocation after the previous window ended (as FreeBSD's se_time); up to
// `per_min` invocations in it are served, one more terminates the service for
// the pause. FreeBSD's code terminates on the per_min-th invocation, one
// earlier than its manual says; this follows the manual.
class InvocationRate {
 public:
  enum class Verdict : uint8_t {
    kOk,          // counted: invoke
    kLooping,     // over the rate just now: the service is terminated
    kTerminated,  // still terminated (until terminated_until())
  };
  explicit InvocationRate(int64_t window_ms = kRateWindowMs, int64_t pause_ms = kLoopingPauseMs)
      : window_ms_(window_ms), pause_ms_(pause_ms) {}

  // One invocation at `now`; `per_min` 0 = unlimited.
  Verdict Invoke(int64_t now, uint32_t per_min);
  bool Terminated(int64_t now) const { return now < until_; }
  int64_t terminated_until() const { return until_; }

 private:
  int64_t window_ms_, pause_ms_;
  int64_t start_ = 0;
  uint32_t count_ = 0;
  int64_t until_ = INT64_MIN;
};

// The per-IP table: for each (service, source) pair, the connections of the
// last minute and the children running. One fixed array of `capacity`
// entries, allocated once:
//  - an entry is made on the first connection of a pair to a service with a
//    per-IP limit (services without one cost nothing);
//  - when the table is full, the entry seen least recently (connection or
//    child exit) is evicted and forgotten; an entry with children running (or
//    asked for) is never evicted; if every entry has children, a new pair is
//    refused (kTableFull) until one exits;
//  - the connection rate is counted FreeBSD's way, in 7 buckets of window/6
//    (10 s): a connection counts for at least one window (60 s) and at most
//    7/6 of it; every connection counts, refused ones too, so a client that
//    keeps knocking stays refused.
// Child pids are kept in a second fixed table (max_children), to find the
// entry an exit belongs to.
class PerIpTable {
 public:
  struct Settings {
    uint32_t capacity = 16384;     // (service, source) pairs
    uint32_t max_children = 8192;  // children tracked at once (2x the monitor's cap)
    int64_t window_ms = kRateWindowMs;
    std::array<uint64_t, 2> hash_key{};  // SipHash key: RandomHashKey() in the daemon
  };
  enum class Verdict : uint8_t {
    kOk,
    kRate,       // over max-connections-per-ip-per-minute
    kChildren,   // at max-child-per-ip
    kTableFull,  // no entry or child slot free: all hold running children
  };
  // An entry holding one reserved child, or kNoTicket.
  using Ticket = uint32_t;
  static constexpr Ticket kNoTicket = UINT32_MAX;

  explicit PerIpTable(const Settings& s);

  // One accepted connection from `peer` to `service` (an opaque key) at
  // `now`: counts it against `per_min` (0 = no limit) and, when
  // `per_child` > 0, reserves a child slot in `*ticket`. The checks run in
  // FreeBSD's order: rate, then children.
  Verdict Admit(uint32_t service, const PeerKey& peer, uint32_t per_min, uint32_t per_child,
                int64_t now, Ticket* ticket);
  // The reserved child was started as `pid` / will not be started.
  void Started(Ticket t, pid_t pid);
  void Cancel(Ticket t);
  // A child exited (unknown pids are ignored).
  void Exited(pid_t pid);

  // Entries evicted since the last call (for a rate-limited warning).
  uint64_t TakeEvictions() { return std::exchange(evictions_, 0); }
  // Children per entry, for tests; -1 if the pair has no entry.
  int ChildrenOf(uint32_t service, const PeerKey& peer) const;
  size_t size() const { return used_; }
  size_t children() const { return children_used_; }

  // The memory bound: bytes per entry (entry + hash head) and in all.
  static constexpr size_t kBytesPerEntry = 52 + sizeof(uint32_t);
  static constexpr size_t kBytesPerChild = 12 + sizeof(uint32_t);
  size_t MemoryBytes() const;

 private:
  void Allocate();
  struct Entry {
    PeerKey addr;             // 16
    uint32_t service;         // 4
    uint32_t next;            // hash chain
    uint32_t older, newer;    // LRU links; unlinked while children > 0
    uint32_t tick;            // the bucket counts[tick % 7] is the newest
    uint16_t counts[7];       // connections per bucket, saturating
    uint16_t children;        // running or reserved
  };
  static_assert(sizeof(Entry) == 52);
  struct Child {
    pid_t pid;
    uint32_t entry;
    uint32_t next;  // hash chain, or the free list
  };
  static_assert(sizeof(Child) == 12);

  uint32_t Hash(uint32_t service, const PeerKey& peer) const;
  uint32_t Find(uint32_t service, const PeerKey& peer) const;
  uint32_t Make(uint32_t service, const PeerKey& peer, int64_t now);
  void Unhash(uint32_t i);
  void LruUnlink(uint32_t i);
  void LruPushNewest(uint32_t i);
  uint32_t CountRecent(Entry& e, int64_t now) const;
  void Release(uint32_t i);

  Settings settings_;
  int64_t bucket_ms_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> heads_;  // hash buckets, a power of two >= capacity
  uint32_t used_ = 0;
  uint32_t newest_, oldest_;     // the LRU list of entries without children
  std::vector<Child> kids_;
  std::vector<uint32_t> kid_heads_;
  uint32_t kid_free_ = UINT32_MAX;  // kNone until Allocate() makes the free list
  uint32_t children_used_ = 0;   // started children in kids_
  uint32_t reserved_ = 0;        // tickets not yet Started or Cancelled
  uint64_t evictions_ = 0;
};

// A SipHash key for the per-IP table, derived from the kernel's AT_RANDOM
// bytes (no system call: the sandbox has no getrandom), never the bytes
// themselves (glibc's stack guard is made from them).
std::array<uint64_t, 2> RandomHashKey();

// FreeBSD's log lines:
//   "SERVICE from ADDR exceeded counts/min (limit N/min)"
//   "SERVICE from ADDR exceeded counts (limit N)"
// and ours for a full table. `limit` is the one that refused.
std::string RefusalMessage(PerIpTable::Verdict v, std::string_view service,
                           std::string_view peer, uint32_t limit);
// "SERVICE/PROTO server failing (looping), service terminated"
std::string LoopingMessage(std::string_view service, std::string_view proto);

}  // namespace inetd::listener
