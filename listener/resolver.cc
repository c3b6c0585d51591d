// The lookup helper (see resolver.h). Forked by inetd-listener before the
// listener's own filter, so it runs as the same unprivileged user, without
// capabilities and with no_new_privs; it keeps only its channel and loads a
// deny-list filter of its own. NSS (whatever nsswitch.conf names: files,
// DNS, NIS, sssd) needs open, mmap(PROT_EXEC), socket and connect, so the
// filter forbids what a lookup never needs instead of listing what it does.
// Trusts nothing in a request beyond its framing: every field is checked.
#include "listener/resolver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "listener/ident.h"
#include "proto/channel.h"
#include "proto/inetd.pb.h"
#include "proto/log.h"

namespace inetd::listener {
namespace {

using wire::LookupReply;
using wire::LookupRequest;

// --- bounds ----------------------------------------------------------------

constexpr size_t kWorkers = 4;      // lookups at once
constexpr size_t kMaxQueued = 256;  // waiting for a worker; beyond: FAILED at once
constexpr uint32_t kDefaultTimeoutMs = 5'000;
constexpr uint32_t kMaxTimeoutMs = 30'000;
constexpr size_t kMaxRequest = size_t{32} * 1024;  // 64 netgroup names of a few hundred bytes
constexpr size_t kMaxNetgroups = 64;       // bits in LookupReply.netgroups
constexpr size_t kMaxNetgroupName = 1024;
constexpr size_t kMaxHostName = 253;  // the longest DNS name
constexpr size_t kMaxUser = 255;      // libwrap's user name buffer
constexpr uint16_t kIdentPort = 113;

int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

// --- the filter --------------------------------------------------------------

constexpr unsigned kNoArg = ~0U;

// One row: the syscall fails with `err` when every comparison holds (none:
// always). A row with `only` instead fails unless the argument's low 32 bits
// (all the kernel reads of an int or unsigned int) are one of those values.
struct Cmp {
  unsigned arg = kNoArg;
  scmp_compare op = SCMP_CMP_EQ;
  uint64_t a = 0;  // SCMP_CMP_MASKED_EQ: the mask; otherwise the value
  uint64_t b = 0;  // SCMP_CMP_MASKED_EQ: the value
};
constexpr Cmp Set(unsigned arg, uint64_t bits) { return {arg, SCMP_CMP_MASKED_EQ, bits, bits}; }
constexpr Cmp Unset(unsigned arg, uint64_t bits) { return {arg, SCMP_CMP_MASKED_EQ, bits, 0}; }
constexpr Cmp Eq(unsigned arg, uint64_t v) { return {arg, SCMP_CMP_EQ, v, 0}; }
constexpr Cmp Ne(unsigned arg, uint64_t v) { return {arg, SCMP_CMP_NE, v, 0}; }

// The name first (SYS below gives it so): nr and err then share 8 bytes.
struct Deny {
  const char* name;
  int nr;
  int err;
  Cmp when[2];
  const char* why;
  std::span<const uint32_t> only = {};
  unsigned only_arg = 0;
};

constexpr uint32_t kFamilies[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};
// What glibc and the NSS modules ask of ioctl: all read-only queries.
constexpr uint32_t kIoctls[] = {
    TCGETS,    // isatty(), stdio
    FIONREAD,  // bytes waiting (RPC clients)
    FIONBIO,   // non-blocking mode (sunrpc/tirpc, NIS)
    FIOCLEX,   // close-on-exec
    FIONCLEX,
    SIOCGIFNAME,   // if_indextoname: scope of a link-local address
    SIOCGIFINDEX,  // if_nametoindex
    SIOCGIFCONF,   // interface list (sunrpc's get_myaddress)
    SIOCGIFFLAGS, SIOCGIFADDR,
};

#define SYS(name) #name, SCMP_SYS(name)

// clang-format off
constexpr Deny kDenied[] = {
    // no other program, no other process
    {SYS(execve), EPERM, {}, "a lookup runs no program"},
    {SYS(execveat), EPERM, {}, "a lookup runs no program"},
    {SYS(fork), EPERM, {}, "threads only"},
    {SYS(vfork), EPERM, {}, "threads only"},
    {SYS(clone), EPERM, {Unset(0, CLONE_THREAD)}, "threads only: a clone without CLONE_THREAD is a fork"},
    {SYS(clone3), ENOSYS, {}, "flags hide in a struct: ENOSYS makes glibc fall back to clone"},
    {SYS(unshare), EPERM, {}, "no new namespaces"},
    {SYS(setns), EPERM, {}, "no other namespaces"},
    // no reaching into other processes
    {SYS(ptrace), EPERM, {}, "no debugging of the listener (same uid)"},
    {SYS(process_vm_readv), EPERM, {}, "no reading the listener's memory"},
    {SYS(process_vm_writev), EPERM, {}, "no writing the listener's memory"},
    {SYS(pidfd_getfd), EPERM, {}, "no stealing the listener's fds"},
    {SYS(kcmp), EPERM, {}, "no probing other processes' fds"},
    // credentials stay as the monitor set them
    {SYS(setuid), EPERM, {}, "credentials are final"},
    {SYS(setgid), EPERM, {}, "credentials are final"},
    {SYS(setreuid), EPERM, {}, "credentials are final"},
    {SYS(setregid), EPERM, {}, "credentials are final"},
    {SYS(setresuid), EPERM, {}, "credentials are final"},
    {SYS(setresgid), EPERM, {}, "credentials are final"},
    {SYS(setfsuid), EPERM, {}, "credentials are final"},
    {SYS(setfsgid), EPERM, {}, "credentials are final"},
    {SYS(setgroups), EPERM, {}, "credentials are final"},
    {SYS(capset), EPERM, {}, "credentials are final"},
    // the kernel's larger attack surfaces
    {SYS(bpf), EPERM, {}, "kernel attack surface"},
    {SYS(perf_event_open), EPERM, {}, "kernel attack surface"},
    {SYS(userfaultfd), EPERM, {}, "kernel exploit primitive"},
    {SYS(keyctl), EPERM, {}, "keyrings: not for lookups"},
    {SYS(add_key), EPERM, {}, "keyrings: not for lookups"},
    {SYS(request_key), EPERM, {}, "keyrings: not for lookups"},
    {SYS(io_uring_setup), EPERM, {}, "io_uring's operations bypass this filter"},
    {SYS(io_uring_enter), EPERM, {}, "io_uring's operations bypass this filter"},
    {SYS(io_uring_register), EPERM, {}, "io_uring's operations bypass this filter"},
    {SYS(kexec_load), EPERM, {}, "system administration"},
    {SYS(kexec_file_load), EPERM, {}, "system administration"},
    {SYS(init_module), EPERM, {}, "system administration"},
    {SYS(finit_module), EPERM, {}, "system administration"},
    {SYS(delete_module), EPERM, {}, "system administration"},
    {SYS(mount), EPERM, {}, "system administration"},
    {SYS(umount2), EPERM, {}, "system administration"},
    {SYS(pivot_root), EPERM, {}, "system administration"},
    {SYS(chroot), EPERM, {}, "system administration"},
    {SYS(fsopen), EPERM, {}, "system administration (new mount API)"},
    {SYS(fsmount), EPERM, {}, "system administration (new mount API)"},
    {SYS(move_mount), EPERM, {}, "system administration (new mount API)"},
    {SYS(open_tree), EPERM, {}, "system administration (new mount API)"},
    // the network: DNS, ident, NIS, nscd and sssd sockets only
    {SYS(socket), EPERM, {}, "lookups use IP, unix sockets (nscd, sssd) and netlink", kFamilies, 0},
    {SYS(socket), EPERM, {Eq(0, AF_NETLINK), Ne(2, NETLINK_ROUTE)}, "netlink: routing only (getaddrinfo's AI_ADDRCONFIG)"},
    // the file system: read-only
    {SYS(open), EPERM, {Set(1, O_WRONLY)}, "NSS reads its files; writes none"},
    {SYS(open), EPERM, {Set(1, O_RDWR)}, "NSS reads its files; writes none"},
    {SYS(open), EPERM, {Set(1, O_CREAT)}, "NSS creates no file"},
    {SYS(open), EPERM, {Set(1, O_TRUNC)}, "O_RDONLY|O_TRUNC truncates on Linux"},
    {SYS(openat), EPERM, {Set(2, O_WRONLY)}, "NSS reads its files; writes none"},
    {SYS(openat), EPERM, {Set(2, O_RDWR)}, "NSS reads its files; writes none"},
    {SYS(openat), EPERM, {Set(2, O_CREAT)}, "NSS creates no file"},
    {SYS(openat), EPERM, {Set(2, O_TRUNC)}, "O_RDONLY|O_TRUNC truncates on Linux"},
    {SYS(openat2), ENOSYS, {}, "flags hide in a struct: ENOSYS, libc uses openat"},
    {SYS(creat), EPERM, {}, "creates a file"},
    {SYS(open_by_handle_at), EPERM, {}, "opens by handle, around permissions"},
    {SYS(truncate), EPERM, {}, "changes a file"},
    {SYS(unlink), EPERM, {}, "changes the file system"},
    {SYS(unlinkat), EPERM, {}, "changes the file system"},
    {SYS(rename), EPERM, {}, "changes the file system"},
    {SYS(renameat), EPERM, {}, "changes the file system"},
    {SYS(renameat2), EPERM, {}, "changes the file system"},
    {SYS(link), EPERM, {}, "changes the file system"},
    {SYS(linkat), EPERM, {}, "changes the file system"},
    {SYS(symlink), EPERM, {}, "changes the file system"},
    {SYS(symlinkat), EPERM, {}, "changes the file system"},
    {SYS(mkdir), EPERM, {}, "changes the file system"},
    {SYS(mkdirat), EPERM, {}, "changes the file system"},
    {SYS(rmdir), EPERM, {}, "changes the file system"},
    {SYS(mknod), EPERM, {}, "changes the file system"},
    {SYS(mknodat), EPERM, {}, "changes the file system"},
    {SYS(chmod), EPERM, {}, "changes the file system"},
    {SYS(fchmod), EPERM, {}, "changes the file system"},
    {SYS(fchmodat), EPERM, {}, "changes the file system"},
    {SYS(chown), EPERM, {}, "changes the file system"},
    {SYS(fchown), EPERM, {}, "changes the file system"},
    {SYS(lchown), EPERM, {}, "changes the file system"},
    {SYS(fchownat), EPERM, {}, "changes the file system"},
    // devices
    {SYS(ioctl), EPERM, {}, "only glibc's read-only queries (no TIOCSTI and the like)", kIoctls, 1},
};
// clang-format on
#undef SYS

// The complement of `allowed` within 32 bits, as (mask, value) blocks: the
// argument is outside the set iff (arg & mask) == value for some block.
// Walks the binary trie of the set: every branch that holds no allowed value
// is one block, so at most 32 blocks per value.
// NOLINTNEXTLINE(misc-no-recursion): depth grows by one a call, ends at 32
void Complement(std::span<const uint32_t> allowed, uint32_t prefix, unsigned depth,
                std::vector<std::pair<uint32_t, uint32_t>>* out) {
  if (depth == 32) return;  // exactly one allowed value
  const uint32_t bit = uint32_t{1} << (31 - depth);
  const uint32_t mask = depth == 0 ? 0 : ~((uint32_t{1} << (32 - depth)) - 1);
  const uint32_t high = mask | bit;
  for (uint32_t side : {prefix, prefix | bit}) {
    std::vector<uint32_t> in;
    for (uint32_t v : allowed)
      if ((v & high) == side) in.push_back(v);
    if (in.empty()) {
      out->push_back({high, side});
    } else {
      Complement(in, side, depth + 1, out);
    }
  }
}

bool AddRow(scmp_filter_ctx ctx, const Deny& d) {
  if (d.nr < 0) return true;  // not a syscall on this architecture
  const uint32_t action = SCMP_ACT_ERRNO(static_cast<uint32_t>(d.err));
  if (!d.only.empty()) {
    std::vector<std::pair<uint32_t, uint32_t>> blocks;
    Complement(d.only, 0, 0, &blocks);
    for (auto [mask, value] : blocks)
      if (seccomp_rule_add(ctx, action, d.nr, 1,
                           SCMP_CMP(d.only_arg, SCMP_CMP_MASKED_EQ, mask, value)) != 0)
        return false;
    return true;
  }
  scmp_arg_cmp cmps[2];
  unsigned n = 0;
  for (const Cmp& c : d.when)
    if (c.arg != kNoArg) cmps[n++] = SCMP_CMP(c.arg, c.op, c.a, c.b);
  return seccomp_rule_add_array(ctx, action, d.nr, n, cmps) == 0;
}

// --- addresses -----------------------------------------------------------------

struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_UNSPEC;
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

// 4 or 16 bytes in network order; a v4-mapped IPv6 address is looked up as
// the IPv4 address it carries (its PTR and A records are the IPv4 ones).
bool ToAddr(const std::string& bytes, uint16_t port, Addr* out) {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  const auto* b = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint8_t* v4 = nullptr;
  if (bytes.size() == 4) v4 = b;
  if (bytes.size() == 16 && memcmp(b, kMapped, sizeof kMapped) == 0) v4 = b + 12;
  *out = Addr{};
  if (v4 != nullptr) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out->ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    memcpy(&sin->sin_addr, v4, 4);
    out->len = sizeof *sin;
    out->family = AF_INET;
    return true;
  }
  if (bytes.size() != 16) return false;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out->ss);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  memcpy(&sin6->sin6_addr, b, 16);
  out->len = sizeof *sin6;
  out->family = AF_INET6;
  return true;
}

