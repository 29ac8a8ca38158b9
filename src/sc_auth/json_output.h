// JSON output of `sc_auth --json`, through nlohmann::json: what every
// command with a JSON form builds (an ordered_json, so keys keep the order
// sc_auth(8) documents) and prints with SafeDump.
#ifndef PAM_SMARTCARD_SC_AUTH_JSON_OUTPUT_H_
#define PAM_SMARTCARD_SC_AUTH_JSON_OUTPUT_H_

#include <string>

#include <nlohmann/json.hpp>

namespace sc::sc_auth {

using Json = nlohmann::ordered_json;

// SafeDump returns value as JSON text: on one line with indent -1 (one
// `watch` event per line), else pretty-printed with indent spaces. Every
// string in it, object keys included, first passes core::SanitizeForDisplay,
// as everything else sc_auth prints: a card's label or a certificate's
// subject may hold invalid UTF-8, C0 and C1 controls or bidi overrides, and
// a JSON consumer may well show the value on a terminal. dump() would escape
// C0 controls but pass C1 controls and bidi overrides through, and throw on
// invalid UTF-8; after the sanitiser the text is valid UTF-8 without either,
// and the replacing error handler keeps dump() from throwing whatever it is
// given. Never throws for the content of value.
std::string SafeDump(Json value, int indent);

}  // namespace sc::sc_auth

#endif  // PAM_SMARTCARD_SC_AUTH_JSON_OUTPUT_H_
