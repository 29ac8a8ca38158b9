// Tests for the module <-> helper protocol (core/protocol.h). The module
// decodes what a possibly broken or hostile helper sends, so every malformed
// payload must be refused, never half-decoded and never read out of bounds.
#include "core/protocol.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/mechanisms.h"

namespace sc::core {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes ToBytes(const Frame& frame) { return Bytes(frame.begin(), frame.end()); }

// RawWriter builds payloads byte by byte, independently of the encoder, so
// tests can state the wire format and craft what the encoder never emits.
class RawWriter {
 public:
  RawWriter& U8(std::uint8_t v) {
    out_.push_back(v);
    return *this;
  }
  RawWriter& U32(std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out_.push_back(static_cast<std::uint8_t>(v >> shift));
    return *this;
  }
  RawWriter& U64(std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8)
      out_.push_back(static_cast<std::uint8_t>(v >> shift));
    return *this;
  }
  RawWriter& Str(const std::string& s) {
    U32(static_cast<std::uint32_t>(s.size()));
    out_.insert(out_.end(), s.begin(), s.end());
    return *this;
  }
  RawWriter& Vec(const Bytes& b) {
    U32(static_cast<std::uint32_t>(b.size()));
    out_.insert(out_.end(), b.begin(), b.end());
    return *this;
  }
  const Bytes& bytes() const { return out_; }

 private:
  Bytes out_;
};

// --- sample messages -----------------------------------------------------------

ListRequest SampleListRequest() {
  ListRequest m;
  m.module = "/usr/lib/softhsm/libsofthsm2.so";
  m.token_uri = "pkcs11:token=Test%20Token;serial=0123";
  m.pcsc_check = false;
  m.reader_glob = "Yubico*";
  m.wait_for_card = 0xdeadbeef;
  return m;
}

TokenIdentity SampleIdentity(std::uint32_t id) {
  TokenIdentity t;
  t.id = id;
  t.slot_description = "Yubico YubiKey OTP+FIDO+CCID 00 00";
  t.token_label = "PIV Card " + std::to_string(id);
  t.token_serial = "00c0ffee";
  t.token_model = "YubiKey 5";
  t.token_manufacturer = "Yubico (www.yubico.com)";
  t.token_flags = 0x8000040d;
  t.min_pin = 6;
  t.max_pin = 8;
  t.cert_der = {0x30, 0x82, 0x01, 0x00, 0xff, 0x00, 0x7f};
  t.key_id = {0x01, 0x02};
  t.cert_label = "Certificate for PIV Authentication";
  t.key_visible = true;
  t.always_authenticate = (id % 2) == 1;
  t.mechanisms = {kMechRsaPkcs, kMechRsaPkcsPss, kMechEcdsa, 0xffffffffffffffffull};
  return t;
}

ListReply SampleListReply() {
  ListReply m;
  m.result = HelperResult::kNoToken;
  m.message = "no token in slot 3";
  m.identities = {SampleIdentity(1), SampleIdentity(2)};
  m.identities[1].mechanisms.clear();
  m.identities[1].key_id.clear();
  m.notes = {"slot 0: ok", "", "slot 3: C_GetTokenInfo failed"};
  return m;
}

SignRequest SampleSignRequest() {
  SignRequest m;
  m.id = 0x01020304;
  m.protected_path = true;
  const char pin[] = {'1', '2', '\0', '4', '\xff', 'x'};
  m.pin.Assign(pin, sizeof pin);
  m.mechanism = 0x8000000000001234ull;
  m.data = Bytes(51, 0xa5);
  return m;
}

SignReply SampleSignReply() {
  SignReply m;
  m.result = HelperResult::kPinIncorrect;
  m.message = "CKR_PIN_INCORRECT";
  m.token_flags = 0x00010000;
  m.signature = Bytes(256, 0x5a);
  return m;
}

PinRequest SamplePinRequest() {
  PinRequest m;
  m.id = 0x0a0b0c0d;
  m.operation = PinOperation::kChange;
  m.protected_path = false;
  m.pin.Assign("123456", 6);
  const char fresh[] = {'6', '5', '\0', '3', '\xfe'};
  m.new_pin.Assign(fresh, sizeof fresh);
  return m;
}

PinReply SamplePinReply() {
  PinReply m;
  m.result = HelperResult::kPinLenRange;
  m.message = "C_SetPIN: CKR_PIN_LEN_RANGE";
  m.token_flags = 0x00020000;
  return m;
}

Hello SampleHello() {
  Hello m;
  m.ok = false;
  m.message = "helper_user 'scard': no such user";
  m.uid = 65534;
  return m;
}

