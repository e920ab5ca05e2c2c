// The I/O engine: N epoll threads (EngineGroup, default 1). Each thread
// (Engine) owns its own epoll set, eventfd, connection table, scratch buffer
// and a descriptor of every listener's one socket; a new client wakes one
// waiting thread (engine.cc kListenEvents, handoffTarget) and a connection
// lives on the thread that adopted it. It knows nothing about N-API; the
// binding (binding.cc) turns Commands into calls and Events into JS arrays.
//
// Threading contract:
//   - post(), takeEvents(), snapshotStats(), counters and stop() are called
//     from the JS thread; they only take short mutex holds.
//   - Everything else runs on an engine thread and touches no shared state
//     except through the two queues, the connection-map lock, atomics and
//     BackendCounters (shared by the threads of a group).
#pragma once

#include <pthread.h>
#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "net_util.h"
#include "route.h"

namespace tcplb {

class TlsContext;  // tls.h
struct TlsConn;

// ---- events (engine thread -> JS) ------------------------------------------

enum EventType : uint8_t {
  EV_ACCEPT = 1,
  EV_CONNECTED = 2,
  EV_CONNECT_FAILED = 3,
  EV_CLOSED = 4,
  EV_ACCEPT_ERROR = 5,
  EV_ACCEPT_ROUTED = 6,  // ACCEPT + the backend the fast path is dialling
  EV_TLS_READY = 7,      // a TLS listener's handshake completed (tls.cc)
  EV_TLS_FAILED = 8,     // ... or failed; CLOSED how=7 follows
};

// CLOSED `how` codes (API.md).
enum CloseHow : int8_t {
  HOW_NORMAL = 0,
  HOW_IDLE = 1,
  HOW_KILLED = 2,
  HOW_RESET = 3,
  HOW_REJECTED = 4,
  HOW_CLIENT_GONE = 5,
  HOW_REJECTED_AFTER_FAIL = 6,
  HOW_TLS_FAILED = 7,
};

enum SideCode : int8_t { SIDE_NONE = -1, SIDE_CLIENT = 0, SIDE_BACKEND = 1 };

// One record; which fields are meaningful depends on `type`. ACCEPT carries
// the address strings; they are formatted on the engine thread so the JS
// thread only copies them.
struct Event {
  uint8_t type;
  int8_t how;
  int8_t side;
  int err;
  uint64_t connId;
  int64_t listenerId;
  double bytesIn;
  double bytesOut;
  int clientPort;
  int localPort;
  int32_t backendKey;  // ACCEPT_ROUTED; TLS_READY (-1 = JS dials)
  char clientIp[kIpStrLen];
  char localIp[kIpStrLen];
  // TLS_READY: version, cipher, servername, alpn ('\0'-separated);
  // TLS_FAILED: the error code. Empty (no allocation) for every other event.
  std::string text;
};

// ---- state shared by the threads of a group ----------------------------------

// Open connections (dialling or relaying) per backend key, slow and fast path
// alike, summed over every thread so least_conn and maxConns stay global.
// Keyed by the TS side's stable backend key, so the counts outlive any one
// route table. `refs` = installed route tables (one per thread per listener)
// naming the key: an entry is dropped only when no table names it and its
// count is 0, so a pointer held by a table or by a counted connection is
// always valid. Node addresses of the map are stable.
class BackendCounters {
 public:
  // A table installed on a thread names `key`: its counter, pinned.
  std::atomic<int32_t>* ref(int32_t key);
  void unref(int32_t key);
  // A slow-path connect(..., backendKey): counts one more open connection
  // (under the lock, so a concurrent prune cannot drop the entry first).
  std::atomic<int32_t>* acquire(int32_t key);
  // Drops the entries no table names whose count is 0.
  void prune();

