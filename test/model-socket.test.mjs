// Model-based property test of UnixSocket (issue 4) on the real kernel: random sequences of sends (data
// and fds: MemFiles, raw fd numbers, a non-memfd), receives with every way of disposing of the fds
// (adopt with fromFd, take, close, a small fd budget), receives pending before the send, misuse, and
// closing either end. The model is two FIFO queues of messages: what was sent must arrive once, in order,
// byte for byte, with fds that refer to the same files; after a close, the other end drains its queue
// and then sees the end of the stream; sends to a closed peer fail with EPIPE. No fd may leak.
//
// Skipped, with that reason, until UnixSocket is exported (issue 4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import * as lib from '../dist/index.js';
import { assertError, assertOk, count, fdCount, fuzzParams, outcome, tally } from './model-harness.mjs';
import { collectGarbage, emulationSkip } from './helpers.mjs';

const { MemFile, UnixSocket } = lib;
const skip = UnixSocket ? false : 'UnixSocket is not exported yet (issue 4); this model runs as soon as it is';
const MAX_QUEUE = 12; // unreceived messages per direction: far below the socket buffer, so sends never wait

/** Pool entries that can be attached: memfds (as MemFile or raw number), and /dev/null (not a memfd). */
function makePool() {
  const files = [0, 1, 2, 3].map((i) => MemFile.from(`pool file ${i}`, { name: `pool-${i}`, seal: i % 2 === 0 }));
  const devnull = openSync('/dev/null', 'r');
  return { files, devnull, closedFile: (() => { const f = MemFile.create('closed'); f.close(); return f; })() };
}

function inodeOf(fd) {
  return fstatSync(fd).ino;
}

class Send {
  constructor(from, size, fds, asNumber) { Object.assign(this, { from, size, fds, asNumber }); }
  check(m) { return m.queues[1 - this.from].length < MAX_QUEUE; }
  async run(m, r) {
    const data = Buffer.alloc(this.size, (m.seq % 250) + 1);
    data.writeUInt32LE(m.seq, 0);
    const fds = this.fds.map((k) => (k === 4 ? r.pool.devnull : this.asNumber ? r.pool.files[k].fd : r.pool.files[k]));
    const res = await outcome(() => r.sockets[this.from].send(data, fds));
    const what = `${this}`;
    if (m.closed[this.from]) return assertError(res, 'ERR_MEMFD_SOCKET_CLOSED', what);
    if (m.closed[1 - this.from]) {
      // The peer is gone: never a SIGPIPE, a coded error.
      assert.equal(res.ok, false, `${what}: sent to a closed peer`);
      assert.ok(['EPIPE', 'ECONNRESET'].includes(res.error.code), `${what}: ${res.error.code}`);
      count('send to closed peer');
      return;
    }
    assertOk(res, what);
    m.queues[1 - this.from].push({ data, fds: this.fds });
    m.seq++;
  }
  toString() { return `send(${this.from} -> ${1 - this.from}, ${this.size} bytes, fds [${this.fds}]${this.asNumber ? ' as numbers' : ''})`; }
}

/** Checks a received message against the model's head of queue and disposes of its fds as told. */
async function checkMessage(m, r, msg, want, disposal, what) {
  assert.ok(msg !== null, `${what}: got the end of the stream, expected a message`);
  assert.deepEqual(Buffer.from(msg.data), want.data, `${what}: data`);
  assert.equal(msg.fds.length, want.fds.length, `${what}: number of fds`);
  for (let i = 0; i < want.fds.length; i++) {
    const k = want.fds[i];
    const expectedIno = k === 4 ? inodeOf(r.pool.devnull) : r.pool.files[k].stat().ino;
    assert.equal(inodeOf(msg.fds[i]), expectedIno, `${what}: fd ${i} refers to the file that was sent`);
  }
  if (disposal === 'adopt') {
    for (let i = 0; i < want.fds.length; i++) {
      const k = want.fds[i];
      if (k === 4) {
        assert.throws(() => MemFile.fromFd(msg.fds[i]), { code: 'ERR_MEMFD_NOT_A_MEMFD' });
        continue;
      }
      const f = MemFile.fromFd(msg.fds[i]);
      assert.equal(f.readAllSync().toString(), `pool file ${k}`);
      f.close();
    }
    msg.close(); // closes what fromFd refused
  } else if (disposal === 'take') {
    for (const n of msg.takeFds()) closeSync(n);
    msg.close(); // nothing left to close
  } else if (disposal === 'hand-close') {
    // The natural Node way: msg.fds are the caller's. Then the numbers are reused behind the message's
    // back, and msg.close() (or the GC, below) must leave the new files alone.
    for (const fd of msg.fds) closeSync(fd);
    for (let i = 0; i < msg.fds.length; i++) r.decoys.push(openSync(r.decoyPath, 'r'));
    if (r.decoys.length % 2 === 0) msg.close();
  } else if (disposal === 'drop') {
    // Left to the garbage collector's safety net; the leak check at the end collects it.
  } else {
    msg.close();
  }
  count(`received (${disposal})`);
}

