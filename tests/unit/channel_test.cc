// Framing over real SOCK_SEQPACKET socketpairs: fds really passed, and every
// malformed record (oversized, truncated, too many fds, foreign control
// messages) caught, with no fd leaked.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>
#include <string>

#include <gtest/gtest.h>

#include "proto/channel.h"
#include "proto/inetd.pb.h"

using namespace inetd;

namespace {

struct Pair {
  UniqueFd a, b;
  Pair() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    a.Reset(sv[0]);
    b.Reset(sv[1]);
  }
};

int OpenFdCount() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n - 1;  // the DIR's own fd
}

// Sends raw bytes with `nfds` copies of fd 0 attached, bypassing SendFrame.
void SendRaw(int sock, const std::string& bytes, int nfds) {
  std::vector<int> fds(nfds, 0);
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * (nfds ? nfds : 1)));
  if (nfds > 0) {
    mh.msg_control = control.data();
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * nfds);
  }
  ASSERT_EQ(sendmsg(sock, &mh, 0), static_cast<ssize_t>(bytes.size()));
}

TEST(Channel, MessageAndFdArrive) {
  Pair p;
  wire::ToMonitor m;
  m.mutable_spawn()->set_service(7);
  m.mutable_spawn()->set_generation(3);
  int pipefd[2];
  ASSERT_EQ(pipe2(pipefd, O_CLOEXEC), 0);
  UniqueFd r(pipefd[0]), w(pipefd[1]);
  int fds[] = {w.Get()};
  ASSERT_TRUE(wire::SendFrame(p.a.Get(), m, fds).has_value());
  auto f = wire::RecvFrame(p.b.Get(), wire::kMaxRequest, 1);
  ASSERT_TRUE(f.has_value());
  wire::ToMonitor got;
  ASSERT_TRUE(wire::Decode(*f, got));
  EXPECT_EQ(got.spawn().service(), 7u);
  EXPECT_EQ(got.spawn().generation(), 3u);
  ASSERT_EQ(f->fds.size(), 1u);
  // The received fd is the pipe's write end: what we write arrives.
  ASSERT_EQ(write(f->fds[0].Get(), "x", 1), 1);
  char c = 0;
  ASSERT_EQ(read(r.Get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
  EXPECT_TRUE(fcntl(f->fds[0].Get(), F_GETFD) & FD_CLOEXEC);
}

TEST(Channel, EmptyMessageRoundTrips) {
  Pair p;
  wire::ToMonitor m;
  m.mutable_hello();  // all defaults: serializes to a tag only
  ASSERT_TRUE(wire::SendFrame(p.a.Get(), wire::Options()).has_value());
  auto f = wire::RecvFrame(p.b.Get(), 64, 0);
  ASSERT_TRUE(f.has_value());
  wire::Options o;
  EXPECT_TRUE(wire::Decode(*f, o));
}

TEST(Channel, OversizedRecordIsTruncationError) {
  Pair p;
  SendRaw(p.a.Get(), std::string(wire::kMaxRequest + 100, 'A'), 0);
  auto f = wire::RecvFrame(p.b.Get(), wire::kMaxRequest, 1);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code, EMSGSIZE);
}

TEST(Channel, RecordOneOverTheCapIsCaught) {
  Pair p;
  SendRaw(p.a.Get(), std::string(wire::kMaxRequest + 1, 'A'), 0);
  auto f = wire::RecvFrame(p.b.Get(), wire::kMaxRequest, 1);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code, EMSGSIZE);
}

TEST(Channel, TooManyFdsAreClosedNotLeaked) {
  Pair p;
  int before = OpenFdCount();
  SendRaw(p.a.Get(), "x", 5);
  auto f = wire::RecvFrame(p.b.Get(), wire::kMaxRequest, 1);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code, EMSGSIZE);
  EXPECT_EQ(OpenFdCount(), before);
}

TEST(Channel, FdOverKernelRoomIsControlTruncation) {
  Pair p;
  int before = OpenFdCount();
  SendRaw(p.a.Get(), "x", 253);  // SCM_MAX_FD: more than RecvFrame has room for
  auto f = wire::RecvFrame(p.b.Get(), wire::kMaxRequest, 1);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code, EMSGSIZE);
  EXPECT_EQ(OpenFdCount(), before);
}

TEST(Channel, ForeignControlMessageRejected) {
  Pair p;
  int on = 1;
  ASSERT_EQ(setsockopt(p.b.Get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on), 0);
  ASSERT_EQ(send(p.a.Get(), "x", 1, 0), 1);
  auto f = wire::RecvFrame(p.b.Get(), wire::kMaxRequest, 1);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code, EBADMSG);
}

TEST(Channel, PeerCloseIsReported) {
  Pair p;
  p.a.Reset();
  auto f = wire::RecvFrame(p.b.Get(), wire::kMaxRequest, 1);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code, 0);
}

TEST(Channel, GarbageDoesNotDecode) {
  Pair p;
  SendRaw(p.a.Get(), std::string("\xff\xff\xff\xff\xff", 5), 0);
  auto f = wire::RecvFrame(p.b.Get(), wire::kMaxRequest, 1);
  ASSERT_TRUE(f.has_value());
  wire::ToMonitor m;
  EXPECT_FALSE(wire::Decode(*f, m));
}

TEST(Channel, SendRefusesTooManyFds) {
  Pair p;
  std::vector<int> fds(wire::kMaxFds + 1, 0);
  auto r = wire::SendFrame(p.a.Get(), wire::Options(), fds);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, EMSGSIZE);
}

}  // namespace