bool SameHost(const sockaddr* sa, const Addr& a) {
  if (sa->sa_family != a.family) return false;
  if (a.family == AF_INET)
    return memcmp(&reinterpret_cast<const sockaddr_in*>(sa)->sin_addr,
                  &reinterpret_cast<const sockaddr_in*>(a.sa())->sin_addr, 4) == 0;
  return memcmp(&reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr,
                &reinterpret_cast<const sockaddr_in6*>(a.sa())->sin6_addr, 16) == 0;
}

// --- HOST_NAME ---------------------------------------------------------------------

// innetgr keeps its state in globals (MT-Unsafe race:netgrent).
std::mutex netgroup_mu;

uint64_t Netgroups(const LookupRequest& r, const std::string& host) {
  uint64_t bits = 0;
  const size_t n = std::min<size_t>(static_cast<size_t>(r.netgroups_size()), kMaxNetgroups);
  std::lock_guard lock(netgroup_mu);
  for (size_t i = 0; i < n; ++i) {
    const std::string& g = r.netgroups(static_cast<int>(i));
    if (g.empty() || g.size() > kMaxNetgroupName || g.find('\0') != std::string::npos) continue;
    if (innetgr(g.c_str(), host.c_str(), nullptr, nullptr) == 1) bits |= uint64_t{1} << i;
  }
  return bits;
}

