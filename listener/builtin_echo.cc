// RFC 862 echo, served in the listener's event loop. Stream: data goes back
// through one buffer of kConnBuffer bytes, and reading stops while it is
// full, so a peer that sends without reading is held back by TCP flow
// control instead of growing our memory. Datagram: each one goes back to its
// sender, whole (a UDP payload is at most 65,527 bytes).
#include <cstring>

#include "listener/builtin_impl.h"

namespace inetd::listener {
namespace {

class EchoConn final : public Conn {
 public:
  using Conn::Conn;
  bool OnEvent(uint32_t events) override;
  uint32_t Interest() const override;

 private:
  bool Fill();   // false on a connection error
  bool Drain();  // false on a connection error
  std::array<char, kConnBuffer> buf_;
  size_t head_ = 0;  // first byte not yet sent back
  size_t tail_ = 0;  // end of the bytes received
  bool eof_ = false;  // the peer has closed its write side
};

bool EchoConn::OnEvent(uint32_t events) {
  // ERR: reset. HUP: both directions are shut, nobody is left to answer.
  if (events & (EPOLLERR | EPOLLHUP)) return false;
  if ((events & EPOLLIN) && !Fill()) return false;
  // Send at once rather than wait for the next EPOLLOUT: usually it fits.
  if (!Drain()) return false;
  // Half-closed and all echoed: done (closing sends our FIN).
  return !(eof_ && head_ == tail_);
}

uint32_t EchoConn::Interest() const {
  uint32_t want = 0;
  if (!eof_ && (tail_ < buf_.size() || head_ > 0)) want |= EPOLLIN;  // room left
  if (head_ < tail_) want |= EPOLLOUT;
  return want;
}

bool EchoConn::Fill() {
  if (tail_ == buf_.size() && head_ > 0) {  // room only at the front: move the rest there
    memmove(buf_.data(), buf_.data() + head_, tail_ - head_);
    tail_ -= head_;
    head_ = 0;
  }
  while (tail_ < buf_.size()) {
    const size_t room = buf_.size() - tail_;
    const IoResult r = RecvSome(fd(), buf_.data() + tail_, room);
    switch (r.io) {
      case Io::kData:
        tail_ += r.n;
        // Short: nothing more queued now. The epoll set is level-triggered,
        // so what arrives later wakes us; no recv just to see EAGAIN.
        if (r.n < room) return true;
        break;
      case Io::kEof: eof_ = true; return true;
      case Io::kAgain: return true;
      case Io::kError: return false;
    }
  }
  return true;
}

bool EchoConn::Drain() {
  while (head_ < tail_) {
    const IoResult r = SendSome(fd(), buf_.data() + head_, tail_ - head_);
    if (r.io == Io::kAgain) break;
    if (r.io != Io::kData) return false;
    head_ += r.n;
  }
  if (head_ == tail_) head_ = tail_ = 0;
  return true;
}

DropLog g_echo_log{"echo"};
std::array<char, 65536> g_datagram;  // one datagram at a time: the loop is single-threaded

}  // namespace

std::unique_ptr<Conn> NewEchoConn(UniqueFd fd) { return std::make_unique<EchoConn>(std::move(fd)); }

bool EchoDgram(int fd) {
  Datagram d;
  const Got got = ReceiveDatagram(fd, g_datagram.data(), g_datagram.size(), g_echo_log, &d);
  if (got == Got::kAnswer) SendReply(fd, g_datagram.data(), d.size, d);
  return got != Got::kNothing;
}

}  // namespace inetd::listener
