// A hostile python3 peer on the other end of a Unix socket (test/hostile-peer.py): garbage, malformed
// control messages, partial stream messages, 253 fds, fds of every kind, then it disappears. The Node side
// must report clear errors, adopt only real memfds that pass MemFile.fromFd's checks, and leak no fd.
//
// Needs UnixSocket (issue 4): skipped, with that reason, until it is exported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as lib from '../dist/index.js';
import { collectGarbage, emulationSkip, fdCount } from './helpers.mjs';

const { MemFile } = lib;
const { UnixSocket } = lib;
const PEER = new URL('./hostile-peer.py', import.meta.url).pathname;
const hasPython = spawnSync('python3', ['-c', 'import os, socket; os.memfd_create; socket.CMSG_SPACE'], { stdio: 'ignore' }).status === 0;
const skip = !UnixSocket ? 'UnixSocket is not exported yet (issue 4); these tests run as soon as it is'
  : !hasPython ? 'python3 (3.8+ with os.memfd_create) is not installed' : false;

/** Starts the peer with `theirs` as its fd 3; resolves its JSON events and exit when it is gone. */
function startPeer(scenario, theirs) {
  const child = spawn('python3', [PEER, scenario], { stdio: ['ignore', 'pipe', 'pipe', theirs.fd] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({
      code, signal, stderr: err, events: out.split('\n').filter(Boolean).map((l) => JSON.parse(l)),
    }));
  });
  return { child, exited };
}

/** A pair whose far end goes to the peer; our copy of the far end is closed once the peer has it. */
async function withPeer(scenario, options, fn) {
  await collectGarbage();
  const before = fdCount();
  const [ours, theirs] = UnixSocket.pair(options);
  const peer = startPeer(scenario, theirs);
  await new Promise((r) => peer.child.once('spawn', r));
  theirs.close();
  try {
    await fn(ours, peer);
  } finally {
    ours.close();
    peer.child.kill('SIGKILL');
    await peer.exited;
  }
  await collectGarbage();
  assert.equal(fdCount(), before, 'every fd the peer sent is closed again, and the sockets are closed');
}

/** Every message until the end of the stream; closes each one (and so every fd it carried). */
async function drain(socket, onMessage = () => {}) {
  const messages = [];
  for (;;) {
    const msg = await socket.receive();
    if (msg === null) return messages;
    try {
      await onMessage(msg);
      messages.push({ data: Buffer.from(msg.data), fds: msg.fds.length });
    } finally {
      msg.close();
    }
  }
}

test('garbage and malformed control messages: data arrives intact, nothing else arrives, no crash', { skip }, async (t) => {
  await withPeer('garbage', { type: 'seqpacket' }, async (ours, peer) => {
    const messages = await drain(ours);
    const { events, code, stderr } = await peer.exited;
    assert.equal(code, 0, stderr);
    const sent = events.filter((e) => e.sent).map((e) => e.sent);
    const attempts = events.filter((e) => e.attempt);
    const delivered = attempts.filter((a) => a.ok).length;
    // Every payload that was sent arrives once, byte for byte, in order, empty ones included.
    const payloads = messages.slice(0, sent.length).map((m) => createHash('sha256').update(m.data).digest('hex'));
    assert.deepEqual(payloads, sent, 'payloads, including empty seqpacket messages, arrive intact and in order');
    assert.equal(messages.length, sent.length + delivered, 'malformed attempts the kernel accepted arrive as plain data');
    for (const m of messages) assert.equal(m.fds, 0, 'no fd arrives from a malformed or fd-less message');
    // The kernel refuses the malformed SCM_RIGHTS on the sending side.
    const refused = Object.fromEntries(attempts.map((a) => [a.attempt, a.ok ? 'ok' : a.errno]));
    t.diagnostic(`payloads ${sent.length}, messages ${messages.length}; malformed sends (errno or ok): ${JSON.stringify(refused)}`);
    const EBADF = 9, EINVAL = 22;
    assert.equal(refused['SCM_RIGHTS with an fd that is not open'], EBADF, JSON.stringify(refused));
    assert.equal(refused['SCM_RIGHTS with a negative fd'], EBADF, JSON.stringify(refused));
    for (const [what, verdict] of Object.entries(refused)) {
      assert.ok(verdict === 'ok' || verdict === EINVAL || verdict === EBADF, `${what}: judged by the kernel, not ${verdict}`);
    }
  });
});

test('partial stream message, fds on a middle byte, peer killed mid-message: all bytes, both fds, then end', { skip }, async () => {
  await withPeer('partial', { type: 'stream' }, async (ours, peer) => {
    let fds = 0;
    const messages = await drain(ours, (msg) => {
      fds += msg.fds.length;
      for (const fd of msg.fds) {
        // Pipe ends: not memfds. Refused with a clear error, left to the message, which closes them.
        assert.throws(() => MemFile.fromFd(fd), (e) => e.code === 'ERR_MEMFD_NOT_A_MEMFD' && /pipe:/.test(e.message));
      }
    });
    const { events, signal } = await peer.exited;
    assert.equal(signal, 'SIGKILL');
    const [{ sent, sha }] = events;
    const all = Buffer.concat(messages.map((m) => m.data));
    assert.equal(all.length, sent, 'every byte that was sent arrives, however it was split');
    assert.equal(createHash('sha256').update(all).digest('hex'), sha);
    assert.equal(fds, 2, 'both fds attached to the middle chunk arrive exactly once');
  });
});