void ExpectIdentityEq(const TokenIdentity& a, const TokenIdentity& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.slot_description, b.slot_description);
  EXPECT_EQ(a.token_label, b.token_label);
  EXPECT_EQ(a.token_serial, b.token_serial);
  EXPECT_EQ(a.token_model, b.token_model);
  EXPECT_EQ(a.token_manufacturer, b.token_manufacturer);
  EXPECT_EQ(a.token_flags, b.token_flags);
  EXPECT_EQ(a.min_pin, b.min_pin);
  EXPECT_EQ(a.max_pin, b.max_pin);
  EXPECT_EQ(a.cert_der, b.cert_der);
  EXPECT_EQ(a.key_id, b.key_id);
  EXPECT_EQ(a.cert_label, b.cert_label);
  EXPECT_EQ(a.key_visible, b.key_visible);
  EXPECT_EQ(a.always_authenticate, b.always_authenticate);
  EXPECT_EQ(a.mechanisms, b.mechanisms);
}

// A decoder under test, erased to "does this payload decode?".
struct Decoder {
  const char* name;
  MessageType type;
  std::function<bool(std::span<const std::uint8_t>)> decodes;
};

std::vector<Decoder> AllDecoders() {
  return {
      {"ListRequest", MessageType::kListRequest,
       [](std::span<const std::uint8_t> p) { return DecodeListRequest(p).ok(); }},
      {"ListReply", MessageType::kListReply,
       [](std::span<const std::uint8_t> p) { return DecodeListReply(p).ok(); }},
      {"SignRequest", MessageType::kSignRequest,
       [](std::span<const std::uint8_t> p) { return DecodeSignRequest(p).ok(); }},
      {"SignReply", MessageType::kSignReply,
       [](std::span<const std::uint8_t> p) { return DecodeSignReply(p).ok(); }},
      {"FetchRequest", MessageType::kFetchRequest,
       [](std::span<const std::uint8_t> p) { return DecodeFetchRequest(p).ok(); }},
      {"FetchReply", MessageType::kFetchReply,
       [](std::span<const std::uint8_t> p) { return DecodeFetchReply(p).ok(); }},
      {"DirectoryRequest", MessageType::kDirectoryRequest,
       [](std::span<const std::uint8_t> p) { return DecodeDirectoryRequest(p).ok(); }},
      {"DirectoryReply", MessageType::kDirectoryReply,
       [](std::span<const std::uint8_t> p) { return DecodeDirectoryReply(p).ok(); }},
      {"PinRequest", MessageType::kPinRequest,
       [](std::span<const std::uint8_t> p) { return DecodePinRequest(p).ok(); }},
      {"PinReply", MessageType::kPinReply,
       [](std::span<const std::uint8_t> p) { return DecodePinReply(p).ok(); }},
      {"Hello", MessageType::kHello, [](std::span<const std::uint8_t> p) { return DecodeHello(p).ok(); }},
  };
}

DirectoryRequest SampleDirectoryRequest() {
  DirectoryRequest m;
  m.uris = "ldap://127.0.0.1:18389/ ldaps://ldap.example.test/";
  m.base = "dc=example,dc=test";
  m.bind_dn = "cn=reader,dc=example,dc=test";
  m.bind_password.Assign("readersecret", 12);
  m.starttls = true;
  m.tls_ca_file = "/etc/ssl/ldap-ca.pem";
  m.filter = "(&(objectClass=posixAccount)(altSecurityIdentities=Kerberos:carol@EXAMPLE.TEST))";
  m.attribute = "uid";
  m.timeout_seconds = 5;
  m.size_limit = 2;
  return m;
}

DirectoryReply SampleDirectoryReply() {
  DirectoryReply m;
  m.ok = true;
  m.truncated = false;
  m.entries = {{"uid=carol,ou=people,dc=example,dc=test", {"carol"}}, {"uid=x,dc=example,dc=test", {}}};
  return m;
}

FetchRequest SampleFetchRequest() {
  FetchRequest m;
  m.url = "http://127.0.0.1:18888/";
  m.content_type = "application/ocsp-request";
  m.body = {0x30, 0x03, 0x02, 0x01, 0x05};
  m.timeout_seconds = 7;
  return m;
}

FetchReply SampleFetchReply() {
  FetchReply m;
  m.ok = true;
  m.message = "";
  m.body = {0x30, 0x03, 0x0a, 0x01, 0x00};
  return m;
}

