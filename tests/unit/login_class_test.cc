// Unit tests of the login.conf(5) reader and of Apply (spawner/login_class.cc):
// every capability, units, -cur/-max, tc=, loops, continuations, malformed
// values named by line, the fall-back to "default", and Apply in a forked
// child that reads its limits, nice value and umask back from the kernel.
#include "spawner/login_class.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>

#ifndef LOGIN_CONF_EXAMPLE
#error "LOGIN_CONF_EXAMPLE must name etc/login.conf.example"
#endif

namespace inetd::spawn {
namespace {

constexpr rlim_t kInf = RLIM_INFINITY;

std::optional<LoginClass> Resolve(std::string_view text, std::string_view cls,
                                  std::string* msg = nullptr, const passwd* pw = nullptr) {
  std::string m;
  auto lc = ResolveClass(ParseLoginConf(text, "login.conf"), cls, pw, m);
  if (msg != nullptr) *msg = m;
  return lc;
}

std::optional<rlimit> LimitOf(const LoginClass& lc, int resource) {
  for (const Limit& l : lc.limits)
    if (l.resource == resource) return l.value;
  return std::nullopt;
}

// Whether this process may raise its hard limits (not in most containers).
bool CanRaise() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("CapEff:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16) >> 24 & 1;
  return false;
}

std::map<std::string, std::string> EnvOf(const LoginClass& lc) {
  std::map<std::string, std::string> m;
  for (const std::string& e : lc.env) {
    size_t eq = e.find('=');
    EXPECT_NE(eq, std::string::npos) << e;
    EXPECT_EQ(m.count(e.substr(0, eq)), 0u) << "twice: " << e;
    m[e.substr(0, eq)] = e.substr(eq + 1);
  }
  return m;
}

// ---------------------------------------------------------------------------
// One capability per row: the limit it sets, both halves.

struct LimitCase {
  const char* cap;
  int resource;
  rlim_t cur, max;
};

const LimitCase kLimits[] = {
    // every capability and its Linux resource
    {"cputime=90", RLIMIT_CPU, 90, 90},
    {"filesize=1000", RLIMIT_FSIZE, 1000, 1000},
    {"datasize=2000", RLIMIT_DATA, 2000, 2000},
    {"stacksize=3000", RLIMIT_STACK, 3000, 3000},
    {"coredumpsize=0", RLIMIT_CORE, 0, 0},
    {"memoryuse=4000", RLIMIT_RSS, 4000, 4000},
    {"memorylocked=5000", RLIMIT_MEMLOCK, 5000, 5000},
    {"maxproc=60", RLIMIT_NPROC, 60, 60},
    {"openfiles=70", RLIMIT_NOFILE, 70, 70},
    {"vmemoryuse=8000", RLIMIT_AS, 8000, 8000},
    // size units, either case, added up
    {"filesize=1b", RLIMIT_FSIZE, 512, 512},
    {"filesize=1k", RLIMIT_FSIZE, 1024, 1024},
    {"filesize=1K", RLIMIT_FSIZE, 1024, 1024},
    {"filesize=3m", RLIMIT_FSIZE, 3 << 20, 3 << 20},
    {"filesize=2g", RLIMIT_FSIZE, 2ULL << 30, 2ULL << 30},
    {"filesize=1T", RLIMIT_FSIZE, 1ULL << 40, 1ULL << 40},
    {"filesize=1m512k", RLIMIT_FSIZE, (1 << 20) + (512 << 10), (1 << 20) + (512 << 10)},
    {"filesize=0x10", RLIMIT_FSIZE, 16, 16},
    {"filesize=010k", RLIMIT_FSIZE, 8 << 10, 8 << 10},  // octal, as strtoq(3) with base 0
    // time units
    {"cputime=7s", RLIMIT_CPU, 7, 7},
    {"cputime=2m", RLIMIT_CPU, 120, 120},
    {"cputime=1h30m", RLIMIT_CPU, 5400, 5400},
    {"cputime=1d", RLIMIT_CPU, 86400, 86400},
    {"cputime=1w", RLIMIT_CPU, 604800, 604800},
    {"cputime=1y", RLIMIT_CPU, 31536000, 31536000},
    {"cputime=2H1S", RLIMIT_CPU, 7201, 7201},
    // infinity words
    {"cputime=infinity", RLIMIT_CPU, kInf, kInf},
    {"datasize=inf", RLIMIT_DATA, kInf, kInf},
    {"datasize=Unlimited", RLIMIT_DATA, kInf, kInf},
    {"datasize=unlimit", RLIMIT_DATA, kInf, kInf},
    {"datasize=-1", RLIMIT_DATA, kInf, kInf},
    // numeric form and -cur / -max
    {"maxproc#40", RLIMIT_NPROC, 40, 40},
    {"openfiles-cur=10:openfiles-max=20", RLIMIT_NOFILE, 10, 20},
    {"openfiles-max=20:openfiles-cur=10", RLIMIT_NOFILE, 10, 20},
    {"openfiles=50:openfiles-cur=10", RLIMIT_NOFILE, 10, 50},
    {"openfiles-cur=10:openfiles=50", RLIMIT_NOFILE, 10, 50},
    {"coredumpsize=1m:coredumpsize-cur=0", RLIMIT_CORE, 0, 1 << 20},
    // the first occurrence wins
    {"maxproc=5:maxproc=6", RLIMIT_NPROC, 5, 5},
    // a boolean of the same name is passed over
    {"maxproc:maxproc=7", RLIMIT_NPROC, 7, 7},
};

class LimitRow : public testing::TestWithParam<LimitCase> {};

TEST_P(LimitRow, Sets) {
  const LimitCase& c = GetParam();
  std::string msg;
  auto lc = Resolve(std::string("x:") + c.cap + ":\n", "x", &msg);
  ASSERT_TRUE(lc) << msg;
  EXPECT_EQ(msg, "");
  auto rl = LimitOf(*lc, c.resource);
  ASSERT_TRUE(rl) << c.cap;
  EXPECT_EQ(rl->rlim_cur, c.cur) << c.cap;
  EXPECT_EQ(rl->rlim_max, c.max) << c.cap;
  EXPECT_EQ(lc->limits.size(), 1u) << c.cap;
}

INSTANTIATE_TEST_SUITE_P(LoginClass, LimitRow, testing::ValuesIn(kLimits));

TEST(LoginClass, AHalfNotGivenIsInherited) {
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_CPU, &now), 0);
  auto lc = Resolve("x:cputime-cur=5:\n", "x");
  ASSERT_TRUE(lc);
  EXPECT_EQ(LimitOf(*lc, RLIMIT_CPU)->rlim_cur, 5u);
  EXPECT_EQ(LimitOf(*lc, RLIMIT_CPU)->rlim_max, now.rlim_max);
  // A lower hard limit brings an inherited soft limit down with it.
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  ASSERT_GT(now.rlim_cur, 3u);
  lc = Resolve("x:openfiles-max=3:\n", "x");
  ASSERT_TRUE(lc);
  EXPECT_EQ(LimitOf(*lc, RLIMIT_NOFILE)->rlim_cur, 3u);
  EXPECT_EQ(LimitOf(*lc, RLIMIT_NOFILE)->rlim_max, 3u);
}

