#include "provider/endpoint.hpp"

#include <boost/url/parse.hpp>

#include <stdexcept>

namespace ps::provider {

ProviderEndpoint parse_provider_url(const std::string& url) {
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed) throw std::invalid_argument("not a URL: " + parsed.error().message());
  ProviderEndpoint e;
  if (parsed->scheme() == "https") {
    e.tls = true;
  } else if (parsed->scheme() != "http") {
    throw std::invalid_argument("scheme must be http or https");
  }
  // host_address() is the host without the brackets of an IPv6 literal: what the resolver takes.
  e.host = std::string(parsed->host_address());
  if (e.host.empty()) throw std::invalid_argument("URL has no host");
  const std::string port(parsed->port());
  if (port.empty()) {
    e.port = e.tls ? "443" : "80";  // RFC 3986: an empty port means the scheme's default
  } else {
    const bool digits =
        port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoi(port) < 1 || std::stoi(port) > 65535) {
      throw std::invalid_argument("port must be 1..65535");
    }
    e.port = port;
  }
  e.host_header = std::string(parsed->encoded_host());  // keeps IPv6 brackets
  if (!port.empty()) e.host_header += ":" + port;
  if (parsed->has_query() || parsed->has_fragment()) {
    throw std::invalid_argument("base URL must not have a query or fragment");
  }
  std::string path(parsed->encoded_path());
  if (!path.empty() && path.front() != '/') throw std::invalid_argument("malformed path");
  while (!path.empty() && path.back() == '/') path.pop_back();
  e.target = path + "/money_movement/";
  return e;
}

}  // namespace ps::provider
