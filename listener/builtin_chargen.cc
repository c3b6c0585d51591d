// RFC 864 character generator, served in the listener's event loop. The
// pattern repeats every 95 lines, so the whole cycle is computed at compile
// time, followed by enough copies that a 64 KiB send from any line of the
// first cycle is one contiguous slice: each send is one large write and the
// stream runs as fast as the peer reads. What the client sends is read and
// dropped. Datagram: one line per datagram, as FreeBSD does (RFC 864 allows
// any length 0-512), the starting character moving on by one each time.
#include "listener/builtin_impl.h"

namespace inetd::listener {
namespace {

constexpr size_t kChunk = size_t{64} * 1024;  // bytes per send()
// Whole cycles; at least kChargenCycleBytes + kChunk bytes.
constexpr size_t kRingBytes = (kChunk / kChargenCycleBytes + 2) * kChargenCycleBytes;
static_assert(kRingBytes >= kChargenCycleBytes + kChunk);

struct Ring {
  char bytes[kRingBytes];
};

constexpr Ring MakeRing() {
  Ring r{};
  for (size_t i = 0; i < kRingBytes; ++i) {
    const size_t line = i / kChargenLineBytes;
    const size_t col = i % kChargenLineBytes;
    r.bytes[i] = col < kChargenLineChars ? static_cast<char>(' ' + (line + col) % kChargenPrintable)
                 : col == kChargenLineChars ? '\r'
                                            : '\n';
  }
  return r;
}

constexpr Ring kRing = MakeRing();  // read-only data: nothing built at run time

class ChargenConn final : public Conn {
 public:
  using Conn::Conn;
  bool OnEvent(uint32_t events) override;
  uint32_t Interest() const override { return eof_ ? EPOLLOUT : EPOLLIN | EPOLLOUT; }
  // It never runs out of things to say: cap the whole connection.
  int LifetimeMs() const override { return kMaxLifetimeMs; }

 private:
  bool DrainInput();  // false on a connection error
  size_t pos_ = 0;    // next byte to send, within the first cycle
  bool eof_ = false;  // the client closed its side; we go on while it reads
};

std::array<char, 4096> g_input;  // what clients send us: dropped

bool ChargenConn::OnEvent(uint32_t events) {
  if (events & (EPOLLERR | EPOLLHUP)) return false;
  if ((events & EPOLLIN) && !eof_ && !DrainInput()) return false;
  if (!(events & EPOLLOUT)) return true;
  for (int i = 0; i < kMaxCallsPerEvent; ++i) {
    const IoResult r = SendSome(fd(), kRing.bytes + pos_, kChunk);
    if (r.io == Io::kAgain) break;
    if (r.io != Io::kData) return false;  // the reader went away
    pos_ = (pos_ + r.n) % kChargenCycleBytes;
    if (r.n < kChunk) break;  // the socket buffer is full
  }
  return true;
}

bool ChargenConn::DrainInput() {
  for (int i = 0; i < kMaxCallsPerEvent; ++i) {
    const IoResult r = RecvSome(fd(), g_input.data(), g_input.size());
    switch (r.io) {
      case Io::kData: break;
      case Io::kAgain: return true;
      case Io::kEof: eof_ = true; return true;
      case Io::kError: return false;
    }
  }
  return true;
}

DropLog g_chargen_log{"chargen"};
size_t g_next_line = 0;  // datagram answers go on from line to line

}  // namespace

std::unique_ptr<Conn> NewChargenConn(UniqueFd fd) {
  return std::make_unique<ChargenConn>(std::move(fd));
}

bool ChargenDgram(int fd) {
  Datagram d;
  const Got got = ReceiveDatagram(fd, g_input.data(), g_input.size(), g_chargen_log, &d);
  if (got == Got::kAnswer) {
    SendReply(fd, kRing.bytes + g_next_line * kChargenLineBytes, kChargenLineBytes, d);
    g_next_line = (g_next_line + 1) % kChargenPrintable;
  }
  return got != Got::kNothing;
}

}  // namespace inetd::listener