 private:
  struct Entry {
    std::atomic<int32_t> open{0};
    int32_t refs = 0;
  };
  std::mutex mu_;
  std::unordered_map<int32_t, Entry> map_;
};

// One per listener, shared by its per-thread sockets: connections accepted on
// any of them and not yet finished (the listener's maxConnections).
struct ListenerShared {
  std::atomic<int64_t> open{0};
};

// ---- commands (JS -> engine thread) ----------------------------------------

struct Command {
  enum Type : uint8_t {
    ADD_LISTENER,    // id = listenerId, fd = bound+listening socket
    ACTIVATE,        // id = listenerId
    CLOSE_LISTENER,  // id = listenerId
    CONNECT,         // id = connId, addr/addrErr, timeouts, preamble, backendKey
    SET_ROUTE,       // id = listenerId, route (nullptr = slow path)
    REJECT,          // id = connId
    KILL,            // id = connId
    CLOSE_ALL,
    STOP,
    SET_TLS,         // id = listenerId, tls (nullptr = plain)
    ADOPT,           // id = listenerId, fd = accepted client, addr = its address (engine.cc handoffTarget)
  };
  Type type;
  int64_t id = 0;
  int fd = -1;
  int addrErr = 0;  // CONNECT: nonzero when the address did not parse
  uint32_t timeoutMs = 0;
  uint32_t idleMs = 0;
  socklen_t addrLen = 0;
  sockaddr_storage addr;
  std::unique_ptr<char[]> preamble;
  uint32_t preambleLen = 0;
  int32_t backendKey = -1;            // CONNECT: counted against this key (-1 = none)
  std::unique_ptr<RouteTable> route;  // SET_ROUTE
  std::shared_ptr<ListenerShared> lshared;  // ADD_LISTENER
  std::shared_ptr<TlsContext> tls;          // SET_TLS
};

// ---- engine-thread internals -----------------------------------------------

struct Conn;

// epoll_event.data.ptr always points at one of these; `kind` says which.
struct Handle {
  enum Kind : uint8_t { WAKE, LISTENER, CLIENT, BACKEND };
  Kind kind;
};

struct Listener : Handle {
  int64_t id = 0;
  int fd = -1;
  bool active = false;   // registered in epoll
  bool paused = false;   // EPOLLIN masked after EMFILE & co
  bool dead = false;     // closed; freed at the end of the loop turn
  int64_t resumeAt = 0;  // when paused
  int64_t lastErrorEventAt = -1000000;
  std::unique_ptr<RouteTable> route;  // routing fast path; nullptr = every client goes to JS
  // The local address of every client when the listener is bound to one
  // address (no getsockname per accept); empty for a wildcard listener.
  char localIp[kIpStrLen] = "";
  int localPort = 0;
  // Connections accepted on this thread's socket and not yet finished. They
  // point at the Listener, so a closed one is freed only when this is 0.
  int64_t openConns = 0;
  // The same over every thread's socket of this listener (maxConnections).
  std::shared_ptr<ListenerShared> shared;
  // TLS termination (setTls): new clients handshake under this; nullptr = plain.
  std::shared_ptr<TlsContext> tls;
};

// One socket of a connection. `canRead`/`canWrite` remember edge-triggered
// readiness: set by epoll edges, cleared when a syscall hits EAGAIN (or a
// short read/partial write proves the kernel queue empty/full).
struct Side : Handle {
  int fd = -1;
  bool canRead = true;
  bool canWrite = true;
  bool peerFin = false;  // EPOLLRDHUP seen: a FIN is queued behind the data
  Conn* conn = nullptr;
  TlsConn* tls = nullptr;  // a TLS listener's client: read/write through it (tls.cc)
};

// One relay direction src -> dst. `pending` holds only the bytes the kernel
// did not take on the last write (or the PROXY preamble); nullptr otherwise.
struct Direction {
  Side* src = nullptr;
  Side* dst = nullptr;
  std::unique_ptr<char[]> pending;
  uint32_t pendingOff = 0;
  uint32_t pendingLen = 0;
  bool eof = false;  // src sent FIN (read() returned 0)
  bool shut = false; // FIN forwarded: shutdown(dst, SHUT_WR) done
  // Bulk without copies: once this direction has moved kSpliceAfter bytes
  // in full reads it is `spliced`: src -> pipe -> dst with splice(2). The
  // pipe (from the engine's pool) is held only while it holds bytes, so an
  // idle or short session never has one.
  bool spliced = false;
  // Moved 256 KiB in full 64 KiB reads: reads 256 KiB at a time (engine.cc kBulkReadSize).
  bool bulk = false;
  int pipeR = -1;
  int pipeW = -1;
  uint32_t pipeLen = 0;  // bytes in the pipe, not yet written to dst
};

struct Conn {
  enum State : uint8_t {
    WAITING,     // accepted, waiting for JS to connect() or reject()
    CONNECTING,  // backend connect() in progress
    FAILED,      // last connect failed; waiting for a retry or reject()
    RELAYING,
  };
  uint64_t id = 0;
  Listener* listener = nullptr;
  // The open-connection counter of the backend being dialled or relayed to
  // (BackendCounters), already incremented; nullptr when none was named.
  std::atomic<int32_t>* activeSlot = nullptr;
  State state = WAITING;
  bool dead = false;
  bool inReadyList = false;
  bool everFailed = false;   // a connect attempt failed at least once
  uint32_t idleMs = 0;
  uint32_t connectTimeoutMs = 0;
  int64_t connectDeadline = 0;  // 0 = none
  int64_t lastActive = 0;
  Side client;
  Side backend;
  Direction up;    // client -> backend (bytesIn)
  Direction down;  // backend -> client (bytesOut)
  // Written only by the engine thread, read by stats() under connsMu_.
  std::atomic<uint64_t> bytesIn{0};
  std::atomic<uint64_t> bytesOut{0};
};

class Engine {
 public:
  using NotifyFn = void (*)(void* arg);

