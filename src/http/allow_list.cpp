#include "http/allow_list.hpp"

#include <boost/algorithm/string/trim.hpp>

#include <charconv>
#include <sstream>
#include <stdexcept>

namespace ps::http {

namespace ip = boost::asio::ip;

namespace {

// Boost.Asio's make_network_v4/v6 read the prefix length with std::atoi, which wraps for a
// number beyond int: "10.0.0.0/4294967304" came back as 10.0.0.0/8 and "10.0.0.0/4294967296" as
// 10.0.0.0/0, everyone (found by fuzz_config). So the length is read here first: decimal digits
// only, at most `bits`. Throws std::invalid_argument naming the item.
void check_prefix_length(const std::string& item, std::size_t slash, unsigned bits) {
  const std::string_view digits = std::string_view(item).substr(slash + 1);
  unsigned length = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
      length > bits) {
    throw std::invalid_argument("not a CIDR network: '" + item +
                                "' (the prefix length must be 0 to " + std::to_string(bits) + ")");
  }
}

}  // namespace

AllowList AllowList::parse(const std::string& spec) {
  AllowList list;
  std::stringstream in(spec);
  std::string item;
  while (std::getline(in, item, ',')) {
    boost::algorithm::trim(item);
    if (item.empty() || item == "any") continue;
    const bool v6 = item.find(':') != std::string::npos;
    if (item.find('/') == std::string::npos) item += v6 ? "/128" : "/32";
    check_prefix_length(item, item.find('/'), v6 ? 128 : 32);
    boost::system::error_code ec;
    if (!v6) {
      const auto net = ip::make_network_v4(item, ec);
      if (!ec) list.networks_.emplace_back(net.canonical());
    } else {
      const auto net = ip::make_network_v6(item, ec);
      if (!ec) list.networks_.emplace_back(net.canonical());
    }
    if (ec) throw std::invalid_argument("not a CIDR network: '" + item + "'");
  }
  return list;
}

bool AllowList::allows(const ip::address& a) const {
  if (networks_.empty()) return true;
  // An IPv4 client on a dual-stack socket appears as ::ffff:a.b.c.d.
  const ip::address addr = a.is_v6() && a.to_v6().is_v4_mapped()
                               ? ip::address(ip::make_address_v4(ip::v4_mapped, a.to_v6()))
                               : a;
  for (const auto& n : networks_) {
    if (const auto* v4 = std::get_if<ip::network_v4>(&n); v4 && addr.is_v4()) {
      const ip::network_v4 host(addr.to_v4(), 32);
      if (host == *v4 || host.is_subnet_of(*v4)) return true;
    }
    if (const auto* v6 = std::get_if<ip::network_v6>(&n); v6 && addr.is_v6()) {
      const ip::network_v6 host(addr.to_v6(), 128);
      if (host == *v6 || host.is_subnet_of(*v6)) return true;
    }
  }
  return false;
}

}  // namespace ps::http
