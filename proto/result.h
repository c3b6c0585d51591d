// Result<T>: std::expected's interface without exceptions (clang 14 cannot
// compile std::expected against libstdc++ 12). The error is an errno value and
// a string literal naming what failed.
#pragma once

#include <cerrno>
#include <optional>
#include <utility>

namespace inetd {

struct Error {
  int code = 0;             // errno, or 0 when no errno applies
  const char* what = "";    // a string literal: never built from input
};

template <typename T>
class [[nodiscard]] Result {
 public:
  // Implicit, like std::expected's: `return value;` and `return Error{...};`.
  Result(T v) : value_(std::move(v)) {}  // NOLINT(google-explicit-constructor)
  Result(Error e) : error_(e) {}         // NOLINT(google-explicit-constructor)
  bool has_value() const { return value_.has_value(); }
  explicit operator bool() const { return has_value(); }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  const Error& error() const { return error_; }

 private:
  std::optional<T> value_;
  Error error_{};
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : ok_(false), error_(e) {}  // NOLINT(google-explicit-constructor)
  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  bool ok_ = true;
  Error error_{};
};

// An error carrying the current errno.
inline Error Errno(const char* what) { return Error{errno, what}; }

}  // namespace inetd