  // `notify` is called on the engine thread whenever events were queued.
  // Thread `index` of `stride` threads: its connIds are k*stride + index
  // (k = 1, 2, ...), so connId % stride names the owning thread.
  Engine(NotifyFn notify, void* notifyArg, int index, int stride, BackendCounters* counters);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Creates epoll/eventfd and starts the thread. 0 or errno.
  int start();
  // closeAll, end and join the thread. Idempotent; JS thread only.
  void stop();
  bool stopped() const { return stopped_; }

  void post(Command&& cmd);
  // The other threads of the group, for handing accepted clients over; set
  // once before any thread starts (EngineGroup::start).
  void setSiblings(std::vector<Engine*> siblings) { siblings_ = std::move(siblings); }
  // Hands a listening fd created on the JS thread to the engine.
  void addListener(int64_t listenerId, int fd, std::shared_ptr<ListenerShared> shared);

  // Swaps the queued events into `out` (cleared first).
  void takeEvents(std::vector<Event>& out);
  // [connId, bytesIn, bytesOut] triples of every live connection.
  void snapshotStats(std::vector<double>& out);

  int64_t connectionCount() const { return nConns_.load(std::memory_order_relaxed); }
  int64_t listenerCount() const { return nListeners_.load(std::memory_order_relaxed); }
  int64_t fdCount() const { return nFds_.load(std::memory_order_relaxed); }

 private:
  static void* threadMain(void* self);
  void run();

  // commands
  void drainCommands();
  void execute(Command& cmd);
  void cmdAddListener(int64_t id, int fd, std::shared_ptr<ListenerShared> shared);
  void cmdActivate(int64_t id);
  void cmdCloseListener(int64_t id);
  void cmdConnect(Command& cmd);
  void cmdReject(uint64_t id);
  void cmdSetRoute(int64_t id, std::unique_ptr<RouteTable> route);
  void closeAll();

  // listeners
  void onListenerReady(Listener* l);
  // `counted`: the accepting thread already added it to nConns_ (a hand-over).
  void adoptClient(Listener* l, int fd, const sockaddr_storage& peer, bool counted = false);
  Engine* handoffTarget();
  void cmdAdopt(Command& cmd);
  void releaseListener(Conn* c);
  void pauseListener(Listener* l, int err);
  void resumeListeners();
  void closeListener(Listener* l);

  // connections
  Conn* findConn(uint64_t id);
  void onSideEvent(Side* s, uint32_t ev);
  void checkClientGone(Conn* c, uint32_t ev);
  void dial(Conn* c, const sockaddr_storage& addr, socklen_t addrLen, std::atomic<int32_t>* slot);
  void releaseSlot(Conn* c);
  void installRoute(Listener* l, std::unique_ptr<RouteTable> route);
  void onConnectDone(Conn* c, uint32_t ev);
  void connectFailed(Conn* c, int err);
  void startRelay(Conn* c);
  void relay(Conn* c);
  bool pump(Conn* c, Direction& d);
  bool writePending(Conn* c, Direction& d);
  // splice (see Direction::spliced)
  bool takePipe(Direction& d);
  void givePipe(Direction& d);
  int spliceIn(Conn* c, Direction& d);
  bool flushPipe(Conn* c, Direction& d);
  bool forwardEof(Conn* c, Direction& d);
  void fail(Conn* c, Side* s, int err);
  void finish(Conn* c, CloseHow how, int err, SideCode side);
  void markReady(Conn* c);
  void runReadyList();

  // TLS termination (tls.cc)
  void tlsStart(Conn* c, Listener* l, const Event& accepted);
  void tlsHandshake(Conn* c);
  void tlsFail(Conn* c, int what, int err, const char* code);
  ssize_t tlsRead(Side* s, char* buf, size_t len);
  ssize_t tlsWrite(Side* s, const char* buf, size_t len);
  void tlsShutdownWrite(Side* s);
  void tlsFree(Side& s);
  int tlsSweep(Conn* c, uint32_t* tick);
  bool tlsOnEvent(Conn* c, Side* s, uint32_t ev);

