#include "http/request_reading.hpp"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <string>

namespace ps::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

namespace {

Problem plain_problem(bhttp::status s, const char* slug, const char* title, std::string detail) {
  return Problem{.status = s,
                 .slug = slug,
                 .title = title,
                 .detail = std::move(detail),
                 .errors = {},
                 .extra = {}};
}

}  // namespace

void limit_request_parser(RequestParser& parser) {
  parser.header_limit(kHeaderLimitBytes);
  parser.body_limit(kBodyLimitBytes);
}

std::optional<Problem> refuse_head(const RequestParser& parser) {
  if (parser.get().target().size() <= kTargetLimitBytes) return std::nullopt;
  return plain_problem(
      bhttp::status::uri_too_long, "uri-too-long", "Request target too long",
      "request targets are limited to " + std::to_string(kTargetLimitBytes) + " bytes");
}

bool is_disconnect(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == beast::error::timeout || ec == asio::error::connection_reset ||
         ec == asio::error::operation_aborted;
}

Problem read_refusal(const beast::error_code& ec) {
  if (ec == bhttp::error::header_limit) {
    return plain_problem(bhttp::status::request_header_fields_too_large, "header-too-large",
                         "Request header too large",
                         "request line and header fields are limited to " +
                             std::to_string(kHeaderLimitBytes) + " bytes");
  }
  if (ec == bhttp::error::body_limit) {
    return plain_problem(bhttp::status::payload_too_large, "payload-too-large",
                         "Request body too large",
                         "bodies are limited to " + std::to_string(kBodyLimitBytes) + " bytes");
  }
  return plain_problem(bhttp::status::bad_request, "bad-request", "Malformed HTTP request",
                       ec.message());
}

}  // namespace ps::http
