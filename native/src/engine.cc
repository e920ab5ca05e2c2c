#include "engine.h"
#include "tls.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <climits>
#include <cstdio>
#include <cstring>

namespace tcplb {

namespace {

constexpr size_t kReadSize = 64 * 1024;      // one read; also the pending cap
// A direction that has moved kBulkAfter bytes in full reads is bulk: it reads
// (and at most holds pending) kBulkReadSize at a time. Measured with
// bench/cpu-per-gb.sh: system calls per MB 44 -> 9, CPU per GB -32% (1 stream)
// and -18% (4 streams); short sessions and slow readers of small flows keep
// the 64 KiB cap.
constexpr size_t kBulkReadSize = 256 * 1024;
constexpr uint64_t kBulkAfter = 256 * 1024;
constexpr size_t kScratchSize = kBulkReadSize;
constexpr int kAcceptBatch = 64;            // accepts per listener wake
constexpr int kReadsPerTurn = 4;            // reads per direction before yielding
constexpr int kMaxEvents = 256;
constexpr uint32_t kMaxTickMs = 250;        // coarsest sweep (API.md)
constexpr uint32_t kMinTickMs = 10;         // finest sweep, whatever the timeouts
constexpr int64_t kAcceptPauseMs = 100;

// splice(2) for bulk, as HAProxy's splice-auto, when TCPLB_NATIVE_SPLICE=1
// (off by default: on loopback it cut relay CPU per GB by ~30% but halved
// iperf3 throughput, see bench/optimisations.md): a direction switches to
// socket -> pipe -> socket (no copy through user space) once it has moved
// kSpliceAfter bytes and its last read filled the scratch buffer, so small
// and short sessions never pay for a pipe. Pipes are pooled per thread and
// bounded: each costs 2 descriptors (the bench runs with 20,000 in all).
// Without a pipe (the cap, or pipe2 failing) a direction simply copies.
constexpr uint64_t kSpliceAfter = 256 * 1024;
constexpr int kMaxPipes = 64;       // per relay thread, pooled + held
constexpr size_t kPipePoolMax = 16; // empty pipes kept for reuse
constexpr int kPipeSize = 256 * 1024;     // fewer, larger splices (measured: 64 KiB cost 40% more CPU/GB)
constexpr size_t kSpliceChunk = 1 << 20;  // ask for all; the pipe bounds it

bool spliceEnabled() {
  const char* v = getenv("TCPLB_NATIVE_SPLICE");
  return v != nullptr && strcmp(v, "1") == 0;
}

// Connection sockets are registered once, edge-triggered, for everything, and
// never modified: readiness is remembered in Side::canRead/canWrite. That
// saves an epoll_ctl per backpressure transition, and EPOLLHUP (which cannot
// be masked) can never make the loop spin.
constexpr uint32_t kConnEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

// One listening socket shared by every relay thread (a dup per thread),
// level-triggered and EPOLLEXCLUSIVE: a new client wakes one thread that is
// waiting in epoll_wait, not every thread, and not a thread that is busy (the
// kernel passes the wake-up on to the next waiter), so clients go to whichever
// thread is free. SO_REUSEPORT sockets per thread instead hashed clients to a
// thread whatever its load: one descheduled thread held its share of new
// clients until it ran again (bench/optimisations.md: p99 under churn).
constexpr uint32_t kListenEvents = EPOLLIN | EPOLLEXCLUSIVE;

uint32_t granularity(uint32_t timeoutMs) {
  return std::clamp<uint32_t>(timeoutMs / 4, kMinTickMs, kMaxTickMs);
}

// accept4 errors that concern one aborted connection, not the listener.
bool isAcceptTransient(int err) {
  return err == EINTR || err == ECONNABORTED || err == EPROTO || err == EPERM ||
         err == ENETDOWN || err == ENOPROTOOPT || err == EHOSTDOWN || err == ENONET ||
         err == EHOSTUNREACH || err == EOPNOTSUPP || err == ENETUNREACH;
}

}  // namespace

// ============================================================================
// JS-thread side
// ============================================================================

Engine::Engine(NotifyFn notify, void* notifyArg, int index, int stride, BackendCounters* counters)
    : notify_(notify), notifyArg_(notifyArg), index_(index), stride_(stride), counters_(counters),
      splice_(spliceEnabled()) {}

Engine::~Engine() {
  stop();
}

int Engine::start() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return errno;
  wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd_ < 0 || !watch(wakefd_, &wakeHandle_, EPOLLIN)) {
    int err = errno;
    if (wakefd_ >= 0) close(wakefd_);
    close(epfd_);
    epfd_ = wakefd_ = -1;
    return err;
  }
  scratch_.reset(new char[kScratchSize]);
  running_ = true;

  // The thread inherits a fully blocked signal mask so that signals keep
  // being delivered to Node's own threads (SIGINT handling, profilers).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int err = pthread_create(&thread_, nullptr, &Engine::threadMain, this);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err != 0) {
    close(wakefd_);
    close(epfd_);
    epfd_ = wakefd_ = -1;
    return err;
  }
  started_ = true;
  return 0;
}

void Engine::stop() {
  if (stopped_) return;
  if (started_) {
    Command cmd;
    cmd.type = Command::STOP;
    post(std::move(cmd));
    pthread_join(thread_, nullptr);
    {
      // Another relay thread may still hand a client over (ADOPT) until its
      // own STOP: from here on post() closes it instead of queueing it.
      std::lock_guard<std::mutex> lock(cmdMu_);
      closing_ = true;
      for (Command& c : cmds_) {
        if (c.fd >= 0) close(c.fd);
      }
      cmds_.clear();
    }
    close(wakefd_);
    close(epfd_);
    epfd_ = wakefd_ = -1;
  }
  stopped_ = true;
}

void Engine::post(Command&& cmd) {
  if (!started_) {
    if (cmd.fd >= 0) close(cmd.fd);
    return;
  }
  std::lock_guard<std::mutex> lock(cmdMu_);
  if (closing_) {
    if (cmd.fd >= 0) close(cmd.fd);
    return;
  }
  const bool wasEmpty = cmds_.empty();
  cmds_.push_back(std::move(cmd));
  // The thread reads the eventfd *before* swapping the queue, so a wake is
  // needed only when this command made the queue non-empty. Written under the
  // lock, so stop() cannot close the eventfd in between.
  if (wasEmpty) {
    uint64_t one = 1;
    ssize_t r = write(wakefd_, &one, sizeof one);
    (void)r;  // EAGAIN means the counter is already non-zero: still woken
  }
}