class Receive {
  constructor(side, disposal, budget) { Object.assign(this, { side, disposal, budget }); }
  check(m) {
    // Only when the answer is already there: a message, the end of the stream, or the closed error.
    return m.closed[this.side] || m.queues[this.side].length > 0 || m.closed[1 - this.side];
  }
  async run(m, r) {
    const options = this.budget === undefined ? undefined : { maxFds: this.budget };
    const res = await outcome(() => r.sockets[this.side].receive(options));
    const what = `${this}`;
    if (m.closed[this.side]) return assertError(res, 'ERR_MEMFD_SOCKET_CLOSED', what);
    const queue = m.queues[this.side];
    if (queue.length === 0) {
      assert.equal(assertOk(res, what), null, `${what}: end of the stream after the peer closed`);
      count('end of stream');
      return;
    }
    const want = queue.shift();
    if (this.budget !== undefined && want.fds.length > this.budget) {
      // Refused with a clear error; the fds that arrived were closed; the message is gone.
      assertError(res, 'ERR_MEMFD_FDS_TRUNCATED', what);
      return;
    }
    await checkMessage(m, r, assertOk(res, what), want, this.disposal, what);
  }
  toString() { return `receive(${this.side}, ${this.disposal}${this.budget === undefined ? '' : `, maxFds ${this.budget}`})`; }
}

/** A receive that is pending before the message is sent. */
class ReceiveThenSend {
  constructor(side, size, fds) { Object.assign(this, { side, size, fds }); }
  check(m) { return !m.closed[0] && !m.closed[1] && m.queues[this.side].length === 0; }
  async run(m, r) {
    const pending = outcome(() => r.sockets[this.side].receive());
    await new Promise((resolve) => setImmediate(resolve));
    const data = Buffer.alloc(this.size, 7);
    assertOk(await outcome(() => r.sockets[1 - this.side].send(data, this.fds.map((k) => r.pool.files[k]))), `${this}: send`);
    const msg = assertOk(await pending, `${this}: receive`);
    await checkMessage(m, r, msg, { data, fds: this.fds }, 'adopt', `${this}`);
    count('pending receive');
  }
  toString() { return `pending receive(${this.side}) then send [${this.fds}]`; }
}

class Close {
  constructor(side, n) { Object.assign(this, { side, n }); }
  check(m) { return !m.closed[this.side] && this.n === 0; } // rare: a closed pair ends the interesting part
  async run(m, r) {
    r.sockets[this.side].close();
    m.closed[this.side] = true;
    m.queues[this.side] = []; // unread messages die with the socket, in the kernel
    assert.equal(r.sockets[this.side].closed, true);
    assert.equal(r.sockets[this.side].fd, -1);
    r.sockets[this.side].close(); // twice is harmless
    // The fd itself is closed on a later event-loop turn, once libuv stopped watching it (documented):
    // only then does the peer see it gone.
    for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
  }
  toString() { return `close(${this.side})`; }
}

const MISUSE = [
  ['send(123)', (s) => s.send(123), 'ERR_INVALID_ARG_TYPE'],
  ['send("x", "fds")', (s) => s.send('x', 'fds'), 'ERR_INVALID_ARG_TYPE'],
  ['send("x", [{}])', (s) => s.send('x', [{}]), 'ERR_INVALID_ARG_TYPE'],
  ['send("x", [-1])', (s) => s.send('x', [-1]), 'ERR_OUT_OF_RANGE'],
  ['send("x", [1.5])', (s) => s.send('x', [1.5]), 'ERR_OUT_OF_RANGE'],
  ['send("x", 254 fds)', (s) => s.send('x', Array(254).fill(0)), 'ERR_OUT_OF_RANGE'],
  ['send("x", [closed MemFile])', (s, r) => s.send('x', [r.pool.closedFile]), 'ERR_MEMFD_CLOSED'],
  ['receive({maxFds: 254})', (s) => s.receive({ maxFds: 254 }), 'ERR_OUT_OF_RANGE'],
  ['receive({maxFds: -1})', (s) => s.receive({ maxFds: -1 }), 'ERR_OUT_OF_RANGE'],
  ['receive("x")', (s) => s.receive('x'), 'ERR_INVALID_ARG_TYPE'],
];

/** fs.closeSync(socket.fd) behind the socket's back, and the number reused: the socket keeps working. */
class CloseFdByHand {
  constructor(side) { this.side = side; }
  check(m) { return !m.closed[this.side]; }
  async run(m, r) {
    const n = r.sockets[this.side].fd;
    if (r.handClosed.has(n)) return;
    closeSync(n);
    r.handClosed.add(n);
    r.decoys.push(openSync(r.decoyPath, 'r'));
    count('socket fd closed by hand');
  }
  toString() { return `closeSync(socket ${this.side}.fd)`; }
}

class Misuse {
  constructor(side, which) { Object.assign(this, { side, which }); }
  check() { return true; }
  async run(m, r) {
    const [name, call, code] = MISUSE[this.which];
    // Argument errors come first, before the closed check, for send and receive alike.
    const res = await outcome(() => call(r.sockets[this.side], r));
    assertError(res, code, `${name} on ${this.side}${m.closed[this.side] ? ' (closed)' : ''}`);
  }
  toString() { return `misuse(${this.side}, ${MISUSE[this.which][0]})`; }
}

