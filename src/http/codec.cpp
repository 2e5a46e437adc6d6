#include "http/codec.hpp"

#include <boost/container/small_vector.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value_stack.hpp>

#include <algorithm>
#include <cassert>
#include <charconv>
#include <ctime>

#include "core/money.hpp"

namespace ps::http {

namespace json = boost::json;

std::string format_time(core::TimeMs t) {
  const std::time_t seconds = static_cast<std::time_t>(t / 1000);
  const int millis = static_cast<int>(t % 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return out;
}

json::object payment_json(const core::Payment& p) {
  return json::object{
      {"money_movement_id", p.money_movement_id},
      {"account_id", p.account_id},
      {"amount_cents", p.amount_cents},
      {"original_amount_cents", p.original_amount_cents},
      {"merchant_name", p.merchant_name},
      {"status", p.status},
      {"created_at", format_time(p.created_at)},
      {"updated_at", format_time(p.updated_at)},
      {"settle_deadline", format_time(p.settle_deadline)},
      {"callbacks_applied", p.callbacks_applied},
  };
}

json::object account_json(const core::Account& a) {
  return json::object{
      {"account_id", a.account_id},
      {"created_at", format_time(a.created_at)},
      {"status", core::to_string(a.status)},
      {"balance", a.balance},
      {"settled_balance", a.settled_balance},
      {"balance_cents", a.balance},
      {"settled_balance_cents", a.settled_balance},
  };
}

json::object callback_json(const app::CallbackView& c) {
  json::object o{
      {"received_at", format_time(c.received_at)},
      {"amount_cents", c.amount_cents},
      {"status", nullptr},
      {"outcome", c.applied ? "applied" : "late"},
  };
  if (c.status) o["status"] = *c.status;
  return o;
}

namespace {

// Boost.JSON 1.81's json::parse keeps the last of duplicated keys without a word, and has no
// option to refuse them. This handler is json::parser's own (boost/json/detail/handler.hpp:
// every event goes to a value_stack, which builds the value) plus a record of the keys of each
// open object, checked when the object closes. The value is built exactly as json::parse
// builds it, in the same single pass; the check costs a copy of the key bytes and, per object,
// a comparison of its keys (pairwise for a few, sorted for many: a 64 KiB body can hold ~8000
// keys in one object, and O(n^2) on those would be a denial of service).
// Cost, callgrind instructions per parse_object against json::parse (2026-12-01, -O2): callback
// body 2,862 -> 3,128 (+9%), payment body 2,649 -> 2,919 (+10%), a body with 20 nested line
// objects 42,047 -> 53,721 (+28%); wall time of the flat bodies unchanged within noise (~150 ns).
class DuplicateKeyCheckingHandler {
 public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  DuplicateKeyCheckingHandler(unsigned char* buffer, std::size_t size)
      : values(json::storage_ptr(), buffer, size) {}

  json::value_stack values;
  // Where the first duplicated key was found ("a", "meta.tag", "items[2].k"; "" for the key ""
  // of the outer object). Parsing goes on after it: only a text that is valid JSON within the
  // depth can be said to repeat a key (a body that is not JSON at all is answered so, whatever
  // it repeated first).
  std::optional<std::string> duplicate;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    frames_.push_back(Frame{.first_key = keys_.size(), .key_bytes = key_bytes_.size()});
    return true;
  }
  bool on_object_end(std::size_t n, json::error_code&) {
    assert(!frames_.empty() && !frames_.back().is_array);
    const Frame frame = frames_.back();
    assert(keys_.size() - frame.first_key == n);
    if (!duplicate) {
      if (const auto* key = find_duplicate(frame.first_key)) duplicate = path_to(*key);
    }
    keys_.resize(frame.first_key);
    key_bytes_.resize(frame.key_bytes);
    frames_.pop_back();
    values.push_object(n);
    value_done();
    return true;
  }
  bool on_array_begin(json::error_code&) {
    frames_.push_back(
        Frame{.first_key = keys_.size(), .key_bytes = key_bytes_.size(), .is_array = true});
    return true;
  }
  bool on_array_end(std::size_t n, json::error_code&) {
    assert(!frames_.empty() && frames_.back().is_array);
    frames_.pop_back();
    values.push_array(n);
    value_done();
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key_bytes_.insert(key_bytes_.end(), s.begin(), s.end());
    values.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t n, json::error_code&) {
    key_bytes_.insert(key_bytes_.end(), s.begin(), s.end());
    assert(key_bytes_.size() >= n);
    keys_.push_back(Key{.offset = key_bytes_.size() - n, .size = n});
    values.push_key(s);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    values.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    values.push_string(s);
    value_done();
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    values.push_int64(i);
    value_done();
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    values.push_uint64(u);
    value_done();
    return true;
  }
  bool on_double(double d, json::string_view, json::error_code&) {
    values.push_double(d);
    value_done();
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    values.push_bool(b);
    value_done();
    return true;
  }
  bool on_null(json::error_code&) {
    values.push_null();
    value_done();
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  // A key of an open object: its bytes in key_bytes_ (unescaped, as compared).
  struct Key {
    std::size_t offset = 0;
    std::size_t size = 0;
  };
  // An open object or array. An object's keys are keys_[first_key..]; an array counts the
  // elements it completed, which is the index of the one being parsed (for the error's path).
  struct Frame {
    std::size_t first_key = 0;
    std::size_t key_bytes = 0;
    bool is_array = false;
    std::size_t elements = 0;
  };
  // Pairwise comparison is cheaper than sorting up to about this many keys (our bodies have 3).
  static constexpr std::size_t kPairwiseKeysMax = 16;

  std::string_view text(const Key& k) const { return {key_bytes_.data() + k.offset, k.size}; }

  void value_done() {
    if (!frames_.empty() && frames_.back().is_array) ++frames_.back().elements;
  }

  // A key of keys_[first..] that occurs twice there, or nullptr.
  const Key* find_duplicate(std::size_t first) {
    const std::size_t n = keys_.size() - first;
    if (n <= kPairwiseKeysMax) {
      for (std::size_t i = first + 1; i < keys_.size(); ++i) {
        for (std::size_t j = first; j < i; ++j) {
          if (text(keys_[i]) == text(keys_[j])) return &keys_[i];
        }
      }
      return nullptr;
    }
    sorted_.assign(keys_.begin() + static_cast<std::ptrdiff_t>(first), keys_.end());
    std::sort(sorted_.begin(), sorted_.end(),
              [this](const Key& a, const Key& b) { return text(a) < text(b); });
    const auto dup =
        std::adjacent_find(sorted_.begin(), sorted_.end(),
                           [this](const Key& a, const Key& b) { return text(a) == text(b); });
    return dup == sorted_.end() ? nullptr : &*dup;
  }

  // "outer.inner[3].key": the key that holds each enclosing value, or its index in an array.
  std::string path_to(const Key& key) const {
    std::string path;
    for (std::size_t i = 0; i + 1 < frames_.size(); ++i) {
      if (frames_[i].is_array) {
        path += "[" + std::to_string(frames_[i].elements) + "]";
      } else {
        if (!path.empty()) path += '.';
        // The last key of this object before the next frame's keys: the one holding it.
        path += text(keys_[frames_[i + 1].first_key - 1]);
      }
    }
    if (!path.empty()) path += '.';
    path += text(key);
    return path;
  }

  // Inline capacity for the bodies we expect (a few keys, shallow), so the check allocates
  // nothing for them: with std::vector and std::string here, the allocations alone made a
  // payment body's parse 40% more instructions than json::parse (callgrind).
  boost::container::small_vector<Frame, 8> frames_;
  boost::container::small_vector<Key, 16> keys_;
  boost::container::small_vector<char, 256> key_bytes_;
  std::vector<Key> sorted_;  // only for objects of more than kPairwiseKeysMax keys
};

}  // namespace

std::variant<json::object, Problem> parse_object(std::string_view body) {
  // As json::parse does: a stack buffer first, the heap only for deeper or larger documents.
  unsigned char buffer[BOOST_JSON_STACK_BUFFER_SIZE];
  json::parse_options options;
  options.max_depth = kJsonMaxDepth;
  json::basic_parser<DuplicateKeyCheckingHandler> parser(options, buffer, sizeof buffer);
  parser.handler().values.reset();
  json::error_code ec;
  const std::size_t used = parser.write_some(false, body.data(), body.size(), ec);
  if (ec == json::error::too_deep) {
    return validation_problem(
        {{"body", "is nested deeper than " + std::to_string(kJsonMaxDepth) + " levels"}});
  }
  if (!ec && used < body.size()) ec = json::error::extra_data;
  if (ec) return validation_problem({{"body", "is not valid JSON: " + ec.message()}});
  assert(parser.done());
  if (parser.handler().duplicate) {
    return validation_problem({{*parser.handler().duplicate,
                                "is duplicated: a JSON object must not repeat a key, since which "
                                "value was meant is ambiguous"}});
  }
  json::value v = parser.handler().values.release();
  if (!v.is_object()) return validation_problem({{"body", "must be a JSON object"}});
  return std::move(v.as_object());
}

namespace {

// JSON integers only: 2500, not 2500.0 or "2500".
std::optional<std::int64_t> as_int64(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v.get_uint64());
  }
  return std::nullopt;
}

}  // namespace

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (const char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::optional<std::int64_t> parse_bounded(std::string_view digits, std::int64_t max) {
  if (digits.empty() || digits.size() > 19) return std::nullopt;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || value > max) {
    return std::nullopt;
  }
  return value;
}

