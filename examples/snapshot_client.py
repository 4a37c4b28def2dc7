#!/usr/bin/env python3
"""A SnapshotClient in Python, standard library only (3.9+): receives the versions a memfd SnapshotServer
publishes, checks each one the way the Node client does, maps it read-only and prints one JSON line per
version: {"version", "size", "sha256", "meta"}.

    python3 examples/snapshot_client.py PATH [--count N]     # PATH: a socket file, or @name for '\\0name'

The wire protocol (docs/snapshot.md): one seqpacket message per version, a 32-byte little-endian header
(magic 'MFDS', protocol u16 = 1, kind u16 = 1, version u64, size u64, meta length u32, reserved u32), the
meta as UTF-8 JSON, and one memfd. After taking a version the client answers with a 16-byte acknowledgement
(magic, protocol, kind u16 = 2, version u64); the server sends nothing newer until it has it.
"""
import argparse, fcntl, hashlib, json, mmap, os, socket, struct, sys

HEADER = struct.Struct('<IHHQQII')
ACK = struct.Struct('<IHHQ')
MAGIC = 0x5344464d  # b'MFDS' read as a little-endian u32
PROTOCOL, KIND_SNAPSHOT, KIND_ACK = 1, 1, 2
MAX_META = 64 * 1024
FROZEN = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


class InvalidSnapshot(Exception):
    pass


def check(msg, fds, flags, last_version):
    """Validates one message; returns (version, size, meta). Never trusts the server."""
    if flags & socket.MSG_CTRUNC:
        raise InvalidSnapshot('more fds than expected (the kernel dropped some)')
    if flags & socket.MSG_TRUNC:
        raise InvalidSnapshot('message larger than a snapshot header and meta')
    if len(fds) != 1:
        raise InvalidSnapshot(f'{len(fds)} fds instead of 1')
    if len(msg) < HEADER.size:
        raise InvalidSnapshot('shorter than the header')
    magic, protocol, kind, version, size, meta_len, _ = HEADER.unpack_from(msg)
    if magic != MAGIC or protocol != PROTOCOL or kind != KIND_SNAPSHOT:
        raise InvalidSnapshot(f'magic {magic:#x}, protocol {protocol}, kind {kind}')
    if meta_len != len(msg) - HEADER.size:
        raise InvalidSnapshot(f'meta length {meta_len} but {len(msg) - HEADER.size} bytes follow')
    if version <= last_version:
        raise InvalidSnapshot(f'version {version} after {last_version}')
    meta = json.loads(msg[HEADER.size:].decode('utf-8'))
    fd = fds[0]
    # F_GET_SEALS answers for any tmpfs file too; the /memfd: name tells a memfd from a /dev/shm file.
    if not os.readlink(f'/proc/self/fd/{fd}').startswith('/memfd:'):
        raise InvalidSnapshot('the fd is not a memfd')
    seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    if seals & FROZEN != FROZEN:
        raise InvalidSnapshot(f'seals {seals:#x} lack some of seal|shrink|grow|write')
    actual = os.fstat(fd).st_size
    if actual != size:
        raise InvalidSnapshot(f'the memfd holds {actual} bytes, {size} were announced')
    return version, size, meta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('path')
    ap.add_argument('--count', type=int, default=0, help='exit after this many versions (0: until the server goes)')
    args = ap.parse_args()
    address = '\0' + args.path[1:] if args.path.startswith('@') else args.path
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(address)
    last = 0
    seen = 0
    while True:
        msg, fds, flags, _ = socket.recv_fds(sock, HEADER.size + MAX_META, 1, socket.MSG_CMSG_CLOEXEC)
        if not msg and not fds:
            break  # the server went away
        try:
            version, size, meta = check(msg, fds, flags, last)
        except (InvalidSnapshot, ValueError) as e:
            for fd in fds:
                os.close(fd)
            print(json.dumps({'error': str(e)}), flush=True)
            sys.exit(2)
        fd = fds[0]
        sock.send(ACK.pack(MAGIC, PROTOCOL, KIND_ACK, version))
        last = version
        if size:
            # Sealed against shrinking: this mapping can never fault past the end of the file.
            with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ) as view:
                digest = hashlib.sha256(view).hexdigest()
        else:
            digest = hashlib.sha256(b'').hexdigest()
        os.close(fd)
        print(json.dumps({'version': version, 'size': size, 'sha256': digest, 'meta': meta}), flush=True)
        seen += 1
        if args.count and seen >= args.count:
            break
    sock.close()


if __name__ == '__main__':
    main()