void Engine::addListener(int64_t listenerId, int fd, std::shared_ptr<ListenerShared> shared) {
  if (stopped_ || !started_) {
    close(fd);
    return;
  }
  nFds_.fetch_add(1, std::memory_order_relaxed);
  nListeners_.fetch_add(1, std::memory_order_relaxed);
  Command cmd;
  cmd.type = Command::ADD_LISTENER;
  cmd.id = listenerId;
  cmd.fd = fd;
  cmd.lshared = std::move(shared);
  post(std::move(cmd));
}

void Engine::takeEvents(std::vector<Event>& out) {
  out.clear();
  std::lock_guard<std::mutex> lock(evMu_);
  out.swap(events_);
}

void Engine::snapshotStats(std::vector<double>& out) {
  out.clear();
  std::lock_guard<std::mutex> lock(connsMu_);
  out.reserve(conns_.size() * 3);
  for (const auto& kv : conns_) {
    const Conn* c = kv.second;
    out.push_back(static_cast<double>(c->id));
    out.push_back(static_cast<double>(c->bytesIn.load(std::memory_order_relaxed)));
    out.push_back(static_cast<double>(c->bytesOut.load(std::memory_order_relaxed)));
  }
}

// ============================================================================
// Engine thread: main loop
// ============================================================================

void* Engine::threadMain(void* self) {
  static_cast<Engine*>(self)->run();
  return nullptr;
}

void Engine::run() {
  epoll_event evs[kMaxEvents];
  now_ = monotonicMs();
  while (running_) {
    waiting_.store(true, std::memory_order_relaxed);
    int n = epoll_wait(epfd_, evs, kMaxEvents, epollTimeout());
    waiting_.store(false, std::memory_order_relaxed);
    if (n < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "tcplb-native: epoll_wait failed: %s; engine stopping\n", strerror(errno));
      break;
    }
    now_ = monotonicMs();
    for (int i = 0; i < n; i++) {
      Handle* h = static_cast<Handle*>(evs[i].data.ptr);
      switch (h->kind) {
        case Handle::WAKE:
          drainCommands();
          break;
        case Handle::LISTENER:
          onListenerReady(static_cast<Listener*>(h));
          break;
        case Handle::CLIENT:
        case Handle::BACKEND:
          onSideEvent(static_cast<Side*>(h), evs[i].events);
          break;
      }
    }
    runReadyList();
    if (sweepActive_ && now_ >= nextSweep_) sweep();
    if (pausedListeners_ > 0 && now_ >= nextResume_) resumeListeners();
    // Objects closed during this turn may still be named by events later in
    // the same epoll batch, so they are freed only here.
    reapDead();
    flushEvents();
  }
  // STOP already did this; it matters only if the loop broke on an error.
  closeAll();
  reapDead();
  flushEvents();
  for (auto& p : pipePool_) {
    close(p.first);
    close(p.second);
  }
  pipePool_.clear();
  pipesOpen_ = 0;
}

int Engine::epollTimeout() const {
  if (!ready_.empty()) return 0;
  int64_t wake = INT64_MAX;
  if (sweepActive_) wake = nextSweep_;
  if (pausedListeners_ > 0) wake = std::min(wake, nextResume_);
  if (wake == INT64_MAX) return -1;
  int64_t d = wake - monotonicMs();
  if (d <= 0) return 0;
  return static_cast<int>(std::min<int64_t>(d, INT_MAX));
}

// ============================================================================
// Commands
// ============================================================================

void Engine::drainCommands() {
  uint64_t v;
  ssize_t r = read(wakefd_, &v, sizeof v);  // reset the counter first (see post())
  (void)r;
  {
    std::lock_guard<std::mutex> lock(cmdMu_);
    cmdBatch_.swap(cmds_);
  }
  for (Command& cmd : cmdBatch_) execute(cmd);
  cmdBatch_.clear();
}

void Engine::execute(Command& cmd) {
  switch (cmd.type) {
    case Command::ADD_LISTENER:
      cmdAddListener(cmd.id, cmd.fd, std::move(cmd.lshared));
      cmd.fd = -1;  // owned by the Listener now
      break;
    case Command::ACTIVATE:
      cmdActivate(cmd.id);
      break;
    case Command::CLOSE_LISTENER:
      cmdCloseListener(cmd.id);
      break;
    case Command::CONNECT:
      cmdConnect(cmd);
      break;
    case Command::SET_ROUTE:
      cmdSetRoute(cmd.id, std::move(cmd.route));
      break;
    case Command::REJECT:
      cmdReject(static_cast<uint64_t>(cmd.id));
      break;
    case Command::KILL: {
      Conn* c = findConn(static_cast<uint64_t>(cmd.id));
      if (c != nullptr) finish(c, HOW_KILLED, 0, SIDE_NONE);
      break;
    }
    case Command::CLOSE_ALL:
      closeAll();
      break;
    case Command::STOP:
      closeAll();
      running_ = false;
      break;
    case Command::SET_TLS: {
      auto it = listeners_.find(cmd.id);
      if (it != listeners_.end()) it->second->tls = std::move(cmd.tls);
      break;
    }
    case Command::ADOPT:
      cmdAdopt(cmd);
      cmd.fd = -1;  // owned by the connection now, or closed
      break;
  }
}

// A client another thread accepted for us (handoffTarget): it becomes ours as
// if we had accepted it, on our own copy of the listener.
void Engine::cmdAdopt(Command& cmd) {
  auto it = listeners_.find(cmd.id);
  if (it == listeners_.end() || it->second->dead) {
    // The listener closed while the client was on its way: refused, as a
    // client still in the backlog of a closed listener is.
    close(cmd.fd);
    nConns_.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  adoptClient(it->second, cmd.fd, cmd.addr, true);
}

void Engine::cmdAddListener(int64_t id, int fd, std::shared_ptr<ListenerShared> shared) {
  auto it = listeners_.find(id);
  if (it != listeners_.end()) closeListener(it->second);  // binding prevents this
  auto* l = new Listener();
  l->kind = Handle::LISTENER;
  l->id = id;
  l->fd = fd;
  l->shared = shared != nullptr ? std::move(shared) : std::make_shared<ListenerShared>();
  sockaddr_storage local;
  socklen_t llen = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) == 0) {
    bool wildcard = false;
    if (local.ss_family == AF_INET) {
      wildcard = reinterpret_cast<sockaddr_in*>(&local)->sin_addr.s_addr == htonl(INADDR_ANY);
    } else if (local.ss_family == AF_INET6) {
      wildcard = IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr);
    }
    if (!wildcard) l->localPort = formatIp(reinterpret_cast<sockaddr*>(&local), l->localIp);
  }
  listeners_.emplace(id, l);
}

