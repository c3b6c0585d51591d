// RFC 868 time, served in the listener's event loop: the seconds since
// 1900-01-01 00:00 UTC as 32 bits, big-endian, once per connection (then
// close) or per datagram. The count wraps in 2036, as the protocol does.
#include "listener/builtin_impl.h"

namespace inetd::listener {
namespace {

constexpr uint32_t kFrom1900To1970 = 2208988800u;  // 70 years, 17 of them leap

size_t EncodeNow(std::array<char, ReplyConn::kMaxReply>& out) {
  const uint32_t v = SecondsSince1900(BuiltinNow());
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
  return 4;
}

class TimeConn final : public ReplyConn {
 public:
  using ReplyConn::ReplyConn;

 protected:
  size_t Compose(std::array<char, kMaxReply>& out) override { return EncodeNow(out); }
};

DropLog g_time_log{"time"};

}  // namespace

uint32_t SecondsSince1900(time_t t) {
  // Unsigned arithmetic: modulo 2^32 for every t, negative ones included.
  return static_cast<uint32_t>(static_cast<uint64_t>(t) + kFrom1900To1970);
}

std::unique_ptr<Conn> NewTimeConn(UniqueFd fd) { return std::make_unique<TimeConn>(std::move(fd)); }

bool TimeDgram(int fd) {
  Datagram d;
  std::array<char, 16> request;  // its content does not matter
  const Got got = ReceiveDatagram(fd, request.data(), request.size(), g_time_log, &d);
  if (got == Got::kAnswer) {
    std::array<char, ReplyConn::kMaxReply> out;
    SendReply(fd, out.data(), EncodeNow(out), d);
  }
  return got != Got::kNothing;
}

}  // namespace inetd::listener