// libwrap's sock_hostname: the name of the address, believed only if it maps
// back to the address. No name: FAILED ("unknown"). A name that does not map
// back, that cannot be looked up, or that reads as an address (a PTR record
// of "10.0.0.1" would pass for that host in address rules): PARANOID. The
// name is returned as the PTR record has it; the matcher lower-cases.
LookupReply HostName(const LookupRequest& r) {
  LookupReply rep;
  rep.set_state(LookupReply::FAILED);
  Addr a;
  if (!ToAddr(r.addr(), 0, &a)) return rep;
  char host[NI_MAXHOST];
  if (getnameinfo(a.sa(), a.len, host, sizeof host, nullptr, 0, NI_NAMEREQD) != 0) return rep;
  const std::string name(host, strnlen(host, sizeof host));
  if (name.empty() || name.size() > kMaxHostName) return rep;

  rep.set_state(LookupReply::PARANOID);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = AI_NUMERICHOST;
  addrinfo* res = nullptr;
  if (getaddrinfo(name.c_str(), nullptr, &hints, &res) == 0) {
    freeaddrinfo(res);
    return rep;
  }
  hints = addrinfo{};
  hints.ai_family = a.family;
  hints.ai_socktype = SOCK_STREAM;  // one entry per address
  res = nullptr;
  if (getaddrinfo(name.c_str(), nullptr, &hints, &res) != 0) return rep;
  bool found = false;
  for (const addrinfo* ai = res; ai != nullptr && !found; ai = ai->ai_next)
    found = ai->ai_addr != nullptr && SameHost(ai->ai_addr, a);
  freeaddrinfo(res);
  if (!found) return rep;
  rep.set_state(LookupReply::FOUND);
  rep.set_name(name);
  if (r.netgroups_size() > 0) rep.set_netgroups(Netgroups(r, name));
  return rep;
}

