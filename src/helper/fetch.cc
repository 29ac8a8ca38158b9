#include "helper/fetch.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/http.h>

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
  std::unique_ptr<BIO, BioFree> body(BIO_new_mem_buf(request.body.data(), static_cast<int>(request.body.size())));
  std::unique_ptr<BIO, BioFree> response(OSSL_HTTP_transfer(
      nullptr, host, port, path, /*use_ssl=*/0, /*proxy=*/nullptr, /*no_proxy=*/nullptr, /*bio=*/nullptr,
      /*rbio=*/nullptr, /*bio_update_fn=*/nullptr, /*arg=*/nullptr, /*buf_size=*/0, /*headers=*/nullptr,
      request.content_type.c_str(), body.get(), /*expected_content_type=*/nullptr, /*expect_asn1=*/0,
      core::kMaxFetchBytes, static_cast<int>(request.timeout_seconds), /*keep_alive=*/0));
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