void Engine::cmdActivate(int64_t id) {
  auto it = listeners_.find(id);
  if (it == listeners_.end()) return;
  Listener* l = it->second;
  if (l->active) return;
  // Level-triggered: the accept loop is bounded, and the kernel reminds us
  // of what is left in the backlog.
  if (!watch(l->fd, l, kListenEvents)) {
    Event& e = emit(EV_ACCEPT_ERROR);
    e.listenerId = id;
    e.err = errno;
    return;
  }
  l->active = true;
}

void Engine::cmdCloseListener(int64_t id) {
  auto it = listeners_.find(id);
  if (it != listeners_.end()) closeListener(it->second);
}

void Engine::cmdConnect(Command& cmd) {
  Conn* c = findConn(static_cast<uint64_t>(cmd.id));
  if (c == nullptr) return;
  if (c->state != Conn::WAITING && c->state != Conn::FAILED) return;  // already dialled
  c->idleMs = cmd.idleMs;
  c->connectTimeoutMs = cmd.timeoutMs;
  if (cmd.addrErr != 0) {
    connectFailed(c, cmd.addrErr);
    return;
  }
  // The preamble is simply the first pending chunk of the upstream direction:
  // the relay writes pending bytes before it reads the client again.
  if (cmd.preambleLen > 0) {
    c->up.pending = std::move(cmd.preamble);
    c->up.pendingOff = 0;
    c->up.pendingLen = cmd.preambleLen;
  }
  dial(c, cmd.addr, cmd.addrLen, cmd.backendKey >= 0 ? counters_->acquire(cmd.backendKey) : nullptr);
}

// Starts a non-blocking connect for `c` (idleMs/connectTimeoutMs already set).
// `slot` is the backend's open-connection counter, already incremented by the
// caller: held from now until the attempt fails or the connection finishes.
void Engine::dial(Conn* c, const sockaddr_storage& addr, socklen_t addrLen, std::atomic<int32_t>* slot) {
  c->activeSlot = slot;
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    connectFailed(c, errno);
    return;
  }
  nFds_.fetch_add(1, std::memory_order_relaxed);
  setNoDelay(fd);
  Side& b = c->backend;
  b.fd = fd;
  // Nothing can be queued to read before the backend answers, and the
  // registration below raises an edge for whatever arrives after it: without
  // this, the first relay turn would spend a recv() on EAGAIN.
  b.canRead = false;
  b.canWrite = true;
  b.peerFin = false;
  c->state = Conn::CONNECTING;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), addrLen) == 0) {
    if (!watch(fd, &b, kConnEvents)) return connectFailed(c, errno);
    return startRelay(c);
  }
  if (errno != EINPROGRESS) return connectFailed(c, errno);
  // Registered after connect(): an unconnected socket polls as EPOLLHUP.
  if (!watch(fd, &b, kConnEvents)) return connectFailed(c, errno);
  if (c->connectTimeoutMs > 0) {
    c->connectDeadline = now_ + c->connectTimeoutMs;
    noteTimeout(c->connectTimeoutMs);
  }
}

void Engine::releaseSlot(Conn* c) {
  if (c->activeSlot == nullptr) return;
  c->activeSlot->fetch_sub(1, std::memory_order_relaxed);
  c->activeSlot = nullptr;
}

// Replaces l's table (nullptr = none), pinning the counters the new one names
// and unpinning the old one's.
void Engine::installRoute(Listener* l, std::unique_ptr<RouteTable> route) {
  if (route != nullptr) {
    for (RouteBackend& b : route->backends) b.active = counters_->ref(b.key);
    if (l->route != nullptr) inheritBalancerState(*route, *l->route);
  }
  if (l->route != nullptr) {
    for (RouteBackend& b : l->route->backends) counters_->unref(b.key);
  }
  l->route = std::move(route);
}

void Engine::cmdSetRoute(int64_t id, std::unique_ptr<RouteTable> route) {
  auto it = listeners_.find(id);
  if (it == listeners_.end()) return;
  installRoute(it->second, std::move(route));
  // Keys of backends long gone must not pile up across reloads.
  counters_->prune();
}

void Engine::cmdReject(uint64_t id) {
  Conn* c = findConn(id);
  if (c == nullptr) return;
  switch (c->state) {
    case Conn::WAITING:
      finish(c, HOW_REJECTED, 0, SIDE_NONE);
      break;
    case Conn::FAILED:
      finish(c, HOW_REJECTED_AFTER_FAIL, 0, SIDE_NONE);
      break;
    case Conn::CONNECTING:  // abandon the dial
      finish(c, c->everFailed ? HOW_REJECTED_AFTER_FAIL : HOW_REJECTED, 0, SIDE_NONE);
      break;
    case Conn::RELAYING:  // too late to reject: same as kill()
      finish(c, HOW_KILLED, 0, SIDE_NONE);
      break;
  }
}

void Engine::closeAll() {
  for (auto& kv : conns_) finish(kv.second, HOW_KILLED, 0, SIDE_NONE);  // finish() never erases
  std::vector<Listener*> ls;
  ls.reserve(listeners_.size());
  for (auto& kv : listeners_) ls.push_back(kv.second);
  for (Listener* l : ls) closeListener(l);
}

// ============================================================================
// Listeners
// ============================================================================

