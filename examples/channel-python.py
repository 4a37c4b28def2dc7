#!/usr/bin/env python3
"""A memfd Channel peer in Python, standard library only (mmap, os, ctypes for futex(2)).

It speaks wire format version 1 of docs/channel.md, as either end:

  python3 channel-python.py echo FD             claim end B of the channel on FD; send every message back
                                                with b"py:" in front until the Node end closes; then close.
  python3 channel-python.py drive N -- CMD...   create a channel (end A), run CMD with the fd number appended
                                                (the fd is inherited), send N numbered messages, read N
                                                replies, close, print the replies (hex) as JSON.

Python has no atomic instructions, so two things go through the kernel instead:
  - a full memory fence (needed by the sleep protocol: publish an index, then read the peer's sleep flag)
    is a FUTEX_WAKE_OP on a private scratch word: the kernel's atomic read-modify-write is a full barrier
    (lock-prefixed on x86-64, exclusive pair plus barrier on arm64);
  - claiming end B is an atomic add of 1 on the claim word through FUTEX_WAKE_OP: the claimer that reads 1
    afterwards owns end B (two racing claimers may both lose, never both win).
Aligned 32-bit loads and stores through ctypes are single instructions. Every wait has a timeout, so a
missed wake-up (which the protocol excludes) would cost latency, not a hang.
"""
import ctypes
import json
import mmap
import os
import platform
import select
import subprocess
import sys
import time

MAGIC, VERSION, HEADER_BYTES = 0x4344464D, 1, 4096
OFF_MAGIC, OFF_VERSION, OFF_HEADER_BYTES, OFF_RING_BYTES, OFF_CLAIM = 0, 4, 8, 12, 16
OFF_PID = (20, 24)
END_CLOSED, END_SLEEP, END_BELL = 0, 4, 8
RING_TAIL, RING_HEAD = 0, 64
SLEEP_DATA, SLEEP_SPACE = 1, 2
PAD = 0xFFFFFFFF
F_ADD_SEALS, F_GET_SEALS = 1033, 1034
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW = 1, 2, 4

SYS_FUTEX = {"x86_64": 202, "aarch64": 98}[platform.machine()]
FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAKE_OP, FUTEX_PRIVATE = 0, 1, 5, 128
FUTEX_OP_ADD, FUTEX_OP_CMP_EQ = 1, 0

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def futex_op(op, oparg, cmp=FUTEX_OP_CMP_EQ, cmparg=0):
    return (op << 28) | (cmp << 24) | ((oparg & 0xFFF) << 12) | (cmparg & 0xFFF)


_scratch = ctypes.c_uint32(0)


def fence():
    """A full memory barrier: the kernel adds 0 to a private word atomically."""
    a = ctypes.addressof(_scratch)
    libc.syscall(SYS_FUTEX, ctypes.c_void_p(a), FUTEX_WAKE_OP | FUTEX_PRIVATE, 0, ctypes.c_void_p(0),
                 ctypes.c_void_p(a), futex_op(FUTEX_OP_ADD, 0))


def frame_bytes(n):
    return (n + 4 + 7) & ~7