// SampleEncoding returns a valid encoding of the decoder's message type.
Bytes SampleEncoding(MessageType type) {
  switch (type) {
    case MessageType::kListRequest:
      return ToBytes(Encode(SampleListRequest()));
    case MessageType::kListReply:
      return ToBytes(Encode(SampleListReply()));
    case MessageType::kSignRequest:
      return ToBytes(Encode(SampleSignRequest()));
    case MessageType::kSignReply:
      return ToBytes(Encode(SampleSignReply()));
    case MessageType::kWaiting:
      return ToBytes(EncodeWaiting());
    case MessageType::kPresence:
      return ToBytes(EncodePresence());
    case MessageType::kFetchRequest:
      return ToBytes(Encode(SampleFetchRequest()));
    case MessageType::kFetchReply:
      return ToBytes(Encode(SampleFetchReply()));
    case MessageType::kDirectoryRequest:
      return ToBytes(Encode(SampleDirectoryRequest()));
    case MessageType::kDirectoryReply:
      return ToBytes(Encode(SampleDirectoryReply()));
    case MessageType::kPinRequest:
      return ToBytes(Encode(SamplePinRequest()));
    case MessageType::kPinReply:
      return ToBytes(Encode(SamplePinReply()));
    case MessageType::kHello:
      return ToBytes(Encode(SampleHello()));
  }
  return {};
}

// --- wire format -----------------------------------------------------------------

TEST(ProtocolDirectoryTest, RequestRoundTrip) {
  DirectoryRequest m = SampleDirectoryRequest();
  auto d = DecodeDirectoryRequest(ToBytes(Encode(m)));
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->uris, m.uris);
  EXPECT_EQ(d->base, m.base);
  EXPECT_EQ(d->bind_dn, m.bind_dn);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d->bind_password.data()), d->bind_password.size()),
            "readersecret");
  EXPECT_TRUE(d->starttls);
  EXPECT_EQ(d->tls_ca_file, "/etc/ssl/ldap-ca.pem");
  EXPECT_EQ(d->filter, m.filter);
  EXPECT_EQ(d->attribute, "uid");
  EXPECT_EQ(d->timeout_seconds, 5u);
  EXPECT_EQ(d->size_limit, 2u);
}

TEST(ProtocolDirectoryTest, ReplyRoundTripAndBounds) {
  DirectoryReply m = SampleDirectoryReply();
  auto d = DecodeDirectoryReply(ToBytes(Encode(m)));
  ASSERT_TRUE(d.ok()) << d.status().message();
  ASSERT_EQ(d->entries.size(), 2u);
  EXPECT_EQ(d->entries[0].dn, m.entries[0].dn);
  EXPECT_EQ(d->entries[0].values, std::vector<std::string>{"carol"});
  EXPECT_TRUE(d->entries[1].values.empty());
  // Beyond the bounds: refused, never cut.
  DirectoryReply many;
  many.ok = true;
  many.entries.resize(kMaxDirectoryEntries + 1);
  EXPECT_FALSE(DecodeDirectoryReply(ToBytes(Encode(many))).ok());
  DirectoryReply values;
  values.ok = true;
  values.entries = {{"dn", std::vector<std::string>(kMaxDirectoryValues + 1, "v")}};
  EXPECT_FALSE(DecodeDirectoryReply(ToBytes(Encode(values))).ok());
  DirectoryReply long_value;
  long_value.ok = true;
  long_value.entries = {{"dn", {std::string(kMaxDirectoryValueBytes + 1, 'a')}}};
  EXPECT_FALSE(DecodeDirectoryReply(ToBytes(Encode(long_value))).ok());
  DirectoryRequest too_many = SampleDirectoryRequest();
  too_many.size_limit = kMaxDirectoryEntries + 1;
  EXPECT_FALSE(DecodeDirectoryRequest(ToBytes(Encode(too_many))).ok());
}

TEST(ProtocolWireTest, ListRequestLayout) {
  ListRequest m = SampleListRequest();
  Bytes want = RawWriter()
                   .U8(1)
                   .Str(m.module)
                   .Str(m.token_uri)
                   .U8(0)
                   .Str(m.reader_glob)
                   .U32(0xdeadbeef)
                   .bytes();
  EXPECT_EQ(ToBytes(Encode(m)), want);
}

TEST(ProtocolWireTest, SignRequestLayout) {
  SignRequest m = SampleSignRequest();
  Bytes pin(m.pin.data(), m.pin.data() + m.pin.size());
  Bytes want = RawWriter()
                   .U8(3)
                   .U32(0x01020304)
                   .U8(1)
                   .Vec(pin)
                   .U64(0x8000000000001234ull)
                   .Vec(m.data)
                   .bytes();
  EXPECT_EQ(ToBytes(Encode(m)), want);
}

TEST(ProtocolWireTest, SignReplyLayout) {
  SignReply m = SampleSignReply();
  Bytes want = RawWriter().U8(4).U32(6).Str(m.message).U32(0x00010000).Vec(m.signature).bytes();
  EXPECT_EQ(ToBytes(Encode(m)), want);
}

