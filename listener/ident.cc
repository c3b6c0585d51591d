// RFC 1413 ident: framing, query parser, FreeBSD's auth options and the
// reply formats (see ident.h). Runs in the sandboxed listener on bytes from
// the network: every function here is total, bounded by kMaxLine, and
// allocates only the reply and the option notes.
#include "listener/ident.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace inetd::listener::ident {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

void SkipBlanks(std::string_view s, size_t& i) {
  while (i < s.size() && IsBlank(s[i])) ++i;
}

// RFC 1413's port: one to five digits. False if there is none or it is longer.
bool ReadPort(std::string_view s, size_t& i, uint32_t& out) {
  size_t start = i;
  uint32_t v = 0;
  while (i < s.size() && IsDigit(s[i])) {
    if (i - start == 5) return false;
    v = v * 10 + static_cast<uint32_t>(s[i] - '0');
    ++i;
  }
  if (i == start) return false;
  out = v;
  return true;
}

// Digits only, at most `max`.
bool ReadNumber(std::string_view s, unsigned long max, unsigned long& out) {
  if (s.empty() || s.size() > 9) return false;
  unsigned long v = 0;
  for (char c : s) {
    if (!IsDigit(c)) return false;
    v = v * 10 + static_cast<unsigned long>(c - '0');
  }
  if (v > max) return false;
  out = v;
  return true;
}

// An argument for a log line: quoted and cut short.
std::string Q(std::string_view s) {
  std::string out = "\"";
  out.append(s.substr(0, 40));
  out += s.size() > 40 ? "...\"" : "\"";
  return out;
}

// -t sec[.usec]: as FreeBSD reads it, usec is a count of microseconds
// ("1.5" is one second and five microseconds), not a decimal fraction.
bool ParseTimeout(std::string_view s, int& ms) {
  size_t dot = s.find('.');
  unsigned long sec = 0, usec = 0;
  if (!ReadNumber(s.substr(0, dot), kMaxTimeoutMs / 1000, sec)) return false;
  if (dot != std::string_view::npos && !ReadNumber(s.substr(dot + 1), 999'999, usec))
    return false;
  unsigned long total = sec * 1000 + (usec + 999) / 1000;
  if (total > static_cast<unsigned long>(kMaxTimeoutMs)) return false;
  ms = total == 0 ? 1 : static_cast<int>(total);  // 0 s: no waiting beyond the loop's tick
  return true;
}

const char* ErrorText(ErrorType type) {
  switch (type) {
    case ErrorType::kInvalidPort: return "INVALID-PORT";
    case ErrorType::kNoUser: return "NO-USER";
    case ErrorType::kHiddenUser: return "HIDDEN-USER";
    case ErrorType::kUnknownError: break;
  }
  return "UNKNOWN-ERROR";
}

}  // namespace

ScanResult ScanLine(std::string_view buf) {
  const std::string_view window = buf.substr(0, kMaxLine);
  for (size_t i = 0; i < window.size(); ++i) {
    if (window[i] == '\0') return {Scan::kNul, 0};
    if (window[i] == '\n') return {Scan::kLine, i > 0 && window[i - 1] == '\r' ? i - 1 : i};
  }
  return {buf.size() >= kMaxLine ? Scan::kOverlong : Scan::kNeedMore, 0};
}

Request ParseRequest(std::string_view line) {
  Request r;
  uint32_t server = 0, client = 0;
  size_t i = 0;
  SkipBlanks(line, i);
  if (!ReadPort(line, i, server)) return r;
  SkipBlanks(line, i);
  if (i == line.size() || line[i] != ',') return r;
  ++i;
  SkipBlanks(line, i);
  if (!ReadPort(line, i, client)) return r;
  SkipBlanks(line, i);
  if (i != line.size()) return r;
  // Well-formed: echo the numbers even when out of range (RFC 1413's
  // INVALID-PORT reply still names the pair it was asked about).
  r.server_port = server;
  r.client_port = client;
  r.valid = server >= 1 && server <= 65535 && client >= 1 && client <= 65535;
  return r;
}

ParsedOptions ParseOptions(std::span<const std::string> argv) {
  ParsedOptions p;
  Options& o = p.options;
  bool fake = false, fake_any = false, noident = false;
  auto refuse = [&](std::string why) {
    p.notes.push_back({true, std::move(why) + ": every query is answered HIDDEN-USER"});
    o.hidden = true;
  };
  size_t i = 1;  // argv[0] names the service
  for (; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') break;  // BSD getopt: options end at an operand
    for (size_t j = 1; j < arg.size(); ++j) {
      const char c = arg[j];
      bool* flag = nullptr;
      switch (c) {
        case 'r': flag = &o.real; break;
        case 'i': flag = &o.numeric; break;
        case 'g': flag = &o.random; break;
        case 'f': flag = &fake; break;
        case 'F': flag = &fake_any; break;
        case 'n': flag = &noident; break;
        case 'd': case 'o': case 't': break;
        default:
          refuse(std::string("unknown option -") + (c >= 0x21 && c <= 0x7e ? c : '?'));
          continue;
      }
      if (flag != nullptr) {
        *flag = true;
        continue;
      }
      // An option with a value: the rest of this word, or the next word.
      std::string value;
      if (j + 1 < arg.size()) {
        value = arg.substr(j + 1);
      } else if (i + 1 < argv.size()) {
        value = argv[++i];
      } else {
        refuse(std::string("-") + c + " needs a value");
        break;
      }
      if (c == 'd') {
        if (ValidUserId(value))
          o.fallback = value;
        else
          p.notes.push_back({false, "-d " + Q(value) +
                                        ": not a user name (1 to 512 printable characters, "
                                        "no blank): ignored"});
      } else if (c == 'o') {
        if (ValidOs(value))
          o.os = value;
        else
          p.notes.push_back({false, "-o " + Q(value) +
                                        ": not a system name (1 to 64 printable characters, "
                                        "no blank or ':'): ignored"});
      } else if (!ParseTimeout(value, o.timeout_ms)) {
        o.timeout_ms = kDefaultTimeoutMs;
        p.notes.push_back({false, "-t " + Q(value) + ": not sec[.usec] up to 3600 s: 10 s kept"});
      }
      break;
    }
  }
  if (i < argv.size())
    p.notes.push_back({false, "arguments after the options are ignored, from " + Q(argv[i])});

  // .fakeid and .noident live in users' home directories, and the sandboxed
  // listener opens no file. They matter only when a real name would be sent:
  // with -r and without -g. Then refuse to guess what the user wanted.
  if (o.real && !o.random) {
    if (noident) refuse("-n needs ~/.noident, which the sandboxed listener cannot read");
    if (fake) refuse("-f needs ~/.fakeid, which the sandboxed listener cannot read");
    if (fake_any) refuse("-F needs ~/.fakeid, which the sandboxed listener cannot read");
  }
  return p;
}

std::string ErrorReply(uint32_t server_port, uint32_t client_port, ErrorType type) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, "%u , %u : ERROR : %s\r\n", server_port, client_port,
                   ErrorText(type));
  return {buf, n > 0 ? static_cast<size_t>(n) : 0};
}

