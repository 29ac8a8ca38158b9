// map_bench: what certificate-to-user mapping costs per login.
//
//   map_bench CONFIG CERT_PEM RUNS
//
// Each run does what the module does per authentication once the card has
// been read: Mapper::Create (parse the rules, load the chain-only trust store
// the rules need, and for ldap: rules a directory client) and Mapper::Map on
// one certificate (trust evaluation, the rules, NSS lookups, the directory
// search through a freshly spawned sc-helper). Prints the users of the first
// run, then median, 95th percentile and maximum wall time in milliseconds.
#include <openssl/pem.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include "auth/mapping.h"
#include "core/config.h"
#include "crypto/certificate.h"

namespace {

class StderrLogger : public sc::core::Logger {
 public:
  void Log(sc::core::LogLevel, std::string_view message) override {
    std::cerr << "map_bench: " << message << "\n";
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: map_bench CONFIG CERT_PEM RUNS\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  std::stringstream text;
  text << in.rdbuf();
  auto options = sc::core::BuildOptions(text.str(), argv[1], "bench", sc::core::ModuleArgs{});
  if (!options.ok()) {
    std::cerr << options.status().message() << "\n";
    return 1;
  }
  FILE* f = fopen(argv[2], "r");
  if (f == nullptr) return 1;
  X509* x509 = PEM_read_X509(f, nullptr, nullptr, nullptr);
  fclose(f);
  if (x509 == nullptr) return 1;
  unsigned char* der = nullptr;
  int len = i2d_X509(x509, &der);
  X509_free(x509);
  if (len <= 0) return 1;
  auto cert = sc::crypto::Certificate::FromDer({der, static_cast<std::size_t>(len)});
  OPENSSL_free(der);
  if (!cert.ok()) return 1;
  sc::auth::CardIdentity identity{sc::core::TokenIdentity{}, std::move(*cert)};

  StderrLogger log;
  int runs = std::max(1, atoi(argv[3]));
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto mapper = sc::auth::Mapper::Create(*options, nullptr, sc::core::PairingsFile{}, log);
    if (!mapper.ok()) {
      std::cerr << mapper.status().message() << "\n";
      return 1;
    }
    sc::auth::MappingResult result = (*mapper)->Map(identity, nullptr);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    if (!result.status.ok()) {
      std::cerr << result.status.message() << "\n";
      return 1;
    }
    if (i == 0) {
      std::string users;
      for (const std::string& u : result.users) users += (users.empty() ? "" : ",") + u;
      std::cout << "users=" << (users.empty() ? "(nobody)" : users) << " how=" << result.how << "\n";
    }
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * static_cast<double>(ms.size() - 1) + 0.5))]; };
  std::printf("median_ms=%.3f p95_ms=%.3f max_ms=%.3f runs=%d\n", pct(0.5), pct(0.95), ms.back(), runs);
  return 0;
}
