// TLS termination in the relay threads: contexts (built on the JS thread by
// setTls) and the engine-thread half (handshake, reads, writes, close_notify,
// the handshake deadline). See tls.h and ../API.md ("TLS listeners").
//
// I/O model: the client socket stays registered edge-triggered for
// everything (engine.cc's kConnEvents), so every readiness edge re-drives
// whatever OpenSSL is waiting for. OpenSSL reads records exactly (no
// read-ahead), so bytes it has not asked for stay in the kernel and keep
// their edge; SSL_write is all-or-nothing (no partial-write mode) with
// moving buffers accepted, so the relay's pending buffer can be retried
// with the same bytes after WANT_WRITE.
#include "tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>

#include "engine.h"

namespace tcplb {

namespace {

constexpr unsigned char kSessionIdContext[] = "tcplb";

// A key with a passphrase is refused at config load; never prompt on a terminal.
int noPassphrase(char*, int, int, void*) {
  return 0;
}

std::string lastSslError(const char* what) {
  unsigned long e = ERR_peek_last_error();
  std::string out = what;
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += ": ";
    out += buf;
  }
  ERR_clear_error();
  return out;
}

// Node's name for an OpenSSL error: ERR_SSL_ + the reason, upper-case with
// underscores ("wrong version number" -> ERR_SSL_WRONG_VERSION_NUMBER), so
// the JS side classifies native and JS handshake failures alike.
std::string nodeCode(unsigned long e) {
  const char* reason = ERR_reason_error_string(e);
  if (reason == nullptr) return "ERR_SSL_" + std::to_string(ERR_GET_REASON(e));
  std::string out = "ERR_SSL_";
  for (const char* p = reason; *p != '\0'; p++) {
    out += (*p == ' ' || *p == '-') ? '_' : static_cast<char>(toupper(static_cast<unsigned char>(*p)));
  }
  return out;
}

// The name a client asked for, matched as src/proxy/tls-front.ts does.
bool wildcardCovers(const std::string& pattern, const std::string& host) {
  if (pattern.size() < 3 || pattern[0] != '*' || pattern[1] != '.') return false;
  std::string h = host;
  if (!h.empty() && h.back() == '.') h.pop_back();
  size_t dot = h.find('.');
  return dot != std::string::npos && dot > 0 && h.compare(dot + 1, std::string::npos, pattern, 2, std::string::npos) == 0;
}

int sniCallback(SSL* ssl, int* alert, void* arg) {
  auto* ctx = static_cast<TlsContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  SSL_CTX* m = name != nullptr ? ctx->match(name) : nullptr;
  if (m != nullptr) {
    if (m != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, m);
    return SSL_TLSEXT_ERR_OK;
  }
  if (!ctx->strictSni()) return SSL_TLSEXT_ERR_OK;  // the default certificate
  auto* t = static_cast<TlsConn*>(SSL_get_ex_data(ssl, 0));
  if (t != nullptr) t->sniRefused = true;
  *alert = SSL_AD_UNRECOGNIZED_NAME;
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// The server's list decides, as Node's ALPNProtocols does; no protocol in
// common fails the handshake (no_application_protocol), also as Node does.
int alpnCallback(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                 unsigned int inlen, void* arg) {
  auto* ctx = static_cast<TlsContext*>(arg);
  const std::string& wire = ctx->alpnWire();
  unsigned char* sel = nullptr;
  unsigned char selLen = 0;
  if (SSL_select_next_proto(&sel, &selLen, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned int>(wire.size()), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = sel;
  *outlen = selLen;
  return SSL_TLSEXT_ERR_OK;
}

SSL_CTX* newContext(const TlsSettings& s, const TlsCertInput& c, TlsContext* owner, std::string* err) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    *err = lastSslError("SSL_CTX_new");
    return nullptr;
  }
  auto fail = [&](const char* what) -> SSL_CTX* {
    *err = lastSslError(what);
    SSL_CTX_free(ctx);
    return nullptr;
  };
  SSL_CTX_set_min_proto_version(ctx, s.minVersion);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
  // RELEASE_BUFFERS: an idle session holds no record buffers (~34 KiB each).
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  // Resumption: session tickets (TLS 1.2 and 1.3) and the server session cache.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
  if (!s.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, s.ciphers.c_str()) != 1) return fail("ciphers");
  if (!s.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, s.ciphersuites.c_str()) != 1) return fail("ciphersuites");