void Engine::onListenerReady(Listener* l) {
  if (l->dead || l->paused) return;
  for (int i = 0; i < kAcceptBatch; i++) {
    sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int fd = accept4(l->fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (Engine* to = handoffTarget()) {
        Command cmd;
        cmd.type = Command::ADOPT;
        cmd.id = l->id;
        cmd.fd = fd;
        cmd.addr = peer;
        cmd.addrLen = len;
        to->post(std::move(cmd));
        continue;
      }
      adoptClient(l, fd, peer);
      continue;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (isAcceptTransient(err)) continue;
    if (err == EINVAL) {
      // No longer listening: closeListener()/closeAll() shut it down from the
      // JS thread (EngineGroup::shutdownListeners) and the command that
      // closes it is on its way. Stop polling it (it would poll HUP forever).
      epoll_ctl(epfd_, EPOLL_CTL_DEL, l->fd, nullptr);
      l->active = false;
      return;
    }
    // EMFILE & co (and anything unexpected): the backlog stays readable, so a
    // level-triggered listener would spin. Mask it for a while instead.
    pauseListener(l, err);
    return;
  }
}

// The threads share one listening socket and the kernel wakes a thread that
// is waiting (kListenEvents), so short connections go to free threads. But a
// thread that accepts a burst takes it all in one batch: 50 keep-alive
// clients connecting at once all landed on one of two threads, for their
// whole life. So while accepting, a thread hands each client to a sibling
// that is idle in epoll_wait right now and holds fewer connections (a
// command, one wake-up of a thread that had nothing else to do); two busy
// threads keep what they accept, so churn causes no hand-over traffic. A
// sibling that holds less than half of ours (and 8 fewer) gets the client
// even when it is not idle: it may simply not have been scheduled while the
// burst came in. The target's count is raised here, so one batch is split
// instead of all going to a sibling that has not counted them yet.
Engine* Engine::handoffTarget() {
  if (siblings_.empty()) return nullptr;
  const int64_t mine = nConns_.load(std::memory_order_relaxed);
  Engine* best = nullptr;
  int64_t fewest = mine;
  for (Engine* e : siblings_) {
    const int64_t n = e->nConns_.load(std::memory_order_relaxed);
    const bool idle = e->waiting_.load(std::memory_order_relaxed);
    if (n < fewest && (idle || mine >= 2 * n + 8)) {
      fewest = n;
      best = e;
    }
  }
  if (best == nullptr) return nullptr;
  best->nConns_.fetch_add(1, std::memory_order_relaxed);
  return best;
}

void Engine::adoptClient(Listener* l, int fd, const sockaddr_storage& peer, bool counted) {
  nFds_.fetch_add(1, std::memory_order_relaxed);  // TCP_NODELAY: inherited from the listener

  auto* c = new Conn();
  c->id = nextConnId_++ * static_cast<uint64_t>(stride_) + static_cast<uint64_t>(index_);
  c->client.kind = Handle::CLIENT;
  c->client.fd = fd;
  c->client.conn = c;
  c->backend.kind = Handle::BACKEND;
  c->backend.conn = c;
  c->up.src = &c->client;
  c->up.dst = &c->backend;
  c->down.src = &c->backend;
  c->down.dst = &c->client;
  // Registered right away (edge-triggered) so that a client vanishing while
  // JS decides is noticed; no byte is read before the backend is connected.
  if (!watch(fd, &c->client, kConnEvents)) {
    int err = errno;
    close(fd);
    nFds_.fetch_sub(1, std::memory_order_relaxed);
    if (counted) nConns_.fetch_sub(1, std::memory_order_relaxed);
    delete c;
    Event& e = emit(EV_ACCEPT_ERROR);
    e.listenerId = l->id;
    e.err = err;
    return;
  }
  {
    std::lock_guard<std::mutex> lock(connsMu_);
    conns_.emplace(c->id, c);
  }
  if (!counted) nConns_.fetch_add(1, std::memory_order_relaxed);
  c->listener = l;
  l->openConns++;
  int64_t listenerOpen = l->shared->open.fetch_add(1, std::memory_order_relaxed) + 1;

  Event& e = emit(EV_ACCEPT);
  e.connId = c->id;
  e.listenerId = l->id;
  e.clientPort = formatIp(reinterpret_cast<const sockaddr*>(&peer), e.clientIp);
  if (l->localIp[0] != '\0') {
    memcpy(e.localIp, l->localIp, sizeof e.localIp);
    e.localPort = l->localPort;
  } else {
    sockaddr_storage local;
    socklen_t llen = sizeof local;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) == 0) {
      e.localPort = formatIp(reinterpret_cast<sockaddr*>(&local), e.localIp);
    }
  }

  // The routing fast path: pick and dial here instead of waiting for JS.
  // Over maxConnections, or with no usable backend, the client goes to JS as
  // a plain ACCEPT, which refuses it with the right reason.
  // A TLS listener's client handshakes first; tls.cc takes the same path
  // (takeBackend) when the handshake is done.
  if (l->tls != nullptr) return tlsStart(c, l, e);
  RouteTable* r = l->route.get();
  if (r == nullptr || r->proxyProtocol != 0) return;  // a PROXY header: only after a TLS handshake
  int pick = takeBackend(*r, e.clientIp, listenerOpen);
  if (pick < 0) return;
  const RouteBackend& b = r->backends[pick];
  e.type = EV_ACCEPT_ROUTED;
  e.backendKey = b.key;
  c->idleMs = r->idleMs;
  c->connectTimeoutMs = r->connectTimeoutMs;
  dial(c, b.addr, b.addrLen, b.active);  // may emit: `e` is not used after this
}

// A connection is finished: the listener it came in on counts one fewer, and a
// closed listener is freed with its last connection.
void Engine::releaseListener(Conn* c) {
  Listener* l = c->listener;
  if (l == nullptr) return;
  c->listener = nullptr;
  l->shared->open.fetch_sub(1, std::memory_order_relaxed);
  if (--l->openConns == 0 && l->dead) deadListeners_.push_back(l);
}

void Engine::pauseListener(Listener* l, int err) {
  // EPOLLEXCLUSIVE registrations cannot be modified: removed, then added again.
  epoll_ctl(epfd_, EPOLL_CTL_DEL, l->fd, nullptr);
  l->paused = true;
  l->resumeAt = now_ + kAcceptPauseMs;
  if (pausedListeners_++ == 0 || l->resumeAt < nextResume_) nextResume_ = l->resumeAt;
  if (now_ - l->lastErrorEventAt >= kAcceptPauseMs) {
    l->lastErrorEventAt = now_;
    Event& e = emit(EV_ACCEPT_ERROR);
    e.listenerId = l->id;
    e.err = err;
  }
}

