// Small socket helpers shared by the engine thread and the N-API glue.
// Everything here is a thin, allocation-free wrapper over the syscalls.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>

namespace tcplb {

// Longest string formatIp() can produce ("ffff:...:255.255.255.255" + NUL).
constexpr int kIpStrLen = INET6_ADDRSTRLEN;

// Parses an IPv4 or IPv6 literal (IPv6 may carry a %scope) into `out`.
// Returns 0 or a positive errno (EINVAL for anything that is not a literal).
int parseIpLiteral(const char* ip, int port, sockaddr_storage* out, socklen_t* outLen);

// Writes the address in inet_ntop form (IPv4-mapped v6 stays `::ffff:a.b.c.d`,
// as Node prints it) and returns the port. `ip` must hold kIpStrLen bytes.
int formatIp(const sockaddr* sa, char* ip);

// Creates a listening socket (non-blocking, CLOEXEC, SO_REUSEADDR,
// TCP_NODELAY - which accepted sockets inherit). `host` ""
// means all interfaces, dual stack ("::" with IPV6_V6ONLY=0, falling back to
// 0.0.0.0 when the kernel has no IPv6). Returns the fd, or -errno; the bound
// port goes to *boundPort.
int createListener(const char* host, int port, int backlog, int* boundPort);

// One listening socket on the address for `n` engine threads, as `n`
// descriptors of it (n == 1 is createListener): each thread polls its own
// descriptor, EPOLLEXCLUSIVE, so a new client wakes one waiting thread.
// Fills fds[0..n) and *boundPort; returns 0 or errno (nothing left open).
int createListenerGroup(const char* host, int port, int backlog, int n, int* fds, int* boundPort);

void setNoDelay(int fd);

// SO_LINGER {1, 0}: the close() that follows sends RST instead of FIN.
void setResetOnClose(int fd);

// Pending socket error (SO_ERROR), 0 if none.
int socketError(int fd);

// Bytes waiting in the receive queue (FIONREAD), 0 on error.
int bytesReadable(int fd);

// Monotonic milliseconds (vDSO clock, cheap enough to call once per loop turn).
int64_t monotonicMs();

}  // namespace tcplb
