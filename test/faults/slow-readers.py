#!/usr/bin/env python3
"""Slow-reader crowd for test/faults/slow-readers.test.ts.

Usage: python3 slow-readers.py HOST PORT LOCALS COUNT RATE FOR_MS RCVBUF SEED BLOCK_SIZE
  LOCALS  comma-separated local addresses, used in turn (connection i binds LOCALS[i % len])
  RATE    bytes per second each connection reads
  FOR_MS  how long each connection lives, from the moment it is opened
  RCVBUF  SO_RCVBUF set on every socket before connect (0: leave the kernel default)

Opens COUNT connections, 20 every 100 ms (as the Node readers did). Each one
sends "S" (names it a slow reader in the backend's report), then reads at
most 8 KiB, waits as long as RATE takes for that many bytes, reads again...
and checks every byte against the backend's pattern stream
(stream[i] = block[i % BLOCK_SIZE], block from the LCG of patternBlock in
helpers.ts). After FOR_MS the connection is closed (with unread data: a reset,
as Node's destroy()). One process, one selector, all connections.

Prints JSON lines on stdout:
  {"ready": true, "block": SHA256_OF_BLOCK}          before the first connect
  {"started": true, "rcvbuf": N, "maxseg": N}        once every connection is opened
  {"done": true, "results": [{"bytes", "ok", "error"?}, ...]}   at the end
Exits when stdin reaches its end (the test went away).
"""
import errno
import hashlib
import heapq
import json
import selectors
import socket
import sys
import time

BATCH = 20
BATCH_GAP = 0.1
READ_MAX = 8192


def pattern_block(seed, size):
    b = bytearray(size)
    x = seed & 0xFFFFFFFF
    for i in range(size):
        x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
        b[i] = x >> 24
    return bytes(b)


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def err_name(e):
    if isinstance(e, OSError) and e.errno is not None:
        return errno.errorcode.get(e.errno, str(e.errno))
    return str(e)


def main():
    host, port, locals_, count, rate, for_ms, rcvbuf, seed, size = sys.argv[1:10]
    port, count, rate, rcvbuf, seed, size = int(port), int(count), float(rate), int(rcvbuf), int(seed), int(size)
    maxseg = int(sys.argv[10]) if len(sys.argv) > 10 else 0
    for_s = int(for_ms) / 1000
    local_addrs = locals_.split(",")
    block = pattern_block(seed, size)
    block2 = block + block  # a read (<= 8 KiB) starting anywhere in the block is one slice of this

    sel = selectors.DefaultSelector()
    conns = []  # per connection: dict(sock, off, ok, error, done, stop_at, state)
    timers = []  # heap of (at, seq, kind, index)
    seq = 0
    live = 0
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, None)

    def push(at, kind, i):
        nonlocal seq
        seq += 1
        heapq.heappush(timers, (at, seq, kind, i))

    def finish(i, error=None):
        nonlocal live
        c = conns[i]
        if c["done"]:
            return
        c["done"] = True
        live -= 1
        if error is not None and c["error"] is None:
            c["error"] = error
        s = c["sock"]
        if c["registered"]:
            sel.unregister(s)
            c["registered"] = False
        s.close()

    def open_one(i):
        nonlocal live
        c = {"off": 0, "ok": True, "error": None, "done": False, "registered": False, "state": "connecting"}
        conns.append(c)
        live += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c["sock"] = s
        push(time.monotonic() + for_s, "stop", i)
        try:
            if rcvbuf > 0:
                # Before connect: the window scale in the SYN is chosen from it.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            if maxseg > 0:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, maxseg)
            s.bind((local_addrs[i % len(local_addrs)], 0))
            s.setblocking(False)
            rc = s.connect_ex((host, port))
            if rc not in (0, errno.EINPROGRESS):
                return finish(i, errno.errorcode.get(rc, str(rc)))
            sel.register(s, selectors.EVENT_WRITE, i)
            c["registered"] = True
        except OSError as e:
            finish(i, err_name(e))

    def on_event(i, mask):
        c = conns[i]
        if c["done"]:
            return
        s = c["sock"]
        if c["state"] == "connecting":
            rc = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if rc != 0:
                return finish(i, errno.errorcode.get(rc, str(rc)))
            c["state"] = "reading"
            try:
                s.send(b"S")
            except OSError as e:
                return finish(i, err_name(e))
            sel.modify(s, selectors.EVENT_READ, i)
            return
        try:
            d = s.recv(READ_MAX)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            return finish(i, err_name(e))
        if not d:
            return finish(i)  # the stream ended
        n = len(d)
        if c["ok"]:
            pos = c["off"] % size
            if block2[pos:pos + n] != d:
                c["ok"] = False
        c["off"] += n
        sel.unregister(s)
        c["registered"] = False
        push(time.monotonic() + n / rate, "resume", i)

    say({"ready": True, "block": hashlib.sha256(block).hexdigest()})
    opened = 0
    next_batch = time.monotonic()
    started_said = False
    while opened < count or live > 0:
        now = time.monotonic()
        while opened < count and now >= next_batch:
            for _ in range(min(BATCH, count - opened)):
                open_one(opened)
                opened += 1
            next_batch += BATCH_GAP
        if opened == count and not started_said:
            started_said = True
            probe = next((c["sock"] for c in conns if not c["done"]), None)
            info = {"started": True}
            if probe is not None:
                info["rcvbuf"] = probe.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
                info["maxseg"] = probe.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
            say(info)
        while timers and timers[0][0] <= now:
            _, _, kind, i = heapq.heappop(timers)
            c = conns[i]
            if c["done"]:
                continue
            if kind == "stop":
                finish(i)
            elif not c["registered"]:
                sel.register(c["sock"], selectors.EVENT_READ, i)
                c["registered"] = True
        wake = [t for t in (timers[0][0] if timers else None, next_batch if opened < count else None) if t is not None]
        timeout = max(0.0, min(wake) - time.monotonic()) if wake else None
        if opened == count and live == 0:
            break
        for key, mask in sel.select(timeout):
            if key.data is None:
                if not sys.stdin.buffer.raw.read(4096):
                    sys.exit(0)  # the test is gone
                continue
            on_event(key.data, mask)

    results = []
    for c in conns:
        r = {"bytes": c["off"], "ok": c["ok"]}
        if c["error"] is not None:
            r["error"] = c["error"]
        results.append(r)
    say({"done": True, "results": results})


if __name__ == "__main__":
    main()
