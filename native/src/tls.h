// TLS termination in the relay threads (listeners[].tls): server-side TLS
// over the accepted client socket with the OpenSSL that Node itself ships
// (statically linked into the node binary, symbols exported; headers come
// with node-gyp), so the addon links no libssl of its own.
//
// A TlsContext is one listener's certificates and options, built on the JS
// thread by setTls() and immutable afterwards: every relay thread's socket of
// the listener and every handshake begun under it share it (shared_ptr). A
// certificate swap builds a new one; handshakes already begun and sessions
// already established keep theirs (an SSL holds references to its SSL_CTXs).
//
// The engine-side half (handshake, TLS reads and writes in the relay, the
// handshake deadline) is Engine member functions defined in tls.cc; engine.cc
// only calls them at a few hooks.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "net_util.h"

namespace tcplb {

struct TlsCertInput {
  std::string certPem;  // leaf first, then any chain
  std::string keyPem;
  std::vector<std::string> names;  // lower-case DNS names, "*.x" for one-label wildcards
};

struct TlsSettings {
  std::vector<TlsCertInput> certs;  // the first is the default
  int minVersion = TLS1_2_VERSION;
  std::vector<std::string> alpn;  // server preference order; empty = no ALPN
  bool strictSni = false;
  uint32_t handshakeTimeoutMs = 10000;
  std::string ciphers;       // TLS <= 1.2 cipher list ('' = OpenSSL's default)
  std::string ciphersuites;  // TLS 1.3 suites ('' = OpenSSL's default)
};

class TlsContext {
 public:
  // nullptr and `*err` set when a certificate, key or option is refused.
  static std::shared_ptr<TlsContext> build(const TlsSettings& s, std::string* err);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // SSL_new() takes the default certificate's context; the SNI callback
  // switches to another certificate's.
  SSL_CTX* initial() const { return certs_[0].ctx; }
  // The context whose names cover `host` (exact first, then a one-label
  // wildcard, in config order); nullptr when none does.
  SSL_CTX* match(const char* host) const;
  bool strictSni() const { return strictSni_; }
  uint32_t handshakeTimeoutMs() const { return handshakeTimeoutMs_; }
  const std::string& alpnWire() const { return alpnWire_; }

 private:
  TlsContext() = default;
  struct Cert {
    SSL_CTX* ctx = nullptr;
    std::vector<std::string> names;
  };
  std::vector<Cert> certs_;
  std::string alpnWire_;  // length-prefixed, as ALPN sends it
  bool strictSni_ = false;
  uint32_t handshakeTimeoutMs_ = 10000;
};

// TLS_FAILED `what` codes (API.md).
enum TlsFailure : int8_t {
  TLS_FAIL_TIMEOUT = 1,    // no complete handshake within handshakeTimeoutMs
  TLS_FAIL_CLOSED = 2,     // the client closed (FIN) mid-handshake
  TLS_FAIL_ERROR = 3,      // `code`: ECONNRESET & co, or ERR_SSL_<OpenSSL reason> as Node names it
  TLS_FAIL_STRICT_SNI = 4, // strictSni and no certificate covers the SNI name (or none was sent)
};

// The TLS state of a client socket (Side::tls), from accept to close.
struct TlsConn {
  SSL* ssl = nullptr;
  std::shared_ptr<TlsContext> ctx;  // kept for the SNI/ALPN callbacks' argument
  int64_t deadline = 0;             // handshake deadline (engine clock)
  bool established = false;
  bool sniRefused = false;     // set by the SNI callback (strictSni)
  bool hsWantsWrite = false;   // the handshake waits for room to write (else to read)
  bool readWantsWrite = false; // SSL_read needs the socket writable (a KeyUpdate reply)
  bool sentShutdown = false;   // close_notify sent
  int readErr = 0;             // an error met after bytes were gathered: the next read's result
  // The ACCEPT event's addresses, for the fast path (ip_hash, the PROXY header).
  char clientIp[kIpStrLen] = {};
  char localIp[kIpStrLen] = {};
  int clientPort = 0;
  int localPort = 0;
};

// The PROXY header (version 1 or 2, v2 with the TLS fields) a TLS
// listener's fast path sends first, byte for byte as
// src/core/proxy-header.ts's buildProxyHeader(version, endpoints, session).
std::string proxyHeader(int version, const TlsConn& t, const std::string& tlsVersion, const std::string& cipher,
                        const std::string& sni, const std::string& alpn);

}  // namespace tcplb