// --- USER (RFC 1413 client) ------------------------------------------------------

// Waits for `events` on `fd` until `deadline`. False on timeout or error.
bool WaitFor(int fd, short events, int64_t deadline) {
  for (int i = 0; i < 1000; ++i) {  // EINTR retries; the deadline ends it anyway
    const int64_t left = deadline - NowMs();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, static_cast<int>(left));
    if (n > 0) return (p.revents & events) != 0;
    if (n == 0 || errno != EINTR) return false;
  }
  return false;
}

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

void SkipBlanks(std::string_view s, size_t& i) {
  while (i < s.size() && IsBlank(s[i])) ++i;
}

bool ReadPort(std::string_view s, size_t& i, uint32_t* out) {
  size_t start = i;
  uint32_t v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - start < 5)
    v = v * 10 + static_cast<uint32_t>(s[i++] - '0');
  *out = v;
  return i > start && (i == s.size() || s[i] < '0' || s[i] > '9');
}

// "port , port : USERID : opsys : user", as libwrap's rfc931 reads it: the
// ports must be the ones asked about, the type exactly USERID, the opsys
// field non-empty; the user is the first blank-delimited word after the
// third colon, at most kMaxUser bytes (longer: refused, not truncated).
bool ParseIdentReply(std::string_view line, uint32_t port, uint32_t local_port, std::string* user) {
  size_t i = 0;
  uint32_t p1 = 0, p2 = 0;
  SkipBlanks(line, i);
  if (!ReadPort(line, i, &p1)) return false;
  SkipBlanks(line, i);
  if (i == line.size() || line[i++] != ',') return false;
  SkipBlanks(line, i);
  if (!ReadPort(line, i, &p2)) return false;
  SkipBlanks(line, i);
  if (i == line.size() || line[i++] != ':') return false;
  if (p1 != port || p2 != local_port) return false;
  SkipBlanks(line, i);
  if (line.substr(i, 6) != "USERID") return false;
  i += 6;
  SkipBlanks(line, i);
  if (i == line.size() || line[i++] != ':') return false;
  const size_t opsys = line.find(':', i);
  if (opsys == std::string_view::npos || opsys == i) return false;
  i = opsys + 1;
  SkipBlanks(line, i);
  size_t end = i;
  while (end < line.size() && !IsBlank(line[end])) ++end;
  if (end == i || end - i > kMaxUser) return false;
  user->assign(line.substr(i, end - i));
  return true;
}

