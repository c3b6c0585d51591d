// tcpmux (RFC 1078): one request line names a service; "help" lists them.
// The line is read exactly, never past its end, so the service gets the
// connection as it stands after the handshake. Runs in the sandboxed
// listener; the name is only compared with the monitor's table, and the
// monitor checks again that the connection came through a tcpmux socket.
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string>

#include "listener/builtin_impl.h"
#include "proto/log.h"

namespace inetd::listener {
namespace {

std::vector<TcpmuxEntry> g_table;

constexpr char kNotAvailable[] = "-Service not available\r\n";
constexpr char kGo[] = "+Go\r\n";

class TcpmuxConn final : public Conn {
 public:
  using Conn::Conn;

  bool OnEvent(uint32_t events) override {
    if (!out_.empty()) return Flush();
    if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) return false;
    // Peek, then take exactly the line: what follows belongs to the service.
    char buf[kTcpmuxMaxLine + 2];
    ssize_t n = recv(fd(), buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
    if (n <= 0) return n < 0 && (errno == EAGAIN || errno == EINTR);
    const char* end = static_cast<const char*>(memchr(buf, '\n', static_cast<size_t>(n)));
    if (end == nullptr) {
      if (static_cast<size_t>(n) < sizeof buf) return true;  // more to come
      (void)recv(fd(), buf, sizeof buf, MSG_DONTWAIT);  // taken, so the close is orderly
      return Answer("-Request too long\r\n");
    }
    size_t len = static_cast<size_t>(end - buf) + 1;
    if (recv(fd(), buf, len, MSG_DONTWAIT) != static_cast<ssize_t>(len)) return false;
    std::string_view line(buf, len - 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    TcpmuxRequest req = ParseTcpmuxRequest(line);
    if (req.kind == TcpmuxRequest::kHelp) return Answer(TcpmuxHelp());
    const TcpmuxEntry* e = req.kind == TcpmuxRequest::kService ? FindTcpmux(req.name) : nullptr;
    if (e == nullptr) return Answer(kNotAvailable);
    // "+" entries are acknowledged here; the others answer for themselves.
    if (e->plus && send(fd(), kGo, sizeof kGo - 1, MSG_NOSIGNAL | MSG_DONTWAIT) !=
                       static_cast<ssize_t>(sizeof kGo - 1))
      return false;
    handoff_ = e->id;
    return false;
  }
  uint32_t Interest() const override { return out_.empty() ? EPOLLIN : EPOLLOUT; }
  int64_t HandoffTo() const override { return handoff_; }

 private:
  // Sends a final answer, then closes (after EPOLLOUT if it did not fit).
  bool Answer(std::string text) {
    out_ = std::move(text);
    return Flush();
  }
  bool Flush() {
    while (!out_.empty()) {
      IoResult r = SendSome(fd(), out_.data(), out_.size());
      if (r.io == Io::kAgain) return true;
      if (r.io != Io::kData) return false;
      out_.erase(0, r.n);
    }
    return false;
  }

  std::string out_;
  int64_t handoff_ = -1;
};

}  // namespace

void SetTcpmuxTable(std::vector<TcpmuxEntry> table) { g_table = std::move(table); }

TcpmuxRequest ParseTcpmuxRequest(std::string_view line) {
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
  if (line.empty() || line.size() > kTcpmuxMaxLine) return {TcpmuxRequest::kBad, {}};
  for (char c : line)
    if (!isgraph(static_cast<unsigned char>(c))) return {TcpmuxRequest::kBad, {}};
  if (strncasecmp(line.data(), "help", line.size()) == 0 && line.size() == 4)
    return {TcpmuxRequest::kHelp, {}};
  return {TcpmuxRequest::kService, std::string(line)};
}

const TcpmuxEntry* FindTcpmux(std::string_view name) {
  for (const TcpmuxEntry& e : g_table)
    if (e.name.size() == name.size() && strncasecmp(e.name.data(), name.data(), name.size()) == 0)
      return &e;
  return nullptr;
}

std::string TcpmuxHelp() {
  std::string out;
  for (const TcpmuxEntry& e : g_table) out += e.name + "\r\n";
  return out;
}

std::unique_ptr<Conn> NewTcpmuxConn(UniqueFd fd) {
  return std::make_unique<TcpmuxConn>(std::move(fd));
}

}  // namespace inetd::listener
