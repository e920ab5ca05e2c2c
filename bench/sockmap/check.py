#!/usr/bin/env python3
"""Correctness checks of relay.c in copy and sockmap modes (bench/sockmap/README.md).

  python3 bench/sockmap/check.py [path/to/relay]   (compiles relay.c if no path is given)

1. bulk: 50 MB each way at the same time, sha256 compared on both ends; each side
   half-closes after sending and reads to EOF (FIN forwarded after the data).
2. half-close: the client sends 5 bytes, then shutdown(SHUT_WR) (a) 100 ms later
   (sockets already spliced) and (b) at once (FIN may arrive before the backend
   connect completes); the server answers 1 MiB only after it read EOF.
3. slow reader: the server pushes 20 MB (env PUSH_MB), the client reads 1 KiB every 10 ms for
   8 s; prints what the server managed to send, relay RSS, sockstat, ss -tm.
Loopback 127.0.0.2/.3/.5, ports 19020-19023; everything bounded in time.
"""
import hashlib, os, random, socket, subprocess, sys, tempfile, threading, time

BACKEND = ('127.0.0.2', 19020)
RELAYS = {'copy': ('127.0.0.3', 19021), 'sockmap': ('127.0.0.5', 19023)}
N = 50 * 1000 * 1000
DATA_C = random.Random(1).randbytes(N)
DATA_S = random.Random(2).randbytes(N)
results = []


def report(name, ok, detail=''):
    results.append(ok)
    print(f"  {'PASS' if ok else 'FAIL'} {name} {detail}", flush=True)


class Server:
    """One backend; `handler` is swapped per test."""
    def __init__(self):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(BACKEND)
        self.ls.listen(128)
        self.handler = None
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            s, _ = self.ls.accept()
            threading.Thread(target=self.handler, args=(s,), daemon=True).start()


def recv_all(s, h=None, limit=None):
    n = 0
    while True:
        b = s.recv(1 << 20)
        if not b:
            return n
        n += len(b)
        if h: h.update(b)


def send_all(s, data):
    mv = memoryview(data)
    for i in range(0, len(mv), 1 << 20):
        s.sendall(mv[i:i + (1 << 20)])


srv_state = {}


def h_bulk(s):
    s.settimeout(30)
    h = hashlib.sha256()
    t = threading.Thread(target=lambda: srv_state.__setitem__('n', recv_all(s, h)))
    t.start()
    send_all(s, DATA_S)
    s.shutdown(socket.SHUT_WR)
    t.join()
    srv_state['h'] = h.hexdigest()
    s.close()


def t_bulk(addr):
    srv_state.clear()
    c = socket.create_connection(addr)
    c.settimeout(30)
    h = hashlib.sha256()
    got = {}
    t = threading.Thread(target=lambda: got.__setitem__('n', recv_all(c, h)))
    t.start()
    t0 = time.time()
    send_all(c, DATA_C)
    c.shutdown(socket.SHUT_WR)
    t.join(35)
    time.sleep(0.2)
    c.close()
    ok_c = h.hexdigest() == hashlib.sha256(DATA_S).hexdigest()
    ok_s = srv_state.get('h') == hashlib.sha256(DATA_C).hexdigest()
    report('50 MB both ways, sha256', ok_c and ok_s,
           f"(client got {got.get('n')} ok={ok_c}, server got {srv_state.get('n')} ok={ok_s}, {time.time() - t0:.2f}s)")


PUSH = int(os.environ.get('PUSH_MB', '20')) * 1000 * 1000
ANSWER = random.Random(3).randbytes(1 << 20)


def h_halfclose(s):
    s.settimeout(10)
    n = recv_all(s)       # until the client's FIN arrives through the relay
    srv_state['req'] = n
    time.sleep(0.2)
    send_all(s, ANSWER)
    s.close()


