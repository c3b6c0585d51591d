// RFC 863 discard, served in the listener's event loop: read and drop, on a
// stream until the peer closes, and any datagram. Nothing is ever sent, so
// no source needs checking.
#include <cerrno>

#include "listener/builtin_impl.h"

namespace inetd::listener {
namespace {

std::array<char, size_t{64} * 1024> g_sink;  // shared: the loop is single-threaded

class DiscardConn final : public Conn {
 public:
  using Conn::Conn;
  bool OnEvent(uint32_t events) override;
  uint32_t Interest() const override { return EPOLLIN; }
};

bool DiscardConn::OnEvent(uint32_t events) {
  if (events & EPOLLERR) return false;
  for (int i = 0; i < kMaxCallsPerEvent; ++i) {
    const IoResult r = RecvSome(fd(), g_sink.data(), g_sink.size());
    if (r.io == Io::kData) continue;
    // Drained: a HUP now means the peer is gone for good.
    if (r.io == Io::kAgain) return (events & EPOLLHUP) == 0;
    return false;  // end of stream or error
  }
  return true;
}

}  // namespace

std::unique_ptr<Conn> NewDiscardConn(UniqueFd fd) {
  return std::make_unique<DiscardConn>(std::move(fd));
}

bool DiscardDgram(int fd) {
  // Truncation drops the rest of the datagram, which is the point.
  const ssize_t n = recvfrom(fd, g_sink.data(), 512, MSG_DONTWAIT, nullptr, nullptr);
  return n >= 0 || errno == EINTR;
}

}  // namespace inetd::listener
