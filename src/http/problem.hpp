#pragma once
// RFC 9457 problem details: every error the API answers.

#include <boost/beast/http/status.hpp>
#include <boost/json/object.hpp>

#include <string>
#include <vector>

namespace ps::http {

struct FieldError {
  std::string field;
  std::string message;
};

struct Problem {
  boost::beast::http::status status = boost::beast::http::status::internal_server_error;
  std::string slug;  // type = "/problems/<slug>"
  std::string title;
  std::string detail;
  std::vector<FieldError> errors;
  boost::json::object extra;  // members beyond the standard ones (e.g. provider_status)

  boost::json::object to_json() const;
};

Problem validation_problem(std::vector<FieldError> errors);
Problem not_found(std::string detail);

}  // namespace ps::http
