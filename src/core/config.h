// Options of pam_smartcard: one table of descriptors parses the config file
// (pam_smartcard.conf), its [service NAME] overrides and the pam.d arguments,
// so a key means the same thing everywhere.
#ifndef PAM_SMARTCARD_CORE_CONFIG_H_
#define PAM_SMARTCARD_CORE_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace sc::core {

inline constexpr char kDefaultConfigPath[] = SC_SYSCONFDIR "/security/pam_smartcard.conf";
inline constexpr char kDefaultPairingsPath[] = SC_SYSCONFDIR "/security/smartcard_pairings";
inline constexpr char kDefaultHelperPath[] = SC_HELPER_PATH;
inline constexpr std::size_t kMaxConfigBytes = 256 * 1024;

enum class TrustLevel { kNone = 0, kChain = 1, kSoftRevocation = 2, kHardRevocation = 3 };
std::string_view TrustLevelName(TrustLevel level);

// A section other than [global]/[service]: kept with its lines so later
// features (attribute mapping, directory) parse them with their own tables.
struct ExtraSection {
  std::string kind;  // "attribute_mapping" or "ldap"
  std::string name;
  int line = 0;
  std::vector<std::pair<std::string, std::string>> entries;
};

struct Options {
  // Module-only arguments (also accepted as bool keys in the file).
  bool debug = false;
  bool use_first_pass = false;
  bool try_first_pass = false;
  bool no_check_shell = false;
  std::string config_path = kDefaultConfigPath;

  std::string pkcs11_module = "p11-kit";
  std::vector<std::pair<std::string, std::string>> module_env;
  std::string token;  // RFC 7512 URI, empty = any
  std::string reader = "*";
  bool pcsc_check = true;
  std::uint32_t wait_for_card = 0;
  std::uint32_t timeout = 30;
  std::uint32_t pcsc_timeout = 3;    // bound on an unresponsive PC/SC service
  std::uint32_t pin_attempts = 1;    // PIN tries per PAM transaction
  std::string pin_pattern;           // ERE a PIN must match; "" = none
  bool protect_final_try = true;     // a login never uses the card's last try
  std::string pin_prompt = "PIN for %t: ";
  TrustLevel check_certificate_trust = TrustLevel::kNone;
  std::string ca_file;
  std::string ca_dir;
  std::vector<std::string> trusted_authorities;
  std::string crl_dir;
  std::uint32_t revocation_grace = 0;
  bool ocsp = false;
  std::vector<std::string> required_eku;
  bool user_pairing = true;
  std::string pairings_file = kDefaultPairingsPath;
  // directory_pairing: the [ldap] attribute that holds "sha256:<hex>" key
  // pairings (empty: none). A match counts as a pairing, as one in the
  // pairings file does (trust per check_certificate_trust).
  std::string directory_pairing;
  // directory_grace: hours the directory's last answer for a key or value,
  // kept in cache_dir by root, may stand in when the directory cannot answer.
  std::uint32_t directory_grace = 0;
  bool one_card_per_user = false;
  bool allow_user_from_card = true;
  bool enforce_smartcard = false;
  std::string not_enforced_group;
  std::string token_removal_action = "none";
  std::string helper = kDefaultHelperPath;
  std::string helper_user = "nobody";  // the account helpers run as under a root caller
  std::string cache_dir = SC_CACHEDIR;  // CRL indexes, OCSP answers, kept directory answers

  std::vector<ExtraSection> extra_sections;
};

// ModuleArgs are the pam.d arguments, split but not yet applied.
struct ModuleArgs {
  std::string config_path = kDefaultConfigPath;
  std::vector<std::pair<std::string, std::string>> overrides;  // key, value
};

// ParseModuleArgs splits argv; a bare word is a bool key set to "yes".
// Unknown keys and malformed words are kConfig errors.
Result<ModuleArgs> ParseModuleArgs(int argc, const char** argv);

// BuildOptions applies, in order, defaults, [global] of config_text, the
// [service SERVICE] section, then the module arguments. file_name is used in
// messages ("file:line: ..."). Unknown keys, bad values, duplicate keys in a
// section and unsupported policies are kConfig errors.
Result<Options> BuildOptions(std::string_view config_text, std::string_view file_name,
                             std::string_view service, const ModuleArgs& args);

// SetOption applies one key=value (exposed for sc_auth --config overrides and tests).
Status SetOption(Options& options, std::string_view key, std::string_view value);

// IsKnownKey reports whether key is in the option table.
bool IsKnownKey(std::string_view key);

// CanonicalServiceName is the service name libpam gives a module for the
// name an application passes to pam_start: the part after the last '/',
// lowercased. sc_auth --service applies it, as libpam would.
std::string CanonicalServiceName(std::string_view service);

// ExpandPrompt replaces %t with the token label and %% with %.
std::string ExpandPrompt(std::string_view prompt, std::string_view token_label);

}  // namespace sc::core


namespace sc::core {

// LoadOptions reads args.config_path with ReadTrustedFile (a missing file is
// fine only at the default path: built-in defaults apply) and builds the
// options for service.
Result<Options> LoadOptions(const ModuleArgs& args, std::string_view service);

}  // namespace sc::core

#endif  // PAM_SMARTCARD_CORE_CONFIG_H_
