#include "route.h"

#include <strings.h>

#include <cstring>
#include <unordered_map>

namespace tcplb {

namespace {

constexpr uint32_t C1 = 0xcc9e2d51u;
constexpr uint32_t C2 = 0x1b873593u;
constexpr double kTwoPow32 = 4294967296.0;

inline uint32_t rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

inline uint32_t mixBlock(uint32_t h, uint32_t k) {
  k *= C1;
  k = rotl(k, 15);
  k *= C2;
  h ^= k;
  h = rotl(h, 13);
  return h * 5u + 0xe6546b64u;
}

inline int64_t activeOf(const RouteBackend& b) {
  return b.active != nullptr ? b.active->load(std::memory_order_relaxed) : 0;
}

// Smooth weighted round-robin over t.backends[cand[0..n)], exactly as
// SmoothWeighted.pick in src/balancers/round-robin.ts: add each weight to its
// `current`, the highest `current` wins (the first on a tie), the winner gives
// back the total. SmoothWeighted forgets an id that was a candidate neither in
// this pick nor in the previous one; here that is done lazily: a slot whose
// last pick as a candidate is older than that starts again from 0.
int swrrPick(RouteTable& t, const int* cand, int n) {
  uint64_t tick = ++t.tick;
  int64_t total = 0;
  int best = -1;
  for (int i = 0; i < n; i++) {
    RouteBackend& b = t.backends[cand[i]];
    if (b.seen + 2 < tick) b.current = 0;
    b.seen = tick;
    b.current += b.weight;
    total += b.weight;
    if (best < 0 || b.current > t.backends[best].current) best = cand[i];
  }
  t.backends[best].current -= total;
  return best;
}

// LeastConnBalancer.pick: lowest active/weight by cross-multiplication; ties
// rotate by smooth WRR among the tied only.
int leastConnPick(RouteTable& t, int* cand, int n) {
  int best = cand[0];
  int tied = 1;
  for (int i = 1; i < n; i++) {
    const RouteBackend& c = t.backends[cand[i]];
    const RouteBackend& b = t.backends[best];
    int64_t lhs = activeOf(c) * static_cast<int64_t>(b.weight);
    int64_t rhs = activeOf(b) * static_cast<int64_t>(c.weight);
    if (lhs < rhs) {
      best = cand[i];
      tied = 1;
    } else if (lhs == rhs) {
      tied++;
    }
  }
  if (tied == 1) return best;
  const RouteBackend& b = t.backends[best];
  int m = 0;
  for (int i = 0; i < n; i++) {  // in place: cand is scratch
    const RouteBackend& c = t.backends[cand[i]];
    if (activeOf(c) * static_cast<int64_t>(b.weight) == activeOf(b) * static_cast<int64_t>(c.weight)) {
      cand[m++] = cand[i];
    }
  }
  return swrrPick(t, cand, m);
}

}  // namespace

uint32_t hashString32(const char* s, size_t n, uint32_t seed) {
  // The TS version hashes UTF-16 code units, two per block; addresses and
  // backend ids are ASCII, so a byte is a code unit.
  uint32_t h = seed;
  size_t i = 0;
  for (; i + 1 < n; i += 2) {
    uint32_t k = static_cast<uint8_t>(s[i]) | (static_cast<uint32_t>(static_cast<uint8_t>(s[i + 1])) << 16);
    h = mixBlock(h, k);
  }
  if (i < n) h = mixBlock(h, static_cast<uint8_t>(s[i]));
  return fmix32(h ^ static_cast<uint32_t>(n));
}

const char* normalizeClientIp(const char* ip, size_t* len) {
  size_t n = strlen(ip);
  *len = n;
  if (n > 7 && ip[0] == ':' && strchr(ip, '.') != nullptr && strncasecmp(ip, "::ffff:", 7) == 0) {
    *len = n - 7;
    return ip + 7;
  }
  return ip;
}

int ipHashPick(const char* clientIp, const uint32_t* idHashes, const uint32_t* weights, int n) {
  if (n <= 0) return -1;
  if (n == 1) return 0;
  size_t len;
  const char* ip = normalizeClientIp(clientIp, &len);
  uint32_t ipHash = hashString32(ip, len, 0);
  int best = -1;
  double bestScore = 0;
  for (int i = 0; i < n; i++) {
    uint32_t h = fmix32(mixBlock(idHashes[i], ipHash));
    double u = (static_cast<double>(h) + 0.5) / kTwoPow32;
    double score = -static_cast<double>(weights[i]) / jsLog(u);
    // TS breaks an exact tie by backend id; a tie needs two equal idHashes
    // (2^-32 per pair), and then the earlier backend in the table wins here.
    if (best < 0 || score > bestScore) {
      best = i;
      bestScore = score;
    }
  }
  return best;
}

void inheritBalancerState(RouteTable& next, const RouteTable& prev) {
  if (next.algo != prev.algo) return;
  next.tick = prev.tick;
  std::unordered_map<int32_t, const RouteBackend*> old;
  for (const RouteBackend& b : prev.backends) old.emplace(b.key, &b);
  for (RouteBackend& b : next.backends) {
    auto it = old.find(b.key);
    if (it == old.end()) continue;
    b.current = it->second->current;
    b.seen = it->second->seen;
  }
}

int pickBackend(RouteTable& t, const char* clientIp) {
  // select.ts: usable, below maxConns, primaries before backups.
  const int n = static_cast<int>(t.backends.size());
  int stackBuf[64];
  std::vector<int> heapBuf;
  int* cand = stackBuf;
  if (n > 64) {
    heapBuf.resize(n);
    cand = heapBuf.data();
  }
  int m = 0;
  for (int pass = 0; pass < 2 && m == 0; pass++) {
    bool wantBackup = pass == 1;
    for (int i = 0; i < n; i++) {
      const RouteBackend& b = t.backends[i];
      if (!b.usable || b.backup != wantBackup) continue;
      if (b.maxConns > 0 && activeOf(b) >= b.maxConns) continue;
      cand[m++] = i;
    }
  }
  if (m == 0) return -1;
  switch (t.algo) {
    case Algo::ROUND_ROBIN:
      return swrrPick(t, cand, m);
    case Algo::LEAST_CONN:
      return leastConnPick(t, cand, m);
    case Algo::IP_HASH: {
      if (m == 1) return cand[0];
      uint32_t hashBuf[64], weightBuf[64];
      std::vector<uint32_t> hv, wv;
      uint32_t* hs = hashBuf;
      uint32_t* ws = weightBuf;
      if (m > 64) {
        hv.resize(m);
        wv.resize(m);
        hs = hv.data();
        ws = wv.data();
      }
      for (int i = 0; i < m; i++) {
        hs[i] = t.backends[cand[i]].idHash;
        ws[i] = t.backends[cand[i]].weight;
      }
      return cand[ipHashPick(clientIp, hs, ws, m)];
    }
  }
  return -1;
}

int takeBackend(RouteTable& t, const char* clientIp, int64_t listenerOpen) {
  if (t.maxConnections > 0 && listenerOpen > static_cast<int64_t>(t.maxConnections)) return -1;
  int pick = pickBackend(t, clientIp);
  if (pick < 0) return -1;
  const RouteBackend& b = t.backends[pick];
  int32_t before = b.active->fetch_add(1, std::memory_order_relaxed);
  if (b.maxConns > 0 && before >= static_cast<int32_t>(b.maxConns)) {
    b.active->fetch_sub(1, std::memory_order_relaxed);
    return -1;
  }
  return pick;
}

// ---- fdlibm __ieee754_log (FreeBSD e_log.c), as V8's base::ieee754::log ----
// Kept operation for operation: any reordering changes the last bit. Build
// flags must not contract a*b+c into an FMA (-ffp-contract=off in binding.gyp).

double jsLog(double x) {
  static const double ln2_hi = 6.93147180369123816490e-01; /* 3fe62e42 fee00000 */
  static const double ln2_lo = 1.90821492927058770002e-10; /* 3dea39ef 35793c76 */
  static const double two54 = 1.80143985094819840000e+16;  /* 43500000 00000000 */
  static const double Lg1 = 6.666666666666735130e-01;      /* 3FE55555 55555593 */
  static const double Lg2 = 3.999999999940941908e-01;      /* 3FD99999 9997FA04 */
  static const double Lg3 = 2.857142874366239149e-01;      /* 3FD24924 94229359 */
  static const double Lg4 = 2.222219843214978396e-01;      /* 3FCC71C5 1D8E78AF */
  static const double Lg5 = 1.818357216161805012e-01;      /* 3FC74664 96CB03DE */
  static const double Lg6 = 1.531383769920937332e-01;      /* 3FC39A09 D078C69F */
  static const double Lg7 = 1.479819860511658591e-01;      /* 3FC2F112 DF3E5244 */
  static const double zero = 0.0;
  static volatile double vzero = 0.0;

  auto hiWord = [](double d) -> int32_t {
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return static_cast<int32_t>(bits >> 32);
  };
  auto loWord = [](double d) -> uint32_t {
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return static_cast<uint32_t>(bits);
  };
  auto setHighWord = [](double* d, int32_t hi) {
    uint64_t bits;
    memcpy(&bits, d, sizeof bits);
    bits = (static_cast<uint64_t>(static_cast<uint32_t>(hi)) << 32) | (bits & 0xffffffffu);
    memcpy(d, &bits, sizeof bits);
  };

  double hfsq, f, s, z, R, w, t1, t2, dk;
  int32_t k, hx, i, j;
  uint32_t lx;

  hx = hiWord(x);
  lx = loWord(x);

  k = 0;
  if (hx < 0x00100000) { /* x < 2**-1022  */
    if (((hx & 0x7fffffff) | lx) == 0) return -two54 / vzero; /* log(+-0)=-inf */
    if (hx < 0) return (x - x) / zero;                       /* log(-#) = NaN */
    k -= 54;
    x *= two54; /* subnormal number, scale up x */
    hx = hiWord(x);
  }
  if (hx >= 0x7ff00000) return x + x;
  k += (hx >> 20) - 1023;
  hx &= 0x000fffff;
  i = (hx + 0x95f64) & 0x100000;
  setHighWord(&x, hx | (i ^ 0x3ff00000)); /* normalize x or x/2 */
  k += (i >> 20);
  f = x - 1.0;
  if ((0x000fffff & (2 + hx)) < 3) { /* -2**-20 <= f < 2**-20 */
    if (f == zero) {
      if (k == 0) return zero;
      dk = static_cast<double>(k);
      return dk * ln2_hi + dk * ln2_lo;
    }
    R = f * f * (0.5 - 0.33333333333333333 * f);
    if (k == 0) return f - R;
    dk = static_cast<double>(k);
    return dk * ln2_hi - ((R - dk * ln2_lo) - f);
  }
  s = f / (2.0 + f);
  dk = static_cast<double>(k);
  z = s * s;
  i = hx - 0x6147a;
  w = z * z;
  j = 0x6b851 - hx;
  t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
  t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
  i |= j;
  R = t2 + t1;
  if (i > 0) {
    hfsq = 0.5 * f * f;
    if (k == 0) return f - (hfsq - s * (hfsq + R));
    return dk * ln2_hi - ((hfsq - (s * (hfsq + R) + dk * ln2_lo)) - f);
  }
  if (k == 0) return f - s * (f - R);
  return dk * ln2_hi - ((s * (f - R) - dk * ln2_lo) - f);
}

}  // namespace tcplb
