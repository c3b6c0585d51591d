// The command line: FreeBSD's flags and defaults; bad input is a usage error.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "privileged/cli.h"

using inetd::priv::Options;
using inetd::priv::ParseCommandLine;
using inetd::priv::PidfilePath;

namespace {

bool Parse(std::vector<std::string> args, Options& o) {
  args.insert(args.begin(), "inetd");
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return ParseCommandLine(static_cast<int>(args.size()), argv.data(), o);
}

TEST(Cli, FreeBSDDefaults) {
  Options o;
  ASSERT_TRUE(Parse({}, o));
  EXPECT_FALSE(o.debug);
  EXPECT_FALSE(o.log_connections);
  EXPECT_FALSE(o.wrap_external);
  EXPECT_FALSE(o.wrap_internal);
  EXPECT_EQ(o.max_child, 0);
  EXPECT_EQ(o.per_ip_rate, 0);
  EXPECT_EQ(o.per_ip_child, 0);
  EXPECT_EQ(o.invocations_per_min, 256);
  EXPECT_EQ(o.user, "_inetd");
  EXPECT_EQ(o.config, "/etc/inetd.conf");
  EXPECT_EQ(PidfilePath(o), "/var/run/inetd.pid");
  EXPECT_EQ(o.login_conf, "/etc/login.conf");
}

TEST(Cli, LoginConfPath) {
  Options o;
  ASSERT_TRUE(Parse({"-L", "/tmp/login.conf"}, o));
  EXPECT_EQ(o.login_conf, "/tmp/login.conf");
}

TEST(Cli, EveryFlag) {
  Options o;
  ASSERT_TRUE(Parse({"-d", "-l", "-w", "-W", "-c", "10", "-C", "60", "-a", "127.0.0.1", "-p",
                     "/tmp/x.pid", "-R", "0", "-s", "3", "-u", "nobody", "/tmp/inetd.conf"},
                    o));
  EXPECT_TRUE(o.debug);
  EXPECT_TRUE(o.log_connections);
  EXPECT_TRUE(o.wrap_external);
  EXPECT_TRUE(o.wrap_internal);
  EXPECT_EQ(o.max_child, 10);
  EXPECT_EQ(o.per_ip_rate, 60);
  EXPECT_EQ(o.invocations_per_min, 0);
  EXPECT_EQ(o.per_ip_child, 3);
  EXPECT_EQ(o.bind_address, "127.0.0.1");
  EXPECT_EQ(o.user, "nobody");
  EXPECT_EQ(o.config, "/tmp/inetd.conf");
  EXPECT_EQ(PidfilePath(o), "/tmp/x.pid");
}

TEST(Cli, CheckOnly) {
  Options o;
  ASSERT_TRUE(Parse({"-t", "x.conf"}, o));
  EXPECT_TRUE(o.check_only);
  EXPECT_EQ(o.config, "x.conf");
}

TEST(Cli, CombinedFlagsAsInInetdFlags) {
  Options o;
  ASSERT_TRUE(Parse({"-wW", "-C", "60"}, o));
  EXPECT_TRUE(o.wrap_external);
  EXPECT_TRUE(o.wrap_internal);
  EXPECT_EQ(o.per_ip_rate, 60);
}

TEST(Cli, DebugHasNoDefaultPidfile) {
  Options o;
  ASSERT_TRUE(Parse({"-d"}, o));
  EXPECT_EQ(PidfilePath(o), "");
  Options f;
  ASSERT_TRUE(Parse({"-D"}, f));
  EXPECT_TRUE(f.foreground);
  EXPECT_EQ(PidfilePath(f), "/var/run/inetd.pid");
}

TEST(Cli, Ipv6PrefixForPerIpLimits) {
  Options o;
  ASSERT_TRUE(Parse({}, o));
  EXPECT_EQ(o.ipv6_prefix, 64);
  ASSERT_TRUE(Parse({"-P", "48"}, o));
  EXPECT_EQ(o.ipv6_prefix, 48);
  ASSERT_TRUE(Parse({"-P128"}, o));
  EXPECT_EQ(o.ipv6_prefix, 128);
}

TEST(Cli, BadInputIsAUsageError) {
  const std::vector<std::vector<std::string>> bad = {
      {"-x"},         {"-c"},        {"-c", "abc"}, {"-c", "-1"},  {"-C", "1x"},
      {"-R", ""},     {"-s", "9999999999999"},      {"-u", ""},    {"a.conf", "b.conf"},
      {"-P", "0"},    {"-P", "129"}, {"-P", "x"},
  };
  for (const auto& args : bad) {
    Options o;
    testing::internal::CaptureStderr();
    EXPECT_FALSE(Parse(args, o)) << args[0];
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("usage: inetd"), std::string::npos) << err;
  }
}

}  // namespace
