// The monitor's reading of a rule's options (privileged/hosts_files.cc)
// against the listener's parser (listener/hosts_options.cc): the monitor
// must find exactly the commands and values the listener saw, or a rule the
// listener names would run something else. Also %-expansion's sanitizing.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "listener/hosts_access.h"
#include "privileged/hosts_files.h"

namespace {

using inetd::listener::HostsOptionKind;
using inetd::listener::HostsPolicy;
using inetd::listener::HostsText;

// The listener's view of each option of the rules in `text`, as the raw
// (keyword, value) text the monitor returns.
std::vector<std::vector<std::pair<std::string, std::string>>> ListenerView(const std::string& text) {
  HostsPolicy p = HostsPolicy::Compile(HostsText{"hosts.allow", true, text}, HostsText{});
  std::vector<std::vector<std::pair<std::string, std::string>>> out;
  for (const auto& r : p.rules()) {
    EXPECT_FALSE(r.bad_options) << text;
    std::vector<std::pair<std::string, std::string>> opts;
    for (const auto& o : r.options) {
      switch (o.kind) {
        case HostsOptionKind::kSpawn: opts.emplace_back("spawn", o.value); break;
        case HostsOptionKind::kTwist: opts.emplace_back("twist", o.value); break;
        case HostsOptionKind::kBanners: opts.emplace_back("banners", o.value); break;
        case HostsOptionKind::kSetenv: opts.emplace_back("setenv", o.name + " " + o.value); break;
        case HostsOptionKind::kUser:
          opts.emplace_back("user", o.value + (o.name.empty() ? "" : "." + o.name));
          break;
        case HostsOptionKind::kUmask: opts.emplace_back("umask", std::to_string(o.number)); break;
        default: break;
      }
    }
    out.push_back(opts);
  }
  return out;
}

// The monitor's view, keeping the same options.
std::vector<std::pair<std::string, std::string>> MonitorView(const std::string& text, int line) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [k, v] : inetd::priv::RuleOptions(text, static_cast<uint32_t>(line))) {
    if (k == "umask") v = std::to_string(std::stoi(v, nullptr, 8));
    if (k == "spawn" || k == "twist" || k == "banners" || k == "setenv" || k == "user" || k == "umask")
      out.emplace_back(k, v);
  }
  return out;
}

TEST(HostsRuleOptions, MonitorFindsWhatTheListenerParsed) {
  const std::vector<std::string> files = {
      "sshd: 10.0.0.1 : spawn /bin/echo %a >> /var/log/x\n",
      "ALL: ALL : twist /bin/echo 'no\\: not here'\n",
      "in.tftpd: [::1] : spawn echo a \\: b : twist echo c\n",
      std::string("# comment\n\nfoo: 1.2.3.4 : setenv HOME /tmp : user nobody.nogroup : umask 027\n") +
          "bar: .example.org EXCEPT x.example.org : banners /etc/banners : ALLOW\n",
      "a, b: c, d : SPAWN = echo upper : Twist=echo eq\n",
      "long: 1.2.3.4 \\\n  5.6.7.8 : spawn echo \\\n continued\n",
      "x: [fe80::1]/64 : spawn echo [bracket]\\:a : deny\n",
      "y: LOCAL :spawn   echo  padded   \n",
  };
  for (const std::string& text : files) {
    HostsPolicy p = HostsPolicy::Compile(HostsText{"hosts.allow", true, text}, HostsText{});
    auto want = ListenerView(text);
    ASSERT_EQ(want.size(), p.rules().size());
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_EQ(MonitorView(text, p.rules()[i].line), want[i]) << text << " rule " << i;
  }
}

TEST(HostsRuleOptions, NoRuleAtTheLineGivesNothing) {
  EXPECT_TRUE(inetd::priv::RuleOptions("a: b\n", 0).empty());
  EXPECT_TRUE(inetd::priv::RuleOptions("a: b\n", 7).empty());
  EXPECT_TRUE(inetd::priv::RuleOptions("a: b\n", 1).empty());  // no options
  EXPECT_TRUE(inetd::priv::RuleOptions("", 1).empty());
}

TEST(HostsRuleOptions, ExpansionsAreSanitizedTheTextIsNot) {
  inetd::priv::Expansions x;
  x.client = "127.0.0.1";
  x.client_name = "evil;rm -rf /`x`$(y)";
  x.user = "r o\"o't";
  x.daemon = "in.tftpd";
  EXPECT_EQ(inetd::priv::Expand("echo '%h' %u %d %a %% %", x),
            "echo 'evil_rm_-rf_/_x___y_' r_o_o_t in.tftpd 127.0.0.1 % %");
  EXPECT_EQ(inetd::priv::Expand("%c", x), "r_o_o_t@evil_rm_-rf_/_x___y_");
  x.client_name.clear();
  x.user.clear();
  EXPECT_EQ(inetd::priv::Expand("%h %n %u %c", x), "127.0.0.1 unknown unknown 127.0.0.1");
}

}  // namespace