TEST(ProtocolWireTest, HelloRoundTripsAndCarriesTheVersion) {
  Hello m = SampleHello();
  Bytes wire = ToBytes(Encode(m));
  ASSERT_GE(wire.size(), 5u);
  EXPECT_EQ(wire[0], 12);
  EXPECT_EQ((Bytes{wire[1], wire[2], wire[3], wire[4]}), (Bytes{0, 0, 0, kProtocolVersion}));
  auto back = DecodeHello(wire);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->version, kProtocolVersion);
  EXPECT_FALSE(back->ok);
  EXPECT_EQ(back->message, m.message);
  EXPECT_EQ(back->uid, 65534u);
}

TEST(ProtocolWireTest, PresenceIsOneByte) {
  EXPECT_EQ(ToBytes(EncodePresence()), Bytes{13});
  auto type = PeekType(EncodePresence());
  ASSERT_TRUE(type.ok());
  EXPECT_EQ(*type, MessageType::kPresence);
}

TEST(ProtocolWireTest, WaitingIsOneByte) {
  EXPECT_EQ(ToBytes(EncodeWaiting()), Bytes{5});
  Frame w = EncodeWaiting();
  auto type = PeekType(w);
  ASSERT_TRUE(type.ok());
  EXPECT_EQ(*type, MessageType::kWaiting);
}

// --- round trips ---------------------------------------------------------------

TEST(ProtocolRoundTripTest, ListRequest) {
  ListRequest in = SampleListRequest();
  Frame f = Encode(in);
  auto out = DecodeListRequest(f);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->module, in.module);
  EXPECT_EQ(out->token_uri, in.token_uri);
  EXPECT_EQ(out->pcsc_check, in.pcsc_check);
  EXPECT_EQ(out->reader_glob, in.reader_glob);
  EXPECT_EQ(out->wait_for_card, in.wait_for_card);
}

TEST(ProtocolRoundTripTest, DefaultListRequest) {
  ListRequest in;
  in.token_uri.clear();
  Frame f = Encode(in);
  auto out = DecodeListRequest(f);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->module, "");
  EXPECT_EQ(out->token_uri, "");
  EXPECT_TRUE(out->pcsc_check);
  EXPECT_EQ(out->reader_glob, "*");
  EXPECT_EQ(out->wait_for_card, 0u);
}

TEST(ProtocolRoundTripTest, ListReplyWithAllFields) {
  ListReply in = SampleListReply();
  Frame f = Encode(in);
  auto out = DecodeListReply(f);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->result, in.result);
  EXPECT_EQ(out->message, in.message);
  ASSERT_EQ(out->identities.size(), 2u);
  ExpectIdentityEq(out->identities[0], in.identities[0]);
  ExpectIdentityEq(out->identities[1], in.identities[1]);
  EXPECT_EQ(out->notes, in.notes);
}

TEST(ProtocolRoundTripTest, EmptyListReply) {
  ListReply in;
  Frame f = Encode(in);
  EXPECT_EQ(ToBytes(f), RawWriter().U8(2).U32(0).Str("").U32(0).U32(0).bytes());
  auto out = DecodeListReply(f);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->result, HelperResult::kOk);
  EXPECT_TRUE(out->identities.empty());
  EXPECT_TRUE(out->notes.empty());
}

TEST(ProtocolRoundTripTest, SignRequestCarriesThePin) {
  SignRequest in = SampleSignRequest();
  Frame f = Encode(in);
  auto out = DecodeSignRequest(f);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->id, in.id);
  EXPECT_EQ(out->protected_path, in.protected_path);
  ASSERT_EQ(out->pin.size(), in.pin.size());
  EXPECT_EQ(std::memcmp(out->pin.data(), in.pin.data(), in.pin.size()), 0);
  EXPECT_TRUE(out->pin.Contains('\0'));
  EXPECT_EQ(out->mechanism, in.mechanism);
  EXPECT_EQ(out->data, in.data);
}

TEST(ProtocolRoundTripTest, SignRequestWithEmptyPin) {
  SignRequest in;
  in.id = 7;
  in.protected_path = true;
  in.mechanism = kMechEcdsa;
  in.data = Bytes(32, 1);
  Frame f = Encode(in);
  auto out = DecodeSignRequest(f);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->pin.empty());
  EXPECT_TRUE(out->protected_path);
}

TEST(ProtocolRoundTripTest, SignReply) {
  SignReply in = SampleSignReply();
  Frame f = Encode(in);
  auto out = DecodeSignReply(f);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->result, in.result);
  EXPECT_EQ(out->message, in.message);
  EXPECT_EQ(out->token_flags, in.token_flags);
  EXPECT_EQ(out->signature, in.signature);
}

