// The listener's limits (see limits.h). Runs in the sandboxed listener on
// source addresses from the network; makes no system call and allocates
// nothing after construction, so a flood changes only counters.
#include "listener/limits.h"

#include <arpa/inet.h>
#include <sys/auxv.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>

namespace inetd::listener {
namespace {

constexpr uint32_t kNone = UINT32_MAX;
constexpr uint32_t kBuckets = 7;  // FreeBSD's CHTSIZE + 1: ticks - 6 .. ticks

// SipHash-1-3 (Aumasson and Bernstein) of whole 64-bit words: the per-IP
// table is keyed by addresses an attacker picks, so its hash is keyed too.
uint64_t SipHash(const std::array<uint64_t, 2>& key, const uint64_t* words, size_t n) {
  uint64_t v0 = key[0] ^ 0x736f6d6570736575ULL, v1 = key[1] ^ 0x646f72616e646f6dULL;
  uint64_t v2 = key[0] ^ 0x6c7967656e657261ULL, v3 = key[1] ^ 0x7465646279746573ULL;
  auto round = [&] {
    v0 += v1; v1 = std::rotl(v1, 13); v1 ^= v0; v0 = std::rotl(v0, 32);
    v2 += v3; v3 = std::rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = std::rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = std::rotl(v1, 17); v1 ^= v2; v2 = std::rotl(v2, 32);
  };
  for (size_t i = 0; i < n; ++i) {
    v3 ^= words[i];
    round();
    v0 ^= words[i];
  }
  uint64_t last = static_cast<uint64_t>(n * 8) << 56;
  v3 ^= last;
  round();
  v0 ^= last;
  v2 ^= 0xff;
  round(); round(); round();
  return v0 ^ v1 ^ v2 ^ v3;
}

}  // namespace

std::optional<PeerKey> KeyOf(const sockaddr_storage& peer, int v6_prefix) {
  PeerKey k;
  if (peer.ss_family == AF_INET) {
    k.bytes[10] = k.bytes[11] = 0xff;  // ::ffff:a.b.c.d, as a v4-mapped peer
    memcpy(&k.bytes[12], &reinterpret_cast<const sockaddr_in&>(peer).sin_addr, 4);
    return k;
  }
  if (peer.ss_family != AF_INET6) return std::nullopt;
  const in6_addr& a = reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr;
  memcpy(k.bytes.data(), &a, 16);
  if (IN6_IS_ADDR_V4MAPPED(&a)) return k;
  int bits = std::clamp(v6_prefix, 0, 128);
  for (int i = 0; i < 16; ++i)
    k.bytes[i] &= static_cast<uint8_t>(0xff00 >> std::clamp(bits - 8 * i, 0, 8));
  return k;
}

PeerText TextOf(const sockaddr_storage& peer) {
  PeerText t;
  if (peer.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(peer).sin_addr, t.text, sizeof t.text);
  } else if (peer.ss_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a))
      inet_ntop(AF_INET, &a.s6_addr[12], t.text, sizeof t.text);
    else
      inet_ntop(AF_INET6, &a, t.text, sizeof t.text);
  } else if (peer.ss_family == AF_UNIX) {
    (void)snprintf(t.text, sizeof t.text, "unix");
  }
  return t;
}

InvocationRate::Verdict InvocationRate::Invoke(int64_t now, uint32_t per_min) {
  if (now < until_) return Verdict::kTerminated;
  if (per_min == 0) return Verdict::kOk;
  if (count_ == 0 || now - start_ >= window_ms_) {
    start_ = now;
    count_ = 0;
  }
  if (count_ >= per_min) {
    until_ = now + pause_ms_;
    count_ = 0;  // the comeback opens a fresh window
    return Verdict::kLooping;
  }
  ++count_;
  return Verdict::kOk;
}

PerIpTable::PerIpTable(const Settings& s) : settings_(s) {
  settings_.capacity = std::clamp<uint32_t>(s.capacity, 1, kNone / 2);
  settings_.max_children = std::clamp<uint32_t>(s.max_children, 1, kNone / 2);
  bucket_ms_ = std::max<int64_t>(1, s.window_ms / (kBuckets - 1));
  newest_ = oldest_ = kNone;
}

// The fixed tables are made on the first connection a per-IP limit applies
// to: a daemon configured without per-IP limits never pays their memory.
void PerIpTable::Allocate() {
  entries_.resize(settings_.capacity);
  heads_.assign(std::bit_ceil(settings_.capacity), kNone);
  kids_.resize(settings_.max_children);
  for (uint32_t i = 0; i < kids_.size(); ++i) kids_[i].next = i + 1 < kids_.size() ? i + 1 : kNone;
  kid_free_ = 0;
  kid_heads_.assign(std::bit_ceil(settings_.max_children), kNone);
}

