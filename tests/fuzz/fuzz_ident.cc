// libFuzzer target for the auth built-in's request path (listener/ident.cc):
// line framing, the query parser, and the answer under several option sets,
// on any bytes. Every answer must be exactly one line that echoes the
// ports parsed; the words of the input are also tried as auth arguments.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "listener/ident.h"

namespace {

using namespace inetd::listener::ident;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

std::vector<std::string> Words(std::string_view s) {
  std::vector<std::string> out{"auth"};
  size_t i = 0;
  while (i < s.size() && out.size() < 12) {
    size_t end = s.find_first_of(" \t\r\n", i);
    if (end == std::string_view::npos) end = s.size();
    if (end > i) out.emplace_back(s.substr(i, end - i));
    i = end + 1;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  const ScanResult s = ScanLine(in);
  std::string_view line = in;  // the parser also gets bytes no framing would pass
  switch (s.scan) {
    case Scan::kLine:
      Check(s.line_len < kMaxLine && s.line_len < in.size());
      Check(in.substr(0, s.line_len).find('\0') == std::string_view::npos);
      line = in.substr(0, s.line_len);
      break;
    case Scan::kNeedMore:
      Check(in.size() < kMaxLine);
      break;
    case Scan::kOverlong:
      Check(in.size() >= kMaxLine);
      break;
    case Scan::kNul:
      Check(in.find('\0') != std::string_view::npos);
      break;
  }

  const Request r = ParseRequest(line);
  Check(r.server_port <= 99999 && r.client_port <= 99999);
  if (r.valid) {
    Check(r.server_port >= 1 && r.server_port <= 65535);
    Check(r.client_port >= 1 && r.client_port <= 65535);
    // What the reply echoes reads back as the same query.
    const std::string again = std::to_string(r.server_port) + " , " + std::to_string(r.client_port);
    const Request r2 = ParseRequest(again);
    Check(r2.valid && r2.server_port == r.server_port && r2.client_port == r.client_port);
  }

  static const std::vector<std::vector<std::string>> kOptionSets = {
      {"auth"},
      {"auth", "-r"},
      {"auth", "-r", "-i", "-o", "OTHER"},
      {"auth", "-r", "-g", "-d", "guest"},
      {"auth", "-d", "guest"},
      {"auth", "-r", "-n"},
  };
  const std::string prefix =
      std::to_string(r.server_port) + " , " + std::to_string(r.client_port) + " : ";
  const Owner owners[] = {{OwnerStatus::kFound, 1000}, {OwnerStatus::kNoUser, 0},
                          {OwnerStatus::kFailed, 0}};
  for (const auto& argv : kOptionSets) {
    const ParsedOptions p = ParseOptions(argv);
    for (const Owner& o : owners) {
      Facts f;
      f.owner = o;
      f.user_name = (size & 1) ? "alice" : "";
      f.random_name = "r4nd0m00";
      f.system_os = "Linux";
      const std::string a = Answer(p.options, r, f);
      Check(a.size() >= prefix.size() + 2 && a.size() < 700);
      Check(a.compare(0, prefix.size(), prefix) == 0);
      Check(a.find_first_of(std::string_view("\r\n\0", 3)) == a.size() - 2);
      Check(a.ends_with("\r\n"));
      Check(r.valid || a.ends_with(": ERROR : INVALID-PORT\r\n"));
    }
  }

  // The same bytes as auth arguments: never a crash, and fail-closed only
  // ever with a reason to log.
  const ParsedOptions p = ParseOptions(Words(in.substr(0, 256)));
  bool refused = false;
  for (const Note& n : p.notes) refused = refused || n.refused;
  Check(p.options.hidden == refused);
  Check(p.options.timeout_ms >= 1 && p.options.timeout_ms <= kMaxTimeoutMs);
  Check(p.options.fallback.empty() || ValidUserId(p.options.fallback));
  Check(p.options.os.empty() || ValidOs(p.options.os));
  return 0;
}
