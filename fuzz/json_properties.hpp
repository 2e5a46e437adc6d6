#pragma once
// The properties of http::parse_object (every JSON body the API reads goes through it), checked
// against Boost.JSON's plain json::parse of the same text:
//  - accepted: the text is valid JSON, an object, nested at most kJsonMaxDepth levels, with no
//    key repeated in any object, and the value is the one json::parse builds;
//  - "is not valid JSON": json::parse refuses the text too;
//  - "is nested deeper than 8 levels": json::parse does not accept it within 8 levels;
//  - "is duplicated": the text is valid JSON within the depth and does repeat a key;
//  - "must be a JSON object": the text is valid JSON within the depth, not an object.

#include <string>
#include <string_view>
#include <variant>

#include "fuzz_support.hpp"
#include "http/codec.hpp"

namespace ps::fuzz {

inline void check_parse_object(std::string_view body,
                               const std::variant<boost::json::object, http::Problem>& ours) {
  namespace json = boost::json;
  json::parse_options options;
  options.max_depth = 1024;  // deeper than any limit of ours, so the depth can be measured
  json::error_code ec;
  const json::value reference = json::parse(body, ec, json::storage_ptr(), options);
  const bool valid = !ec;
  const std::size_t depth = valid ? depth_of(reference) : 0;
  const bool within_depth = valid && depth <= http::kJsonMaxDepth;
  const bool repeats_a_key = valid && keys_in_text(body) > members_of(reference);
  const std::string what = "body " + quoted(body) + (valid ? " (valid JSON" : " (invalid JSON") +
                           ", depth " + std::to_string(depth) +
                           (repeats_a_key ? ", repeats a key)" : ")");

  if (const auto* object = std::get_if<json::object>(&ours)) {
    PS_FUZZ_CHECK(valid && reference.is_object(), "accepted " + what);
    PS_FUZZ_CHECK(within_depth, "accepted too deep: " + what);
    PS_FUZZ_CHECK(!repeats_a_key, "accepted a repeated key: " + what);
    // Compared as text: Boost.JSON 1.81 reads 0e400 as NaN (not 0), and NaN != NaN. (Harmless
    // for us: every number the API reads must be an integer.)
    PS_FUZZ_CHECK(json::serialize(*object) == json::serialize(reference.get_object()),
                  "built another value than json::parse: " + what);
    return;
  }
  const http::Problem& p = std::get<http::Problem>(ours);
  PS_FUZZ_CHECK(p.status == boost::beast::http::status::bad_request && p.errors.size() == 1,
                "refusal is not one 400 field error: " + what);
  const http::FieldError& e = p.errors.front();
  if (e.message.starts_with("is duplicated")) {
    PS_FUZZ_CHECK(valid, "invalid JSON reported as a duplicated key: " + what);
    PS_FUZZ_CHECK(within_depth, "too deep JSON reported as a duplicated key: " + what);
    PS_FUZZ_CHECK(repeats_a_key, "duplicated key reported where none is: " + what);
    return;
  }
  PS_FUZZ_CHECK(e.field == "body", "refusal names " + quoted(e.field) + ": " + what);
  if (e.message.starts_with("is not valid JSON")) {
    PS_FUZZ_CHECK(!valid, "valid JSON reported as not valid: " + what);
  } else if (e.message.starts_with("is nested deeper than")) {
    PS_FUZZ_CHECK(!within_depth, "JSON within the depth reported as too deep: " + what);
  } else if (e.message == "must be a JSON object") {
    PS_FUZZ_CHECK(within_depth && !reference.is_object(), "refused as not an object: " + what);
  } else {
    PS_FUZZ_CHECK(false, "unexpected refusal " + quoted(e.message) + ": " + what);
  }
}

}  // namespace ps::fuzz
