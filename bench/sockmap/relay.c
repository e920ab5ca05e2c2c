// Experiment (not part of tcplb): a single-threaded epoll TCP proxy that relays
// either through a 64 KiB user-space buffer (--mode copy) or in the kernel with
// BPF sockhash + an sk_skb stream_verdict program (--mode sockmap).
//
//   relay --listen 127.0.0.3:19001 --backend 127.0.0.2:19000 [--mode copy|sockmap] [-v]
//
// Sockmap scheme (no clang/libbpf here: the program is hand-assembled):
//   TARGET  SOCKHASH, key = cookie of socket X, value = X's PEER socket. No programs.
//   ACTIVE  SOCKHASH, key = own cookie. The stream_verdict program is attached here.
//   verdict(skb): cookie = bpf_get_socket_cookie(skb);
//                 return bpf_sk_redirect_hash(skb, TARGET, &cookie, 0 /* egress */);
// A socket is put into TARGET (both sides) before either enters ACTIVE, so once a
// socket's data goes through the program its peer is always findable: no window
// where a redirect fails and data would be dropped or passed out of order.
// Nothing is read in user space before insertion: bytes that arrived earlier sit in
// the TCP receive queue; setting SO_RCVLOWAT after insertion makes TCP call
// sk_data_ready, which (verdict mode) runs the queue through the program.
// Half-close: on EPOLLRDHUP of X, shutdown(peer, SHUT_WR) only once every byte X
// received has entered the peer's send queue:
//   bytes_received(X) - 1 (the FIN) == bytes_acked(peer) - base + SIOCOUTQ(peer)
// (checked every millisecond while some direction is waiting).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <linux/tcp.h> // struct tcp_info with tcpi_bytes_acked/received (glibc's is older)
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

#define BUFSZ 65536
static int verbose;
static int mode_sockmap;
static int map_target = -1, map_active = -1, prog_fd = -1;
static struct sockaddr_in backend_addr;
static long n_spliced, n_fallback, n_conns;
static int opt_nokick; // --no-kick: skip the SO_RCVLOWAT kick (to show it is needed)
static int opt_sndbuf; // --sndbuf: SO_SNDBUFFORCE on both sockets (experiment on the 1-jiffy retry, README)

static long sys_bpf(int cmd, union bpf_attr *a) { return syscall(__NR_bpf, cmd, a, sizeof(*a)); }

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

static int map_create(int type, int ksz, int vsz, int max) {
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  a.map_type = type;
  a.key_size = ksz;
  a.value_size = vsz;
  a.max_entries = max;
  int fd = sys_bpf(BPF_MAP_CREATE, &a);
  if (fd < 0) { perror("BPF_MAP_CREATE"); exit(1); }
  return fd;
}

static void bpf_setup(void) {
  map_target = map_create(BPF_MAP_TYPE_SOCKHASH, 8, 4, 65536);
  map_active = map_create(BPF_MAP_TYPE_SOCKHASH, 8, 4, 65536);
  struct bpf_insn prog[] = {
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),                 // r6 = ctx (skb)
      INSN(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0),                   // r2 = skb->len
      INSN(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 2, 0),                   // if r2 != 0 goto +2
      INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, SK_DROP),           // empty skb (the FIN): drop, see README
      INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
      INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_socket_cookie), // r0 = cookie(skb->sk)
      INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 0, -8, 0),                // *(u64 *)(fp-8) = r0
      INSN(BPF_LD | BPF_DW | BPF_IMM, 2, BPF_PSEUDO_MAP_FD, 0, 0),   // r2 = TARGET map
      INSN(0, 0, 0, 0, 0),
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0),                 // r1 = skb
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, 3, 10, 0, 0),                // r3 = fp
      INSN(BPF_ALU64 | BPF_ADD | BPF_K, 3, 0, 0, -8),                // r3 = &cookie
      INSN(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, 0),                 // r4 = 0: egress of the peer
      INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_redirect_hash),  // SK_PASS(redirect) or SK_DROP
      INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  prog[7].imm = map_target;
  static char log[65536];
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  a.prog_type = BPF_PROG_TYPE_SK_SKB;
  a.insns = (uint64_t)(uintptr_t)prog;
  a.insn_cnt = sizeof(prog) / sizeof(prog[0]);
  a.license = (uint64_t)(uintptr_t) "GPL";
  a.log_buf = (uint64_t)(uintptr_t)log;
  a.log_size = sizeof(log);
  a.log_level = 1;
  prog_fd = sys_bpf(BPF_PROG_LOAD, &a);
  if (prog_fd < 0) {
    fprintf(stderr, "BPF_PROG_LOAD: %s\nverifier log:\n%s\n", strerror(errno), log);
    exit(1);
  }
  memset(&a, 0, sizeof(a));
  a.target_fd = map_active;
  a.attach_bpf_fd = prog_fd;
  a.attach_type = BPF_SK_SKB_STREAM_VERDICT;
  if (sys_bpf(BPF_PROG_ATTACH, &a) < 0) { perror("BPF_PROG_ATTACH"); exit(1); }
}