TEST(ProtocolRoundTripTest, EveryKnownResultCode) {
  for (std::uint32_t code = 0; code <= kMaxHelperResult; ++code) {
    SignReply sr;
    sr.result = static_cast<HelperResult>(code);
    Frame f1 = Encode(sr);
    auto out1 = DecodeSignReply(f1);
    ASSERT_TRUE(out1.ok());
    EXPECT_EQ(static_cast<std::uint32_t>(out1->result), code);

    ListReply lr;
    lr.result = static_cast<HelperResult>(code);
    Frame f2 = Encode(lr);
    auto out2 = DecodeListReply(f2);
    ASSERT_TRUE(out2.ok());
    EXPECT_EQ(static_cast<std::uint32_t>(out2->result), code);
  }
}

TEST(ProtocolRoundTripTest, LimitsAreInclusive) {
  ListRequest lq;
  lq.module = std::string(4096, 'm');
  Frame f1 = Encode(lq);
  EXPECT_TRUE(DecodeListRequest(f1).ok());

  ListReply lr;
  for (std::uint32_t i = 0; i < kMaxIdentities; ++i) lr.identities.push_back(SampleIdentity(i));
  lr.identities[0].cert_der = Bytes(kMaxCertBytes, 0x30);
  lr.identities[0].key_id = Bytes(256, 1);
  lr.identities[0].mechanisms = std::vector<std::uint64_t>(64, kMechEcdsa);
  lr.notes = std::vector<std::string>(256, "note");
  Frame f2 = Encode(lr);
  auto out = DecodeListReply(f2);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->identities.size(), kMaxIdentities);
  EXPECT_EQ(out->identities[0].cert_der.size(), kMaxCertBytes);

  SignRequest sq;
  Bytes pin(kMaxPinBytes, '9');
  sq.pin.Assign(pin.data(), pin.size());
  sq.data = Bytes(4096, 2);
  Frame f3 = Encode(sq);
  EXPECT_TRUE(DecodeSignRequest(f3).ok());

  SignReply sr;
  sr.signature = Bytes(4096, 3);
  sr.message = std::string(4096, 'e');
  Frame f4 = Encode(sr);
  EXPECT_TRUE(DecodeSignReply(f4).ok());
}

// --- PeekType ------------------------------------------------------------------

TEST(PeekTypeTest, EveryMessage) {
  for (const Decoder& d : AllDecoders()) {
    Bytes payload = SampleEncoding(d.type);
    auto type = PeekType(payload);
    ASSERT_TRUE(type.ok()) << d.name;
    EXPECT_EQ(*type, d.type) << d.name;
  }
}

TEST(PeekTypeTest, EmptyPayloadIsAnError) {
  auto type = PeekType(std::span<const std::uint8_t>());
  EXPECT_FALSE(type.ok());
  EXPECT_EQ(type.status().code(), Code::kInternal);
}

// --- malformed payloads --------------------------------------------------------

TEST(ProtocolMalformedTest, TruncationAtEveryOffsetIsRefused) {
  for (const Decoder& d : AllDecoders()) {
    Bytes full = SampleEncoding(d.type);
    ASSERT_TRUE(d.decodes(full)) << d.name;
    for (std::size_t len = 0; len < full.size(); ++len) {
      // A copy of exactly len bytes, so ASan catches any read past the end.
      Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
      EXPECT_FALSE(d.decodes(cut)) << d.name << " truncated to " << len;
    }
  }
}

TEST(ProtocolMalformedTest, TrailingBytesAreRefused) {
  for (const Decoder& d : AllDecoders()) {
    for (std::uint8_t extra : Bytes{0x00, 0x01, 0xff}) {
      Bytes payload = SampleEncoding(d.type);
      payload.push_back(extra);
      EXPECT_FALSE(d.decodes(payload)) << d.name;
    }
    Bytes payload = SampleEncoding(d.type);
    payload.insert(payload.end(), 64, 0);
    EXPECT_FALSE(d.decodes(payload)) << d.name;
  }
}

TEST(ProtocolMalformedTest, WrongTypeByteIsRefused) {
  for (const Decoder& d : AllDecoders()) {
    Bytes payload = SampleEncoding(d.type);
    for (int type = 0; type < 256; ++type) {
      if (type == static_cast<int>(d.type)) continue;
      payload[0] = static_cast<std::uint8_t>(type);
      EXPECT_FALSE(d.decodes(payload)) << d.name << " with type " << type;
    }
  }
}

TEST(ProtocolMalformedTest, OtherMessagesAreRefused) {
  for (const Decoder& d : AllDecoders()) {
    for (MessageType other :
         {MessageType::kListRequest, MessageType::kListReply, MessageType::kSignRequest,
          MessageType::kSignReply, MessageType::kWaiting}) {
      if (other == d.type) continue;
      EXPECT_FALSE(d.decodes(SampleEncoding(other)))
          << d.name << " given type " << static_cast<int>(other);
    }
  }
}