std::string UseridReply(uint32_t server_port, uint32_t client_port, std::string_view os,
                        std::string_view user) {
  char ports[32];
  int n = snprintf(ports, sizeof ports, "%u , %u : USERID : ", server_port, client_port);
  std::string out(ports, n > 0 ? static_cast<size_t>(n) : 0);
  out.append(os);
  out += " : ";
  out.append(user);
  out += "\r\n";
  return out;
}

bool NeedsOwner(const Options& o, const Request& r) { return r.valid && o.real && !o.hidden; }

// inetd(8): without -r, every query gets HIDDEN-USER, or -d's name; -g puts
// a random name in place of every name that would be sent, the fallback
// included; with -r, -d's name stands in for a failed lookup.
std::string Answer(const Options& o, const Request& r, const Facts& f) {
  const uint32_t sp = r.server_port, cp = r.client_port;
  if (!r.valid) return ErrorReply(sp, cp, ErrorType::kInvalidPort);
  if (o.hidden) return ErrorReply(sp, cp, ErrorType::kHiddenUser);
  const std::string_view os = o.os.empty() ? f.system_os : std::string_view{o.os};
  auto userid = [&](std::string_view user) { return UseridReply(sp, cp, os, user); };
  if (!o.real) {
    if (o.random) return userid(f.random_name);
    if (!o.fallback.empty()) return userid(o.fallback);
    return ErrorReply(sp, cp, ErrorType::kHiddenUser);
  }
  const std::string_view stand_in = o.fallback.empty() ? std::string_view()
                                    : o.random         ? f.random_name
                                                       : std::string_view{o.fallback};
  switch (f.owner.status) {
    case OwnerStatus::kFound:
      if (o.random) return userid(f.random_name);
      if (!o.numeric && !f.user_name.empty()) return userid(f.user_name);
      // -i, or a uid without a (valid) name: the number, unless -d says otherwise.
      if (!o.numeric && !stand_in.empty()) return userid(stand_in);
      return userid(std::to_string(f.owner.uid));
    case OwnerStatus::kNoUser:
      if (!stand_in.empty()) return userid(stand_in);
      return ErrorReply(sp, cp, ErrorType::kNoUser);
    case OwnerStatus::kFailed:
      break;
  }
  if (!stand_in.empty()) return userid(stand_in);
  return ErrorReply(sp, cp, ErrorType::kUnknownError);
}

std::string RandomName(uint64_t bits) {
  static constexpr char kAlphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out(8, '0');
  for (char& c : out) {
    c = kAlphabet[bits % 36];
    bits /= 36;
  }
  return out;
}

bool ValidUserId(std::string_view s) {
  if (s.empty() || s.size() > kMaxUserId) return false;
  return std::ranges::all_of(s, [](char c) { return c >= 0x21 && c <= 0x7e; });
}

// An RFC 1413 token (with an optional ",charset"): printable, no blank, and
// no ':' that would end the field early.
bool ValidOs(std::string_view s) {
  if (s.empty() || s.size() > kMaxToken) return false;
  return std::ranges::all_of(s, [](char c) { return c >= 0x21 && c <= 0x7e && c != ':'; });
}

}  // namespace inetd::listener::ident