TEST(LoginClass, UnlimitedOpenFilesIsTheKernelMaximum) {
  rlim_t nr_open = 0;
  std::ifstream("/proc/sys/fs/nr_open") >> nr_open;
  ASSERT_GT(nr_open, 0u);
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  const rlim_t want = CanRaise() ? nr_open : std::min(nr_open, now.rlim_max);
  auto lc = Resolve("x:openfiles=unlimited:\n", "x");
  ASSERT_TRUE(lc);
  EXPECT_EQ(LimitOf(*lc, RLIMIT_NOFILE)->rlim_cur, want);
  EXPECT_EQ(LimitOf(*lc, RLIMIT_NOFILE)->rlim_max, want);
}

TEST(LoginClass, RaisingAHardLimitNeedsCapSysResource) {
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_MEMLOCK, &now), 0);
  if (now.rlim_max == RLIM_INFINITY) GTEST_SKIP() << "no hard limit to raise";
  std::string msg;
  auto lc = Resolve("x:\\\n:memorylocked=unlimited:memorylocked-cur=1:\n", "x", &msg);
  ASSERT_TRUE(lc);
  if (CanRaise()) {
    EXPECT_EQ(msg, "");
    EXPECT_EQ(LimitOf(*lc, RLIMIT_MEMLOCK)->rlim_max, RLIM_INFINITY);
  } else {
    EXPECT_EQ(msg, "memorylocked: kept at inetd's own hard limit " + std::to_string(now.rlim_max) +
                       " (raising it takes CAP_SYS_RESOURCE)");
    EXPECT_EQ(LimitOf(*lc, RLIMIT_MEMLOCK)->rlim_max, now.rlim_max);
  }
  EXPECT_EQ(LimitOf(*lc, RLIMIT_MEMLOCK)->rlim_cur, 1u);
}