LookupReply User(const LookupRequest& r, int64_t deadline) {
  LookupReply rep;
  rep.set_state(LookupReply::FAILED);
  Addr peer, local;
  if (!ToAddr(r.addr(), kIdentPort, &peer) || !ToAddr(r.local_addr(), 0, &local) ||
      peer.family != local.family)
    return rep;
  if (r.port() == 0 || r.port() > 65535 || r.local_port() == 0 || r.local_port() > 65535)
    return rep;

  UniqueFd s(socket(peer.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s.Valid()) return rep;
  // From our address of the connection, so the client's ident server sees
  // the same host pair and a firewall lets the answer back.
  if (bind(s.Get(), local.sa(), local.len) != 0) return rep;
  if (connect(s.Get(), peer.sa(), peer.len) != 0 && errno != EINPROGRESS) return rep;
  if (!WaitFor(s.Get(), POLLOUT, deadline)) return rep;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(s.Get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) return rep;

  // RFC 1413: "<port on the ident server's host> , <port on ours>": the
  // ident server runs on the client's host, so the client's port first.
  const std::string query =
      std::to_string(r.port()) + " , " + std::to_string(r.local_port()) + "\r\n";
  size_t sent = 0;
  while (sent < query.size()) {  // at most a few bytes: one or two rounds
    if (!WaitFor(s.Get(), POLLOUT, deadline)) return rep;
    ssize_t n = send(s.Get(), query.data() + sent, query.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return rep;
    if (n > 0) sent += static_cast<size_t>(n);
  }

  std::string buf;
  char chunk[256];
  while (buf.size() < ident::kMaxLine) {  // each round adds a byte, or ends
    if (!WaitFor(s.Get(), POLLIN, deadline)) return rep;
    ssize_t n = recv(s.Get(), chunk, std::min(sizeof chunk, ident::kMaxLine - buf.size()), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return rep;
    }
    if (n == 0) break;  // an answer without an end of line still counts (libwrap's fgets)
    buf.append(chunk, static_cast<size_t>(n));
    ident::ScanResult sr = ident::ScanLine(buf);
    if (sr.scan == ident::Scan::kLine) {
      buf.resize(sr.line_len);
      break;
    }
    if (sr.scan != ident::Scan::kNeedMore) return rep;
  }
  if (buf.find('\0') != std::string::npos || buf.size() >= ident::kMaxLine) return rep;
  std::string user;
  if (!ParseIdentReply(buf, r.port(), r.local_port(), &user)) return rep;
  rep.set_state(LookupReply::FOUND);
  rep.set_name(user);
  return rep;
}

LookupReply Lookup(const LookupRequest& r, int64_t deadline) {
  switch (r.kind()) {
    case LookupRequest::HOST_NAME: return HostName(r);
    case LookupRequest::USER: return User(r, deadline);
    default: break;
  }
  LookupReply rep;
  rep.set_state(LookupReply::FAILED);
  return rep;
}

// --- serving ---------------------------------------------------------------------

// One dispatcher (the calling thread) reads requests, queues them, sends
// every reply and answers FAILED at each deadline; kWorkers threads do the
// blocking lookups. A result that comes after its deadline is dropped.
class Server {
 public:
  explicit Server(int fd) : fd_(fd) {}
  int Run();

 private:
  struct Job {
    uint64_t seq;
    LookupRequest req;
    int64_t deadline;
  };
  struct Done {
    uint64_t seq;
    LookupReply reply;
  };
  struct Open {
    uint64_t id;
    int64_t deadline;
  };

  void Work();
  bool OnRequest();
  bool Send(uint64_t id, LookupReply reply) const;
  bool SendFailed(uint64_t id) const;
  bool Flush();
  bool Expire();
  int PollTimeout() const;

  const int fd_;
  UniqueFd wake_;  // eventfd: a worker finished a job

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;   // guarded by mu_, at most kMaxQueued
  std::vector<Done> done_;  // guarded by mu_, at most one per open job
  bool stop_ = false;       // guarded by mu_

  std::map<uint64_t, Open> open_;  // dispatcher only: by seq, not yet answered
  uint64_t next_seq_ = 1;
};

void Server::Work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    if (NowMs() >= job.deadline) continue;  // already answered FAILED
    LookupReply reply = Lookup(job.req, job.deadline);
    {
      std::lock_guard lock(mu_);
      done_.push_back({job.seq, std::move(reply)});
    }
    const uint64_t one = 1;
    // Fails only with the counter at its maximum (EAGAIN): a wake-up is
    // pending then anyway.
    const ssize_t woke = write(wake_.Get(), &one, sizeof one);
    (void)woke;
  }
}

