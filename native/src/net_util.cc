#include <cstdlib>
#include <fcntl.h>
#include "net_util.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace tcplb {

int parseIpLiteral(const char* ip, int port, sockaddr_storage* out, socklen_t* outLen) {
  if (port < 0 || port > 65535) return EINVAL;
  memset(out, 0, sizeof *out);

  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *outLen = sizeof(sockaddr_in);
    return 0;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *outLen = sizeof(sockaddr_in6);
    return 0;
  }
  // Rare path: a scoped IPv6 literal ("fe80::1%eth0"). AI_NUMERICHOST keeps
  // getaddrinfo from ever touching DNS, so this never blocks.
  if (strchr(ip, '%') == nullptr) return EINVAL;
  addrinfo hints{};
  hints.ai_family = AF_INET6;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;
  addrinfo* res = nullptr;
  if (getaddrinfo(ip, nullptr, &hints, &res) != 0 || res == nullptr) return EINVAL;
  memcpy(out, res->ai_addr, res->ai_addrlen);
  *outLen = res->ai_addrlen;
  freeaddrinfo(res);
  v6->sin6_port = htons(static_cast<uint16_t>(port));
  return 0;
}

int formatIp(const sockaddr* sa, char* ip) {
  ip[0] = '\0';
  if (sa->sa_family == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &v4->sin_addr, ip, kIpStrLen);
    return ntohs(v4->sin_port);
  }
  if (sa->sa_family == AF_INET6) {
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &v6->sin6_addr, ip, kIpStrLen);
    return ntohs(v6->sin6_port);
  }
  return 0;
}

// Binds and listens one socket of the family of `addr`; -errno on failure.
static int bindAndListen(const sockaddr_storage& addr, socklen_t len, int backlog, bool dualStack) {
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // Accepted sockets inherit TCP_NODELAY from the listener (Linux clones the
  // listener's tcp_sock): one setsockopt here instead of one per client.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (dualStack) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) < 0 || listen(fd, backlog) < 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

static int boundPortOf(int fd) {
  sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  char ignored[kIpStrLen];
  return formatIp(reinterpret_cast<sockaddr*>(&bound), ignored);
}

// The address `host` names (see createListener); 0 or errno. *dualStack for "".
static int listenAddress(const char* host, int port, bool v6, sockaddr_storage* addr, socklen_t* len,
                         bool* dualStack) {
  if (host[0] == '\0') {
    parseIpLiteral(v6 ? "::" : "0.0.0.0", port, addr, len);
    *dualStack = v6;
    return 0;
  }
  int err = parseIpLiteral(host, port, addr, len);
  *dualStack = addr->ss_family == AF_INET6;
  return err;
}

int createListener(const char* host, int port, int backlog, int* boundPort) {
  int fd;
  int err = createListenerGroup(host, port, backlog, 1, &fd, boundPort);
  return err != 0 ? -err : fd;
}

int createListenerGroup(const char* host, int port, int backlog, int n, int* fds, int* boundPort) {
  if (port < 0 || port > 65535 || n < 1) return EINVAL;
  if (backlog <= 0) backlog = 511;  // Node's default

  sockaddr_storage addr;
  socklen_t len;
  bool dual;
  bool v6 = true;
  int err = listenAddress(host, port, v6, &addr, &len, &dual);
  if (err != 0) return err;
  int first = bindAndListen(addr, len, backlog, dual);
  if (first == -EAFNOSUPPORT && host[0] == '\0') {  // kernel without IPv6
    listenAddress(host, port, false, &addr, &len, &dual);
    first = bindAndListen(addr, len, backlog, dual);
  }
  if (first < 0) return -first;
  fds[0] = first;
  *boundPort = boundPortOf(first);
  // Every other thread gets a descriptor of the SAME socket (engine.cc
  // kListenEvents says why one socket rather than SO_REUSEPORT per thread).
  for (int i = 1; i < n; i++) {
    int fd = fcntl(first, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      int e = errno;
      for (int j = 0; j < i; j++) close(fds[j]);
      return e;
    }
    fds[i] = fd;
  }
  return 0;
}

void setNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void setResetOnClose(int fd) {
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

int socketError(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
  return err;
}

int bytesReadable(int fd) {
  int n = 0;
  if (ioctl(fd, FIONREAD, &n) < 0) return 0;
  return n;
}

int64_t monotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace tcplb
