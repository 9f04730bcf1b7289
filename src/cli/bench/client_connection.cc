#include "cli/bench/client_connection.h"

#include <array>
#include <charconv>
#include <cstring>

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace ordo::cli::bench {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr size_t kInitialInput = size_t{64} * 1024;
constexpr size_t kMinReadRoom = size_t{16} * 1024;

}  // namespace

bool ResolveTarget(std::string_view url, Target* out, std::string* error) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    *error = fmt::format("--url must start with http:// (got '{}')", url);
    return false;
  }
  std::string_view rest = url.substr(kScheme.size());
  rest = rest.substr(0, rest.find('/'));
  std::string_view host = rest;
  std::string_view port = "80";
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      *error = fmt::format("bad IPv6 address in --url '{}'", url);
      return false;
    }
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else if (const size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  unsigned port_number = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (host.empty() || ec != std::errc() || p != port.data() + port.size() || port_number == 0 ||
      port_number > 65535) {
    *error = fmt::format("--url '{}' needs a host and a port in 1..65535", url);
    return false;
  }
  asio::io_context io;
  tcp::resolver resolver(io);
  boost::system::error_code rec;
  auto results =
      resolver.resolve(std::string(host), std::string(port), tcp::resolver::numeric_service, rec);
  if (rec || results.empty()) {
    *error = fmt::format("cannot resolve '{}': {}", host, rec ? rec.message() : "no address");
    return false;
  }
  out->endpoint = results.begin()->endpoint();
  out->host_header = std::string(rest);
  return true;
}

ClientConnection::ClientConnection(const asio::any_io_executor& ex, const Target& target)
    : socket_(ex), target_(target), in_(kInitialInput, '\0') {}

void ClientConnection::Close() {
  boost::system::error_code ignored;
  socket_.close(ignored);
  in_len_ = in_done_ = 0;
  close_after_answer_ = false;
}

asio::awaitable<bool> ClientConnection::EnsureConnected(std::string* error) {
  if (close_after_answer_) Close();
  if (socket_.is_open()) co_return true;
  boost::system::error_code ec;
  co_await socket_.async_connect(target_.endpoint, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    *error = fmt::format("connect: {}", ec.message());
    Close();
    co_return false;
  }
  socket_.set_option(tcp::no_delay(true), ec);
  if (ec) {
    *error = fmt::format("TCP_NODELAY: {}", ec.message());
    Close();
    co_return false;
  }
  co_return true;
}

asio::awaitable<bool> ClientConnection::RoundTrip(std::string_view method, std::string_view path,
                                                  std::string_view body, Response* out,
                                                  std::string* error) {
  if (!co_await EnsureConnected(error)) co_return false;

  // Bytes after the previous answer would be an answer nobody asked for: a closed loop has
  // exactly one request in flight, so anything left over is a protocol error.
  if (in_len_ > in_done_) {
    *error = "server sent bytes after the answer";
    Close();
    co_return false;
  }
  in_len_ = in_done_ = 0;
  reader_.Reset();

  head_.clear();
  fmt::format_to(std::back_inserter(head_), "{} {} HTTP/1.1\r\nHost: {}\r\n", method, path,
                 target_.host_header);
  if (!body.empty() || method == "POST") {
    fmt::format_to(std::back_inserter(head_),
                   "Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
  }
  head_ += "\r\n";

  boost::system::error_code ec;
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body)};
  co_await asio::async_write(socket_, buffers, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    *error = fmt::format("write: {}", ec.message());
    Close();
    co_return false;
  }

  for (;;) {
    const ResponseReader::State state = reader_.Parse(in_.data(), in_len_);
    if (state == ResponseReader::State::kComplete) break;
    if (state == ResponseReader::State::kMalformed) {
      *error = fmt::format("malformed answer: {}", reader_.error());
      Close();
      co_return false;
    }
    if (in_.size() - in_len_ < kMinReadRoom) in_.resize(in_.size() * 2);
    const size_t n =
        co_await socket_.async_read_some(asio::buffer(in_.data() + in_len_, in_.size() - in_len_),
                                         asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      *error = ec == asio::error::eof ? std::string("server closed the connection mid-answer")
                                      : fmt::format("read: {}", ec.message());
      Close();
      co_return false;
    }
    in_len_ += n;
  }
  in_done_ = reader_.consumed();
  close_after_answer_ = !reader_.keep_alive();
  out->status = reader_.status();
  out->body = reader_.Body(in_.data());
  co_return true;
}

}  // namespace ordo::cli::bench
