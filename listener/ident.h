// RFC 1413 ident, the pure half of the auth built-in: request framing and
// parsing, FreeBSD's auth options, and the reply bytes. No I/O: the
// connection lives in builtin_auth.cc, the owner lookup in sock_diag.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace inetd::listener::ident {

// RFC 1413 lets a client give up after 1000 characters without an end of
// line; a query is about 15 ("65535 , 65535\r\n"). A longer line is refused.
constexpr size_t kMaxLine = 1000;
// FreeBSD's default for -t: 10.0 seconds for the whole exchange.
constexpr int kDefaultTimeoutMs = 10'000;
// -t's largest value; the loop's idle timeout (60 s) cuts in first anyway.
constexpr int kMaxTimeoutMs = 3600 * 1000;
// RFC 1413: a server SHOULD NOT send more than 512 octets of user ID.
constexpr size_t kMaxUserId = 512;
// RFC 1413: tokens (the operating system name) are at most 64 characters.
constexpr size_t kMaxToken = 64;

// --- framing ---------------------------------------------------------------

enum class Scan : uint8_t {
  kNeedMore,  // no end of line yet, under kMaxLine
  kLine,      // a line: `line_len` bytes, then LF (CR LF or a bare LF)
  kOverlong,  // kMaxLine bytes without an end of line
  kNul,       // a NUL byte before the end of line
};
struct ScanResult {
  Scan scan;
  size_t line_len;  // kLine: the line without its CR LF
};
// Looks at what arrived so far for the first line.
ScanResult ScanLine(std::string_view buf);

// --- the query -------------------------------------------------------------

// "port-on-server , port-on-client", blanks anywhere but inside a number.
struct Request {
  bool valid = false;        // two decimal numbers, both 1 .. 65535
  uint32_t server_port = 0;  // as read (0 .. 99999), echoed in the reply;
  uint32_t client_port = 0;  // 0 , 0 when the line is not two numbers
};
Request ParseRequest(std::string_view line);

// --- options ---------------------------------------------------------------

// FreeBSD's auth arguments, as inetd(8) describes them.
struct Options {
  bool real = false;      // -r: look the owner up (else HIDDEN-USER, or -d / -g)
  bool numeric = false;   // -i: uid numbers instead of names
  bool random = false;    // -g: random names in place of every name
  std::string fallback;   // -d: name for failed lookups (every query without -r)
  std::string os;         // -o: operating system field; empty: the system's name
  int timeout_ms = kDefaultTimeoutMs;  // -t sec[.usec]
  // Fail closed: the arguments ask for something this listener cannot do
  // (-f, -F, -n read users' files; an unknown option): every query is
  // answered HIDDEN-USER, so no name is ever given away by mistake.
  bool hidden = false;
};

// One log line about the arguments: what was ignored or refused, and why.
struct Note {
  bool refused;  // made the service fail closed (Options::hidden)
  std::string text;
};
struct ParsedOptions {
  Options options;
  std::vector<Note> notes;
};
// `argv` as inetd.conf gives it, argv[0] (the service name) first; parsed
// as getopt(3) does on BSD (stops at the first operand).
ParsedOptions ParseOptions(std::span<const std::string> argv);

// --- replies ---------------------------------------------------------------

enum class ErrorType : uint8_t { kInvalidPort, kNoUser, kHiddenUser, kUnknownError };

// FreeBSD's spacing, byte for byte:
//   "6193 , 23 : ERROR : NO-USER\r\n"
//   "6193 , 23 : USERID : FreeBSD : alice\r\n"
std::string ErrorReply(uint32_t server_port, uint32_t client_port, ErrorType type);
std::string UseridReply(uint32_t server_port, uint32_t client_port, std::string_view os,
                        std::string_view user);

// What the kernel said about the connection the query names.
enum class OwnerStatus : uint8_t { kFound, kNoUser, kFailed };
struct Owner {
  OwnerStatus status = OwnerStatus::kFailed;
  uint32_t uid = 0;
};

// Everything an answer depends on besides the options and the query.
struct Facts {
  Owner owner;                   // only consulted with -r
  std::string_view user_name;    // owner.uid's name, empty if unknown
  std::string_view random_name;  // -g's name for this answer
  std::string_view system_os;    // uname's sysname ("Linux")
};

// Whether the answer to `r` under `o` needs the owner's uid.
bool NeedsOwner(const Options& o, const Request& r);
// The reply line, CR LF included.
std::string Answer(const Options& o, const Request& r, const Facts& f);

// -g's name: 8 characters of [0-9a-z] from 64 random bits.
std::string RandomName(uint64_t bits);
// A name that may go into a USERID reply: 1 .. kMaxUserId printable ASCII
// characters, no blank (the reply's line structure stays intact).
bool ValidUserId(std::string_view s);
// An operating system field (-o, uname's sysname): 1 .. kMaxToken printable
// ASCII characters, no blank, no ':'.
bool ValidOs(std::string_view s);

}  // namespace inetd::listener::ident