// Under qemu-user the fds of the truncated message stay open (fdBudget), which withPeer's fd count catches.
test('253 fds in one message are all received and adoptable; 254 are refused by the kernel; a smaller budget is a clear error', { skip: skip || emulationSkip('fdBudget') }, async () => {
  await withPeer('many-fds', { type: 'seqpacket' }, async (ours, peer) => {
    const first = await ours.receive();
    try {
      assert.equal(first.data.toString(), '253 fds');
      assert.equal(first.fds.length, 253);
      for (let i = 0; i < 253; i++) {
        const f = MemFile.fromFd(first.fds[i], { requireSeals: ['write', 'shrink', 'grow', 'seal'] });
        assert.equal(f.readAllSync().toString(), `fd ${i}`);
        f.close();
      }
    } finally {
      first.close();
    }
    const before = fdCount();
    // The second 253-fd message against a budget of 16: rejected with a clear error, the fds that did
    // arrive are closed, and the stream goes on with the next message.
    await assert.rejects(ours.receive({ maxFds: 16 }), (e) => e.code === 'ERR_MEMFD_FDS_TRUNCATED' && /fd/.test(e.message));
    assert.equal(fdCount(), before, 'fds of a truncated message are closed');
    const last = await ours.receive();
    assert.equal(last.data.toString(), 'done');
    last.close();
    const { events } = await peer.exited;
    const tooMany = events.find((e) => e.attempt === '254 fds in one message');
    assert.equal(tooMany.ok, false, 'the kernel refuses more than SCM_MAX_FD (253) fds');
  });
});

test('fds of every kind: only the sealed memfd passes fromFd with requireSeals; the rest are refused clearly and closed', { skip }, async () => {
  await withPeer('kinds', { type: 'seqpacket' }, async (ours) => {
    const msg = await ours.receive();
    try {
      const kinds = JSON.parse(msg.data.toString());
      assert.equal(msg.fds.length, kinds.length);
      const verdicts = {};
      for (let i = 0; i < kinds.length; i++) {
        try {
          const f = MemFile.fromFd(msg.fds[i], { requireSeals: ['write', 'shrink'] });
          verdicts[kinds[i]] = `adopted: ${f.readAllSync()}`;
          f.close();
        } catch (e) {
          assert.ok(e instanceof Error && typeof e.code === 'string', `${kinds[i]}: a coded error`);
          assert.match(e.message, /fd \d+/, `${kinds[i]}: the message names the fd`);
          assert.match(e.message, /left open/, `${kinds[i]}: the message says who owns the fd now`);
          verdicts[kinds[i]] = e.code;
          assert.equal(MemFile.isMemFd(msg.fds[i]), kinds[i] === 'memfd without seals', `${kinds[i]}: isMemFd`);
        }
      }
      const expected = {
        pipe: 'ERR_MEMFD_NOT_A_MEMFD',
        socket: 'ERR_MEMFD_NOT_A_MEMFD',
        directory: 'ERR_MEMFD_NOT_A_MEMFD',
        'regular file': 'ERR_MEMFD_NOT_A_MEMFD',
        '/dev/null': 'ERR_MEMFD_NOT_A_MEMFD',
        '/dev/shm file named like a memfd': 'ERR_MEMFD_NOT_A_MEMFD',
        'memfd without seals': 'ERR_MEMFD_MISSING_SEALS',
        'sealed memfd': 'adopted: sealed content',
        eventfd: 'ERR_MEMFD_NOT_A_MEMFD',
      };
      for (const k of kinds) assert.equal(verdicts[k], expected[k], `${k}: ${verdicts[k]}`);
      assert.ok(kinds.includes('/dev/shm file named like a memfd') && kinds.includes('memfd without seals'));
    } finally {
      msg.close(); // closes every fd that fromFd refused
    }
  });
});

test('the peer is killed with 10 messages (200 fds) still queued: all of them are received and closed, then end of stream', { skip }, async () => {
  await withPeer('vanish', { type: 'seqpacket' }, async (ours, peer) => {
    const { signal } = await peer.exited; // gone before we read anything
    assert.equal(signal, 'SIGKILL');
    const messages = await drain(ours);
    assert.deepEqual(messages.map((m) => m.data.toString()), Array.from({ length: 10 }, (_, i) => `queued ${i}`));
    assert.ok(messages.every((m) => m.fds === 20));
  });
});

test('closing our end with fd-carrying messages unread leaks nothing in this process', { skip }, async () => {
  await withPeer('vanish', { type: 'seqpacket' }, async (ours, peer) => {
    await peer.exited;
    // ours is closed by withPeer without reading: the queued fds die with the socket in the kernel.
  });
});

test('a receive pending when the peer dies resolves with the end of the stream (null)', { skip }, async () => {
  await withPeer('exit', { type: 'seqpacket' }, async (ours, peer) => {
    const pending = ours.receive();
    await peer.exited;
    assert.equal(await pending, null);
  });
});
