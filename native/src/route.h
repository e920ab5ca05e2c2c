// The routing fast path's policy data: one RouteTable per listener, pushed by
// TypeScript with setRoute(), and the backend pick that must give the same
// answer as src/proxy/select.ts + src/balancers/*. Pure code: no syscalls, no
// N-API; the engine thread owns every table and the per-backend counters.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace tcplb {

enum class Algo : uint8_t { ROUND_ROBIN, LEAST_CONN, IP_HASH };

struct RouteBackend {
  int32_t key = -1;  // the TS side's stable number for a BackendId
  sockaddr_storage addr{};
  socklen_t addrLen = 0;
  uint32_t weight = 1;
  uint32_t maxConns = 0;  // 0 = none
  bool backup = false;
  bool usable = true;
  uint32_t idHash = 0;  // hashString32(backendId, 0x9747b28c), for ip_hash
  // The open-connection counter of `key` (BackendCounters, shared by every
  // engine thread); set when the table is installed on a thread.
  std::atomic<int32_t>* active = nullptr;
  // Smooth weighted round-robin slot (nginx's current_weight), see swrrPick.
  int64_t current = 0;
  uint64_t seen = 0;  // the pick tick this backend was last a candidate
};

struct RouteTable {
  Algo algo = Algo::ROUND_ROBIN;
  uint32_t connectTimeoutMs = 0;
  uint32_t idleMs = 0;
  uint32_t maxConnections = 0;  // 0 = none
  // The PROXY header to send first: 0 none, 1 v1, 2 v2 (with the TLS fields).
  // Only a TLS listener's table may ask for one (tls.cc builds it after the
  // handshake); plain listeners that send a header keep the JS round trip.
  uint8_t proxyProtocol = 0;
  std::vector<RouteBackend> backends;
  uint64_t tick = 0;  // smooth WRR picks so far
};

// Carries the balancer state (rotation slots, tick) over from the table being
// replaced, by backend key, when the algorithm is unchanged (as Router.set
// keeps a balancer unless the algorithm changed).
void inheritBalancerState(RouteTable& next, const RouteTable& prev);

// Index into t.backends of the backend for a client at `clientIp` (the
// address as the ACCEPT event prints it), or -1 when none is usable. Counts
// are read through RouteBackend::active. Advances the rotation state.
int pickBackend(RouteTable& t, const char* clientIp);

// The fast path's whole decision for one client: -1 (JS decides) when the
// listener is over maxConnections (`listenerOpen` counts this client), no
// backend is usable, or another thread filled the picked backend since the
// pick (the slot is taken atomically, so maxConns is never overshot);
// otherwise the index of the backend, its open count already taken.
int takeBackend(RouteTable& t, const char* clientIp, int64_t listenerOpen);

// ---- the ip_hash primitives, bit-exact ports of src/balancers/ip-hash.ts ----

uint32_t hashString32(const char* s, size_t n, uint32_t seed);
// `::ffff:1.2.3.4` -> `1.2.3.4`; anything else unchanged. Returns the start
// and sets *len.
const char* normalizeClientIp(const char* ip, size_t* len);
// The weighted-rendezvous pick over parallel arrays (tests use it directly).
int ipHashPick(const char* clientIp, const uint32_t* idHashes, const uint32_t* weights, int n);
// fdlibm's log, as V8's Math.log computes it (glibc's log differs by one ulp
// for a few percent of inputs, which could flip a pick on a near-tie).
double jsLog(double x);

}  // namespace tcplb