void Engine::resumeListeners() {
  nextResume_ = INT64_MAX;
  for (auto& kv : listeners_) {
    Listener* l = kv.second;
    if (!l->paused) continue;
    if (now_ < l->resumeAt) {
      nextResume_ = std::min(nextResume_, l->resumeAt);
      continue;
    }
    watch(l->fd, l, kListenEvents);
    l->paused = false;
    pausedListeners_--;
  }
}

void Engine::closeListener(Listener* l) {
  if (l->dead) return;
  l->dead = true;
  if (l->paused) pausedListeners_--;
  if (l->active) epoll_ctl(epfd_, EPOLL_CTL_DEL, l->fd, nullptr);
  close(l->fd);
  l->fd = -1;
  nFds_.fetch_sub(1, std::memory_order_relaxed);
  nListeners_.fetch_sub(1, std::memory_order_relaxed);
  listeners_.erase(l->id);
  installRoute(l, nullptr);
  if (l->openConns == 0) deadListeners_.push_back(l);  // else with its last connection
}

// ============================================================================
// Connections: readiness and state changes
// ============================================================================

Conn* Engine::findConn(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second->dead) return nullptr;
  return it->second;
}

void Engine::onSideEvent(Side* s, uint32_t ev) {
  Conn* c = s->conn;
  if (c->dead) return;
  // Readiness flags are hints: a stale edge (e.g. from a backend fd of a
  // failed attempt, in the same epoll batch) costs at most one EAGAIN.
  if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s->canRead = true;
  if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) s->canWrite = true;
  if (ev & EPOLLRDHUP) s->peerFin = true;
  if (s->tls != nullptr && tlsOnEvent(c, s, ev)) return;

  switch (c->state) {
    case Conn::WAITING:
    case Conn::FAILED:
      if (s == &c->client) checkClientGone(c, ev);
      return;
    case Conn::CONNECTING:
      if (s == &c->client) {
        checkClientGone(c, ev);
      } else if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
        onConnectDone(c, ev);
      }
      return;
    case Conn::RELAYING:
      if (ev & EPOLLERR) {
        int err = socketError(s->fd);
        if (err != 0) return fail(c, s, err);
      }
      relay(c);
      return;
  }
}

// Before a backend is attached the client is not read, so "gone" must be
// inferred from the event: RST (ERR/HUP), or a FIN with nothing queued before
// it. A client that sent data and then FIN is kept: it is a half-close, and
// the data plus the FIN are relayed once the backend is up.
void Engine::checkClientGone(Conn* c, uint32_t ev) {
  bool gone = (ev & (EPOLLERR | EPOLLHUP)) != 0;
  if (!gone && (ev & EPOLLRDHUP)) gone = bytesReadable(c->client.fd) == 0;
  if (gone) finish(c, HOW_CLIENT_GONE, 0, SIDE_NONE);
}

void Engine::onConnectDone(Conn* c, uint32_t ev) {
  // First attempt: no other fd ever used this Side, so the event is this
  // socket's own, and a connecting TCP socket reports EPOLLOUT only once it
  // is established (failure comes as ERR/HUP). Two syscalls saved per client.
  if (!c->everFailed && (ev & (EPOLLERR | EPOLLHUP)) == 0) return startRelay(c);
  int err = socketError(c->backend.fd);
  if (err == 0) {
    // SO_ERROR 0 also while still in progress (a stale edge): confirm.
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(c->backend.fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) {
      if (errno == ENOTCONN) return;
      err = errno;
    }
  }
  if (err != 0) return connectFailed(c, err);
  startRelay(c);
}

void Engine::connectFailed(Conn* c, int err) {
  closeSide(c->backend, false);
  releaseSlot(c);
  c->up.pending.reset();  // the preamble; a retry brings its own
  c->up.pendingOff = c->up.pendingLen = 0;
  c->state = Conn::FAILED;
  c->everFailed = true;
  c->connectDeadline = 0;
  Event& e = emit(EV_CONNECT_FAILED);
  e.connId = c->id;
  e.err = err;
}

void Engine::startRelay(Conn* c) {
  c->state = Conn::RELAYING;
  c->connectDeadline = 0;
  c->lastActive = now_;
  if (c->idleMs > 0) noteTimeout(c->idleMs);
  Event& e = emit(EV_CONNECTED);
  e.connId = c->id;
  relay(c);
}

void Engine::fail(Conn* c, Side* s, int err) {
  finish(c, HOW_RESET, err, s == &c->client ? SIDE_CLIENT : SIDE_BACKEND);
}

void Engine::finish(Conn* c, CloseHow how, int err, SideCode side) {
  if (c->dead) return;
  c->dead = true;
  // On a reset the *other* side is reset too, so its peer learns the truth;
  // every other ending closes gracefully.
  closeSide(c->client, how == HOW_RESET && side == SIDE_BACKEND);
  closeSide(c->backend, how == HOW_RESET && side == SIDE_CLIENT);
  c->up.pending.reset();
  c->down.pending.reset();
  givePipe(c->up);
  givePipe(c->down);
  releaseSlot(c);
  releaseListener(c);
  nConns_.fetch_sub(1, std::memory_order_relaxed);
  emitClosed(c, how, err, side);
  deadConns_.push_back(c);
}

// ============================================================================
// Connections: the relay
// ============================================================================

void Engine::relay(Conn* c) {
  if (!pump(c, c->up)) return;
  pump(c, c->down);
}

