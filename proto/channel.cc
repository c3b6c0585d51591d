// Framing on the monitor<->listener channel (see channel.h). Runs in both
// processes; in the monitor it is the first code to touch listener bytes.
#include "proto/channel.h"

#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <string>

#include <google/protobuf/message_lite.h>

namespace inetd::wire {

Result<void> SendFrame(int sock, const google::protobuf::MessageLite& msg,
                       std::span<const int> fds, int flags) {
  if (fds.size() > kMaxFds) return Error{EMSGSIZE, "too many fds for one record"};
  std::string bytes;
  if (!msg.SerializeToString(&bytes)) return Error{EINVAL, "serialize"};
  if (bytes.size() > kMaxFrame) return Error{EMSGSIZE, "record too large"};
  // An empty record reads as end of stream on SEQPACKET: send one zero byte
  // instead, which decodes as an empty message on the other side.
  if (bytes.empty()) bytes.push_back('\0');

  iovec iov{bytes.data(), bytes.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    mh.msg_control = control.data();
    mh.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Errno("sendmsg");
  return {};
}

Result<Frame> RecvFrame(int sock, size_t max_bytes, size_t max_fds, int flags) {
  Frame f;
  // One byte more than allowed, so an oversized record shows as truncation
  // even on kernels that do not set MSG_TRUNC for it. The buffer is reused
  // and never cleared (both processes are single-threaded): zero-filling
  // 256 KiB per record was a fifth of the listener's time, and at start it
  // made all of it resident; untouched, only what records fill is.
  static std::unique_ptr<uint8_t[]> buffer;
  static size_t capacity = 0;
  if (capacity < max_bytes + 1) buffer.reset(new uint8_t[capacity = max_bytes + 1]);
  // Room for more fds than allowed, so an excess is seen and closed rather
  // than silently dropped by the kernel as MSG_CTRUNC.
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (kMaxFds + 8))];
  iovec iov{buffer.get(), max_bytes + 1};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Errno("recvmsg");

  // Take ownership of every fd first, so no error path below can leak one.
  bool foreign = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
      foreign = true;
      continue;
    }
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      f.fds.emplace_back(fd);
    }
  }
  if (n == 0 && f.fds.empty()) return Error{0, "peer closed"};
  if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || static_cast<size_t>(n) > max_bytes)
    return Error{EMSGSIZE, "truncated record"};
  if (foreign) return Error{EBADMSG, "unexpected control message"};
  if (f.fds.size() > max_fds) return Error{EMSGSIZE, "too many fds"};
  f.bytes.assign(buffer.get(), buffer.get() + n);
  return f;
}

bool Decode(const Frame& frame, google::protobuf::MessageLite& msg) {
  // The one-byte placeholder of an empty message (see SendFrame).
  if (frame.bytes.size() == 1 && frame.bytes[0] == 0) {
    msg.Clear();
    return true;
  }
  return msg.ParseFromArray(frame.bytes.data(), static_cast<int>(frame.bytes.size()));
}

}  // namespace inetd::wire
