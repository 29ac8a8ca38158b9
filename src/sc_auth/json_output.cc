#include "sc_auth/json_output.h"

#include <utility>

#include "core/strings.h"

namespace sc::sc_auth {
namespace {

// Sanitize applies core::SanitizeForDisplay to every string in value, in
// place: string values, and the keys of objects (sc_auth's own literals
// today; cleaned anyway, so no future key can carry a card's bytes raw).
void Sanitize(Json& value) {
  if (value.is_string()) {
    value = core::SanitizeForDisplay(value.get_ref<const std::string&>());
  } else if (value.is_array()) {
    for (Json& item : value) Sanitize(item);
  } else if (value.is_object()) {
    Json clean = Json::object();
    for (auto& [key, item] : value.items()) {
      Sanitize(item);
      clean[core::SanitizeForDisplay(key)] = std::move(item);
    }
    value = std::move(clean);
  }
}

}  // namespace

std::string SafeDump(Json value, int indent) {
  Sanitize(value);
  return value.dump(indent, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

}  // namespace sc::sc_auth