def t_halfclose(addr, delay):
    srv_state.clear()
    c = socket.create_connection(addr)
    c.settimeout(10)
    c.sendall(b'hello')
    if delay: time.sleep(delay)
    c.shutdown(socket.SHUT_WR)
    h = hashlib.sha256()
    try:
        n = recv_all(c, h)
    except Exception as e:
        n = f'error {e}'
    c.close()
    ok = srv_state.get('req') == 5 and h.digest() == hashlib.sha256(ANSWER).digest()
    report(f'half-close (shutdown {int(delay * 1000)} ms after sending)', ok,
           f"(server read {srv_state.get('req')} B then EOF; client got {n} B of 1048576)")


def h_push(s):
    s.setblocking(True)
    srv_state['sent'] = 0
    chunk = b'x' * 65536
    s.settimeout(12)
    try:
        while srv_state['sent'] < PUSH and not srv_state.get('stop'):
            srv_state['sent'] += s.send(chunk)
    except Exception:
        pass
    s.close()


def rss(pid):
    for line in open(f'/proc/{pid}/status'):
        if line.startswith('VmRSS'):
            return line.split()[1] + ' kB'


def memavail():
    for line in open('/proc/meminfo'):
        if line.startswith('MemAvailable'):
            return int(line.split()[1]) // 1024


def sockstat():
    for line in open('/proc/net/sockstat'):
        if line.startswith('TCP:'):
            return line.strip()


def ss_mem(port):
    out = subprocess.run(['ss', '-tmnH', f'( sport = :{port} or dport = :{BACKEND[1]} )'],
                         capture_output=True, text=True).stdout
    lines = out.strip().split('\n')
    return [' '.join(lines[i].split()[:5]) + ' ' + lines[i + 1].strip() if i + 1 < len(lines) else lines[i]
            for i in range(0, len(lines), 2)]


def t_slow(addr, pid):
    srv_state.clear()
    c = socket.create_connection(addr)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    got = 0
    t0 = time.time()
    samples = []
    last = 0
    m0 = memavail()
    while time.time() - t0 < 8:
        b = c.recv(1024)
        got += len(b)
        time.sleep(0.01)
        if time.time() - last >= 2:
            last = time.time()
            samples.append((round(time.time() - t0, 1), srv_state.get('sent', 0), got, rss(pid), f'MemAvailable -{m0 - memavail()} MB'))
    print(f'    (t s, server sent B, client read B, relay RSS, machine MemAvailable drop):')
    for x in samples: print(f'      {x}')
    print(f'    {sockstat()}')
    for l in ss_mem(addr[1]): print(f'    ss: {l}')
    inflight = srv_state.get('sent', 0) - got
    srv_state['stop'] = True
    c.close()
    report('slow reader bounded', inflight < 16 * 1000 * 1000,
           f'(server sent {srv_state.get("sent")} B while client read {got} B: {inflight} B in flight)')


def main():
    relay = sys.argv[1] if len(sys.argv) > 1 else None
    if not relay:
        relay = os.path.join(tempfile.mkdtemp(), 'relay')
        subprocess.run(['gcc', '-O2', '-o', relay, os.path.join(os.path.dirname(__file__), 'relay.c')], check=True)
    srv = Server()
    procs = []
    try:
        for mode, addr in RELAYS.items():
            p = subprocess.Popen([relay, '--listen', f'{addr[0]}:{addr[1]}', '--backend', f'{BACKEND[0]}:{BACKEND[1]}',
                                  '--mode', mode, '-v'], stderr=subprocess.PIPE, text=True)
            procs.append(p)
            time.sleep(0.3)
            print(f'{mode}:', flush=True)
            srv.handler = h_bulk; t_bulk(addr)
            srv.handler = h_halfclose; t_halfclose(addr, 0.1); t_halfclose(addr, 0)
            srv.handler = h_push; t_slow(addr, p.pid)
            time.sleep(0.5)
            p.terminate()
            print('    relay stderr: ' + ' | '.join(p.communicate(timeout=5)[1].strip().split('\n')), flush=True)
    finally:
        for p in procs:
            if p.poll() is None: p.kill()
    print('all passed' if all(results) else 'SOME FAILED')
    sys.exit(0 if all(results) else 1)


main()