  BIO* bio = BIO_new_mem_buf(c.certPem.data(), static_cast<int>(c.certPem.size()));
  if (bio == nullptr) return fail("certificate");
  X509* leaf = PEM_read_bio_X509_AUX(bio, nullptr, noPassphrase, nullptr);
  if (leaf == nullptr || SSL_CTX_use_certificate(ctx, leaf) != 1) {
    X509_free(leaf);
    BIO_free(bio);
    return fail("certificate");
  }
  X509_free(leaf);
  for (;;) {
    X509* ca = PEM_read_bio_X509(bio, nullptr, noPassphrase, nullptr);
    if (ca == nullptr) break;
    if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {  // takes ownership on success
      X509_free(ca);
      BIO_free(bio);
      return fail("certificate chain");
    }
  }
  ERR_clear_error();  // the end of the PEM stream
  BIO_free(bio);

  bio = BIO_new_mem_buf(c.keyPem.data(), static_cast<int>(c.keyPem.size()));
  if (bio == nullptr) return fail("key");
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, noPassphrase, nullptr);
  BIO_free(bio);
  if (key == nullptr) return fail("key");
  if (SSL_CTX_use_PrivateKey(ctx, key) != 1) {
    EVP_PKEY_free(key);
    return fail("key does not match the certificate");
  }
  EVP_PKEY_free(key);
  if (SSL_CTX_check_private_key(ctx) != 1) return fail("key does not match the certificate");

  SSL_CTX_set_tlsext_servername_callback(ctx, sniCallback);
  SSL_CTX_set_tlsext_servername_arg(ctx, owner);
  if (!owner->alpnWire().empty()) SSL_CTX_set_alpn_select_cb(ctx, alpnCallback, owner);
  return ctx;
}

bool isAscii(const char* p) {
  for (; *p != '\0'; p++) {
    if (static_cast<unsigned char>(*p) >= 0x80) return false;
  }
  return true;
}

// ---- the PROXY header, byte for byte as src/core/proxy-header.ts builds it ----

const unsigned char kV2Signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

// `::ffff:1.2.3.4` -> `1.2.3.4` (plain()), and the family with the address
// bytes: 4, 6, or 0 for anything else.
int ipFamily(const char* ip, const char** plain, unsigned char* bytes) {
  *plain = ip;
  if (strncmp(ip, "::ffff:", 7) == 0 && inet_pton(AF_INET, ip + 7, bytes) == 1) {
    *plain = ip + 7;
    return 4;
  }
  if (inet_pton(AF_INET, ip, bytes) == 1) return 4;
  if (inet_pton(AF_INET6, ip, bytes) == 1) return 6;
  return 0;
}

void putTlv(std::string& out, unsigned char type, const std::string& value) {
  out += static_cast<char>(type);
  out += static_cast<char>((value.size() >> 8) & 0xff);
  out += static_cast<char>(value.size() & 0xff);
  out += value;
}

// tlsTlvs(): ALPN (mail protocols only: FORWARDED_ALPN), AUTHORITY (the SNI
// name, 255 bytes at most), SSL (PP2_CLIENT_SSL, verify 0, VERSION, CIPHER).
std::string tlsTlvs(const std::string& version, const std::string& cipher, const std::string& sni, const std::string& alpn) {
  std::string out;
  if (alpn == "imap" || alpn == "pop3" || alpn == "submission") putTlv(out, 0x01, alpn);
  if (!sni.empty()) putTlv(out, 0x02, sni.substr(0, 255));
  std::string ssl("\x01\0\0\0\0", 5);
  if (!version.empty()) putTlv(ssl, 0x21, version);
  if (!cipher.empty()) putTlv(ssl, 0x23, cipher);
  putTlv(out, 0x20, ssl);
  return out;
}

}  // namespace