std::optional<std::int64_t> parse_id(std::string_view digits) {
  const auto v = parse_bounded(digits, core::kMaxMovementId);
  if (!v || *v == 0) return std::nullopt;
  return v;
}

std::variant<PaymentRequest, Problem> parse_payment_request(const json::object& o) {
  std::vector<FieldError> errors;
  PaymentRequest r;

  if (const auto* v = o.if_contains("account_id")) {
    const auto id = as_int64(*v);
    if (!id || *id <= 0 || *id > core::kMaxMovementId) {
      errors.push_back({"account_id", "must be a positive integer"});
    } else {
      r.account_id = *id;
    }
  }

  if (const auto* v = o.if_contains("amount_cents"); v == nullptr) {
    errors.push_back({"amount_cents", "is required"});
  } else if (const auto amount = as_int64(*v); !amount) {
    errors.push_back({"amount_cents", "must be an integer number of cents"});
  } else if (!core::is_valid_payment_amount(*amount)) {
    errors.push_back({"amount_cents",
                      "must be non-zero with an absolute value of at most "
                      "1000000000000 cents"});
  } else {
    r.amount_cents = *amount;
  }

  if (const auto* v = o.if_contains("merchant_name"); v == nullptr) {
    errors.push_back({"merchant_name", "is required"});
  } else if (!v->is_string()) {
    errors.push_back({"merchant_name", "must be a string"});
  } else {
    const std::string_view name = v->get_string();
    const auto length = utf8_length(name);
    if (length == 0 || length > core::kMaxMerchantNameChars) {
      errors.push_back({"merchant_name", "must be 1 to 200 characters"});
    } else {
      r.merchant_name = std::string(name);
    }
  }

  if (!errors.empty()) return validation_problem(std::move(errors));
  return r;
}

