// Private to listener/builtin*.cc (and their unit test): the factories and
// datagram handlers that the table in builtin.cc names, the plumbing they
// share, and the pure pieces (formats, source checks) the tests pin down.
#pragma once

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>

#include "listener/builtin.h"

namespace inetd::listener {

// One pair per builtin_<name>.cc.
std::unique_ptr<Conn> NewEchoConn(UniqueFd fd);
bool EchoDgram(int fd);
std::unique_ptr<Conn> NewDiscardConn(UniqueFd fd);
bool DiscardDgram(int fd);
std::unique_ptr<Conn> NewChargenConn(UniqueFd fd);
bool ChargenDgram(int fd);
std::unique_ptr<Conn> NewDaytimeConn(UniqueFd fd);
bool DaytimeDgram(int fd);
std::unique_ptr<Conn> NewTimeConn(UniqueFd fd);
bool TimeDgram(int fd);
std::unique_ptr<Conn> NewTcpmuxConn(UniqueFd fd);
// builtin_auth.cc: RFC 1413, with FreeBSD's options from inetd.conf.
std::unique_ptr<Conn> NewAuthConn(UniqueFd fd, const wire::Service& conf);
void ConfigureAuth(const wire::Config& config);
void PrepareAuth();

// Fairness: at most this many reads or writes per OnEvent, so one busy
// connection cannot hold the loop (the loop is level-triggered and comes back).
constexpr int kMaxCallsPerEvent = 16;

// --- stream plumbing -------------------------------------------------------

// One non-blocking recv or send on a connected stream, EINTR retried.
enum class Io : uint8_t {
  kData,   // n bytes moved
  kAgain,  // would block
  kEof,    // (recv only) the peer closed its write side
  kError,  // reset, broken pipe ...: give the connection up
};
struct IoResult {
  Io io;
  size_t n;
};
IoResult RecvSome(int fd, void* buf, size_t cap);
IoResult SendSome(int fd, const void* buf, size_t len);

// Daytime and time: one short answer right after accept, then close.
// Waits for EPOLLOUT only in the unlikely case the answer did not fit at once.
class ReplyConn : public Conn {
 public:
  using Conn::Conn;
  static constexpr size_t kMaxReply = 32;
  bool OnStart() final;
  bool OnEvent(uint32_t events) final;
  uint32_t Interest() const final { return EPOLLOUT; }

 protected:
  // The answer, composed at OnStart; returns its length (<= kMaxReply).
  virtual size_t Compose(std::array<char, kMaxReply>& out) = 0;

 private:
  bool Flush();  // false when finished: all sent, or the peer is gone
  std::array<char, kMaxReply> out_{};
  size_t sent_ = 0;
  size_t len_ = 0;
};

// --- datagram plumbing -----------------------------------------------------

// Why a datagram's source must not be answered.
enum class Refusal : uint8_t {
  kNone,            // answer it
  kLoop,            // source port is a built-in's (7, 9, 13, 19, 37)
  kPrivilegedPort,  // source port < 1024: a server, or port 0
  kBadAddress,      // multicast, broadcast, reserved or unspecified source
  kBadFamily,       // neither IPv4 nor IPv6
};
Refusal ClassifySource(const sockaddr_storage& peer, socklen_t len);

// Per-handler state of the refusal log: one line per clock second at most.
struct DropLog {
  const char* service;
  time_t last = 0;
  bool logged = false;
  unsigned suppressed = 0;
};

struct Datagram {
  sockaddr_storage peer{};
  socklen_t peer_len = 0;
  size_t size = 0;  // bytes kept in the caller's buffer
};

enum class Got : uint8_t {
  kNothing,  // nothing queued (EAGAIN) or a socket error
  kIgnored,  // read (or EINTR): nothing to answer, call again
  kAnswer,   // read, and its source may be answered
};
// Reads one datagram into buf (truncated to cap) and checks its source;
// a refused source is logged (rate-limited) and reported as kIgnored.
Got ReceiveDatagram(int fd, void* buf, size_t cap, DropLog& log, Datagram* d);
// Sends one answer to d's source without blocking; dropped if it cannot go now.
void SendReply(int fd, const void* buf, size_t len, const Datagram& d);

// --- pure pieces -----------------------------------------------------------

// ctime(3)'s layout cut to 24 characters, then CRLF, in UTC:
// "Sun Nov 22 00:12:34 2026\r\n". Returns the length (26 for years 1000-9999).
size_t FormatDaytime(time_t t, std::array<char, ReplyConn::kMaxReply>& out);
// RFC 1078: what a tcpmux request line asks for.
struct TcpmuxRequest {
  enum Kind : uint8_t { kHelp, kService, kBad } kind;
  std::string name;  // kService: the name as sent
};
// Parses one request line without its line end; names are printable ASCII
// without blanks, at most kTcpmuxMaxLine bytes.
constexpr size_t kTcpmuxMaxLine = 256;
TcpmuxRequest ParseTcpmuxRequest(std::string_view line);
// The entry a name asks for, regardless of case, or nullptr.
const TcpmuxEntry* FindTcpmux(std::string_view name);
// The names for "help", one per line, CRLF-terminated.
std::string TcpmuxHelp();

// RFC 868: seconds since 1900-01-01 00:00 UTC, modulo 2^32.
uint32_t SecondsSince1900(time_t t);

// RFC 864: 72 printable characters and CRLF per line; the 95 printable
// ASCII characters in a ring, each line starting one further along.
constexpr size_t kChargenLineChars = 72;
constexpr size_t kChargenLineBytes = kChargenLineChars + 2;
constexpr size_t kChargenPrintable = 95;  // ' ' (0x20) .. '~' (0x7e)
constexpr size_t kChargenCycleBytes = kChargenPrintable * kChargenLineBytes;

}  // namespace inetd::listener