static int map_put(int map, uint64_t key, int fd) {
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  uint32_t v = fd;
  a.map_fd = map;
  a.key = (uint64_t)(uintptr_t)&key;
  a.value = (uint64_t)(uintptr_t)&v;
  a.flags = BPF_ANY;
  return sys_bpf(BPF_MAP_UPDATE_ELEM, &a);
}

static void map_del(int map, uint64_t key) {
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  a.map_fd = map;
  a.key = (uint64_t)(uintptr_t)&key;
  sys_bpf(BPF_MAP_DELETE_ELEM, &a); // ENOENT is normal: close() already removed it
}

enum { CONNECTING, COPY, SPLICED };

struct conn;
struct ep { struct conn *c; int side; };
struct conn {
  int fd[2]; // 0 = client, 1 = backend
  int state;
  struct ep ep[2];
  uint32_t ev[2];
  // copy mode: buf[i] holds bytes read from fd[i], to be written to fd[1-i]
  char *buf[2];
  uint32_t len[2], off[2];
  int rd_eof[2], wr_shut[2];
  // sockmap mode
  uint64_t cookie[2], base_acked[2];
  int waiting[2]; // direction i (fd[i] -> fd[1-i]) got EOF, FIN not yet forwarded
  struct conn *wnext; int on_wlist;
  int dead; struct conn *dnext; // freed after the epoll batch: later events of the batch may name it
};
static struct conn *deadlist;
static int epfd;
static struct conn *wlist; // sockmap conns with a direction waiting to forward its FIN

static void setnodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (opt_sndbuf) setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &opt_sndbuf, sizeof(opt_sndbuf));
}

static void ep_set(struct conn *c, int side, uint32_t ev) {
  if (c->ev[side] == ev) return;
  struct epoll_event e = {.events = ev, .data.ptr = &c->ep[side]};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd[side], &e);
  c->ev[side] = ev;
}

static void conn_free(struct conn *c) {
  if (c->dead) return;
  c->dead = 1;
  for (int i = 0; i < 2; i++) {
    if (c->fd[i] >= 0) {
      if (c->state == SPLICED) { map_del(map_active, c->cookie[i]); map_del(map_target, c->cookie[1 - i]); }
      close(c->fd[i]);
    }
  }
  if (c->on_wlist) { // unlink
    for (struct conn **p = &wlist; *p; p = &(*p)->wnext)
      if (*p == c) { *p = c->wnext; break; }
    c->on_wlist = 0;
  }
  c->dnext = deadlist; deadlist = c;
}

static uint64_t cookie_of(int fd) {
  uint64_t ck = 0; socklen_t l = sizeof(ck);
  getsockopt(fd, SOL_SOCKET, SO_COOKIE, &ck, &l);
  return ck;
}

static void tcpinfo(int fd, uint64_t *acked, uint64_t *received) {
  struct tcp_info ti; socklen_t l = sizeof(ti);
  memset(&ti, 0, sizeof(ti));
  getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l);
  if (acked) *acked = ti.tcpi_bytes_acked;
  if (received) *received = ti.tcpi_bytes_received;
}

// ---- copy mode ----
static void copy_update(struct conn *c) {
  for (int i = 0; i < 2; i++) {
    int o = 1 - i;
    uint32_t ev = 0;
    if (!c->rd_eof[i] && c->len[i] == 0) ev |= EPOLLIN; // read side i when its buffer is empty
    if (c->len[o] > c->off[o]) ev |= EPOLLOUT;           // write side i what side o read
    ep_set(c, i, ev);
  }
}

static int copy_flush(struct conn *c, int i) { // write buf[i] to fd[1-i]; -1 on error
  int o = 1 - i;
  while (c->off[i] < c->len[i]) {
    ssize_t n = write(c->fd[o], c->buf[i] + c->off[i], c->len[i] - c->off[i]);
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    c->off[i] += n;
  }
  c->off[i] = c->len[i] = 0;
  if (c->rd_eof[i] && !c->wr_shut[o]) { shutdown(c->fd[o], SHUT_WR); c->wr_shut[o] = 1; }
  return 0;
}