TEST(LoginClass, NoLinuxEquivalent) {
  std::string msg;
  auto lc = Resolve("x:sbsize=1m:swapuse=infinity:pseudoterminals=4:\n", "x", &msg);
  ASSERT_TRUE(lc);
  EXPECT_TRUE(lc->limits.empty());
  EXPECT_EQ(msg, "sbsize has no Linux equivalent: ignored; "
                 "pseudoterminals has no Linux equivalent: ignored");
  lc = Resolve("x:sbsize=unlimited:kqueues=inf:umtxp=-1:\n", "x", &msg);
  ASSERT_TRUE(lc);
  EXPECT_EQ(msg, "");  // infinite: nothing lost
}

TEST(LoginClass, Defaults) {
  auto lc = Resolve("x:passwd_format=sha512:welcome=/etc/motd:hushlogin:\n", "x");
  ASSERT_TRUE(lc);
  EXPECT_EQ(lc->name, "x");
  EXPECT_TRUE(lc->limits.empty());
  EXPECT_EQ(lc->priority, 0);  // setusercontext's LOGIN_DEFPRI
  EXPECT_FALSE(lc->umask);     // inherited
  EXPECT_EQ(lc->env, std::vector<std::string>{"PATH=/usr/bin:/bin:/usr/sbin:/sbin"});
}

TEST(LoginClass, PriorityAndUmask) {
  struct {
    const char* caps;
    std::optional<int> priority;
    std::optional<mode_t> umask;
  } rows[] = {
      {"priority=5:umask=027", 5, 027},
      {"priority=-20:umask=0", -20, 0},
      {"priority#20:umask#077", 20, 077},
      {"priority=0x3:umask=0777", 3, 0777},
      {"priority=inherit:umask=inherit", std::nullopt, std::nullopt},
      {"priority@:umask@:priority=9:umask=07", 0, std::nullopt},
  };
  for (const auto& r : rows) {
    std::string msg;
    auto lc = Resolve(std::string("x:") + r.caps + ":\n", "x", &msg);
    ASSERT_TRUE(lc) << r.caps << ": " << msg;
    EXPECT_EQ(lc->priority, r.priority) << r.caps;
    EXPECT_EQ(lc->umask, r.umask) << r.caps;
  }
}

// ---------------------------------------------------------------------------
// The environment.

