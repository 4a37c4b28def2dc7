// Publishing without a fence (docs/channel.md): on x86-64, two ends whose processes are registered for
// membarrier(GLOBAL_EXPEDITED) publish their indices with plain stores, and a sleeper runs the barrier and
// looks again 1 ms into a sleep. A lost wake-up here is a hang, so every test bounds its wait: it fails,
// never hangs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { Channel, MemFile, Seal } from '../dist/index.js';
import { binding } from '../dist/binding.js';
import { LIB, sleepMs, timeScale, underEmulation } from './helpers.mjs';

const FLAGS_A = (64 + 12) / 4, FLAGS_B = (128 + 12) / 4, FLAG_MEMBARRIER = 1;
// membarrier(2) is in every kernel this library supports (4.16+ for GLOBAL_EXPEDITED); only x86-64 uses it.
const expectFlag = process.arch === 'x64';

/** The channel's header words, read through a mapping of our own (a second open of the same memfd). */
function headerOf(ch) {
  const file = MemFile.fromFd(openSync(`/proc/self/fd/${ch.fd}`, 'r'));
  const mapping = file.map({ length: 4096 });
  const words = new Int32Array(mapping.buffer, 0, 1024);
  return { words, close: () => { mapping.unmap(); file.close(); } };
}

/**
 * A child that claims end B (fd 3) and acts out `role` ('echo', or 'read': checks numbered 8-byte messages).
 * With `spinMicros` 0 (the default here) every wait of its own goes through the sleep handshake. It prints
 * { n, bad } when the stream ends.
 */
function peer(ch, role, spinMicros = 0) {
  const source = `
    import { Channel } from ${JSON.stringify(LIB)};
    const ch = Channel.fromFd(3, { spinMicros: ${spinMicros} });
    let n = 0, bad = 0;
    if (${JSON.stringify(role)} === 'echo') {
      for await (const m of ch) { await ch.send(m); n++; }
    } else {
      // One-way reader: catches up with the writer, sleeps, is woken, over and over.
      for (;;) {
        const m = await ch.receive();
        if (m === null) break;
        if (m.length !== 8 || m.readUInt32LE(0) !== n) bad++;
        n++;
      }
    }
    ch.close();
    process.stdout.write(JSON.stringify({ n, bad }) + '\\n');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'pipe', 'inherit', ch.fd] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const done = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, out })));
  return { child, done };
}

/** Rejects after `ms` with what was still pending: a hang becomes a failure with a reason. */
function within(ms, what, promise) {
  let timer;
  const limit = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no progress for ${ms} ms (a lost wake-up?)`)), ms); });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

test('each end says in the header whether it takes part in membarrier barriers (x86-64: both do)', async (t) => {
  const ch = Channel.create({ size: 4096 });
  t.after(() => ch.close());
  const h = headerOf(ch);
  t.after(() => h.close());
  assert.equal(h.words[FLAGS_A], expectFlag ? FLAG_MEMBARRIER : 0, 'end A');
  assert.equal(h.words[FLAGS_B], 0, 'end B before a claim');
  const { child, done } = peer(ch, 'echo');
  t.after(() => child.kill());
  await ch.send('ping');
  assert.equal((await within(10000 * timeScale, 'echo', ch.receive())).toString(), 'ping');
  assert.equal(h.words[FLAGS_B], expectFlag ? FLAG_MEMBARRIER : 0, 'end B once claimed');
  ch.close();
  const r = await done;
  assert.deepEqual([r.code, r.signal, JSON.parse(r.out)], [0, null, { n: 1, bad: 0 }]);
});

test('one way with indices published by plain stores, a reader that sleeps whenever it catches up: 200,000 messages arrive in order and intact', async (t) => {
  // The order a plain store keeps on x86-64 (the frame before the tail, the read before the head) is what
  // this checks; a lost wake-up here costs 1 ms, not a hang: the lined-up race below is what checks those.
  const ch = Channel.create({ size: 4096 });
  t.after(() => ch.close());
  const { child, done } = peer(ch, 'read');
  t.after(() => child.kill());
  const COUNT = 200000;
  const msg = Buffer.alloc(8);
  for (let i = 0; i < COUNT; i++) {
    msg.writeUInt32LE(i, 0);
    // A full ring: the writer sleeps for room, and the reader's head publish must wake it.
    if (!ch.trySend(msg)) await within(5000 * timeScale, `send ${i}`, ch.send(msg));
    // Now and then let the reader run dry, so that it goes to sleep and the next publish must wake it.
    if (i % 64 === 0) await new Promise((r) => setImmediate(r));
  }
  ch.close();
  const r = await within(30000 * timeScale, 'reader', done);
  assert.deepEqual([r.code, r.signal, JSON.parse(r.out)], [0, null, { n: COUNT, bad: 0 }]);
});

