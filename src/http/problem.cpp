#include "http/problem.hpp"

#include <boost/json/array.hpp>

namespace ps::http {

boost::json::object Problem::to_json() const {
  boost::json::object o{
      {"type", "/problems/" + slug},
      {"title", title},
      {"status", static_cast<unsigned>(status)},
      {"detail", detail},
  };
  if (!errors.empty()) {
    boost::json::array list;
    for (const auto& e : errors) list.push_back({{"field", e.field}, {"message", e.message}});
    o["errors"] = std::move(list);
  }
  for (const auto& [k, v] : extra) o[k] = v;
  return o;
}

Problem validation_problem(std::vector<FieldError> errors) {
  std::string detail = errors.size() == 1 ? errors.front().field + ": " + errors.front().message
                                          : std::to_string(errors.size()) + " fields are invalid";
  return Problem{.status = boost::beast::http::status::bad_request,
                 .slug = "validation-error",
                 .title = "The request is invalid",
                 .detail = std::move(detail),
                 .errors = std::move(errors),
                 .extra = {}};
}

Problem not_found(std::string detail) {
  return Problem{.status = boost::beast::http::status::not_found,
                 .slug = "not-found",
                 .title = "Not found",
                 .detail = std::move(detail),
                 .errors = {},
                 .extra = {}};
}

}  // namespace ps::http