bool Server::Send(uint64_t id, LookupReply reply) const {
  reply.set_id(id);
  if (reply.state() != LookupReply::FOUND) {
    reply.clear_name();
    reply.clear_netgroups();
  }
  // Blocking: the listener reads replies as they come; if it stops reading,
  // nobody is waiting for the others either.
  return wire::SendFrame(fd_, reply).has_value();
}

bool Server::SendFailed(uint64_t id) const {
  LookupReply rep;
  rep.set_state(LookupReply::FAILED);
  return Send(id, std::move(rep));
}

bool Server::OnRequest() {
  Result<wire::Frame> f = wire::RecvFrame(fd_, kMaxRequest, 0, MSG_DONTWAIT);
  if (!f) {
    const int code = f.error().code;
    // Oversized, fds attached, foreign control data: dropped, keep serving.
    return code == EAGAIN || code == EINTR || code == EMSGSIZE || code == EBADMSG;
  }
  LookupRequest req;
  if (!wire::Decode(*f, req)) return true;  // no id to answer: ignored
  uint32_t timeout = req.timeout_ms() == 0 ? kDefaultTimeoutMs : req.timeout_ms();
  timeout = std::min(timeout, kMaxTimeoutMs);
  const uint64_t id = req.id();
  const bool known = req.kind() == LookupRequest::HOST_NAME || req.kind() == LookupRequest::USER;
  if (!known) return SendFailed(id);
  const uint64_t seq = next_seq_++;
  const int64_t deadline = NowMs() + timeout;
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) return SendFailed(id);
    queue_.push_back({seq, std::move(req), deadline});
  }
  cv_.notify_one();
  open_.emplace(seq, Open{id, deadline});
  return true;
}

