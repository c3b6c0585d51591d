// Framing on the monitor<->listener channel: one protobuf message per
// SOCK_SEQPACKET record, fds in SCM_RIGHTS. Linked into both processes.
// RecvFrame trusts nothing: it caps the size and the fd count, refuses
// truncation and foreign control messages, and owns every fd it received
// before it returns, error or not.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "proto/fd.h"
#include "proto/result.h"

namespace google::protobuf {
class MessageLite;
}

namespace inetd::wire {

// The largest record either side sends. The monitor receives with the much
// smaller kMaxRequest: the listener has nothing long to say.
constexpr size_t kMaxFrame = size_t{256} * 1024;
constexpr size_t kMaxRequest = 2048;
// At most this many fds per record (the kernel's SCM_MAX_FD is 253).
constexpr size_t kMaxFds = 250;

struct Frame {
  std::vector<uint8_t> bytes;
  std::vector<UniqueFd> fds;
};

// Serializes `msg` and sends it with `fds` (not closed: the caller keeps
// them). Fails with EMSGSIZE if the record or the fd count is over the caps.
// `flags` go to sendmsg (MSG_DONTWAIT for a non-blocking send).
Result<void> SendFrame(int sock, const google::protobuf::MessageLite& msg,
                       std::span<const int> fds = {}, int flags = 0);

// Receives one record of at most `max_bytes` with at most `max_fds` fds.
// Errors: {0, "peer closed"} at end of stream; EAGAIN; EMSGSIZE for a
// truncated record or too many fds; EBADMSG for foreign control messages.
// Any fds that arrived are closed on error.
Result<Frame> RecvFrame(int sock, size_t max_bytes, size_t max_fds, int flags = 0);

// Parses `frame.bytes` into `msg` on its exact length.
bool Decode(const Frame& frame, google::protobuf::MessageLite& msg);

}  // namespace inetd::wire
