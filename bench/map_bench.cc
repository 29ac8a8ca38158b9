// map_bench: what certificate-to-user mapping costs per login.
//
//   map_bench CONFIG CERT_PEM RUNS [CARD_READ_MS]
//
// Each run does what the module does per authentication: Mapper::Create
// (parse the rules, load the chain-only trust store the rules need, and for
// ldap: rules spawn the directory helper), then, CARD_READ_MS later (the
// module reads the card meanwhile; default 0), Mapper::Map on one
// certificate (trust evaluation, the rules, NSS lookups, the directory
// search). Prints the users of the first run, then the median, 95th
// percentile and maximum in milliseconds of Map alone (what mapping adds to
// a login) and of Create + Map (the work, without the wait).
#include <openssl/pem.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include "auth/mapping.h"
#include "core/config.h"
#include "crypto/certificate.h"
#include "pem_certificate.h"

namespace {

class StderrLogger : public sc::core::Logger {
 public:
  void Log(sc::core::LogLevel, std::string_view message) override {
    std::cerr << "map_bench: " << message << "\n";
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::cerr << "usage: map_bench CONFIG CERT_PEM RUNS [CARD_READ_MS]\n";
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
  auto cert = ReadPemCertificate(argv[2]);
  if (!cert) return 1;
  sc::auth::CardIdentity identity{sc::core::TokenIdentity{}, std::move(*cert)};

  StderrLogger log;
  int runs = std::max(1, atoi(argv[3]));
  int card_read_ms = argc == 5 ? std::max(0, atoi(argv[4])) : 0;
  using Clock = std::chrono::steady_clock;
  auto millis = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::vector<double> map_ms;
  std::vector<double> work_ms;
  for (int i = 0; i < runs; ++i) {
    auto start = Clock::now();
    sc::core::LoginDeadline deadline = sc::core::LoginDeadline::ForLogin(options->timeout, 0);
    sc::auth::NetworkHelper network(options->helper, options->module_env, options->helper_user, &deadline);
    auto mapper = sc::auth::Mapper::Create(*options, nullptr, sc::core::PairingsFile{}, log, &network);
    if (!mapper.ok()) {
      std::cerr << mapper.status().message() << "\n";
      return 1;
    }
    auto created = Clock::now();
    if (card_read_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(card_read_ms));
    auto map_start = Clock::now();
    sc::auth::MappingResult result = (*mapper)->Map(identity, nullptr);
    auto end = Clock::now();
    map_ms.push_back(millis(end - map_start));
    work_ms.push_back(millis(created - start) + millis(end - map_start));
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
  auto report = [](const char* name, std::vector<double> ms) {
    std::sort(ms.begin(), ms.end());
    auto pct = [&](double p) {
      return ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * static_cast<double>(ms.size() - 1) + 0.5))];
    };
    std::printf("%s_median_ms=%.3f %s_p95_ms=%.3f %s_max_ms=%.3f ", name, pct(0.5), name, pct(0.95), name, ms.back());
  };
  report("map", map_ms);
  report("work", work_ms);
  std::printf("runs=%d\n", runs);
  return 0;
}
