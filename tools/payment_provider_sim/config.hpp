// Run-time configuration of the simulator, filled from the command line by main.cpp and
// validated there before anything starts.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "script.hpp"

namespace provider_sim {

struct SimConfig {
  std::string bind_address = "127.0.0.1";
  std::uint16_t port = 9090;  // 0 picks a free port (logged at start)
  std::uint16_t callback_port = 8080;
  std::optional<std::string> callback_host;  // default: the IP the request came from
  std::string username;
  std::string password;
  std::uint64_t seed = 1;
  ScriptConfig script;
  bool no_callbacks = false;
  bool record_callbacks = false;  // /truth lists every callback sent with its answer (TruthBook)
  FaultRates faults;
  std::chrono::milliseconds slow{0};
  std::chrono::seconds settle_grace{2};
  unsigned threads = 1;
};

// Limits of the HTTP side, shared by server and client.
inline constexpr std::size_t kMaxRequestBodyBytes = 64 * 1024;
inline constexpr std::size_t kMaxHeaderBytes = 8 * 1024;
// --username, --password and PUT /credentials: each at most this long.
inline constexpr std::size_t kMaxCredentialBytes = 256;
inline constexpr std::size_t kMaxMovements = 2'000'000;  // ~300 MB of truth at most
inline constexpr std::size_t kMaxServerConnections = 4096;
inline constexpr std::size_t kMaxConcurrentCallbacks = 256;
inline constexpr std::size_t kMaxIdleConnectionsPerDestination = 256;
inline constexpr std::size_t kMaxDestinations = 1024;
inline constexpr std::chrono::seconds kServerIdleTimeout{30};
inline constexpr std::chrono::milliseconds kCallbackConnectTimeout{1000};
inline constexpr std::chrono::milliseconds kCallbackTotalTimeout{2000};
inline constexpr std::chrono::milliseconds kRetryBackoffInitial{50};
inline constexpr std::chrono::milliseconds kRetryBackoffMax{500};

}  // namespace provider_sim