static void copy_event(struct conn *c, int side, uint32_t ev) {
  if (ev & EPOLLERR) { conn_free(c); return; }
  if (ev & EPOLLOUT) { if (copy_flush(c, 1 - side) < 0) { conn_free(c); return; } }
  if ((ev & (EPOLLIN | EPOLLHUP)) && !c->rd_eof[side] && c->len[side] == 0) {
    ssize_t n = read(c->fd[side], c->buf[side], BUFSZ);
    if (n > 0) { c->len[side] = n; c->off[side] = 0; }
    else if (n == 0) c->rd_eof[side] = 1;
    else if (errno != EAGAIN) { conn_free(c); return; }
    if (copy_flush(c, side) < 0) { conn_free(c); return; }
  }
  if (c->rd_eof[0] && c->rd_eof[1] && c->wr_shut[0] && c->wr_shut[1]) { conn_free(c); return; }
  copy_update(c);
}

static void to_copy(struct conn *c) {
  c->state = COPY;
  for (int i = 0; i < 2; i++) c->buf[i] = malloc(BUFSZ);
  c->ev[0] = c->ev[1] = ~0u; // force MOD
  copy_update(c);
}

// ---- sockmap mode ----
// Has everything fd[i] received entered fd[1-i]'s send queue?
static int drained(struct conn *c, int i) {
  int o = 1 - i;
  uint64_t rcv, acked; int outq = 0;
  tcpinfo(c->fd[i], NULL, &rcv);
  tcpinfo(c->fd[o], &acked, NULL);
  ioctl(c->fd[o], SIOCOUTQ, &outq);
  uint64_t in = rcv - 1, out = acked - c->base_acked[o] + (uint64_t)outq;
  if (verbose > 1) fprintf(stderr, "drain %d: in=%llu out=%llu\n", i, (unsigned long long)in, (unsigned long long)out);
  return out >= in;
}

static void spliced_check(struct conn *c) {
  for (int i = 0; i < 2; i++)
    if (c->waiting[i] && drained(c, i)) {
      if (verbose > 1) fprintf(stderr, "shutdown(SHUT_WR) side %d\n", 1 - i);
      shutdown(c->fd[1 - i], SHUT_WR);
      c->wr_shut[1 - i] = 1;
      c->waiting[i] = 0;
    }
  int wait = c->waiting[0] || c->waiting[1];
  if (wait && !c->on_wlist) { c->wnext = wlist; wlist = c; c->on_wlist = 1; }
  if (!wait && c->on_wlist) {
    for (struct conn **p = &wlist; *p; p = &(*p)->wnext)
      if (*p == c) { *p = c->wnext; break; }
    c->on_wlist = 0;
  }
  if (c->rd_eof[0] && c->rd_eof[1] && c->wr_shut[0] && c->wr_shut[1]) conn_free(c);
}

static void spliced_event(struct conn *c, int side, uint32_t ev) {
  if (verbose > 1) {
    int err = 0; socklen_t l = sizeof(err);
    if (ev & EPOLLERR) getsockopt(c->fd[side], SOL_SOCKET, SO_ERROR, &err, &l);
    fprintf(stderr, "event side %d: %#x %s\n", side, ev, err ? strerror(err) : "");
  }
  if (ev & EPOLLERR) { conn_free(c); return; }
  if ((ev & (EPOLLRDHUP | EPOLLHUP)) && !c->rd_eof[side]) {
    c->rd_eof[side] = 1;
    c->waiting[side] = 1;
  }
  spliced_check(c);
}

static void to_spliced(struct conn *c) {
  for (int i = 0; i < 2; i++) {
    c->cookie[i] = cookie_of(c->fd[i]);
    tcpinfo(c->fd[i], &c->base_acked[i], NULL); // nothing written yet: acked = SYN only
  }
  // TARGET first (both), then ACTIVE: a socket's program never runs without its peer present
  if (map_put(map_target, c->cookie[0], c->fd[1]) < 0 || map_put(map_target, c->cookie[1], c->fd[0]) < 0 ||
      map_put(map_active, c->cookie[1], c->fd[1]) < 0 || map_put(map_active, c->cookie[0], c->fd[0]) < 0) {
    // e.g. the client already sent FIN (CLOSE_WAIT cannot be inserted): relay in user space.
    // Possible only while no socket is in ACTIVE yet, i.e. no byte went through the program.
    if (verbose) fprintf(stderr, "sockmap insert failed (%s): copy fallback\n", strerror(errno));
    map_del(map_target, c->cookie[0]); map_del(map_target, c->cookie[1]);
    map_del(map_active, c->cookie[1]); map_del(map_active, c->cookie[0]);
    n_fallback++;
    to_copy(c);
    return;
  }
  n_spliced++;
  c->state = SPLICED;
  for (int i = 0; i < 2; i++) {
    // Bytes queued before insertion: make TCP call sk_data_ready -> verdict program.
    int one = 1;
    if (!opt_nokick) setsockopt(c->fd[i], SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
    c->ev[i] = ~0u;
    ep_set(c, i, EPOLLRDHUP | EPOLLET); // no EPOLLIN: data never reaches our receive queue
  }
}

static void on_connected(struct conn *c) {
  int err = 0; socklen_t l = sizeof(err);
  getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &l);
  if (err) { conn_free(c); return; }
  if (mode_sockmap) to_spliced(c);
  else to_copy(c);
}

