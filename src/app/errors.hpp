#pragma once
// The failures a use case throws that the HTTP layer answers with 503 and Retry-After.

#include <stdexcept>
#include <string>

namespace ps::app {

// The write queue is full: the caller should answer 503 with Retry-After.
struct Overloaded : std::runtime_error {
  Overloaded() : std::runtime_error("write queue full") {}
};

// The store failed (store::StoreError, translated by the use cases in app/ so that no caller
// outside app/ needs the store's types): nothing was changed; the caller may retry later.
// what() is the store's own message.
struct Unavailable : std::runtime_error {
  explicit Unavailable(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace ps::app