// Moves bytes src -> dst until the source has nothing, the sink is full, or
// the per-turn budget is spent. Returns false once the connection is finished.
bool Engine::pump(Conn* c, Direction& d) {
  std::atomic<uint64_t>& counter = (&d == &c->up) ? c->bytesIn : c->bytesOut;
  int budget = kReadsPerTurn;
  for (;;) {
    if (d.pendingLen > 0) {
      if (!writePending(c, d)) return false;
      if (d.pendingLen > 0) return true;  // sink full: wait for its EPOLLOUT edge
    }
    if (d.pipeLen > 0) {
      if (!flushPipe(c, d)) return false;
      if (d.pipeLen > 0) return true;  // sink full, as above
    }
    if (d.eof) return forwardEof(c, d);
    if (!d.src->canRead) return true;
    if (budget-- == 0) {  // fairness: let other connections run, come back soon
      markReady(c);
      return true;
    }
    if (d.spliced && takePipe(d)) {
      if (spliceIn(c, d) < 0) return false;
      continue;
    }

    char* buf = scratch_.get();
    const size_t want = d.bulk ? kBulkReadSize : kReadSize;
    ssize_t n = d.src->tls != nullptr ? tlsRead(d.src, buf, want) : recv(d.src->fd, buf, want, 0);
    if (n == 0) {
      d.eof = true;
      continue;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        d.src->canRead = false;
        return true;
      }
      if (errno == EINTR) continue;
      fail(c, d.src, errno);
      return false;
    }
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    c->lastActive = now_;
    // A short read drained the queue, so new data will raise a new edge and
    // the EAGAIN round-trip can be skipped. If the FIN had already arrived
    // (EPOLLRDHUP seen before this read), every byte before it was queued,
    // so a short read took them all: the next read would return 0, and the
    // EOF is taken now instead of spending a recv() on it. (Not for TLS: a
    // read returns one record, whatever the kernel holds.)
    if (static_cast<size_t>(n) < want && d.src->tls == nullptr) {
      if (d.src->peerFin) {
        d.eof = true;
      } else {
        d.src->canRead = false;
      }
    }

    ssize_t w = 0;
    if (d.dst->canWrite) {
      // The last bytes before a FIN already seen: MSG_MORE holds them in the
      // send queue for the shutdown()/close() that forwardEof() makes in this
      // same turn, and the kernel puts the FIN on their segment instead of
      // sending a segment of its own (`PACKETS=1 bench/syscalls-per-conn.sh`:
      // one packet fewer per close on that side). Nothing waits: the FIN
      // pushes it.
      const int more = d.eof ? MSG_MORE : 0;
      w = d.dst->tls != nullptr ? tlsWrite(d.dst, buf, n) : send(d.dst->fd, buf, n, MSG_NOSIGNAL | more);
      if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          d.dst->canWrite = false;
        } else if (errno != EINTR) {
          fail(c, d.dst, errno);
          return false;
        }
        w = 0;
      } else if (w < n) {
        // A partial send leaves SOCK_NOSPACE set: an EPOLLOUT edge follows.
        d.dst->canWrite = false;
      }
    }
    if (w < n) {
      // Only what the kernel refused is copied; the source is not read again
      // until this drains, so pending never exceeds one scratch buffer.
      size_t rest = static_cast<size_t>(n - w);
      d.pending.reset(new char[rest]);
      memcpy(d.pending.get(), buf + w, rest);
      d.pendingOff = 0;
      d.pendingLen = static_cast<uint32_t>(rest);
    }
    if (w > 0) c->lastActive = now_;
    if (!d.bulk && static_cast<size_t>(n) == want && counter.load(std::memory_order_relaxed) >= kBulkAfter) {
      d.bulk = true;
    }
    // Never for TLS: the bytes on a TLS socket are records, not the stream.
    if (splice_ && !d.spliced && d.src->tls == nullptr && d.dst->tls == nullptr && static_cast<size_t>(n) == want && d.pendingLen == 0 &&
        counter.load(std::memory_order_relaxed) >= kSpliceAfter) {
      d.spliced = true;
    }
  }
}

// A pipe for `d` (which holds none): from the pool, or a new one within
// kMaxPipes. false: copy this time.
bool Engine::takePipe(Direction& d) {
  if (d.pipeR >= 0) return true;
  if (!pipePool_.empty()) {
    d.pipeR = pipePool_.back().first;
    d.pipeW = pipePool_.back().second;
    pipePool_.pop_back();
    return true;
  }
  if (pipesOpen_ >= kMaxPipes) return false;
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) return false;  // EMFILE & co: copy instead
  pipesOpen_++;
  fcntl(fds[0], F_SETPIPE_SZ, kPipeSize);  // above fs/pipe-max-size it fails: the default stays
  d.pipeR = fds[0];
  d.pipeW = fds[1];
  return true;
}

// `d`'s pipe back to the pool when it is empty, closed when it is not (its
// bytes belong to a finished connection) or the pool is full.
void Engine::givePipe(Direction& d) {
  if (d.pipeR < 0) return;
  if (d.pipeLen == 0 && pipePool_.size() < kPipePoolMax) {
    pipePool_.emplace_back(d.pipeR, d.pipeW);
  } else {
    close(d.pipeR);
    close(d.pipeW);
    pipesOpen_--;
  }
  d.pipeR = d.pipeW = -1;
  d.pipeLen = 0;
}

// One splice src -> pipe (the pipe is empty). 1: moved bytes or saw EOF or
// drained; -1: the connection is finished.
int Engine::spliceIn(Conn* c, Direction& d) {
  std::atomic<uint64_t>& counter = (&d == &c->up) ? c->bytesIn : c->bytesOut;
  ssize_t n = splice(d.src->fd, nullptr, d.pipeW, nullptr, kSpliceChunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  if (n > 0) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    d.pipeLen = static_cast<uint32_t>(n);
    c->lastActive = now_;
    // No short-read shortcut here: a pipe holds 16 socket buffer fragments,
    // so a short splice does not mean the socket queue is empty.
    return 1;
  }
  givePipe(d);  // empty
  if (n == 0) {
    d.eof = true;
    return 1;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {  // the pipe was empty: the socket is
    d.src->canRead = false;
    return 1;
  }
  if (errno == EINTR) return 1;
  fail(c, d.src, errno);
  return -1;
}

// Writes the pipe's bytes to dst. false once the connection is finished.
bool Engine::flushPipe(Conn* c, Direction& d) {
  while (d.pipeLen > 0) {
    if (!d.dst->canWrite) return true;
    ssize_t w = splice(d.pipeR, nullptr, d.dst->fd, nullptr, d.pipeLen, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        d.dst->canWrite = false;
        return true;
      }
      if (errno == EINTR) continue;
      fail(c, d.dst, errno);
      return false;
    }
    d.pipeLen -= static_cast<uint32_t>(w);
    c->lastActive = now_;
    if (d.pipeLen > 0) d.dst->canWrite = false;  // partial: SOCK_NOSPACE, an edge follows
  }
  givePipe(d);  // empty: back to the pool, so idle connections hold none
  return true;
}