test('a publish and the peer going to sleep, started together 20,000 times: every message arrives', async (t) => {
  // The race the handshake exists for, lined up on purpose. Both processes spin on a shared "go" word (a
  // second memfd); when it flips, this end publishes a message at once while the peer (spinMicros 0) calls
  // receive() at once, finds the ring empty and goes to sleep: raise its flag, look once more, sleep. A small
  // random delay on our side sweeps the two across each other. Without a fence on our side, the peer's last
  // look can miss the publish while our load misses its flag (seen: within 2,000-5,000 rounds); only the
  // peer's late membarrier and look (Channel #fenceAndLookAgain) then find the message. Without that, the
  // peer sleeps for good and the round's answer never comes.
  const ch = Channel.create({ size: 4096 });
  t.after(() => ch.close());
  const sync = MemFile.create('fence-sync');
  sync.truncate(4096);
  sync.addSeals(Seal.Shrink | Seal.Grow);
  const syncMap = sync.map({ writable: true });
  t.after(() => { syncMap.unmap(); sync.close(); });
  const words = new Int32Array(syncMap.buffer, 0, 32);
  const READY = 0, GO = 16; // separate cache lines
  const source = `
    import { Channel, MemFile } from ${JSON.stringify(LIB)};
    const ch = Channel.fromFd(3, { spinMicros: 0 });
    const sync = MemFile.fromFd(4);
    const words = new Int32Array(sync.map({ writable: true }).buffer, 0, 32);
    let n = 0;
    for (let round = 1; ; round++) {
      Atomics.store(words, ${READY}, round);
      while (Atomics.load(words, ${GO}) !== round) if (Atomics.load(words, ${GO}) < 0) { ch.close(); process.exit(0); }
      const m = await ch.receive();        // usually empty at this instant: the sleep handshake runs now
      if (m === null) break;
      await ch.send(m);
      n++;
    }
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'inherit', 'inherit', ch.fd, sync.fd] });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  t.after(() => child.kill());
  const ROUNDS = underEmulation ? 2000 : 20000; // qemu-user: each round is two processes spinning in emulation
  let seed = 7, late = 0;
  const msg = Buffer.alloc(8);
  const start = performance.now();
  for (let round = 1; round <= ROUNDS; round++) {
    const deadline = performance.now() + 5000 * timeScale;
    while (Atomics.load(words, READY) !== round) {
      if (performance.now() > deadline) assert.fail(`the peer never got ready for round ${round}`);
    }
    const spins = ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >>> 8) % 64;
    Atomics.store(words, GO, round);
    for (let i = 0; i < spins; i++) Atomics.load(words, READY);
    msg.writeUInt32LE(round, 0);
    assert.equal(ch.trySend(msg), true);
    const sent = performance.now();
    const back = await within(5000 * timeScale, `the answer of round ${round}`, ch.receive());
    if (performance.now() - sent > 0.9) late++;
    assert.equal(back.readUInt32LE(0), round);
  }
  t.diagnostic(`${ROUNDS} rounds in ${Math.round(performance.now() - start)} ms; ${late} answers took over 0.9 ms (a missed publish, found by the late barrier, or a busy machine)`);
  Atomics.store(words, GO, -1);
  assert.deepEqual(await exited, { code: 0, signal: null });
});

test('a bell report that reaches the loop after its wait was ended and a new one armed says so (EVENT_BELL_SUPERSEDED)', async () => {
  // The late look can find a message whose ring is already on its way to the loop; the waiters re-wait and
  // arm again before that report arrives. The report must not pass for one about the new wait: Channel would
  // take the thread for disarmed, and an armed thread nobody disarms keeps the process alive.
  const file = MemFile.create('superseded');
  file.truncate(8192);
  const events = [];
  const BELL_A = 64 + 8, BELL_B = 128 + 8, CLOSED_A = 64, CLOSED_B = 128;
  const mine = binding.channelEndOpen(file.fd, BELL_A, BELL_B, CLOSED_A, (e) => events.push(e));
  const peerEnd = binding.channelEndOpen(file.fd, BELL_B, BELL_A, CLOSED_B, () => {});
  try {
    // The thread must see the ring before the re-arm (a loaded machine may not run it within the pause):
    // then no report comes, and the round is tried again.
    let bell = 0;
    for (let attempt = 0; attempt < 10 && events.length === 0; attempt++) {
      binding.channelEndArm(mine, bell);
      sleepMs(20 * timeScale);              // the waiter thread is in FUTEX_WAIT on the bell
      binding.channelEndRing(peerEnd);      // the bell moves: the thread reports, the report waits for the loop
      bell++;
      sleepMs(50 * timeScale);
      binding.channelEndDisarm(mine);       // JS ended that wait by itself ...
      binding.channelEndArm(mine, bell);    // ... and armed for the next one before the report arrived
      await new Promise((r) => setTimeout(r, 50 * timeScale));
      if (events.length === 0) binding.channelEndDisarm(mine);
    }
    assert.deepEqual(events, [3], 'the late report is marked superseded');
    binding.channelEndRing(peerEnd);        // a report about the current wait is a plain bell
    for (let i = 0; i < 100 * timeScale && events.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(events, [3, 1]);
  } finally {
    binding.channelEndClose(mine);
    binding.channelEndClose(peerEnd);
    file.close();
  }
});
