#pragma once
// Awaiting work that reports through a callback on another thread (the writer, the reader pool).

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <memory>
#include <utility>

namespace ps::util {

// `start(done)` starts the work and arranges for `done(error, result)` to be called once, from
// any thread. The awaiting coroutine resumes on its own executor with `result`, or with `error`
// thrown when it is set.
template <class R, class Start>
boost::asio::awaitable<R> await_callback(Start start) {
  return boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                     void(std::exception_ptr, R)>(
      [start = std::move(start)](auto handler) mutable {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        start([h](std::exception_ptr error, R result) {
          auto ex = boost::asio::get_associated_executor(*h);
          boost::asio::post(ex, [h, error, result = std::move(result)]() mutable {
            (*h)(error, std::move(result));
          });
        });
      },
      boost::asio::use_awaitable);
}

}  // namespace ps::util