bool Engine::writePending(Conn* c, Direction& d) {
  while (d.pendingLen > 0) {
    if (!d.dst->canWrite) return true;
    ssize_t w = d.dst->tls != nullptr ? tlsWrite(d.dst, d.pending.get() + d.pendingOff, d.pendingLen)
                                      : send(d.dst->fd, d.pending.get() + d.pendingOff, d.pendingLen, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        d.dst->canWrite = false;
        return true;
      }
      if (errno == EINTR) continue;
      fail(c, d.dst, errno);
      return false;
    }
    d.pendingOff += static_cast<uint32_t>(w);
    d.pendingLen -= static_cast<uint32_t>(w);
    c->lastActive = now_;
    if (d.pendingLen > 0) d.dst->canWrite = false;  // partial: see pump()
  }
  d.pending.reset();  // idle connections hold no buffers
  d.pendingOff = 0;
  return true;
}

// EOF seen on d.src and everything before it delivered: pass the FIN on.
bool Engine::forwardEof(Conn* c, Direction& d) {
  Direction& other = (&d == &c->up) ? c->down : c->up;
  if (!d.shut && d.dst->tls != nullptr) tlsShutdownWrite(d.dst);  // close_notify before the FIN
  if (!d.shut && other.shut) {
    // The last direction: close() below sends the FIN (both receive queues
    // were read to EOF, so it is a FIN, not a RST); no shutdown() needed.
    d.shut = true;
  }
  if (!d.shut) {
    if (shutdown(d.dst->fd, SHUT_WR) < 0) {
      int err = socketError(d.dst->fd);
      fail(c, d.dst, err != 0 ? err : errno);
      return false;
    }
    d.shut = true;
  }
  if (c->up.shut && c->down.shut) {
    finish(c, HOW_NORMAL, 0, SIDE_NONE);
    return false;
  }
  return true;
}

void Engine::markReady(Conn* c) {
  if (c->inReadyList) return;
  c->inReadyList = true;
  ready_.push_back(c);
}

void Engine::runReadyList() {
  if (ready_.empty()) return;
  std::vector<Conn*> batch;
  batch.swap(ready_);
  for (Conn* c : batch) {
    c->inReadyList = false;
    if (!c->dead) relay(c);
  }
}

// ============================================================================
// fds, timers, output
// ============================================================================

bool Engine::watch(int fd, Handle* h, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = h;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void Engine::closeSide(Side& s, bool reset) {
  if (s.fd < 0) return;
  // Explicit DEL: a child forked by Node may briefly hold a dup of this fd,
  // and close() alone would then leave the registration (and its pointer) live.
  epoll_ctl(epfd_, EPOLL_CTL_DEL, s.fd, nullptr);
  if (s.tls != nullptr) tlsFree(s);
  if (reset) setResetOnClose(s.fd);
  close(s.fd);
  s.fd = -1;
  nFds_.fetch_sub(1, std::memory_order_relaxed);
}

// A connection wants a deadline checked with roughly `ms`/4 resolution.
void Engine::noteTimeout(uint32_t ms) {
  uint32_t g = granularity(ms);
  if (!sweepActive_) {
    sweepActive_ = true;
    sweepTick_ = g;
    nextSweep_ = now_ + g;
  } else if (g < sweepTick_) {
    sweepTick_ = g;
    nextSweep_ = std::min(nextSweep_, now_ + g);
  }
}

// One pass over all connections: connect timeouts and idle timeouts. O(n) per
// tick instead of a timer per connection; the tick adapts to the finest
// timeout in use and stops entirely when no connection has one.
void Engine::sweep() {
  uint32_t tick = kMaxTickMs;
  bool any = false;
  for (auto& kv : conns_) {
    Conn* c = kv.second;
    if (c->dead) continue;
    if (c->client.tls != nullptr) {  // a handshake's deadline (tls.cc)
      int h = tlsSweep(c, &tick);
      if (h == 1) any = true;
      if (h != 0) continue;
    }
    if (c->state == Conn::CONNECTING && c->connectDeadline > 0) {
      if (now_ >= c->connectDeadline) {
        connectFailed(c, ETIMEDOUT);
      } else {
        any = true;
        tick = std::min(tick, granularity(c->connectTimeoutMs));
      }
    } else if (c->state == Conn::RELAYING && c->idleMs > 0) {
      if (now_ - c->lastActive >= c->idleMs) {
        finish(c, HOW_IDLE, 0, SIDE_NONE);
      } else {
        any = true;
        tick = std::min(tick, granularity(c->idleMs));
      }
    }
  }
  sweepActive_ = any;
  sweepTick_ = tick;
  nextSweep_ = now_ + tick;
}

Event& Engine::emit(EventType type) {
  outBatch_.emplace_back();
  Event& e = outBatch_.back();
  e.type = type;
  e.side = SIDE_NONE;
  return e;
}

void Engine::emitClosed(Conn* c, CloseHow how, int err, SideCode side) {
  Event& e = emit(EV_CLOSED);
  e.connId = c->id;
  e.bytesIn = static_cast<double>(c->bytesIn.load(std::memory_order_relaxed));
  e.bytesOut = static_cast<double>(c->bytesOut.load(std::memory_order_relaxed));
  e.how = how;
  e.err = err;
  e.side = side;
}

// Publishes this turn's events in one lock hold and wakes the JS thread once.
void Engine::flushEvents() {
  if (outBatch_.empty()) return;
  bool wasEmpty;
  {
    std::lock_guard<std::mutex> lock(evMu_);
    wasEmpty = events_.empty();
    if (wasEmpty) {
      events_.swap(outBatch_);
    } else {
      events_.insert(events_.end(), outBatch_.begin(), outBatch_.end());
    }
  }
  outBatch_.clear();
  // A non-empty queue means JS has not drained since the last wake-up.
  if (wasEmpty) notify_(notifyArg_);
}

void Engine::reapDead() {
  if (!deadConns_.empty()) {
    for (Conn* c : deadConns_) {
      if (c->inReadyList) ready_.erase(std::find(ready_.begin(), ready_.end(), c));
    }
    {
      std::lock_guard<std::mutex> lock(connsMu_);
      for (Conn* c : deadConns_) conns_.erase(c->id);
    }
    for (Conn* c : deadConns_) delete c;
    deadConns_.clear();
  }
  for (Listener* l : deadListeners_) delete l;
  deadListeners_.clear();
}

// ============================================================================
// BackendCounters (any engine thread)
// ============================================================================

std::atomic<int32_t>* BackendCounters::ref(int32_t key) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = map_[key];  // created at 0
  e.refs++;
  return &e.open;
}

