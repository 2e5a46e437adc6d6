#pragma once
// PROVIDER_URL: the provider's base URL, read into what the client connects to and requests.

#include <string>

namespace ps::provider {

struct ProviderEndpoint {
  bool tls = false;
  std::string host;  // for the resolver, TLS name checks and SNI
  std::string port;
  std::string host_header;  // the Host header: host as written in the URL, with its port
  std::string target;       // path of /money_movement/ under the base URL
};

// Throws std::invalid_argument with a readable reason for a URL we cannot use.
ProviderEndpoint parse_provider_url(const std::string& url);

}  // namespace ps::provider