bool Server::Flush() {
  uint64_t count = 0;
  // Resets the counter; EAGAIN (already reset) changes nothing: done_ is
  // what counts.
  const ssize_t got = read(wake_.Get(), &count, sizeof count);
  (void)got;
  std::vector<Done> done;
  {
    std::lock_guard lock(mu_);
    done.swap(done_);
  }
  for (Done& d : done) {
    auto it = open_.find(d.seq);
    if (it == open_.end()) continue;  // answered FAILED at its deadline
    const uint64_t id = it->second.id;
    open_.erase(it);
    if (!Send(id, std::move(d.reply))) return false;
  }
  return true;
}

bool Server::Expire() {
  const int64_t now = NowMs();
  std::vector<uint64_t> expired;
  for (const auto& [seq, o] : open_)
    if (o.deadline <= now) expired.push_back(seq);
  if (expired.empty()) return true;
  {
    // Out of the queue too, so that the bound counts live requests only.
    std::lock_guard lock(mu_);
    std::erase_if(queue_, [now](const Job& j) { return j.deadline <= now; });
  }
  return std::ranges::all_of(expired, [this](uint64_t seq) {
    const uint64_t id = open_[seq].id;
    open_.erase(seq);
    return SendFailed(id);
  });
}

int Server::PollTimeout() const {
  if (open_.empty()) return -1;
  int64_t first = INT64_MAX;
  for (const auto& [seq, o] : open_) first = std::min(first, o.deadline);
  return static_cast<int>(std::clamp<int64_t>(first - NowMs(), 0, kMaxTimeoutMs));
}