TEST(LoginClass, Environment) {
  passwd pw{};
  pw.pw_name = const_cast<char*>("alice");
  pw.pw_dir = const_cast<char*>("/home/alice");
  auto lc = Resolve(
      "x:path=/bin  /usr/bin,~/bin\t~ /opt/$/bin:lang=fr_FR.UTF-8:charset=UTF-8:"
      "timezone=Europe/Paris:setenv=A=1, B=two words,C=\"x,y\",D='$',E=\\\\$,F=~:\n",
      "x", nullptr, &pw);
  ASSERT_TRUE(lc);
  std::map<std::string, std::string> want = {
      {"PATH", "/bin:/usr/bin:/home/alice/bin:/home/alice/:/opt/alice/bin"},
      {"LANG", "fr_FR.UTF-8"},
      {"MM_CHARSET", "UTF-8"},
      {"TZ", "Europe/Paris"},
      {"A", "1"},
      {"B", "two words"},
      {"C", "x,y"},
      {"D", "alice"},
      {"E", "$"},
      {"F", "/home/alice/"},
  };
  EXPECT_EQ(EnvOf(*lc), want);
}

TEST(LoginClass, EnvironmentWithoutPasswdEntryKeepsTildeAndDollar) {
  auto lc = Resolve("x:path=~/bin:setenv=U=$:\n", "x");
  ASSERT_TRUE(lc);
  EXPECT_EQ(EnvOf(*lc)["PATH"], "~/bin");
  EXPECT_EQ(EnvOf(*lc)["U"], "$");
}

TEST(LoginClass, HomeEndingInSlash) {
  passwd pw{};
  pw.pw_name = const_cast<char*>("root");
  pw.pw_dir = const_cast<char*>("/");
  auto lc = Resolve("x:path=~bin ~/sbin:\n", "x", nullptr, &pw);
  ASSERT_TRUE(lc);
  EXPECT_EQ(EnvOf(*lc)["PATH"], "/bin://sbin");  // as FreeBSD: no slash added, none taken away
}

TEST(LoginClass, SetenvOverridesPath) {
  auto lc = Resolve("x:path=/a:setenv=PATH=/b,LANG=C:lang=fr:\n", "x");
  ASSERT_TRUE(lc);
  EXPECT_EQ(EnvOf(*lc)["PATH"], "/b");
  EXPECT_EQ(EnvOf(*lc)["LANG"], "C");
}

TEST(LoginClass, GetcapEscapes) {
  auto lc = Resolve(
      "x:setenv=A=a\\cb,B=\\E\\n\\t\\r\\b\\f,C=^A^?,D=\\101\\0102,E=\\x\\^\\\\,G=end\\:F=cut\\000off,H=lost:\n",
      "x");
  ASSERT_TRUE(lc);
  auto env = EnvOf(*lc);
  EXPECT_EQ(env["A"], "a:b");
  EXPECT_EQ(env["B"], "\033\n\t\r\b\f");
  EXPECT_EQ(env["C"], "\001\177");
  EXPECT_EQ(env["D"], "A\0102");
  EXPECT_EQ(env["E"], "x^\\");
  EXPECT_EQ(env["G"], "end");  // "\:" does not escape: the colon ends the field
  EXPECT_EQ(env.count("F"), 0u);  // ... so F=... is a field of its own, not setenv's
  lc = Resolve("x:setenv=F=cut\\000off,H=lost:\n", "x");  // a NUL ends the value, as in C
  ASSERT_TRUE(lc);
  EXPECT_EQ(EnvOf(*lc), (std::map<std::string, std::string>{{"PATH", kDefaultPath}, {"F", "cut"}}));
}

TEST(LoginClass, EmptySetenvEntriesAreSkipped) {
  auto lc = Resolve("x:setenv=,A=1,, ,B=:\n", "x");
  ASSERT_TRUE(lc);
  EXPECT_EQ(EnvOf(*lc)["A"], "1");
  EXPECT_EQ(EnvOf(*lc)["B"], "");
}

// ---------------------------------------------------------------------------
// Records: continuations, comments, aliases, tc=.