std::variant<CallbackRequest, Problem> parse_callback(const json::object& o) {
  std::vector<FieldError> errors;
  CallbackRequest r;

  // The provider may send the id as a JSON integer or as a string of digits.
  if (const auto* v = o.if_contains("money_movement_id"); v == nullptr) {
    errors.push_back({"money_movement_id", "is required"});
  } else {
    std::optional<std::int64_t> id;
    if (v->is_string()) {
      id = parse_id(v->get_string());
    } else if (const auto n = as_int64(*v); n && *n > 0 && *n <= core::kMaxMovementId) {
      id = n;
    }
    if (!id) {
      errors.push_back({"money_movement_id",
                        "must be a positive integer below 2^53, as a "
                        "number or a string of digits"});
    } else {
      r.money_movement_id = *id;
    }
  }

  if (const auto* v = o.if_contains("amount_cents"); v == nullptr) {
    errors.push_back({"amount_cents", "is required"});
  } else if (const auto amount = as_int64(*v);
             !amount || !core::is_valid_callback_amount(*amount)) {
    errors.push_back({"amount_cents",
                      "must be an integer with an absolute value of at most "
                      "1000000000000 cents"});
  } else {
    r.input.amount_cents = *amount;
  }

  if (const auto* v = o.if_contains("status"); v != nullptr && !v->is_null()) {
    if (!v->is_string() || !core::is_valid_status_token(v->get_string())) {
      errors.push_back({"status", "must be a lower-case token of 1 to 32 letters or '_'"});
    } else {
      r.input.status = std::string(v->get_string());
    }
  }

  if (!errors.empty()) return validation_problem(std::move(errors));
  return r;
}

}  // namespace ps::http
