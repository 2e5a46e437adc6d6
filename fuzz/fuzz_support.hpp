#pragma once
// Shared by the fuzz targets: a failing property aborts with a message (libFuzzer then saves the
// input and prints how to reproduce it), a stream that hands a parser its bytes in pieces, and
// reference oracles that do not share code with what they check.

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "test_support/utf8.hpp"

namespace ps::fuzz {

using test_support::is_valid_utf8;

// A property the code under test must keep, checked in every build type (assert() is compiled
// out by NDEBUG in some; this is not).
[[noreturn]] inline void property_failed(const char* expr, const char* file, int line,
                                         const std::string& detail) {
  std::fprintf(stderr, "\nPROPERTY FAILED: %s\n  at %s:%d\n  %s\n", expr, file, line,
               detail.c_str());
  std::abort();
}
#define PS_FUZZ_CHECK(cond, detail)                                              \
  do {                                                                           \
    if (!(cond)) ::ps::fuzz::property_failed(#cond, __FILE__, __LINE__, detail); \
  } while (false)

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Printable for a failure message: the first bytes, escaped.
inline std::string quoted(std::string_view s, std::size_t max = 200) {
  std::string out = "\"";
  for (const char c : s.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') {
      out += c;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", u);
      out += hex;
    }
  }
  out += s.size() > max ? "\"..." : "\"";
  return out;
}

// Splits at the first `separator`: {before, after}; no separator: {all, nullopt}.
inline std::pair<std::string_view, std::optional<std::string_view>> split_once(std::string_view s,
                                                                               char separator) {
  const auto at = s.find(separator);
  if (at == std::string_view::npos) return {s, std::nullopt};
  return {s.substr(0, at), s.substr(at + 1)};
}

// A synchronous read stream (Asio's SyncReadStream) over fixed bytes that returns at most
// `chunk` bytes per read (0: everything at once), then end of file: the pieces a socket may
// deliver, so the parser's incremental paths (a head split anywhere) are exercised too.
class ChunkedStream {
 public:
  ChunkedStream(std::string_view data, std::size_t chunk) : data_(data), chunk_(chunk) {}

  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers, boost::system::error_code& ec) {
    if (data_.empty()) {
      ec = boost::asio::error::eof;
      return 0;
    }
    ec = {};
    std::size_t limit = chunk_ == 0 ? data_.size() : std::min(chunk_, data_.size());
    std::size_t copied = 0;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers) && copied < limit; ++it) {
      const boost::asio::mutable_buffer b = *it;
      const std::size_t n = std::min(b.size(), limit - copied);
      std::copy_n(data_.data() + copied, n, static_cast<char*>(b.data()));
      copied += n;
    }
    data_.remove_prefix(copied);
    return copied;
  }
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers) {
    boost::system::error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  std::size_t remaining() const { return data_.size(); }

 private:
  std::string_view data_;
  std::size_t chunk_;
};

// --- reference oracles ---------------------------------------------------------------------------

// Containers nested in `v`: 0 for a scalar, 1 for [] or {}, 2 for [[]]...
inline std::size_t depth_of(const boost::json::value& v) {
  std::size_t deepest = 0;
  if (v.is_array()) {
    for (const auto& e : v.get_array()) deepest = std::max(deepest, depth_of(e));
    return deepest + 1;
  }
  if (v.is_object()) {
    for (const auto& kv : v.get_object()) deepest = std::max(deepest, depth_of(kv.value()));
    return deepest + 1;
  }
  return 0;
}

// Members of every object in `v`, summed: with a key repeated in the text, the built value has
// fewer members than the text has keys (Boost.JSON keeps the last).
inline std::size_t members_of(const boost::json::value& v) {
  std::size_t n = 0;
  if (v.is_array()) {
    for (const auto& e : v.get_array()) n += members_of(e);
  } else if (v.is_object()) {
    for (const auto& kv : v.get_object()) n += 1 + members_of(kv.value());
  }
  return n;
}

// A handler for boost::json::basic_parser that only counts keys, for keys_in_text.
struct KeyCounter {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  std::size_t keys = 0;
  using ec_t = boost::json::error_code;
  using sv = boost::json::string_view;
  bool on_document_begin(ec_t&) { return true; }
  bool on_document_end(ec_t&) { return true; }
  bool on_object_begin(ec_t&) { return true; }
  bool on_object_end(std::size_t, ec_t&) { return true; }
  bool on_array_begin(ec_t&) { return true; }
  bool on_array_end(std::size_t, ec_t&) { return true; }
  bool on_key_part(sv, std::size_t, ec_t&) { return true; }
  bool on_key(sv, std::size_t, ec_t&) {
    ++keys;
    return true;
  }
  bool on_string_part(sv, std::size_t, ec_t&) { return true; }
  bool on_string(sv, std::size_t, ec_t&) { return true; }
  bool on_number_part(sv, ec_t&) { return true; }
  bool on_int64(std::int64_t, sv, ec_t&) { return true; }
  bool on_uint64(std::uint64_t, sv, ec_t&) { return true; }
  bool on_double(double, sv, ec_t&) { return true; }
  bool on_bool(bool, ec_t&) { return true; }
  bool on_null(ec_t&) { return true; }
  bool on_comment_part(sv, ec_t&) { return true; }
  bool on_comment(sv, ec_t&) { return true; }
};

// Keys written in a JSON text that parses (escapes decoded or not, each occurrence counts).
inline std::size_t keys_in_text(std::string_view text) {
  boost::json::parse_options options;
  options.max_depth = 1024;
  boost::json::basic_parser<KeyCounter> parser(options);
  boost::json::error_code ec;
  parser.write_some(false, text.data(), text.size(), ec);
  return parser.handler().keys;
}

}  // namespace ps::fuzz
