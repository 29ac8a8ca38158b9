#include "helper/fetch.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/http.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "crypto/ossl.h"

namespace sc::helper {
namespace {

struct OsslFree {
  void operator()(char* p) const { OPENSSL_free(p); }
};

struct BioFree {
  void operator()(BIO* b) const { BIO_free_all(b); }
};

using Clock = std::chrono::steady_clock;

int MillisecondsLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 3600 * 1000));
}

// Connect opens a non-blocking TCP connection to host:port before deadline,
// trying each address once. OpenSSL's own connect (BIO_do_connect_retry)
// retries a refused connection until the timeout; a responder that is down
// must fail at once, so that the cached answer decides without a wait.
// Returns the socket, or -1 with why.
int Connect(const char* host, const char* port, Clock::time_point deadline, std::string* why) {
  // OSSL_HTTP_parse_url keeps an IPv6 literal's brackets ("[::1]").
  std::string name = host;
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
  struct addrinfo hints {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* found = nullptr;
  int gai = getaddrinfo(name.c_str(), port, &hints, &found);  // bounded by the module's deadline
  if (gai != 0) {
    *why = std::string("cannot resolve ") + host + ": " + gai_strerror(gai);
    return -1;
  }
  std::unique_ptr<struct addrinfo, decltype(&freeaddrinfo)> owned(found, freeaddrinfo);
  *why = std::string("no address for ") + host;
  for (const struct addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      *why = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    int err = 0;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        struct pollfd p {fd, POLLOUT, 0};
        int ready;
        while ((ready = poll(&p, 1, MillisecondsLeft(deadline))) < 0 && errno == EINTR) {
        }
        if (ready <= 0) {
          close(fd);
          *why = "connect timeout";
          return -1;
        }
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      }
    }
    if (err == 0) return fd;
    close(fd);
    *why = std::string("connect: ") + std::strerror(err);
  }
  return -1;
}

}  // namespace

core::FetchReply Fetch(const core::FetchRequest& request) {
  core::FetchReply reply;
  int use_ssl = 0;
  char* host = nullptr;  // owned here, OPENSSL_free
  char* port = nullptr;
  char* path = nullptr;
  if (OSSL_HTTP_parse_url(request.url.c_str(), &use_ssl, nullptr, &host, &port, nullptr, &path, nullptr,
                          nullptr) != 1) {
    reply.message = "bad URL " + request.url;
    return reply;
  }
  std::unique_ptr<char, OsslFree> owned_host(host), owned_port(port), owned_path(path);
  if (use_ssl) {
    reply.message = "only http:// responders are supported";
    return reply;
  }
  // One deadline for connecting and for the exchange.
  auto deadline = Clock::now() + std::chrono::seconds(request.timeout_seconds);
  std::string why;
  int fd = Connect(host, port, deadline, &why);
  if (fd < 0) {
    reply.message = "HTTP POST to " + request.url + ": " + why;
    return reply;
  }
  std::unique_ptr<BIO, BioFree> connection(BIO_new_socket(fd, BIO_CLOSE));
  if (!connection) {
    close(fd);
    reply.message = "HTTP POST to " + request.url + ": " + crypto::DrainErrors();
    return reply;
  }
  int seconds_left = std::max(1, (MillisecondsLeft(deadline) + 999) / 1000);
  std::unique_ptr<BIO, BioFree> body(BIO_new_mem_buf(request.body.data(), static_cast<int>(request.body.size())));
  // Given as both bio and rbio, the connected socket is used as it is: OpenSSL
  // neither connects (it would with rbio == NULL) nor frees it. The socket is
  // non-blocking, so the timeout bounds the exchange.
  std::unique_ptr<BIO, BioFree> response(OSSL_HTTP_transfer(
      nullptr, host, port, path, /*use_ssl=*/0, /*proxy=*/nullptr, /*no_proxy=*/nullptr, connection.get(),
      connection.get(), /*bio_update_fn=*/nullptr, /*arg=*/nullptr, /*buf_size=*/0, /*headers=*/nullptr,
      request.content_type.c_str(), body.get(), /*expected_content_type=*/nullptr, /*expect_asn1=*/0,
      core::kMaxFetchBytes, seconds_left, /*keep_alive=*/0));
  if (!response) {
    std::string errors = crypto::DrainErrors();
    reply.message = "HTTP POST to " + request.url + ": " + (errors.empty() ? "no answer" : errors);
    return reply;
  }
  char buf[4096];
  int n;
  while ((n = BIO_read(response.get(), buf, sizeof buf)) > 0) {
    reply.body.insert(reply.body.end(), buf, buf + n);
    if (reply.body.size() > core::kMaxFetchBytes) {
      reply.body.clear();
      reply.message = "response too large";
      return reply;
    }
  }
  reply.ok = true;
  return reply;
}

}  // namespace sc::helper