TEST(ProtocolMalformedTest, OversizedStringsAreRefused) {
  ListRequest lq;
  lq.module = std::string(4097, 'm');
  EXPECT_FALSE(DecodeListRequest(Encode(lq)).ok());
  lq = ListRequest();
  lq.reader_glob = std::string(5000, '*');
  EXPECT_FALSE(DecodeListRequest(Encode(lq)).ok());

  SignReply sr;
  sr.message = std::string(4097, 'e');
  EXPECT_FALSE(DecodeSignReply(Encode(sr)).ok());

  // (Encode cuts long notes: this one is written by hand.)
  EXPECT_FALSE(DecodeListReply(RawWriter().U8(2).U32(0).Str("").U32(0).U32(1).Str(std::string(4097, 'n')).bytes())
                   .ok());
  ListReply lr;
  lr.identities = {SampleIdentity(0)};
  lr.identities[0].token_label = std::string(4097, 'l');
  EXPECT_FALSE(DecodeListReply(Encode(lr)).ok());
}

TEST(ProtocolMalformedTest, OversizedByteFieldsAreRefused) {
  ListReply lr;
  lr.identities = {SampleIdentity(0)};
  lr.identities[0].cert_der = Bytes(kMaxCertBytes + 1, 0x30);
  EXPECT_FALSE(DecodeListReply(Encode(lr)).ok());
  lr.identities[0] = SampleIdentity(0);
  lr.identities[0].key_id = Bytes(257, 1);
  EXPECT_FALSE(DecodeListReply(Encode(lr)).ok());

  SignRequest sq;
  Bytes pin(kMaxPinBytes + 1, '9');
  sq.pin.Assign(pin.data(), pin.size());
  EXPECT_FALSE(DecodeSignRequest(Encode(sq)).ok());
  sq.pin.Wipe();
  sq.data = Bytes(4097, 2);
  EXPECT_FALSE(DecodeSignRequest(Encode(sq)).ok());

  SignReply sr;
  sr.signature = Bytes(4097, 3);
  EXPECT_FALSE(DecodeSignReply(Encode(sr)).ok());
}

TEST(ProtocolMalformedTest, OversizedCountsAreRefused) {
  ListReply lr;
  for (std::uint32_t i = 0; i <= kMaxIdentities; ++i) lr.identities.push_back(SampleIdentity(i));
  EXPECT_FALSE(DecodeListReply(Encode(lr)).ok());

  lr = ListReply();
  lr.identities = {SampleIdentity(0)};
  lr.identities[0].mechanisms = std::vector<std::uint64_t>(65, kMechEcdsa);
  EXPECT_FALSE(DecodeListReply(Encode(lr)).ok());

  // (Encode caps the notes: these are written by hand.)
  RawWriter notes;
  notes.U8(2).U32(0).Str("").U32(0).U32(kMaxNotes + 1);
  for (std::uint32_t i = 0; i <= kMaxNotes; ++i) notes.Str("n");
  EXPECT_FALSE(DecodeListReply(notes.bytes()).ok());
}

// Finding 5: a card with hundreds of objects that each earn a note (5 tokens
// of 54 key-less certificates) made every list reply undecodable, good
// identities included. Encode keeps the first notes and says how many more.
TEST(ProtocolRoundTripTest, EncodeCapsNotesSoTheReplyStillDecodes) {
  ListReply lr;
  lr.identities = {SampleIdentity(0)};
  for (int i = 0; i < 270; ++i) lr.notes.push_back("note " + std::to_string(i));
  lr.notes[3] = std::string(kMaxNoteBytes - 1, 'n') + "\xc3\xa9";  // the cut falls inside the last character
  auto out = DecodeListReply(Encode(lr));
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->identities.size(), 1u);
  ASSERT_EQ(out->notes.size(), kMaxNotes);
  EXPECT_EQ(out->notes[3], std::string(kMaxNoteBytes - 1, 'n'));
  EXPECT_EQ(out->notes[kMaxNotes - 2], "note 254");
  EXPECT_EQ(out->notes.back(), "... 15 more notes");

  // Exactly kMaxNotes still go as they are.
  lr.notes.resize(kMaxNotes);
  out = DecodeListReply(Encode(lr));
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->notes.back(), "note 255");
}