size_t PerIpTable::MemoryBytes() const {
  return entries_.size() * sizeof(Entry) + heads_.size() * sizeof(uint32_t) +
         kids_.size() * sizeof(Child) + kid_heads_.size() * sizeof(uint32_t) + sizeof(*this);
}

uint32_t PerIpTable::Hash(uint32_t service, const PeerKey& peer) const {
  uint64_t w[3];
  memcpy(w, peer.bytes.data(), 16);
  w[2] = service;
  return static_cast<uint32_t>(SipHash(settings_.hash_key, w, 3)) & (heads_.size() - 1);
}

uint32_t PerIpTable::Find(uint32_t service, const PeerKey& peer) const {
  if (heads_.empty()) return kNone;
  for (uint32_t i = heads_[Hash(service, peer)]; i != kNone; i = entries_[i].next)
    if (entries_[i].service == service && entries_[i].addr == peer) return i;
  return kNone;
}

void PerIpTable::LruUnlink(uint32_t i) {
  Entry& e = entries_[i];
  (e.older != kNone ? entries_[e.older].newer : oldest_) = e.newer;
  (e.newer != kNone ? entries_[e.newer].older : newest_) = e.older;
  e.older = e.newer = kNone;
}

void PerIpTable::LruPushNewest(uint32_t i) {
  Entry& e = entries_[i];
  e.older = newest_;
  e.newer = kNone;
  (newest_ != kNone ? entries_[newest_].newer : oldest_) = i;
  newest_ = i;
}

void PerIpTable::Unhash(uint32_t i) {
  uint32_t* p = &heads_[Hash(entries_[i].service, entries_[i].addr)];
  while (*p != i) p = &entries_[*p].next;
  *p = entries_[i].next;
}

// A new entry: a never-used slot while there is one, else the least
// recently seen entry without children. kNone when every entry has children.
uint32_t PerIpTable::Make(uint32_t service, const PeerKey& peer, int64_t now) {
  uint32_t i;
  if (used_ < entries_.size()) {
    i = used_++;
  } else {
    if (oldest_ == kNone) return kNone;
    i = oldest_;
    LruUnlink(i);
    Unhash(i);
    ++evictions_;
  }
  Entry& e = entries_[i];
  e = Entry{};
  e.addr = peer;
  e.service = service;
  e.tick = static_cast<uint32_t>(std::max<int64_t>(now, 0) / bucket_ms_);
  uint32_t h = Hash(service, peer);
  e.next = heads_[h];
  heads_[h] = i;
  LruPushNewest(i);
  return i;
}

// Counts one connection now; returns the connections of the window.
uint32_t PerIpTable::CountRecent(Entry& e, int64_t now) const {
  uint32_t tick = static_cast<uint32_t>(std::max<int64_t>(now, 0) / bucket_ms_);
  uint32_t gap = tick - e.tick;
  if (gap != 0 && gap < (1U << 31)) {  // forward; a clock going back counts as now
    if (gap >= kBuckets)
      std::fill(std::begin(e.counts), std::end(e.counts), 0);
    else
      for (uint32_t k = 1; k <= gap; ++k) e.counts[(e.tick + k) % kBuckets] = 0;
    e.tick = tick;
  }
  uint16_t& c = e.counts[e.tick % kBuckets];
  if (c < UINT16_MAX) ++c;
  uint32_t sum = 0;
  for (uint16_t n : e.counts) sum += n;
  return sum;
}

PerIpTable::Verdict PerIpTable::Admit(uint32_t service, const PeerKey& peer, uint32_t per_min,
                                      uint32_t per_child, int64_t now, Ticket* ticket) {
  *ticket = kNoTicket;
  if (per_min == 0 && per_child == 0) return Verdict::kOk;  // nothing to remember
  if (entries_.empty()) Allocate();
  uint32_t i = Find(service, peer);
  if (i == kNone) {
    i = Make(service, peer, now);
    if (i == kNone) return Verdict::kTableFull;
  } else if (entries_[i].children == 0) {
    LruUnlink(i);
    LruPushNewest(i);
  }
  Entry& e = entries_[i];
  if (per_min > 0 && CountRecent(e, now) > per_min) return Verdict::kRate;
  if (per_child > 0) {
    if (e.children >= per_child) return Verdict::kChildren;
    if (children_used_ + reserved_ >= kids_.size() || e.children == UINT16_MAX)
      return Verdict::kTableFull;
    if (e.children++ == 0) LruUnlink(i);  // pinned while it has children
    ++reserved_;
    *ticket = i;
  }
  return Verdict::kOk;
}