class ChannelError(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code


class Channel:
    def __init__(self, fd, end):
        self.fd, self.end, self.peer = fd, end, 1 - end
        size = os.fstat(fd).st_size
        self.mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._base = ctypes.addressof(ctypes.c_char.from_buffer(self.mm))
        self.cap = self.u32(OFF_RING_BYTES)
        self.mask = self.cap - 1
        tx, rx = end, 1 - end
        self.tx_data, self.rx_data = HEADER_BYTES + tx * self.cap, HEADER_BYTES + rx * self.cap
        self.i_tx_tail, self.i_tx_head = 256 + 128 * tx + RING_TAIL, 256 + 128 * tx + RING_HEAD
        self.i_rx_tail, self.i_rx_head = 256 + 128 * rx + RING_TAIL, 256 + 128 * rx + RING_HEAD
        self.i_my_sleep, self.i_my_bell = 64 + 64 * end + END_SLEEP, 64 + 64 * end + END_BELL
        self.i_my_closed = 64 + 64 * end + END_CLOSED
        self.i_peer_sleep, self.i_peer_bell = 64 + 64 * self.peer + END_SLEEP, 64 + 64 * self.peer + END_BELL
        self.i_peer_closed = 64 + 64 * self.peer + END_CLOSED
        self.tx_tail, self.rx_head = self.u32(self.i_tx_tail), self.u32(self.i_rx_head)
        self.pidfd = None
        self.peer_dead = False

    # -- shared memory access (aligned 32-bit words) --
    def u32(self, off):
        return ctypes.c_uint32.from_address(self._base + off).value

    def set_u32(self, off, value):
        ctypes.c_uint32.from_address(self._base + off).value = value & 0xFFFFFFFF

    def futex(self, off, op, val, timeout=None, off2=0, val3=0):
        ts = None
        if timeout is not None:
            ts = Timespec(int(timeout), int((timeout % 1) * 1e9))
        return libc.syscall(SYS_FUTEX, ctypes.c_void_p(self._base + off), op, val,
                            ctypes.byref(ts) if ts is not None else ctypes.c_void_p(0),
                            ctypes.c_void_p(self._base + off2), val3)

    def ring_peer(self):
        # Atomic add of 1 to the peer's bell, and wake whoever sleeps on it: one FUTEX_WAKE_OP.
        self.futex(self.i_peer_bell, FUTEX_WAKE_OP, 0x7FFFFFFF, None, self.i_peer_bell, futex_op(FUTEX_OP_ADD, 1))

    # -- construction --
    @classmethod
    def create(cls, size=1 << 16):
        assert size >= 64 and size & (size - 1) == 0
        fd = os.memfd_create("memfd-channel-py", os.MFD_ALLOW_SEALING)  # not close-on-exec: passed to a child
        os.ftruncate(fd, HEADER_BYTES + 2 * size)
        import fcntl
        fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
        mm = mmap.mmap(fd, HEADER_BYTES, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        mm[OFF_VERSION:OFF_VERSION + 4] = VERSION.to_bytes(4, "little")
        mm[OFF_HEADER_BYTES:OFF_HEADER_BYTES + 4] = HEADER_BYTES.to_bytes(4, "little")
        mm[OFF_RING_BYTES:OFF_RING_BYTES + 4] = size.to_bytes(4, "little")
        mm[OFF_PID[0]:OFF_PID[0] + 4] = os.getpid().to_bytes(4, "little")
        mm[OFF_MAGIC:OFF_MAGIC + 4] = MAGIC.to_bytes(4, "little")
        mm.close()
        return cls(fd, 0)

    @classmethod
    def from_fd(cls, fd):
        import fcntl
        seals = fcntl.fcntl(fd, F_GET_SEALS)
        if seals & (F_SEAL_SHRINK | F_SEAL_GROW) != F_SEAL_SHRINK | F_SEAL_GROW:
            raise ChannelError("ERR_MEMFD_NOT_A_CHANNEL", "not sealed against shrink and grow")
        size = os.fstat(fd).st_size
        if size < HEADER_BYTES:
            raise ChannelError("ERR_MEMFD_NOT_A_CHANNEL", "too small")
        head = mmap.mmap(fd, HEADER_BYTES, mmap.MAP_SHARED, mmap.PROT_READ)
        magic, version, hdr, ring = (int.from_bytes(head[i:i + 4], "little") for i in (0, 4, 8, 12))
        head.close()
        if magic != MAGIC or version != VERSION:
            raise ChannelError("ERR_MEMFD_NOT_A_CHANNEL", f"magic {magic:#x} version {version}")
        if hdr != HEADER_BYTES or ring < 64 or ring & (ring - 1) or size != HEADER_BYTES + 2 * ring:
            raise ChannelError("ERR_MEMFD_CHANNEL_CORRUPT", "sizes do not add up")
        ch = cls(fd, 1)
        if ch.u32(OFF_CLAIM) != 0:
            ch.mm_close()
            raise ChannelError("ERR_MEMFD_CHANNEL_END_TAKEN", "end B is taken")
        # Atomic add of 1 (no CAS in Python): whoever reads 1 afterwards won.
        ch.futex(OFF_CLAIM, FUTEX_WAKE_OP, 0, None, OFF_CLAIM, futex_op(FUTEX_OP_ADD, 1))
        if ch.u32(OFF_CLAIM) != 1:
            ch.mm_close()
            raise ChannelError("ERR_MEMFD_CHANNEL_END_TAKEN", "end B is taken")
        ch.set_u32(OFF_PID[1], os.getpid())
        fence()
        ch.ring_peer()
        return ch

    def mm_close(self):
        self.mm.close()

    # -- peer liveness --
    def peer_gone(self):
        if self.u32(self.i_peer_closed):
            return True
        if self.peer_dead:
            return True
        pid = self.u32(OFF_PID[self.peer])
        if pid and self.pidfd is None and pid != os.getpid():
            try:
                self.pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                self.peer_dead = True
        if self.pidfd is not None:
            p = select.poll()
            p.register(self.pidfd, select.POLLIN)
            if p.poll(0):
                self.peer_dead = True
        return self.peer_dead

    def wait(self, bit, ready):
        """Sleeps on this end's bell until ready() may be true (flag, fence, bell, look again, sleep)."""
        self.set_u32(self.i_my_sleep, self.u32(self.i_my_sleep) | bit)
        fence()
        bell = self.u32(self.i_my_bell)
        if not ready() and not self.peer_gone():
            self.futex(self.i_my_bell, FUTEX_WAIT, bell, 0.05)
        self.set_u32(self.i_my_sleep, 0)

    # -- writing --
    def _room(self, n):
        used = (self.tx_tail - self.u32(self.i_tx_head)) & 0xFFFFFFFF
        if used > self.cap:
            raise ChannelError("ERR_MEMFD_CHANNEL_CORRUPT", "reader's head out of range")
        return self.cap - used >= n

    def _publish_tail(self, tail):
        self.tx_tail = tail & 0xFFFFFFFF
        self.set_u32(self.i_tx_tail, self.tx_tail)
        fence()
        if self.u32(self.i_peer_sleep) & SLEEP_DATA:
            self.ring_peer()

    def try_send(self, data):
        n = len(data)
        if n > self.cap - 4:
            raise ValueError("message larger than the ring")
        need = frame_bytes(n)
        idx = self.tx_tail & self.mask
        if need > self.cap - idx:
            if not self._room(self.cap - idx):
                return False
            self.set_u32(self.tx_data + idx, PAD)
            self._publish_tail(self.tx_tail + self.cap - idx)
            idx = 0
        if not self._room(need):
            return False
        self.set_u32(self.tx_data + idx, n)
        self.mm[self.tx_data + idx + 4:self.tx_data + idx + 4 + n] = data
        self._publish_tail(self.tx_tail + need)
        return True

    def send(self, data):
        while not self.try_send(data):
            if self.peer_gone():
                raise ChannelError("ERR_MEMFD_CHANNEL_CLOSED", "the peer is gone")
            head = self.u32(self.i_tx_head)
            self.wait(SLEEP_SPACE, lambda: self.u32(self.i_tx_head) != head)

    # -- reading --
    def _publish_head(self, head):
        self.rx_head = head & 0xFFFFFFFF
        self.set_u32(self.i_rx_head, self.rx_head)
        fence()
        if self.u32(self.i_peer_sleep) & SLEEP_SPACE:
            self.ring_peer()

    def try_receive(self):
        """bytes, or None when nothing is waiting."""
        while True:
            tail = self.u32(self.i_rx_tail)
            avail = (tail - self.rx_head) & 0xFFFFFFFF
            if avail > self.cap or tail & 7:
                raise ChannelError("ERR_MEMFD_CHANNEL_CORRUPT", "writer's tail out of range")
            if avail == 0:
                return None
            idx = self.rx_head & self.mask
            n = self.u32(self.rx_data + idx)
            if n == PAD:
                if self.cap - idx > avail:
                    raise ChannelError("ERR_MEMFD_CHANNEL_CORRUPT", "padding passes the tail")
                self._publish_head(self.rx_head + self.cap - idx)
                continue
            if n > self.cap - 4 or idx + 4 + n > self.cap or frame_bytes(n) > avail:
                raise ChannelError("ERR_MEMFD_CHANNEL_CORRUPT", f"frame of {n} bytes")
            data = bytes(self.mm[self.rx_data + idx + 4:self.rx_data + idx + 4 + n])
            self._publish_head(self.rx_head + frame_bytes(n))
            return data

    def receive(self):
        """bytes, or None once the peer closed or died and everything was read."""
        while True:
            m = self.try_receive()
            if m is not None:
                return m
            if self.peer_gone():
                m = self.try_receive()  # what it published before closing is visible now
                return m
            self.wait(SLEEP_DATA, lambda: self.u32(self.i_rx_tail) != self.rx_head)

    def close(self):
        self.set_u32(self.i_my_closed, 1)
        fence()
        self.ring_peer()
        if self.pidfd is not None:
            os.close(self.pidfd)
        self._base = None
        self.mm.close()
        os.close(self.fd)


def main():
    if sys.argv[1] == "echo":
        ch = Channel.from_fd(int(sys.argv[2]))
        n = 0
        while True:
            m = ch.receive()
            if m is None:
                break
            ch.send(b"py:" + m)
            n += 1
        ch.close()
        print(json.dumps({"echoed": n}))
    elif sys.argv[1] == "drive":
        count = int(sys.argv[2])
        cmd = sys.argv[sys.argv.index("--") + 1:]
        ch = Channel.create(1 << 12)
        child = subprocess.Popen(cmd + [str(ch.fd)], pass_fds=[ch.fd])
        got = []
        for i in range(count):
            ch.send(f"msg {i} ".encode() + bytes(range(i % 50)))
            while True:  # read replies as they come, so that neither ring stays full
                m = ch.try_receive()
                if m is None:
                    break
                got.append(m.hex())
        while len(got) < count:
            m = ch.receive()
            if m is None:
                break
            got.append(m.hex())
        ch.close()  # the Node end sees the end of the stream and exits
        child.wait()
        print(json.dumps({"replies": got, "child": child.returncode}))


if __name__ == "__main__":
    main()