TEST(LoginClass, ContinuationsCommentsAndAliases) {
  const char* text =
      "# a comment\n"
      "\n"
      "first|First Class|alias:\\\n"
      "\t:maxproc=3:\\\n"
      "\t:umask=022:\r\n"
      "#second:maxproc=4:\n"
      "second:maxproc=5:";  // no newline at the end
  for (const char* name : {"first", "First Class", "alias"}) {
    auto lc = Resolve(text, name);
    ASSERT_TRUE(lc) << name;
    EXPECT_EQ(lc->name, name);
    EXPECT_EQ(LimitOf(*lc, RLIMIT_NPROC)->rlim_max, 3u);
    EXPECT_EQ(lc->umask, 022);
  }
  auto lc = Resolve(text, "second");
  ASSERT_TRUE(lc);
  EXPECT_EQ(LimitOf(*lc, RLIMIT_NPROC)->rlim_max, 5u);
}

TEST(LoginClass, CommentEndingInBackslashTakesTheNextLine) {
  // As getcap: the continuation is joined first, then the record is a comment.
  std::string msg;
  EXPECT_FALSE(Resolve("#x:\\\ny:maxproc=1:\n", "y", &msg));
  EXPECT_EQ(msg, "no class 'y' nor 'default' in login.conf");
}

TEST(LoginClass, FirstRecordOfANameWins) {
  auto lc = Resolve("x:maxproc=1:\nx:maxproc=2:\n", "x");
  ASSERT_TRUE(lc);
  EXPECT_EQ(LimitOf(*lc, RLIMIT_NPROC)->rlim_max, 1u);
}

TEST(LoginClass, TcIncludesInPlace) {
  const char* text =
      "base:maxproc=10:openfiles=100:umask=022:priority=1:\n"
      "mid:openfiles=50:tc=base:priority=2:\n"
      "top:maxproc=5:tc=mid:umask@:\n"
      "cancel:maxproc@:tc=base:\n";
  auto lc = Resolve(text, "top");
  ASSERT_TRUE(lc);
  EXPECT_EQ(LimitOf(*lc, RLIMIT_NPROC)->rlim_max, 5u);     // before tc=: overrides
  EXPECT_EQ(LimitOf(*lc, RLIMIT_NOFILE)->rlim_max, 50u);   // from mid, before its tc=
  EXPECT_EQ(lc->umask, 022);                               // after tc=: the included one wins
  EXPECT_EQ(lc->priority, 1);                              // base's, before mid's priority=2
  lc = Resolve(text, "cancel");
  ASSERT_TRUE(lc);
  EXPECT_FALSE(LimitOf(*lc, RLIMIT_NPROC));
  EXPECT_EQ(LimitOf(*lc, RLIMIT_NOFILE)->rlim_max, 100u);
}

TEST(LoginClass, TcErrors) {
  struct {
    const char* text;
    const char* msg;
  } rows[] = {
      {"x:tc=nowhere:\n", "login.conf:1: 'tc=nowhere': no such class"},
      {"x:tc=x:\n", "login.conf:1: 'tc=x': tc= loop"},
      {"\nx:tc=y:\ny:\\\n:tc=x:\n", "login.conf:3: 'tc=x': tc= loop"},
      {"x:tc=y:\ny|z:tc=z:\n", "login.conf:2: 'tc=z': tc= loop"},
  };
  for (const auto& r : rows) {
    std::string msg;
    EXPECT_FALSE(Resolve(r.text, "x", &msg)) << r.text;
    EXPECT_EQ(msg, r.msg) << r.text;
  }
}