std::string proxyHeader(int version, const TlsConn& t, const std::string& tlsVersion, const std::string& cipher,
                        const std::string& sni, const std::string& alpn) {
  unsigned char src[16], dst[16];
  const char* srcIp;
  const char* dstIp;
  int fs = ipFamily(t.clientIp, &srcIp, src);
  int fd = ipFamily(t.localIp, &dstIp, dst);
  int fam = fs == fd ? fs : 0;
  if (version == 1) {
    if (fam == 0) return "PROXY UNKNOWN\r\n";
    return std::string("PROXY TCP") + (fam == 4 ? "4 " : "6 ") + srcIp + " " + dstIp + " " + std::to_string(t.clientPort) +
           " " + std::to_string(t.localPort) + "\r\n";
  }
  std::string out(reinterpret_cast<const char*>(kV2Signature), sizeof kV2Signature);
  if (fam == 0) return out + std::string("\x20\0\0\0", 4);
  size_t addrLen = fam == 4 ? 12 : 36;
  std::string tlvs = tlsTlvs(tlsVersion, cipher, sni, alpn);
  size_t len = addrLen + tlvs.size();
  out += '\x21';
  out += fam == 4 ? '\x11' : '\x21';
  out += static_cast<char>((len >> 8) & 0xff);
  out += static_cast<char>(len & 0xff);
  size_t n = fam == 4 ? 4 : 16;
  out.append(reinterpret_cast<const char*>(src), n);
  out.append(reinterpret_cast<const char*>(dst), n);
  out += static_cast<char>((t.clientPort >> 8) & 0xff);
  out += static_cast<char>(t.clientPort & 0xff);
  out += static_cast<char>((t.localPort >> 8) & 0xff);
  out += static_cast<char>(t.localPort & 0xff);
  return out + tlvs;
}

namespace {

uint32_t tickFor(uint32_t timeoutMs) {
  return std::clamp<uint32_t>(timeoutMs / 4, 10, 250);  // as engine.cc's granularity()
}

}  // namespace

// ============================================================================
// TlsContext (JS thread)
// ============================================================================

std::shared_ptr<TlsContext> TlsContext::build(const TlsSettings& s, std::string* err) {
  if (s.certs.empty()) {
    *err = "no certificate";
    return nullptr;
  }
  std::shared_ptr<TlsContext> t(new TlsContext());
  t->strictSni_ = s.strictSni;
  t->handshakeTimeoutMs_ = s.handshakeTimeoutMs;
  for (const std::string& p : s.alpn) {
    if (p.empty() || p.size() > 255) {
      *err = "an ALPN protocol must be 1 to 255 bytes";
      return nullptr;
    }
    t->alpnWire_ += static_cast<char>(p.size());
    t->alpnWire_ += p;
  }
  ERR_clear_error();
  for (const TlsCertInput& c : s.certs) {
    SSL_CTX* ctx = newContext(s, c, t.get(), err);
    if (ctx == nullptr) return nullptr;  // ~TlsContext frees the ones made
    Cert cert;
    cert.ctx = ctx;
    cert.names = c.names;
    t->certs_.push_back(std::move(cert));
  }
  return t;
}

TlsContext::~TlsContext() {
  // An SSL still open holds its own references: this only drops ours.
  for (Cert& c : certs_) SSL_CTX_free(c.ctx);
}

SSL_CTX* TlsContext::match(const char* name) const {
  std::string host(name);
  for (char& ch : host) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
  for (const Cert& c : certs_) {
    if (std::find(c.names.begin(), c.names.end(), host) != c.names.end()) return c.ctx;
  }
  for (const Cert& c : certs_) {
    for (const std::string& n : c.names) {
      if (wildcardCovers(n, host)) return c.ctx;
    }
  }
  return nullptr;
}

// ============================================================================
// Engine thread
// ============================================================================

// A client accepted on a TLS listener (after its ACCEPT event): the
// handshake starts at once, under the listener's current context.
void Engine::tlsStart(Conn* c, Listener* l, const Event& accepted) {
  auto* t = new TlsConn();
  t->ctx = l->tls;
  memcpy(t->clientIp, accepted.clientIp, sizeof t->clientIp);
  memcpy(t->localIp, accepted.localIp, sizeof t->localIp);
  t->clientPort = accepted.clientPort;
  t->localPort = accepted.localPort;
  ERR_clear_error();
  t->ssl = SSL_new(t->ctx->initial());
  if (t->ssl == nullptr || SSL_set_fd(t->ssl, c->client.fd) != 1) {
    std::string code = nodeCode(ERR_peek_last_error());
    ERR_clear_error();
    if (t->ssl != nullptr) SSL_free(t->ssl);
    delete t;
    return tlsFail(c, TLS_FAIL_ERROR, 0, code.c_str());
  }
  SSL_set_ex_data(t->ssl, 0, t);
  SSL_set_accept_state(t->ssl);
  c->client.tls = t;
  uint32_t ms = t->ctx->handshakeTimeoutMs();
  t->deadline = now_ + ms;
  noteTimeout(ms);
  tlsHandshake(c);
}