void BackendCounters::unref(int32_t key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(key);
  if (it != map_.end()) it->second.refs--;  // pruned later, on a setRoute
}

std::atomic<int32_t>* BackendCounters::acquire(int32_t key) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = map_[key];
  e.open.fetch_add(1, std::memory_order_relaxed);
  return &e.open;
}

void BackendCounters::prune() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = map_.begin(); it != map_.end();) {
    // open == 0 with no table naming the key: nothing holds its address (a
    // counted connection holds it only while its increment is in).
    if (it->second.refs == 0 && it->second.open.load(std::memory_order_relaxed) == 0) {
      it = map_.erase(it);
    } else {
      ++it;
    }
  }
}

// ============================================================================
// EngineGroup (JS thread)
// ============================================================================

int EngineGroup::start(int threads) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; i++) engines_.emplace_back(new Engine(notify_, notifyArg_, i, threads, &counters_));
  if (threads > 1) {
    for (auto& e : engines_) {
      std::vector<Engine*> others;
      for (auto& o : engines_) {
        if (o.get() != e.get()) others.push_back(o.get());
      }
      e->setSiblings(std::move(others));
    }
  }
  for (auto& eng : engines_) {
    int err = eng->start();
    if (err != 0) {
      stop();
      engines_.clear();
      return err;
    }
  }
  return 0;
}

void EngineGroup::stop() {
  listenerFds_.clear();  // the threads close them
  // STOP to every thread first, so they wind down in parallel; then join.
  for (auto& e : engines_) {
    if (e->stopped()) continue;
    Command cmd;
    cmd.type = Command::STOP;
    e->post(std::move(cmd));
  }
  for (auto& e : engines_) e->stop();
}

void EngineGroup::shutdownListeners(int64_t id) {
  for (auto it = listenerFds_.begin(); it != listenerFds_.end();) {
    if (id >= 0 && it->first != id) {
      ++it;
      continue;
    }
    for (int fd : it->second) shutdown(fd, SHUT_RD);
    it = listenerFds_.erase(it);
  }
}

void EngineGroup::post(Command&& cmd) {
  const size_t n = engines_.size();
  if (n == 0) {
    if (cmd.fd >= 0) close(cmd.fd);
    return;
  }
  // closeListener/closeAll take effect in the kernel before this returns, on
  // every thread's socket: a listen() on the same port right after succeeds,
  // and a client connecting right after is refused, whichever thread is slow
  // to run the command.
  if (cmd.type == Command::CLOSE_LISTENER) shutdownListeners(cmd.id);
  if (cmd.type == Command::CLOSE_ALL || cmd.type == Command::STOP) shutdownListeners(-1);
  if (n == 1) return engines_[0]->post(std::move(cmd));
  switch (cmd.type) {
    case Command::CONNECT:
    case Command::REJECT:
    case Command::KILL:
      // The owner of the connection; ids that are not connIds (<= 0) go to
      // thread 0, which ignores them like any unknown id.
      engines_[cmd.id > 0 ? static_cast<uint64_t>(cmd.id) % n : 0]->post(std::move(cmd));
      return;
    case Command::SET_ROUTE:
      // One copy per thread: each keeps its own rotation state; the open
      // counts behind RouteBackend::active are shared (BackendCounters).
      for (size_t i = 0; i + 1 < n; i++) {
        Command c;
        c.type = cmd.type;
        c.id = cmd.id;
        if (cmd.route != nullptr) c.route.reset(new RouteTable(*cmd.route));
        engines_[i]->post(std::move(c));
      }
      engines_[n - 1]->post(std::move(cmd));
      return;
    case Command::SET_TLS:  // every thread shares the one immutable context
      for (size_t i = 0; i < n; i++) {
        Command c;
        c.type = cmd.type;
        c.id = cmd.id;
        c.tls = cmd.tls;
        engines_[i]->post(std::move(c));
      }
      return;
    case Command::ADD_LISTENER:  // addListener() only
      if (cmd.fd >= 0) close(cmd.fd);
      return;
    default:  // ACTIVATE, CLOSE_LISTENER, CLOSE_ALL, STOP: every thread
      for (size_t i = 0; i < n; i++) {
        Command c;
        c.type = cmd.type;
        c.id = cmd.id;
        engines_[i]->post(std::move(c));
      }
      return;
  }
}

void EngineGroup::addListener(int64_t listenerId, const std::vector<int>& fds) {
  if (engines_.empty() || engines_[0]->stopped()) {
    for (int fd : fds) close(fd);
    return;
  }
  listenerFds_[listenerId] = fds;
  auto shared = std::make_shared<ListenerShared>();
  for (size_t i = 0; i < fds.size(); i++) {
    if (i < engines_.size()) {
      engines_[i]->addListener(listenerId, fds[i], shared);
    } else {
      close(fds[i]);
    }
  }
}

void EngineGroup::takeEvents(std::vector<Event>& out) {
  if (engines_.empty()) {
    out.clear();
    return;
  }
  engines_[0]->takeEvents(out);
  for (size_t i = 1; i < engines_.size(); i++) {
    engines_[i]->takeEvents(scratch_);
    out.insert(out.end(), scratch_.begin(), scratch_.end());
  }
  if (scratch_.capacity() > 4096) std::vector<Event>().swap(scratch_);
}

void EngineGroup::snapshotStats(std::vector<double>& out) {
  out.clear();
  std::vector<double> part;
  for (auto& e : engines_) {
    e->snapshotStats(part);
    out.insert(out.end(), part.begin(), part.end());
  }
}

int64_t EngineGroup::connectionCount() const {
  int64_t n = 0;
  for (auto& e : engines_) n += e->connectionCount();
  return n;
}

// A listener counts until every thread has closed its socket.
int64_t EngineGroup::listenerCount() const {
  int64_t n = 0;
  for (auto& e : engines_) n = std::max(n, e->listenerCount());
  return n;
}

int64_t EngineGroup::fdCount() const {
  int64_t n = 0;
  for (auto& e : engines_) n += e->fdCount();
  return n;
}

}  // namespace tcplb