TEST(LoginClass, TcDepthAndFanOutAreBounded) {
  std::string deep;  // c0 -> c1 -> ... -> c40, no loop
  for (int i = 0; i < 40; ++i) {
    const std::string a = std::to_string(i), b = std::to_string(i + 1);
    deep.append("c").append(a).append(":tc=c").append(b).append(":\n");
  }
  deep += "c40:maxproc=1:\n";
  std::string msg;
  EXPECT_FALSE(Resolve(deep, "c0", &msg));
  EXPECT_NE(msg.find("tc= loop"), std::string::npos) << msg;
  EXPECT_TRUE(Resolve(deep, "c20"));  // 20 levels are fine

  std::string wide;  // 2^30 expansions if nothing stopped it
  for (int i = 0; i < 30; ++i) {
    const std::string a = std::to_string(i), b = std::to_string(i + 1);
    wide.append("w").append(a).append(":tc=w").append(b).append(":tc=w").append(b).append(":\n");
  }
  wide += "w30:maxproc=1:\n";
  EXPECT_FALSE(Resolve(wide, "w0", &msg));
  EXPECT_NE(msg.find("more than 4096 capabilities"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------
// Malformed values: the message names the file, the line and the class.

TEST(LoginClass, BadValuesNameTheirLine) {
  struct {
    const char* caps;
    const char* msg;
  } rows[] = {
      {"openfiles=10k", "bad openfiles '10k'"},
      {"maxproc=1.5", "bad maxproc '1.5'"},
      {"cputime=5x", "bad cputime '5x'"},
      {"cputime=1b", "bad cputime '1b'"},
      {"filesize=", "bad filesize ''"},
      {"filesize=k", "bad filesize 'k'"},
      {"filesize= 1", "bad filesize ' 1'"},
      {"filesize=-2", "bad filesize '-2'"},
      {"filesize=99999999999t", "bad filesize '99999999999t'"},
      {"datasize-cur=abc", "bad datasize-cur 'abc'"},
      {"sbsize=big", "bad sbsize 'big'"},
      {"openfiles-cur=20:openfiles-max=10", "openfiles: soft limit above hard"},
      {"priority=21", "priority '21' is not -20 to 20"},
      {"priority=-21", "priority '-21' is not -20 to 20"},
      {"priority=high", "priority 'high' is not -20 to 20"},
      {"priority=", "priority '' is not -20 to 20"},
      {"umask=0999", "umask '0999' is not 0 to 0777"},
      {"umask=1000", "umask '1000' is not 0 to 0777"},
      {"umask=-1", "umask '-1' is not 0 to 0777"},
      {"setenv=A=1,B", "setenv entry 'B' is not NAME=value"},
      {"setenv==x", "setenv entry '=x' is not NAME=value"},
      {"setenv=A='x", "setenv: unbalanced quote"},
  };
  for (const auto& r : rows) {
    std::string msg;
    const std::string text = "# header\n\nok:maxproc=1:\nx:\\\n\t:" + std::string(r.caps) + ":\n";
    EXPECT_FALSE(Resolve(text, "x", &msg)) << r.caps;
    EXPECT_EQ(msg, std::string("login.conf:4: class 'x': ") + r.msg) << r.caps;
  }
}

TEST(LoginClass, ErrorInAnIncludedRecordNamesThatRecord) {
  std::string msg;
  EXPECT_FALSE(Resolve("x:tc=y:\n\ny:umask=1000:\n", "x", &msg));
  EXPECT_EQ(msg, "login.conf:3: class 'x': umask '1000' is not 0 to 0777");
}

// ---------------------------------------------------------------------------
// Missing classes and files.

TEST(LoginClass, MissingClassFallsBackToDefault) {
  std::string msg;
  auto lc = Resolve("default:maxproc=9:\n", "daemon", &msg);
  ASSERT_TRUE(lc);
  EXPECT_EQ(lc->name, "default");
  EXPECT_EQ(LimitOf(*lc, RLIMIT_NPROC)->rlim_max, 9u);
  EXPECT_EQ(msg, "class 'daemon' not in login.conf, using 'default'");
}

TEST(LoginClass, MissingClassWithoutDefaultIsAnError) {
  std::string msg;
  EXPECT_FALSE(Resolve("staff:maxproc=9:\n", "daemon", &msg));
  EXPECT_EQ(msg, "no class 'daemon' nor 'default' in login.conf");
  EXPECT_FALSE(Resolve("", "default", &msg));
  EXPECT_EQ(msg, "no class 'default' nor 'default' in login.conf");
}

TEST(LoginClass, FallbackWarningIsKeptWithOtherWarnings) {
  std::string msg;
  EXPECT_TRUE(Resolve("default:sbsize=1m:\n", "x", &msg));
  EXPECT_EQ(msg, "class 'x' not in login.conf, using 'default'; sbsize has no Linux equivalent: ignored");
}

class ReadTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/login_class_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    unlink((dir_ + "/login.conf").c_str());
    rmdir(dir_.c_str());
  }
  std::string Write(const std::string& text, mode_t mode) {
    std::string path = dir_ + "/login.conf";
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_;
};

TEST_F(ReadTest, MissingFileMeansNoClassLimits) {
  std::string msg;
  auto lc = ResolveClass(ReadLoginConf(dir_ + "/none"), "daemon", nullptr, msg);
  ASSERT_TRUE(lc);
  EXPECT_EQ(msg, "");
  EXPECT_EQ(lc->name, "");
  EXPECT_TRUE(lc->limits.empty());
  EXPECT_EQ(lc->priority, 0);
  EXPECT_FALSE(lc->umask);
  EXPECT_EQ(lc->env, std::vector<std::string>{"PATH=/usr/bin:/bin:/usr/sbin:/sbin"});
}

TEST_F(ReadTest, ReadsAFileOnlyItsOwnerCanWrite) {
  std::string msg;
  auto lc = ResolveClass(ReadLoginConf(Write("daemon:maxproc=7:\n", 0644)), "daemon", nullptr, msg);
  ASSERT_TRUE(lc) << msg;
  EXPECT_EQ(LimitOf(*lc, RLIMIT_NPROC)->rlim_max, 7u);
}

TEST_F(ReadTest, RefusesAFileOthersCanWrite) {
  for (mode_t mode : {0664, 0646}) {
    const std::string path = Write("daemon:maxproc=7:\n", mode);
    std::string msg;
    EXPECT_FALSE(ResolveClass(ReadLoginConf(path), "daemon", nullptr, msg));
    EXPECT_EQ(msg, path + ": not a regular file that only root can write");
  }
}

TEST_F(ReadTest, RefusesADirectoryAndHugeFiles) {
  std::string msg;
  EXPECT_FALSE(ResolveClass(ReadLoginConf(dir_), "daemon", nullptr, msg));
  EXPECT_EQ(msg, dir_ + ": not a regular file that only root can write");
  EXPECT_FALSE(ResolveClass(ReadLoginConf(Write(std::string(2 << 20, '#'), 0644)), "x", nullptr, msg));
  EXPECT_NE(msg.find("over 1 MiB"), std::string::npos) << msg;
}

TEST(LoginClass, Example) {
  const LoginConf db = ReadLoginConf(LOGIN_CONF_EXAMPLE);
  std::string msg;
  passwd pw{};
  pw.pw_name = const_cast<char*>("nobody");
  pw.pw_dir = const_cast<char*>("/nonexistent");
  auto lc = ResolveClass(db, "daemon", &pw, msg);
  if (!lc && msg.find("only root can write") != std::string::npos)
    GTEST_SKIP() << msg;  // a checkout not owned by the test's user
  ASSERT_TRUE(lc) << msg;
  EXPECT_EQ(msg, "");
  EXPECT_EQ(lc->name, "daemon");
  EXPECT_EQ(LimitOf(*lc, RLIMIT_CORE)->rlim_cur, 0u);
  EXPECT_EQ(LimitOf(*lc, RLIMIT_NOFILE)->rlim_max, 1024u);
  EXPECT_EQ(LimitOf(*lc, RLIMIT_MEMLOCK)->rlim_max, 64u << 10);
  EXPECT_EQ(lc->umask, 022);
  EXPECT_EQ(EnvOf(*lc)["PATH"], "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  EXPECT_EQ(EnvOf(*lc)["LANG"], "C.UTF-8");
  lc = ResolveClass(db, "Small network services", &pw, msg);
  ASSERT_TRUE(lc) << msg;
  EXPECT_EQ(lc->name, "Small network services");
  EXPECT_EQ(lc->priority, 5);
  EXPECT_EQ(lc->umask, 027);
  EXPECT_EQ(LimitOf(*lc, RLIMIT_CPU)->rlim_max, 60u);
  EXPECT_EQ(EnvOf(*lc)["MALLOC_ARENA_MAX"], "2");
  lc = ResolveClass(db, "ftp", &pw, msg);
  ASSERT_TRUE(lc);
  EXPECT_EQ(lc->name, "default");
  // Followed by warnings where inetd cannot raise limits to "unlimited".
  EXPECT_EQ(msg.rfind(std::string("class 'ftp' not in ") + LOGIN_CONF_EXAMPLE + ", using 'default'", 0), 0u)
      << msg;
}

// ---------------------------------------------------------------------------
// Apply, in a child: what the kernel says afterwards.

// Runs `check` in a forked child after Apply; the child's exit status is the
// number of the first failed check (0: all held).
int InChild(const LoginClass& lc, int (*check)(const LoginClass&)) {
  pid_t pid = fork();
  if (pid == 0) {
    Result<void> r = Apply(lc);
    _exit(r ? check(lc) : 100 + r.error().code);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

TEST(Apply, SetsLimitsPriorityAndUmask) {
  // Only lowered limits and a higher nice value: works without root too.
  errno = 0;
  static int want_nice;
  want_nice = std::min(getpriority(PRIO_PROCESS, 0) + 3, 19);
  ASSERT_EQ(errno, 0);
  std::string msg;
  auto lc = Resolve(
      "x:cputime=100:cputime-max=200:filesize=1m:coredumpsize=0:openfiles-cur=40:"
      "openfiles-max=50:priority=" + std::to_string(want_nice) + ":umask=027:\n",
      "x", &msg);
  ASSERT_TRUE(lc) << msg;
  ASSERT_EQ(lc->limits.size(), 4u);
  EXPECT_EQ(InChild(*lc, [](const LoginClass& lc) {
              for (const Limit& l : lc.limits) {
                rlimit now{};
                if (getrlimit(l.resource, &now) != 0) return 1;
                if (now.rlim_cur != l.value.rlim_cur || now.rlim_max != l.value.rlim_max) return 2;
              }
              rlimit nofile{};
              getrlimit(RLIMIT_NOFILE, &nofile);
              if (nofile.rlim_cur != 40 || nofile.rlim_max != 50) return 3;
              errno = 0;
              if (getpriority(PRIO_PROCESS, 0) != want_nice || errno != 0) return 4;
              if (umask(0) != 027) return 5;
              return 0;
            }),
            0);
}

TEST(Apply, InheritKeepsPriorityAndUmask) {
  auto lc = Resolve("x:priority=inherit:umask=inherit:\n", "x");
  ASSERT_TRUE(lc);
  const mode_t mask = umask(022);
  umask(mask);
  errno = 0;
  const int nice = getpriority(PRIO_PROCESS, 0);
  ASSERT_EQ(errno, 0);
  static int want_nice;
  static mode_t want_mask;
  want_nice = nice;
  want_mask = mask;
  EXPECT_EQ(InChild(*lc, [](const LoginClass&) {
              if (getpriority(PRIO_PROCESS, 0) != want_nice) return 1;
              return umask(0) == want_mask ? 0 : 2;
            }),
            0);
}

TEST(Apply, ReportsTheFailingCall) {
  LoginClass lc;
  lc.limits.push_back({RLIMIT_NOFILE, {10, 5}, "openfiles"});  // soft above hard: EINVAL
  pid_t pid = fork();
  if (pid == 0) {
    Result<void> r = Apply(lc);
    _exit(!r && r.error().code == EINVAL && std::string(r.error().what) == "openfiles" ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace inetd::spawn
