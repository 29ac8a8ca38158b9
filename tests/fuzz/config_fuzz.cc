// libFuzzer target: the config parser and option table must refuse or accept
// any input without crashing, and never accept an unsupported policy.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  sc::core::ModuleArgs args;
  auto options = sc::core::BuildOptions(text, "fuzz.conf", "sudo", args);
  if (options.ok() && options->use_first_pass && options->try_first_pass) __builtin_trap();
  return 0;
}