TEST(ProtocolMalformedTest, HugeLengthsAndCountsWithoutDataAreRefused) {
  for (std::uint32_t n : {0x00010000u, 0x7fffffffu, 0x80000000u, 0xffffffffu}) {
    // Identity count.
    Bytes a = RawWriter().U8(2).U32(0).Str("").U32(n).U32(0).bytes();
    EXPECT_FALSE(DecodeListReply(a).ok()) << n;
    // Notes count.
    Bytes b = RawWriter().U8(2).U32(0).Str("").U32(0).U32(n).bytes();
    EXPECT_FALSE(DecodeListReply(b).ok()) << n;
    // String length.
    Bytes c = RawWriter().U8(1).U32(n).bytes();
    EXPECT_FALSE(DecodeListRequest(c).ok()) << n;
    // PIN length.
    Bytes d = RawWriter().U8(3).U32(1).U8(0).U32(n).bytes();
    EXPECT_FALSE(DecodeSignRequest(d).ok()) << n;
    // Signature length.
    Bytes e = RawWriter().U8(4).U32(0).Str("").U32(0).U32(n).bytes();
    EXPECT_FALSE(DecodeSignReply(e).ok()) << n;
  }
}

TEST(ProtocolMalformedTest, LengthLongerThanRemainingDataIsRefused) {
  // Claims 10 bytes of module name but carries 9 (and the rest is missing).
  Bytes a = RawWriter().U8(1).U32(10).bytes();
  a.insert(a.end(), 9, 'x');
  EXPECT_FALSE(DecodeListRequest(a).ok());
  // Signature claims 3 bytes, carries 2.
  Bytes b = RawWriter().U8(4).U32(0).Str("").U32(0).U32(3).U8(1).U8(2).bytes();
  EXPECT_FALSE(DecodeSignReply(b).ok());
}

TEST(ProtocolMalformedTest, UnknownResultCodesAreNeverOk) {
  for (std::uint32_t code : {kMaxHelperResult + 1, 16u, 17u, 255u, 0x100u, 0x10000u, 0x01000000u,
                             0x80000000u, 0xffffff00u, 0xffffffffu}) {
    Bytes sr = RawWriter().U8(4).U32(code).Str("hi").U32(0).Vec({1, 2, 3}).bytes();
    auto s = DecodeSignReply(sr);
    ASSERT_TRUE(s.ok()) << code;
    EXPECT_EQ(s->result, HelperResult::kInternal) << code;
    EXPECT_NE(s->result, HelperResult::kOk) << code;

    Bytes lr = RawWriter().U8(2).U32(code).Str("").U32(0).U32(0).bytes();
    auto l = DecodeListReply(lr);
    ASSERT_TRUE(l.ok()) << code;
    EXPECT_EQ(l->result, HelperResult::kInternal) << code;
  }
}

TEST(ProtocolMalformedTest, BoolBytesOtherThanZeroOrOneAreRefused) {
  auto list_request = [](std::uint8_t b) {
    return RawWriter().U8(1).Str("p11-kit").Str("").U8(b).Str("*").U32(0).bytes();
  };
  auto sign_request = [](std::uint8_t b) {
    return RawWriter().U8(3).U32(1).U8(b).Vec({'1', '2'}).U64(kMechRsaPkcs).Vec({7}).bytes();
  };
  // key_visible (which = 0) or always_authenticate (which = 1) set to b.
  auto list_reply = [](int which, std::uint8_t b) {
    RawWriter w;
    w.U8(2).U32(0).Str("").U32(1);
    w.U32(1).Str("slot").Str("label").Str("serial").Str("model").Str("maker");
    w.U32(0).U32(4).U32(8).Vec({0x30}).Vec({1}).Str("cert");
    w.U8(which == 0 ? b : 0).U8(which == 1 ? b : 0);
    w.U32(1).U64(kMechRsaPkcs);
    w.U32(0);
    return w.bytes();
  };
  for (std::uint8_t ok : Bytes{0, 1}) {
    EXPECT_TRUE(DecodeListRequest(list_request(ok)).ok());
    EXPECT_TRUE(DecodeSignRequest(sign_request(ok)).ok());
    EXPECT_TRUE(DecodeListReply(list_reply(0, ok)).ok());
    EXPECT_TRUE(DecodeListReply(list_reply(1, ok)).ok());
  }
  for (std::uint8_t bad : Bytes{2, 3, 0x10, 0x80, 0xfe, 0xff}) {
    EXPECT_FALSE(DecodeListRequest(list_request(bad)).ok()) << int{bad};
    EXPECT_FALSE(DecodeSignRequest(sign_request(bad)).ok()) << int{bad};
    EXPECT_FALSE(DecodeListReply(list_reply(0, bad)).ok()) << int{bad};
    EXPECT_FALSE(DecodeListReply(list_reply(1, bad)).ok()) << int{bad};
  }
}

