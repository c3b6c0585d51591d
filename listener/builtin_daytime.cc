// RFC 867 daytime, served in the listener's event loop: ctime(3)'s text,
// "%.24s\r\n", once per connection (then close) or per datagram.
//
// In UTC, where FreeBSD uses local time: glibc's localtime_r, and even
// gmtime_r on first use, open /etc/localtime, and the sandboxed listener has
// no file system. So the date is computed here from the seconds alone.
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "listener/builtin_impl.h"

namespace inetd::listener {
namespace {

struct Civil {
  int64_t year;
  int month;  // 0 = January
  int mday;   // 1..31
  int wday;   // 0 = Sunday
  int hour, min, sec;
};

// Proleptic Gregorian calendar, valid for the whole time_t range.
Civil ToCivil(int64_t t) {
  constexpr int64_t kDay = 86400;
  int64_t days = t / kDay;
  int64_t secs = t % kDay;
  if (secs < 0) {
    secs += kDay;
    --days;
  }
  Civil c{};
  c.hour = static_cast<int>(secs / 3600);
  c.min = static_cast<int>(secs / 60 % 60);
  c.sec = static_cast<int>(secs % 60);
  c.wday = static_cast<int>(((days + 4) % 7 + 7) % 7);  // 1970-01-01 was a Thursday

  // Count from 0000-03-01, so that a leap day is the last day of its year,
  // in eras of 400 years (146,097 days) that all look alike.
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t day_of_era = z - era * 146097;  // 0 .. 146096
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t month_from_march = (5 * day_of_year + 2) / 153;  // 0 .. 11
  c.mday = static_cast<int>(day_of_year - (153 * month_from_march + 2) / 5 + 1);
  c.month = static_cast<int>(month_from_march < 10 ? month_from_march + 2 : month_from_march - 10);
  c.year = year_of_era + era * 400 + (c.month <= 1 ? 1 : 0);
  return c;
}

constexpr char kDays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

class DaytimeConn final : public ReplyConn {
 public:
  using ReplyConn::ReplyConn;

 protected:
  size_t Compose(std::array<char, kMaxReply>& out) override {
    return FormatDaytime(BuiltinNow(), out);
  }
};

DropLog g_daytime_log{"daytime"};
std::array<char, 256> g_request;  // the request's content does not matter

}  // namespace

size_t FormatDaytime(time_t t, std::array<char, ReplyConn::kMaxReply>& out) {
  const Civil c = ToCivil(t);
  // ctime's text, newline included, cut to 24 characters by FreeBSD's
  // "%.24s": that drops the newline for years 1000-9999, digits past four
  // after that, and keeps the newline before year 1000.
  char line[64];
  int n = snprintf(line, sizeof line, "%.3s %.3s%3d %.2d:%.2d:%.2d %" PRId64 "\n", kDays[c.wday],
                   kMonths[c.month], c.mday, c.hour, c.min, c.sec, c.year);
  if (n < 0) n = 0;
  const size_t len = static_cast<size_t>(n) < 24 ? static_cast<size_t>(n) : 24;
  memcpy(out.data(), line, len);
  out[len] = '\r';
  out[len + 1] = '\n';
  return len + 2;
}

std::unique_ptr<Conn> NewDaytimeConn(UniqueFd fd) {
  return std::make_unique<DaytimeConn>(std::move(fd));
}

bool DaytimeDgram(int fd) {
  Datagram d;
  const Got got = ReceiveDatagram(fd, g_request.data(), g_request.size(), g_daytime_log, &d);
  if (got == Got::kAnswer) {
    std::array<char, ReplyConn::kMaxReply> out;
    SendReply(fd, out.data(), FormatDaytime(BuiltinNow(), out), d);
  }
  return got != Got::kNothing;
}

}  // namespace inetd::listener
