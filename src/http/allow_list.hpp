#pragma once
// CALLBACK_ALLOW_FROM: the networks allowed to call the callback endpoint (empty: anyone).

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

#include <string>
#include <variant>
#include <vector>

namespace ps::http {

class AllowList {
 public:
  // "10.0.0.0/8, 192.168.1.7, ::1/128"; "" or "any" allows all. Throws std::invalid_argument.
  static AllowList parse(const std::string& spec);

  bool allows(const boost::asio::ip::address& a) const;
  bool allows_any() const { return networks_.empty(); }

 private:
  std::vector<std::variant<boost::asio::ip::network_v4, boost::asio::ip::network_v6>> networks_;
};

}  // namespace ps::http