// Every readiness edge of the client socket while the handshake runs.
void Engine::tlsHandshake(Conn* c) {
  TlsConn* t = c->client.tls;
  ERR_clear_error();
  int r = SSL_do_handshake(t->ssl);
  int saved = errno;
  if (r == 1) {
    t->established = true;
    // Application data may already be queued behind the Finished message.
    c->client.canRead = true;
    // The routing fast path, as adoptClient's for a plain listener: with the
    // listener's table the backend is picked and dialled here, and TLS_READY
    // names it (JS then only records it); else (-1) JS dials after TLS_READY.
    const char* sni = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
    const unsigned char* alpn = nullptr;
    unsigned int alpnLen = 0;
    SSL_get0_alpn_selected(t->ssl, &alpn, &alpnLen);
    Listener* l = c->listener;
    RouteTable* rt = l != nullptr ? l->route.get() : nullptr;
    // A name that is not ASCII would not reach the backend byte for byte as
    // JS writes it (it gets the name as a JS string): JS builds that header.
    if (rt != nullptr && rt->proxyProtocol != 0 && sni != nullptr && !isAscii(sni)) rt = nullptr;
    int pick = rt != nullptr ? takeBackend(*rt, t->clientIp, l->shared->open.load(std::memory_order_relaxed)) : -1;
    Event& e = emit(EV_TLS_READY);
    e.connId = c->id;
    e.how = SSL_session_reused(t->ssl) ? 1 : 0;
    e.backendKey = pick >= 0 ? rt->backends[pick].key : -1;
    std::string& s = e.text;
    s = SSL_get_version(t->ssl);
    s += '\0';
    s += SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl));
    s += '\0';
    if (sni != nullptr) s += sni;
    s += '\0';
    if (alpn != nullptr) s.append(reinterpret_cast<const char*>(alpn), alpnLen);
    if (pick < 0) return;
    if (rt->proxyProtocol != 0) {
      // The first pending chunk of the upstream direction, as cmdConnect's preamble.
      std::string h = proxyHeader(rt->proxyProtocol, *t, SSL_get_version(t->ssl),
                                  SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl)), sni != nullptr ? sni : "",
                                  std::string(reinterpret_cast<const char*>(alpn != nullptr ? alpn : reinterpret_cast<const unsigned char*>("")), alpnLen));
      c->up.pending.reset(new char[h.size()]);
      memcpy(c->up.pending.get(), h.data(), h.size());
      c->up.pendingOff = 0;
      c->up.pendingLen = static_cast<uint32_t>(h.size());
    }
    const RouteBackend& b = rt->backends[pick];
    c->idleMs = rt->idleMs;
    c->connectTimeoutMs = rt->connectTimeoutMs;
    dial(c, b.addr, b.addrLen, b.active);  // may emit: `e` is not used after this
    return;
  }
  switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
      c->client.canRead = false;
      t->hsWantsWrite = false;
      return;
    case SSL_ERROR_WANT_WRITE:
      c->client.canWrite = false;
      t->hsWantsWrite = true;
      return;
    case SSL_ERROR_ZERO_RETURN:
      return tlsFail(c, TLS_FAIL_CLOSED, 0, "");
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0 && saved == 0) return tlsFail(c, TLS_FAIL_CLOSED, 0, "");
      if (saved != 0) return tlsFail(c, TLS_FAIL_ERROR, saved, "");
      break;
    default:
      break;
  }
  if (t->sniRefused) return tlsFail(c, TLS_FAIL_STRICT_SNI, 0, "");
  unsigned long e = ERR_peek_error();
  ERR_clear_error();
  if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return tlsFail(c, TLS_FAIL_CLOSED, 0, "");
  std::string code = nodeCode(e);
  tlsFail(c, TLS_FAIL_ERROR, 0, code.c_str());
}

void Engine::tlsFail(Conn* c, int what, int err, const char* code) {
  Event& e = emit(EV_TLS_FAILED);
  e.connId = c->id;
  e.how = static_cast<int8_t>(what);
  e.err = err;
  e.text = code;
  finish(c, HOW_TLS_FAILED, err, SIDE_CLIENT);
}

// onSideEvent's hook for a TLS client; true when the event was the handshake's.
bool Engine::tlsOnEvent(Conn* c, Side* s, uint32_t ev) {
  TlsConn* t = s->tls;
  if (!t->established) {
    // "Writable" alone cannot move a handshake that waits to read (the
    // socket's first edge after accept, or the ACK of our flight): skip the
    // state machine and its EAGAIN read. Readable bytes would be in `ev` too.
    if ((ev & ~static_cast<uint32_t>(EPOLLOUT)) == 0 && !t->hsWantsWrite) return true;
    tlsHandshake(c);
    return true;
  }
  if (t->readWantsWrite && (ev & EPOLLOUT)) {
    t->readWantsWrite = false;
    s->canRead = true;
  }
  return false;
}