const side = fc.constantFrom(0, 1);
const fdList = fc.array(fc.nat({ max: 4 }), { maxLength: 6 });
const commands = [
  fc.tuple(side, fc.nat({ max: 3000 }).map((n) => n + 4), fdList, fc.boolean()).map(([s, n, f, a]) => new Send(s, n, f, a)),
  fc.tuple(side, fc.nat({ max: 3000 }).map((n) => n + 4), fdList, fc.boolean()).map(([s, n, f, a]) => new Send(s, n, f, a)),
  fc.tuple(side, fc.constantFrom('adopt', 'take', 'close'), fc.option(fc.nat({ max: 4 }), { nil: undefined, freq: 3 }))
    .map(([s, d, b]) => new Receive(s, d, b)),
  fc.tuple(side, fc.constantFrom('adopt', 'take', 'close', 'hand-close', 'drop')).map(([s, d]) => new Receive(s, d, undefined)),
  side.map((s) => new CloseFdByHand(s)),
  fc.tuple(side, fc.nat({ max: 100 }), fc.array(fc.nat({ max: 3 }), { maxLength: 3 })).map(([s, n, f]) => new ReceiveThenSend(s, n, f)),
  fc.tuple(side, fc.nat({ max: 5 })).map(([s, n]) => new Close(s, n)),
  fc.tuple(side, fc.nat({ max: MISUSE.length - 1 })).map(([s, w]) => new Misuse(s, w)),
];

// The model predicts ERR_MEMFD_FDS_TRUNCATED for a budget smaller than a message's fds: qemu-user never reports it.
test('UnixSocket model: random send/receive/close sequences deliver exactly what was sent, and leak nothing', { skip: skip || emulationSkip('fdBudget') }, async (t) => {
  await collectGarbage();
  const decoyDir = mkdtempSync(join(tmpdir(), 'memfd-model-'));
  const decoy = { path: join(decoyDir, 'decoy') };
  writeFileSync(decoy.path, '');
  decoy.ino = statSync(decoy.path).ino;
  t.after(() => rmSync(decoyDir, { recursive: true, force: true }));
  const fdsBefore = fdCount();
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: 40, size: '+1' }), async (cmds) => {
      runs++;
      const pool = makePool();
      const sockets = UnixSocket.pair({ type: 'seqpacket' });
      // decoys: files opened on numbers that a message or socket lost; the library must never close them.
      // A file of their own: the identity check compares inodes, so a decoy must not be a file that was sent.
      const real = { sockets, pool, decoys: [], handClosed: new Set(), decoyPath: decoy.path };
      const model = { queues: [[], []], closed: [false, false], seq: 0 };
      try {
        await fc.asyncModelRun(() => ({ model, real }), cmds);
      } finally {
        for (const s of sockets) s.close();
        for (const f of pool.files) f.close();
        closeSync(pool.devnull);
        await collectGarbage(2);
        await new Promise((resolve) => setImmediate(resolve)); // socket fds close in libuv's close callback
        for (const fd of real.decoys) {
          assert.equal(fstatSync(fd).ino, decoy.ino, `decoy fd ${fd} was closed or replaced by the library`);
          closeSync(fd);
        }
      }
    }),
    fuzzParams(100),
  );
  await collectGarbage();
  assert.equal(fdCount(), fdsBefore, 'no fd leaked: every received fd was closed once');
  console.log(`# model-socket: ${runs} runs; outcomes ${JSON.stringify(Object.fromEntries(tally))}`);
  if (!process.env.MEMFD_FUZZ_PATH) {
    for (const key of ['received (adopt)', 'received (take)', 'received (close)', 'received (hand-close)', 'received (drop)',
      'socket fd closed by hand', 'end of stream', 'pending receive',
      'send to closed peer', 'ERR_MEMFD_FDS_TRUNCATED', 'ERR_MEMFD_SOCKET_CLOSED', 'ERR_OUT_OF_RANGE']) {
      assert.ok((tally.get(key) ?? 0) > 0, `no "${key}" in ${runs} runs: the generators no longer reach it`);
    }
  }
});

test('no data loss when the peer closes with our messages unread: its messages to us still arrive, then the end', { skip }, async () => {
  // Linux reports ECONNRESET to the survivor first (the peer died with data unread), then still delivers
  // everything queued for the survivor, then end of stream. Treating ECONNRESET as the end loses messages
  // that were sent successfully. Minimal case found by the model above.
  const [a, b] = UnixSocket.pair({ type: 'seqpacket' });
  try {
    await b.send('b -> a, never read by a');
    await a.send('a -> b, sent before a closes');
    a.close();
    for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
    const msg = await b.receive();
    assert.notEqual(msg, null, 'the message a sent before closing is lost');
    assert.equal(msg.data.toString(), 'a -> b, sent before a closes');
    msg.close();
    assert.equal(await b.receive(), null);
  } finally {
    a.close();
    b.close();
  }
});
