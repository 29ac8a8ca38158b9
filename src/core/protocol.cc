#include "core/protocol.h"

#include <cstring>

namespace sc::core {
namespace {

class Writer {
 public:
  explicit Writer(MessageType type) { U8(static_cast<std::uint8_t>(type)); }
  void U8(std::uint8_t v) { out_.push_back(v); }
  void U32(std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out_.push_back(static_cast<std::uint8_t>(v >> shift));
  }
  void U64(std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out_.push_back(static_cast<std::uint8_t>(v >> shift));
  }
  void Bytes(const void* data, std::size_t size) {
    U32(static_cast<std::uint32_t>(size));
    const auto* p = static_cast<const std::uint8_t*>(data);
    out_.insert(out_.end(), p, p + size);
  }
  void Str(const std::string& s) { Bytes(s.data(), s.size()); }
  void Vec(const std::vector<std::uint8_t>& v) { Bytes(v.data(), v.size()); }
  Frame Take() { return std::move(out_); }

 private:
  Frame out_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> in) : in_(in) {}
  bool ok() const { return ok_; }
  bool AtEnd() const { return pos_ == in_.size(); }
  std::uint8_t U8() {
    if (!Need(1)) return 0;
    return in_[pos_++];
  }
  std::uint32_t U32() {
    if (!Need(4)) return 0;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | in_[pos_++];
    return v;
  }
  std::uint64_t U64() {
    if (!Need(8)) return 0;
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | in_[pos_++];
    return v;
  }
  bool Bool() {
    std::uint8_t v = U8();
    if (v > 1) ok_ = false;
    return v == 1;
  }
  std::span<const std::uint8_t> Bytes(std::uint32_t max) {
    std::uint32_t n = U32();
    if (n > max || !Need(n)) {
      ok_ = false;
      return {};
    }
    auto out = in_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  std::string Str(std::uint32_t max = 4096) {
    auto b = Bytes(max);
    return std::string(b.begin(), b.end());
  }
  std::vector<std::uint8_t> Vec(std::uint32_t max) {
    auto b = Bytes(max);
    return std::vector<std::uint8_t>(b.begin(), b.end());
  }
  // Secret reads a PIN or password straight into SecretBytes (no plain copy).
  SecretBytes Secret(std::uint32_t max) {
    auto b = Bytes(max);
    SecretBytes out;
    out.Assign(b.data(), b.size());
    return out;
  }
  std::uint32_t Count(std::uint32_t max) {
    std::uint32_t n = U32();
    if (n > max) ok_ = false;
    return ok_ ? n : 0;
  }

 private:
  bool Need(std::size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

// NoteText is a note cut to kMaxNoteBytes at a character boundary (the
// module shows notes as UTF-8 text).
std::string_view NoteText(const std::string& note) {
  if (note.size() <= kMaxNoteBytes) return note;
  std::size_t cut = kMaxNoteBytes;
  while (cut > 0 && (static_cast<unsigned char>(note[cut]) & 0xc0) == 0x80) --cut;
  return std::string_view(note).substr(0, cut);
}

Status Malformed(const char* what) {
  return InternalError(std::string("malformed ") + what + " from peer");
}

Status ExpectType(Reader& r, MessageType type, const char* what) {
  if (r.U8() != static_cast<std::uint8_t>(type) || !r.ok()) return Malformed(what);
  return Status::Ok();
}

HelperResult ReadResult(Reader& r) {
  std::uint32_t v = r.U32();
  // An unknown code from the peer is not trusted as success.
  if (v > kMaxHelperResult) return HelperResult::kInternal;
  return static_cast<HelperResult>(v);
}

}  // namespace

std::string_view HelperResultName(HelperResult r) {
  switch (r) {
    case HelperResult::kOk: return "ok";
    case HelperResult::kNoPcsc: return "no PC/SC service";
    case HelperResult::kNoReader: return "no reader";
    case HelperResult::kNoCard: return "no card";
    case HelperResult::kModuleError: return "PKCS#11 module error";
    case HelperResult::kNoToken: return "no token";
    case HelperResult::kPinIncorrect: return "PIN incorrect";
    case HelperResult::kPinLocked: return "PIN locked";
    case HelperResult::kPinLenRange: return "PIN length out of range";
    case HelperResult::kPinExpired: return "PIN expired";
    case HelperResult::kKeyNotFound: return "private key not found";
    case HelperResult::kSignFailed: return "signing failed";
    case HelperResult::kTokenRemoved: return "token removed";
    case HelperResult::kBadRequest: return "bad request";
    case HelperResult::kInternal: return "internal error";
    case HelperResult::kTokenError: return "token error";
  }
  return "internal error";
}

Frame Encode(const ListRequest& m) {
  Writer w(MessageType::kListRequest);
  w.Str(m.module);
  w.Str(m.token_uri);
  w.U8(m.pcsc_check ? 1 : 0);
  w.Str(m.reader_glob);
  w.U32(m.wait_for_card);
  return w.Take();
}

Frame Encode(const ListReply& m) {
  Writer w(MessageType::kListReply);
  w.U32(static_cast<std::uint32_t>(m.result));
  w.Str(m.message);
  w.U32(static_cast<std::uint32_t>(m.identities.size()));
  for (const TokenIdentity& t : m.identities) {
    w.U32(t.id);
    w.Str(t.slot_description);
    w.Str(t.token_label);
    w.Str(t.token_serial);
    w.Str(t.token_model);
    w.Str(t.token_manufacturer);
    w.U32(t.token_flags);
    w.U32(t.min_pin);
    w.U32(t.max_pin);
    w.Vec(t.cert_der);
    w.Vec(t.key_id);
    w.Str(t.cert_label);
    w.U8(t.key_visible ? 1 : 0);
    w.U8(t.always_authenticate ? 1 : 0);
    w.U32(static_cast<std::uint32_t>(t.mechanisms.size()));
    for (std::uint64_t mech : t.mechanisms) w.U64(mech);
  }
  // Within what DecodeListReply takes: the last place says what did not fit.
  const bool too_many = m.notes.size() > kMaxNotes;
  const std::size_t sent = too_many ? kMaxNotes - 1 : m.notes.size();
  w.U32(static_cast<std::uint32_t>(too_many ? kMaxNotes : sent));
  for (std::size_t i = 0; i < sent; ++i) {
    std::string_view text = NoteText(m.notes[i]);
    w.Bytes(text.data(), text.size());
  }
  if (too_many) w.Str("... " + std::to_string(m.notes.size() - sent) + " more notes");
  return w.Take();
}

Frame Encode(const SignRequest& m) {
  Writer w(MessageType::kSignRequest);
  w.U32(m.id);
  w.U8(m.protected_path ? 1 : 0);
  w.Bytes(m.pin.data(), m.pin.size());
  w.U64(m.mechanism);
  w.Vec(m.data);
  return w.Take();
}

Frame Encode(const SignReply& m) {
  Writer w(MessageType::kSignReply);
  w.U32(static_cast<std::uint32_t>(m.result));
  w.Str(m.message);
  w.U32(m.token_flags);
  w.Vec(m.signature);
  return w.Take();
}

Frame Encode(const PinRequest& m) {
  Writer w(MessageType::kPinRequest);
  w.U32(m.id);
  w.U8(static_cast<std::uint8_t>(m.operation));
  w.U8(m.protected_path ? 1 : 0);
  w.Bytes(m.pin.data(), m.pin.size());
  w.Bytes(m.new_pin.data(), m.new_pin.size());
  return w.Take();
}

Frame Encode(const PinReply& m) {
  Writer w(MessageType::kPinReply);
  w.U32(static_cast<std::uint32_t>(m.result));
  w.Str(m.message);
  w.U32(m.token_flags);
  return w.Take();
}

Frame Encode(const FetchRequest& m) {
  Writer w(MessageType::kFetchRequest);
  w.Str(m.url);
  w.Str(m.content_type);
  w.Vec(m.body);
  w.U32(m.timeout_seconds);
  return w.Take();
}

Frame Encode(const FetchReply& m) {
  Writer w(MessageType::kFetchReply);
  w.U8(m.ok ? 1 : 0);
  w.Str(m.message);
  w.Vec(m.body);
  return w.Take();
}

Result<FetchRequest> DecodeFetchRequest(std::span<const std::uint8_t> payload) {
  Reader r(payload);
  SC_RETURN_IF_ERROR(ExpectType(r, MessageType::kFetchRequest, "fetch request"));
  FetchRequest m;
  m.url = r.Str(2048);
  m.content_type = r.Str(256);
  m.body = r.Vec(kMaxFetchBytes);
  m.timeout_seconds = r.U32();
  if (!r.ok() || !r.AtEnd()) return Malformed("fetch request");
  return m;
}

Result<FetchReply> DecodeFetchReply(std::span<const std::uint8_t> payload) {
  Reader r(payload);
  SC_RETURN_IF_ERROR(ExpectType(r, MessageType::kFetchReply, "fetch reply"));
  FetchReply m;
  m.ok = r.Bool();
  m.message = r.Str();
  m.body = r.Vec(kMaxFetchBytes);
  if (!r.ok() || !r.AtEnd()) return Malformed("fetch reply");
  return m;
}

Frame Encode(const DirectoryRequest& m) {
  Writer w(MessageType::kDirectoryRequest);
  w.Str(m.uris);
  w.Str(m.base);
  w.Str(m.bind_dn);
  w.Bytes(m.bind_password.data(), m.bind_password.size());
  w.U8(m.starttls ? 1 : 0);
  w.Str(m.tls_ca_file);
  w.Str(m.filter);
  w.Str(m.attribute);
  w.U32(m.timeout_seconds);
  w.U32(m.size_limit);
  return w.Take();
}

Frame Encode(const DirectoryReply& m) {
  Writer w(MessageType::kDirectoryReply);
  w.U8(m.ok ? 1 : 0);
  w.Str(m.message);
  w.U8(m.truncated ? 1 : 0);
  w.U32(static_cast<std::uint32_t>(m.entries.size()));
  for (const DirectoryEntry& e : m.entries) {
    w.Str(e.dn);
    w.U32(static_cast<std::uint32_t>(e.values.size()));
    for (const std::string& v : e.values) w.Str(v);
  }
  return w.Take();
}

Result<DirectoryRequest> DecodeDirectoryRequest(std::span<const std::uint8_t> payload) {
  Reader r(payload);
  SC_RETURN_IF_ERROR(ExpectType(r, MessageType::kDirectoryRequest, "directory request"));
  DirectoryRequest m;
  m.uris = r.Str();
  m.base = r.Str();
  m.bind_dn = r.Str();
  m.bind_password = r.Secret(kMaxPinBytes);
  m.starttls = r.Bool();
  m.tls_ca_file = r.Str();
  m.filter = r.Str();
  m.attribute = r.Str(256);
  m.timeout_seconds = r.U32();
  m.size_limit = r.U32();
  if (!r.ok() || !r.AtEnd() || m.size_limit > kMaxDirectoryEntries) return Malformed("directory request");
  return m;
}

Result<DirectoryReply> DecodeDirectoryReply(std::span<const std::uint8_t> payload) {
  Reader r(payload);
  SC_RETURN_IF_ERROR(ExpectType(r, MessageType::kDirectoryReply, "directory reply"));
  DirectoryReply m;
  m.ok = r.Bool();
  m.message = r.Str();
  m.truncated = r.Bool();
  std::uint32_t n = r.Count(kMaxDirectoryEntries);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    DirectoryEntry e;
    e.dn = r.Str();
    std::uint32_t values = r.Count(kMaxDirectoryValues);
    for (std::uint32_t j = 0; j < values && r.ok(); ++j) e.values.push_back(r.Str(kMaxDirectoryValueBytes));
    m.entries.push_back(std::move(e));
  }
  if (!r.ok() || !r.AtEnd()) return Malformed("directory reply");
  return m;
}

Frame Encode(const Hello& m) {
  Writer w(MessageType::kHello);
  w.U32(m.version);
  w.U8(m.ok ? 1 : 0);
  w.Str(m.message);
  w.U32(m.uid);
  return w.Take();
}

Result<Hello> DecodeHello(std::span<const std::uint8_t> payload) {
  Reader r(payload);
  SC_RETURN_IF_ERROR(ExpectType(r, MessageType::kHello, "hello"));
  Hello m;
  m.version = r.U32();
  m.ok = r.Bool();
  m.message = r.Str();
  m.uid = r.U32();
  if (!r.ok() || !r.AtEnd()) return Malformed("hello");
  return m;
}

Frame EncodeWaiting() {
  Writer w(MessageType::kWaiting);
  return w.Take();
}

Frame EncodePresence() {
  Writer w(MessageType::kPresence);
  return w.Take();
}

Result<MessageType> PeekType(std::span<const std::uint8_t> payload) {
  if (payload.empty()) return Malformed("empty message");
  return static_cast<MessageType>(payload[0]);
}

Result<ListRequest> DecodeListRequest(std::span<const std::uint8_t> payload) {
  Reader r(payload);
  SC_RETURN_IF_ERROR(ExpectType(r, MessageType::kListRequest, "list request"));
  ListRequest m;
  m.module = r.Str();
  m.token_uri = r.Str();
  m.pcsc_check = r.Bool();
  m.reader_glob = r.Str();
  m.wait_for_card = r.U32();
  if (!r.ok() || !r.AtEnd()) return Malformed("list request");
  return m;
}

Result<ListReply> DecodeListReply(std::span<const std::uint8_t> payload) {
  Reader r(payload);
  SC_RETURN_IF_ERROR(ExpectType(r, MessageType::kListReply, "list reply"));
  ListReply m;
  m.result = ReadResult(r);
  m.message = r.Str();
  std::uint32_t n = r.Count(kMaxIdentities);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    TokenIdentity t;
    t.id = r.U32();
    t.slot_description = r.Str();
    t.token_label = r.Str();
    t.token_serial = r.Str();
    t.token_model = r.Str();
    t.token_manufacturer = r.Str();
    t.token_flags = r.U32();
    t.min_pin = r.U32();
    t.max_pin = r.U32();
    t.cert_der = r.Vec(kMaxCertBytes);
    t.key_id = r.Vec(256);
    t.cert_label = r.Str();
    t.key_visible = r.Bool();
    t.always_authenticate = r.Bool();
    std::uint32_t mechs = r.Count(64);
    for (std::uint32_t k = 0; k < mechs && r.ok(); ++k) t.mechanisms.push_back(r.U64());
    m.identities.push_back(std::move(t));
  }
  std::uint32_t notes = r.Count(kMaxNotes);
  for (std::uint32_t i = 0; i < notes && r.ok(); ++i) m.notes.push_back(r.Str(kMaxNoteBytes));
  if (!r.ok() || !r.AtEnd()) return Malformed("list reply");
  return m;
}

Result<SignRequest> DecodeSignRequest(std::span<const std::uint8_t> payload) {
  Reader r(payload);
  SC_RETURN_IF_ERROR(ExpectType(r, MessageType::kSignRequest, "sign request"));
  SignRequest m;
  m.id = r.U32();
  m.protected_path = r.Bool();
  m.pin = r.Secret(kMaxPinBytes);
  m.mechanism = r.U64();
  m.data = r.Vec(4096);
  if (!r.ok() || !r.AtEnd()) return Malformed("sign request");
  return m;
}

Result<SignReply> DecodeSignReply(std::span<const std::uint8_t> payload) {
  Reader r(payload);
  SC_RETURN_IF_ERROR(ExpectType(r, MessageType::kSignReply, "sign reply"));
  SignReply m;
  m.result = ReadResult(r);
  m.message = r.Str();
  m.token_flags = r.U32();
  m.signature = r.Vec(4096);
  if (!r.ok() || !r.AtEnd()) return Malformed("sign reply");
  return m;
}

Result<PinRequest> DecodePinRequest(std::span<const std::uint8_t> payload) {
  Reader r(payload);
  SC_RETURN_IF_ERROR(ExpectType(r, MessageType::kPinRequest, "PIN request"));
  PinRequest m;
  m.id = r.U32();
  std::uint8_t operation = r.U8();
  if (operation != static_cast<std::uint8_t>(PinOperation::kVerify) &&
      operation != static_cast<std::uint8_t>(PinOperation::kChange)) {
    return Malformed("PIN request");
  }
  m.operation = static_cast<PinOperation>(operation);
  m.protected_path = r.Bool();
  m.pin = r.Secret(kMaxPinBytes);
  m.new_pin = r.Secret(kMaxPinBytes);
  if (!r.ok() || !r.AtEnd()) return Malformed("PIN request");
  return m;
}

Result<PinReply> DecodePinReply(std::span<const std::uint8_t> payload) {
  Reader r(payload);
  SC_RETURN_IF_ERROR(ExpectType(r, MessageType::kPinReply, "PIN reply"));
  PinReply m;
  m.result = ReadResult(r);
  m.message = r.Str();
  m.token_flags = r.U32();
  if (!r.ok() || !r.AtEnd()) return Malformed("PIN reply");
  return m;
}

}  // namespace sc::core
