// tcpmux (RFC 1078): the request parser, case-insensitive lookup, "help",
// the "+Go" acknowledgement, and the handoff that leaves every byte after
// the request line for the service. Over real socketpairs.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "listener/builtin_impl.h"

using namespace inetd;
using namespace inetd::listener;

namespace {

struct Pair {
  UniqueFd ours, theirs;
  Pair() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    ours.Reset(sv[0]);
    theirs.Reset(sv[1]);
  }
};

std::string ReadAll(int fd) {
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

class Tcpmux : public testing::Test {
 protected:
  void SetUp() override {
    SetTcpmuxTable({{"Finger", 3, false}, {"date", 5, true}});
  }
  void TearDown() override { SetTcpmuxTable({}); }
  // Sends `request`, runs the Conn once; returns whether it stays open.
  bool Run(const std::string& request, std::unique_ptr<Conn>& conn, Pair& p) {
    conn = FindBuiltin("tcpmux")->stream(std::move(p.ours));
    EXPECT_TRUE(conn->OnStart());
    EXPECT_EQ(send(p.theirs.Get(), request.data(), request.size(), 0),
              static_cast<ssize_t>(request.size()));
    return conn->OnEvent(EPOLLIN);
  }
};

TEST_F(Tcpmux, ParsesRequests) {
  struct {
    std::string line;
    TcpmuxRequest::Kind kind;
    std::string name;
  } cases[] = {
      {"help", TcpmuxRequest::kHelp, ""},       {"HELP", TcpmuxRequest::kHelp, ""},
      {"finger", TcpmuxRequest::kService, "finger"},
      {"finger  ", TcpmuxRequest::kService, "finger"},
      {"", TcpmuxRequest::kBad, ""},            {"two words", TcpmuxRequest::kBad, ""},
      {std::string("a\0b", 3), TcpmuxRequest::kBad, ""},
      {std::string(kTcpmuxMaxLine + 1, 'x'), TcpmuxRequest::kBad, ""},
      {"helpme", TcpmuxRequest::kService, "helpme"},
  };
  for (const auto& c : cases) {
    TcpmuxRequest r = ParseTcpmuxRequest(c.line);
    EXPECT_EQ(r.kind, c.kind) << c.line;
    if (c.kind == TcpmuxRequest::kService) {
      EXPECT_EQ(r.name, c.name);
    }
  }
}

TEST_F(Tcpmux, LookupIgnoresCase) {
  ASSERT_NE(FindTcpmux("FINGER"), nullptr);
  EXPECT_EQ(FindTcpmux("finger")->id, 3u);
  EXPECT_EQ(FindTcpmux("nosuch"), nullptr);
}

TEST_F(Tcpmux, HelpListsNamesAndCloses) {
  Pair p;
  std::unique_ptr<Conn> conn;
  EXPECT_FALSE(Run("help\r\n", conn, p));
  EXPECT_EQ(conn->HandoffTo(), -1);
  EXPECT_EQ(ReadAll(p.theirs.Get()), "Finger\r\ndate\r\n");
}

TEST_F(Tcpmux, UnknownServiceIsRefused) {
  Pair p;
  std::unique_ptr<Conn> conn;
  EXPECT_FALSE(Run("nosuch\r\n", conn, p));
  EXPECT_EQ(conn->HandoffTo(), -1);
  EXPECT_EQ(ReadAll(p.theirs.Get()), "-Service not available\r\n");
}

TEST_F(Tcpmux, HandoffLeavesTheRestForTheService) {
  Pair p;
  std::unique_ptr<Conn> conn;
  EXPECT_FALSE(Run("finger\r\nroot\r\n", conn, p));
  EXPECT_EQ(conn->HandoffTo(), 3);
  EXPECT_EQ(ReadAll(p.theirs.Get()), "");  // not "+": finger answers for itself
  UniqueFd fd = conn->TakeFd();
  EXPECT_EQ(ReadAll(fd.Get()), "root\r\n");
}

TEST_F(Tcpmux, PlusEntryIsAcknowledged) {
  Pair p;
  std::unique_ptr<Conn> conn;
  EXPECT_FALSE(Run("DATE\n", conn, p));
  EXPECT_EQ(conn->HandoffTo(), 5);
  EXPECT_EQ(ReadAll(p.theirs.Get()), "+Go\r\n");
}

TEST_F(Tcpmux, PartialLineWaitsOverlongLineIsRefused) {
  Pair p;
  std::unique_ptr<Conn> conn;
  EXPECT_TRUE(Run("fing", conn, p));  // no line end yet
  Pair q;
  std::unique_ptr<Conn> conn2;
  EXPECT_FALSE(Run(std::string(kTcpmuxMaxLine + 10, 'x'), conn2, q));
  EXPECT_EQ(ReadAll(q.theirs.Get()), "-Request too long\r\n");
}

TEST_F(Tcpmux, PeerGoneClosesQuietly) {
  Pair p;
  std::unique_ptr<Conn> conn = FindBuiltin("tcpmux")->stream(std::move(p.ours));
  p.theirs.Reset();
  EXPECT_FALSE(conn->OnEvent(EPOLLIN | EPOLLHUP));
  EXPECT_EQ(conn->HandoffTo(), -1);
}

}  // namespace