int Server::Run() {
  wake_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_.Valid()) return 1;
  std::vector<std::thread> workers;
  workers.reserve(kWorkers);
  for (size_t i = 0; i < kWorkers; ++i) workers.emplace_back([this] { Work(); });

  bool serving = true;
  while (serving) {  // ends when the listener closes the channel
    pollfd p[2] = {{fd_, POLLIN, 0}, {wake_.Get(), POLLIN, 0}};
    int n = poll(p, 2, PollTimeout());
    if (n < 0 && errno != EINTR) break;
    if (n > 0 && (p[1].revents & POLLIN)) serving = Flush();
    if (serving && n > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)))
      serving = OnRequest();
    if (serving) serving = Expire();
  }

  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  // A worker in a lookup finishes it first: USER by its deadline, HOST_NAME
  // by the resolver's own timeouts (resolv.conf).
  for (std::thread& t : workers) t.join();
  return 0;
}

// --- the child ---------------------------------------------------------------------

void NoLog(int, std::string_view) {}

[[noreturn]] void BecomeResolver(int fd, pid_t parent) {
  // Dies with the listener; the check closes the race with its death.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != parent) _exit(1);
  (void)prctl(PR_SET_NAME, "inetd-resolver", 0, 0, 0);
  // The listener's handlers and mask are not ours.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);  // EINVAL for KILL/STOP
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  (void)signal(SIGPIPE, SIG_IGN);  // fails only for a bad signal number

  // Only the channel survives, at 3; 0-2 become /dev/null so that nothing a
  // library writes to "stderr" lands on a socket NSS opens later.
  // (Sanitizer builds keep stderr, for their reports.)
  const int kChannel = 3;
  if (fd != kChannel) {
    if (dup2(fd, kChannel) < 0) _exit(1);
    close(fd);
  }
  if (close_range(kChannel + 1, ~0U, 0) != 0) _exit(1);
#if INETD_SANITIZED
  const int kLastStd = 1;
#else
  const int kLastStd = 2;
#endif
  for (int i = 0; i <= kLastStd; ++i) {
    close(i);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0 && null != i) close(null);
  }
  // The listener's sink writes to its log channel, which is gone: the
  // resolver has nobody to tell, and says everything in its replies.
  SetLogSink(NoLog);
  if (!InstallResolverPolicy()) _exit(1);
  _exit(RunResolver(kChannel));
}

}  // namespace

bool InstallResolverPolicy() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return false;
  bool ok = true;
  for (const Deny& d : kDenied) ok = ok && AddRow(ctx, d);
  ok = ok && seccomp_load(ctx) == 0;
  seccomp_release(ctx);
  return ok;
}

int RunResolver(int fd) { return Server(fd).Run(); }

UniqueFd StartResolver() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    Log(LOG_ERR, "resolver: socketpair: %s; name lookups will fail", strerrordesc_np(errno));
    return {};
  }
  UniqueFd ours(sv[0]), theirs(sv[1]);
  // The listener never waits for children (its filter has no wait4): let
  // the kernel reap a resolver that dies.
  (void)signal(SIGCHLD, SIG_IGN);  // fails only for a bad signal number
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    Log(LOG_ERR, "resolver: fork: %s; name lookups will fail", strerrordesc_np(errno));
    return {};
  }
  if (pid == 0) {
    ours.Reset();
    BecomeResolver(theirs.Release(), parent);
  }
  theirs.Reset();
  if (fcntl(ours.Get(), F_SETFL, O_NONBLOCK) != 0) {
    Log(LOG_ERR, "resolver: fcntl: %s; name lookups will fail", strerrordesc_np(errno));
    return {};  // closing our end ends the resolver
  }
  return ours;
}


}  // namespace inetd::listener
