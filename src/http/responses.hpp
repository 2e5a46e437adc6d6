#pragma once
// Building answers: the request and response types, JSON and problem+json responses, and the
// problem each app::Failure is answered with. Shared by the router and the handlers.

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>
#include <boost/url/params_view.hpp>

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "app/outcomes.hpp"
#include "http/problem.hpp"

namespace ps::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

inline constexpr std::string_view kJson = "application/json";
inline constexpr std::string_view kProblemJson = "application/problem+json";

Response make_response(boost::beast::http::status s, unsigned version, bool keep_alive,
                       std::string body, std::string_view content_type);
Response json_response(const Request& req, boost::beast::http::status s,
                       const boost::json::value& v);
Response problem_response(const Problem& p, unsigned version, bool keep_alive);
Response problem(const Request& req, const Problem& p);

Problem simple_problem(boost::beast::http::status s, std::string slug, std::string title,
                       std::string detail);
Problem failure_problem(app::Failure f);

// Query parameters of interest, decoded; repeated keys keep the last value.
std::map<std::string, std::string, std::less<>> query_params(boost::urls::params_view params);

}  // namespace ps::http