// recv() for the relay: plaintext; 0 at close_notify or FIN; -1 with errno.
// One SSL_read returns one record (16 KiB at most): records are gathered
// until the buffer is full or the socket is drained, so the backend gets one
// send() per scratch buffer as with plain TCP. What stopped the loop after
// some bytes is met again by the next call: EAGAIN and EOF by OpenSSL
// itself, an error from `readErr` (a reset reads as EOF the second time).
ssize_t Engine::tlsRead(Side* s, char* buf, size_t len) {
  TlsConn* t = s->tls;
  if (t->readErr != 0) {
    errno = t->readErr;
    return -1;
  }
  size_t got = 0;
  int n;
  for (;;) {
    ERR_clear_error();
    n = SSL_read(t->ssl, buf + got, static_cast<int>(std::min<size_t>(len - got, INT_MAX)));
    if (n <= 0) break;
    got += static_cast<size_t>(n);
    if (got == len) return static_cast<ssize_t>(got);
  }
  if (got > 0) {
    int saved = errno;
    switch (SSL_get_error(t->ssl, n)) {
      case SSL_ERROR_WANT_WRITE:
        t->readWantsWrite = true;
        break;
      case SSL_ERROR_SYSCALL:
        if (saved != 0 || ERR_peek_error() != 0) t->readErr = saved != 0 ? saved : EPROTO;
        break;
      case SSL_ERROR_SSL:
        t->readErr = EPROTO;
        break;
      default:  // WANT_READ, ZERO_RETURN: the next SSL_read says the same
        break;
    }
    ERR_clear_error();
    return static_cast<ssize_t>(got);
  }
  int saved = errno;
  switch (SSL_get_error(t->ssl, n)) {
    case SSL_ERROR_ZERO_RETURN:
      return 0;
    case SSL_ERROR_WANT_READ:
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_WANT_WRITE:  // retried on the socket's next EPOLLOUT (tlsOnEvent)
      t->readWantsWrite = true;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_SYSCALL:
      if (saved == 0 && ERR_peek_error() == 0) return 0;
      ERR_clear_error();
      errno = saved != 0 ? saved : EPROTO;
      return -1;
    default:
      ERR_clear_error();
      errno = EPROTO;
      return -1;
  }
}

// send() for the relay: all of `len` or -1 (EAGAIN: retry with the same bytes).
ssize_t Engine::tlsWrite(Side* s, const char* buf, size_t len) {
  TlsConn* t = s->tls;
  ERR_clear_error();
  int n = SSL_write(t->ssl, buf, static_cast<int>(std::min<size_t>(len, INT_MAX)));
  if (n > 0) return n;
  int saved = errno;
  switch (SSL_get_error(t->ssl, n)) {
    case SSL_ERROR_WANT_WRITE:
    case SSL_ERROR_WANT_READ:  // renegotiation is off: not after the handshake
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_SYSCALL:
      ERR_clear_error();
      errno = saved != 0 ? saved : EPIPE;
      return -1;
    default:
      ERR_clear_error();
      errno = EPROTO;
      return -1;
  }
}

// Before the FIN to a TLS client: close_notify, best effort (as Node's end()).
void Engine::tlsShutdownWrite(Side* s) {
  TlsConn* t = s->tls;
  if (t->sentShutdown || !t->established) return;
  t->sentShutdown = true;
  ERR_clear_error();
  SSL_shutdown(t->ssl);
  ERR_clear_error();
}

void Engine::tlsFree(Side& s) {
  SSL_free(s.tls->ssl);  // the socket BIO does not close the fd
  delete s.tls;
  s.tls = nullptr;
}

// sweep()'s hook: 0 = not handshaking, 1 = handshaking (deadline ahead), 2 = timed out now.
int Engine::tlsSweep(Conn* c, uint32_t* tick) {
  TlsConn* t = c->client.tls;
  if (t == nullptr || t->established) return 0;
  if (now_ >= t->deadline) {
    tlsFail(c, TLS_FAIL_TIMEOUT, 0, "");
    return 2;
  }
  *tick = std::min(*tick, tickFor(t->ctx->handshakeTimeoutMs()));
  return 1;
}

}  // namespace tcplb