void PerIpTable::Release(uint32_t i) {
  Entry& e = entries_[i];
  if (e.children > 0 && --e.children == 0) LruPushNewest(i);
}

void PerIpTable::Cancel(Ticket t) {
  if (t == kNoTicket || t >= entries_.size()) return;
  if (reserved_ > 0) --reserved_;
  Release(t);
}

void PerIpTable::Started(Ticket t, pid_t pid) {
  if (t == kNoTicket || t >= entries_.size()) return;
  if (reserved_ > 0) --reserved_;
  if (kid_free_ == kNone) {  // cannot happen: Admit reserved the slot
    Release(t);
    return;
  }
  uint32_t k = kid_free_;
  kid_free_ = kids_[k].next;
  uint32_t h = (static_cast<uint32_t>(pid) * 2654435761U) &
             static_cast<uint32_t>(kid_heads_.size() - 1);
  kids_[k] = Child{pid, t, kid_heads_[h]};
  kid_heads_[h] = k;
  ++children_used_;
}

void PerIpTable::Exited(pid_t pid) {
  if (kid_heads_.empty()) return;
  uint32_t h = (static_cast<uint32_t>(pid) * 2654435761U) &
             static_cast<uint32_t>(kid_heads_.size() - 1);
  for (uint32_t* p = &kid_heads_[h]; *p != kNone; p = &kids_[*p].next) {
    uint32_t k = *p;
    if (kids_[k].pid != pid) continue;
    *p = kids_[k].next;
    uint32_t entry = kids_[k].entry;
    kids_[k].next = kid_free_;
    kid_free_ = k;
    --children_used_;
    Release(entry);
    return;
  }
}

int PerIpTable::ChildrenOf(uint32_t service, const PeerKey& peer) const {
  uint32_t i = Find(service, peer);
  return i == kNone ? -1 : entries_[i].children;
}

std::array<uint64_t, 2> RandomHashKey() {
  std::array<uint64_t, 2> seed{};
  // NOLINTNEXTLINE(performance-no-int-to-ptr): AT_RANDOM's value is an address (ELF ABI)
  if (const void* r = reinterpret_cast<const void*>(getauxval(AT_RANDOM)))
    memcpy(seed.data(), r, sizeof seed);
  // The stack's address adds ASLR's entropy should AT_RANDOM be missing.
  uint64_t words[3] = {0x696e6574642d6970ULL, reinterpret_cast<uintptr_t>(&seed), 1};
  std::array<uint64_t, 2> key;
  key[0] = SipHash(seed, words, 3);
  words[2] = 2;
  key[1] = SipHash(seed, words, 3);
  return key;
}

std::string RefusalMessage(PerIpTable::Verdict v, std::string_view service,
                           std::string_view peer, uint32_t limit) {
  char line[512];
  int sl = static_cast<int>(std::min<size_t>(service.size(), 200));
  int pl = static_cast<int>(std::min<size_t>(peer.size(), 100));
  switch (v) {
    case PerIpTable::Verdict::kOk: return {};
    case PerIpTable::Verdict::kRate:
      (void)snprintf(line, sizeof line, "%.*s from %.*s exceeded counts/min (limit %u/min)", sl,
                     service.data(), pl, peer.data(), limit);
      break;
    case PerIpTable::Verdict::kChildren:
      (void)snprintf(line, sizeof line, "%.*s from %.*s exceeded counts (limit %u)", sl,
                     service.data(), pl, peer.data(), limit);
      break;
    case PerIpTable::Verdict::kTableFull:
      (void)snprintf(line, sizeof line,
                     "%.*s from %.*s refused: per-IP table full (every slot holds a running child)",
                     sl, service.data(), pl, peer.data());
      break;
  }
  return line;
}

std::string LoopingMessage(std::string_view service, std::string_view proto) {
  char line[512];
  (void)snprintf(line, sizeof line, "%.*s/%.*s server failing (looping), service terminated",
                 static_cast<int>(std::min<size_t>(service.size(), 200)), service.data(),
                 static_cast<int>(std::min<size_t>(proto.size(), 50)), proto.data());
  return line;
}

}  // namespace inetd::listener