  // fds
  bool watch(int fd, Handle* h, uint32_t events);
  void closeSide(Side& s, bool reset);

  // timers
  void noteTimeout(uint32_t ms);
  int epollTimeout() const;
  void sweep();

  // output
  Event& emit(EventType type);
  void emitClosed(Conn* c, CloseHow how, int err, SideCode side);
  void flushEvents();
  void reapDead();

  NotifyFn notify_;
  void* notifyArg_;
  const int index_;
  const int stride_;
  BackendCounters* const counters_;

  int epfd_ = -1;
  int wakefd_ = -1;
  pthread_t thread_{};
  bool started_ = false;
  bool stopped_ = false;  // JS thread view
  Handle wakeHandle_{Handle::WAKE};

  // JS -> engine
  std::mutex cmdMu_;
  std::vector<Command> cmds_;
  bool closing_ = false;  // under cmdMu_: the thread is gone, post() refuses

  // engine -> JS
  std::mutex evMu_;
  std::vector<Event> events_;

  // Empty pipes ([read fd, write fd]) kept for the next spliced direction,
  // and how many pipes exist (pooled + held); both bounded (engine.cc).
  const bool splice_;  // TCPLB_NATIVE_SPLICE=1, read once at construction
  std::vector<std::pair<int, int>> pipePool_;
  int pipesOpen_ = 0;

  // Guards insert/erase of conns_ so stats() can iterate from the JS thread.
  std::mutex connsMu_;
  std::unordered_map<uint64_t, Conn*> conns_;

  std::atomic<int64_t> nConns_{0};
  std::vector<Engine*> siblings_;
  std::atomic<bool> waiting_{false};  // in epoll_wait (handoffTarget)
  std::atomic<int64_t> nListeners_{0};
  std::atomic<int64_t> nFds_{0};

  // ---- engine-thread only ----
  bool running_ = false;
  int64_t now_ = 0;
  uint64_t nextConnId_ = 1;
  std::unique_ptr<char[]> scratch_;
  std::unordered_map<int64_t, Listener*> listeners_;
  std::vector<Command> cmdBatch_;
  std::vector<Event> outBatch_;
  std::vector<Conn*> ready_;
  std::vector<Conn*> deadConns_;
  std::vector<Listener*> deadListeners_;
  bool sweepActive_ = false;
  int64_t nextSweep_ = 0;
  uint32_t sweepTick_ = 0;
  int pausedListeners_ = 0;
  int64_t nextResume_ = 0;
};

// N engine threads behind one JS-thread interface: commands go to the thread
// that owns the connection (connId % N) or to every thread (listener
// commands, closeAll, stop); events, stats and counts are gathered from all.
class EngineGroup {
 public:
  EngineGroup(Engine::NotifyFn notify, void* notifyArg) : notify_(notify), notifyArg_(notifyArg) {}
  ~EngineGroup() { stop(); }
  EngineGroup(const EngineGroup&) = delete;
  EngineGroup& operator=(const EngineGroup&) = delete;

  // Starts `threads` engine threads. 0 or errno (nothing left running).
  int start(int threads);
  void stop();
  int threads() const { return static_cast<int>(engines_.size()); }

  void post(Command&& cmd);
  // One listening socket per thread (fds.size() == threads()).
  void addListener(int64_t listenerId, const std::vector<int>& fds);

  // Appends every thread's queued events to `out` (cleared first).
  void takeEvents(std::vector<Event>& out);
  void snapshotStats(std::vector<double>& out);

  int64_t connectionCount() const;
  int64_t listenerCount() const;  // listeners (not sockets) some thread still has open
  int64_t fdCount() const;        // every socket of every thread

 private:
  // Stops the listening sockets of `id` (all of them when id < 0) at once,
  // on the calling thread: shutdown(SHUT_RD) takes a socket out of LISTEN
  // (queued clients are reset, new ones refused, the port can be bound
  // again), while the engine threads, which own the fds, close them later.
  void shutdownListeners(int64_t id);

  Engine::NotifyFn notify_;
  void* notifyArg_;
  BackendCounters counters_;
  // JS thread: the listening fds of every listener not yet closed. Only JS
  // commands make an engine thread close them, so they are valid here.
  std::unordered_map<int64_t, std::vector<int>> listenerFds_;
  std::vector<std::unique_ptr<Engine>> engines_;
  std::vector<Event> scratch_;
};

}  // namespace tcplb
