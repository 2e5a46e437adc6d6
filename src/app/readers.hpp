#pragma once
// Store reads that are not served from memory (payment lists, callback history, readiness) run
// on a small thread pool with their own read-only connections, never on an I/O thread. In WAL
// mode they see the last commit and never wait for the writer.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "store/store.hpp"
#include "util/await_callback.hpp"

namespace ps::app {

class Readers {
 public:
  Readers(const std::string& database_url, std::size_t threads);
  ~Readers();
  Readers(const Readers&) = delete;
  Readers& operator=(const Readers&) = delete;

  // Runs `f(store) -> R` on the pool; resumes the calling coroutine on its executor.
  // Not a coroutine, and callers name `f` first: see Writer::run (GCC 12).
  template <class R, class F>
  boost::asio::awaitable<R> run(F f) {
    auto start = [this, f = std::move(f)](auto done) mutable {
      this->submit<R>(std::move(f), std::move(done));
    };
    return util::await_callback<R>(std::move(start));
  }

  // Runs `f(store) -> R` on the pool, then `done(error, result)` on the pool's thread (result
  // default-constructed when `f`, or opening a connection, threw).
  template <class R, class F, class Done>
  void submit(F f, Done done) {
    boost::asio::post(pool_, [this, f = std::move(f), done = std::move(done)]() mutable {
      R result{};
      std::exception_ptr error;
      try {
        Lease lease(*this);
        result = f(*lease.store);
      } catch (...) {
        error = std::current_exception();
      }
      done(error, std::move(result));
    });
  }

  void stop();

 private:
  // Borrows a connection; opened lazily, returned to the free list afterwards.
  struct Lease {
    explicit Lease(Readers& r);
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Readers& readers;
    std::unique_ptr<store::Store> store;
  };

  std::string url_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<store::Store>> free_;
  boost::asio::thread_pool pool_;
};

}  // namespace ps::app