static void accept_all(int lfd) {
  for (;;) {
    int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) return;
    n_conns++;
    setnodelay(cfd);
    int bfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setnodelay(bfd);
    struct conn *c = calloc(1, sizeof(*c));
    c->fd[0] = cfd; c->fd[1] = bfd;
    c->ep[0] = (struct ep){c, 0}; c->ep[1] = (struct ep){c, 1};
    c->state = CONNECTING;
    struct epoll_event e = {.events = 0, .data.ptr = &c->ep[0]};
    epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &e); // nothing read from the client until the backend is up
    e.events = EPOLLOUT; e.data.ptr = &c->ep[1];
    epoll_ctl(epfd, EPOLL_CTL_ADD, bfd, &e);
    c->ev[1] = EPOLLOUT;
    if (connect(bfd, (struct sockaddr *)&backend_addr, sizeof(backend_addr)) < 0 && errno != EINPROGRESS) {
      conn_free(c);
      continue;
    }
  }
}

static int parse_addr(const char *s, struct sockaddr_in *a) {
  char host[64]; const char *colon = strrchr(s, ':');
  if (!colon || colon - s >= (long)sizeof(host)) return -1;
  memcpy(host, s, colon - s); host[colon - s] = 0;
  memset(a, 0, sizeof(*a));
  a->sin_family = AF_INET;
  a->sin_port = htons(atoi(colon + 1));
  return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

int main(int argc, char **argv) {
  const char *listen_s = NULL, *backend_s = NULL, *mode = "copy";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--listen") && i + 1 < argc) listen_s = argv[++i];
    else if (!strcmp(argv[i], "--backend") && i + 1 < argc) backend_s = argv[++i];
    else if (!strcmp(argv[i], "--mode") && i + 1 < argc) mode = argv[++i];
    else if (!strcmp(argv[i], "--sndbuf") && i + 1 < argc) opt_sndbuf = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--no-kick")) opt_nokick = 1;
    else if (!strcmp(argv[i], "-v")) verbose++;
    else { fprintf(stderr, "relay: unknown argument '%s'\n", argv[i]); return 2; }
  }
  struct sockaddr_in la;
  if (!listen_s || !backend_s || parse_addr(listen_s, &la) || parse_addr(backend_s, &backend_addr)) {
    fprintf(stderr, "usage: relay --listen IP:PORT --backend IP:PORT [--mode copy|sockmap]\n");
    return 2;
  }
  if (!strcmp(mode, "sockmap")) { mode_sockmap = 1; bpf_setup(); }
  else if (strcmp(mode, "copy")) { fprintf(stderr, "relay: --mode must be copy or sockmap, got '%s'\n", mode); return 2; }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_sig);
  signal(SIGINT, on_sig);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(lfd, (struct sockaddr *)&la, sizeof(la)) < 0 || listen(lfd, 4096) < 0) { perror("listen"); return 1; }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &e);
  fprintf(stderr, "relay: %s mode, %s -> %s\n", mode, listen_s, backend_s);
  struct epoll_event evs[256];
  while (!stop) {
    int n = epoll_wait(epfd, evs, 256, wlist ? 1 : 1000);
    for (int k = 0; k < n; k++) {
      struct ep *p = evs[k].data.ptr;
      if (!p) { accept_all(lfd); continue; }
      struct conn *c = p->c;
      if (c->dead) continue;
      if (c->state == CONNECTING) { if (p->side == 1) on_connected(c); }
      else if (c->state == COPY) copy_event(c, p->side, evs[k].events);
      else spliced_event(c, p->side, evs[k].events);
    }
    for (struct conn *c = wlist, *nx; c; c = nx) { nx = c->wnext; spliced_check(c); }
    while (deadlist) { struct conn *c = deadlist; deadlist = c->dnext; free(c->buf[0]); free(c->buf[1]); free(c); }
  }
  fprintf(stderr, "relay: %ld connections, %ld spliced, %ld copy fallbacks\n", n_conns, n_spliced, n_fallback);
  return 0;
}