TEST(ProtocolMalformedTest, SingleByteMutationsNeverCrashAndStayCanonical) {
  // Every byte of every sample set to a few values: decoding must not crash,
  // and anything accepted must be exactly what the encoder would produce
  // (apart from unknown result codes, which decode as kInternal).
  for (const Decoder& d : AllDecoders()) {
    const Bytes full = SampleEncoding(d.type);
    for (std::size_t at = 0; at < full.size(); ++at) {
      for (std::uint8_t v : Bytes{0x00, 0x01, 0x02, 0x7f, 0x80, 0xff}) {
        Bytes m = full;
        m[at] = v;
        Bytes again;
        bool unknown_result = false;
        switch (d.type) {
          case MessageType::kListRequest:
            if (auto r = DecodeListRequest(m); r.ok()) again = ToBytes(Encode(*r));
            break;
          case MessageType::kListReply:
            if (auto r = DecodeListReply(m); r.ok()) {
              again = ToBytes(Encode(*r));
              unknown_result = r->result == HelperResult::kInternal;
            }
            break;
          case MessageType::kSignRequest:
            if (auto r = DecodeSignRequest(m); r.ok()) again = ToBytes(Encode(*r));
            break;
          case MessageType::kSignReply:
            if (auto r = DecodeSignReply(m); r.ok()) {
              again = ToBytes(Encode(*r));
              unknown_result = r->result == HelperResult::kInternal;
            }
            break;
          case MessageType::kWaiting:
          case MessageType::kPresence:
            break;
          case MessageType::kHello:
            if (auto r = DecodeHello(m); r.ok()) again = ToBytes(Encode(*r));
            break;
          case MessageType::kFetchRequest:
            if (auto r = DecodeFetchRequest(m); r.ok()) again = ToBytes(Encode(*r));
            break;
          case MessageType::kFetchReply:
            if (auto r = DecodeFetchReply(m); r.ok()) again = ToBytes(Encode(*r));
            break;
          case MessageType::kDirectoryRequest:
            if (auto r = DecodeDirectoryRequest(m); r.ok()) again = ToBytes(Encode(*r));
            break;
          case MessageType::kDirectoryReply:
            if (auto r = DecodeDirectoryReply(m); r.ok()) again = ToBytes(Encode(*r));
            break;
          case MessageType::kPinRequest:
            if (auto r = DecodePinRequest(m); r.ok()) again = ToBytes(Encode(*r));
            break;
          case MessageType::kPinReply:
            if (auto r = DecodePinReply(m); r.ok()) {
              again = ToBytes(Encode(*r));
              unknown_result = r->result == HelperResult::kInternal;
            }
            break;
        }
        if (again.empty() || unknown_result) continue;
        EXPECT_EQ(again, m) << d.name << " byte " << at << " = " << int{v};
      }
    }
  }
}

TEST(ProtocolPinTest, RoundTrip) {
  PinRequest m = SamplePinRequest();
  auto d = DecodePinRequest(ToBytes(Encode(m)));
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->id, m.id);
  EXPECT_EQ(d->operation, PinOperation::kChange);
  EXPECT_FALSE(d->protected_path);
  EXPECT_EQ(Bytes(d->pin.data(), d->pin.data() + d->pin.size()), Bytes(m.pin.data(), m.pin.data() + m.pin.size()));
  EXPECT_EQ(Bytes(d->new_pin.data(), d->new_pin.data() + d->new_pin.size()),
            Bytes(m.new_pin.data(), m.new_pin.data() + m.new_pin.size()));
  PinReply r = SamplePinReply();
  auto e = DecodePinReply(ToBytes(Encode(r)));
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->result, HelperResult::kPinLenRange);
  EXPECT_EQ(e->message, r.message);
  EXPECT_EQ(e->token_flags, r.token_flags);
}

TEST(ProtocolPinTest, UnknownOperationAndLongPinsAreRefused) {
  Bytes good = ToBytes(Encode(SamplePinRequest()));
  for (std::uint8_t op : Bytes{0x00, 0x03, 0xff}) {
    Bytes bad = good;
    bad[5] = op;  // type, u32 id, then the operation
    EXPECT_FALSE(DecodePinRequest(bad).ok()) << int{op};
  }
  PinRequest m = SamplePinRequest();
  std::string long_pin(kMaxPinBytes + 1, '7');
  m.new_pin.Assign(long_pin.data(), long_pin.size());
  EXPECT_FALSE(DecodePinRequest(ToBytes(Encode(m))).ok());
}

TEST(HelperResultNameTest, EveryCodeHasAName) {
  for (std::uint32_t code = 0; code <= kMaxHelperResult; ++code) {
    EXPECT_FALSE(HelperResultName(static_cast<HelperResult>(code)).empty()) << code;
  }
  EXPECT_EQ(HelperResultName(HelperResult::kOk), "ok");
  EXPECT_EQ(HelperResultName(HelperResult::kPinLocked), "PIN locked");
  EXPECT_EQ(HelperResultName(static_cast<HelperResult>(99)), "internal error");
}

}  // namespace
}  // namespace sc::core
