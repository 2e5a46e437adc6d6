#pragma once
#include <string>
#include <string_view>

namespace ps::provider {

// RFC 4648 base64 with padding, for the HTTP Basic Authorization header.
std::string base64_encode(std::string_view in);

}  // namespace ps::provider
