// Shared memory across processes: SIGBUS containment, Atomics on a shared mapping, futex wake across
// processes. Every process that might die is a child; the test process never maps a file that another
// process can shrink.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemFile, Seal, futexWait, futexWake, futexWaitAsync } from '../dist/index.js';
import { delay, spawnChild } from './mapping-child.mjs';

const PAGE = 4096;

/** Calls futexWake until it reports a woken waiter (i.e. the other process is asleep in the kernel). */
async function wakeWhenWaiting(view, index, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = futexWake(view, index);
    if (n > 0) return n;
    if (Date.now() > deadline) throw new Error('no waiter showed up on the futex');
    await delay(5);
  }
}

test('a peer that shrinks an unsealed file kills the process mapping it (SIGBUS) — in a child, not here', { timeout: 30000 }, async () => {
  const f = MemFile.create('sigbus');
  try {
    f.truncate(4 * PAGE);
    const victim = spawnChild(`
      const f = MemFile.fromFd(3);
      let refused = 'no';
      try { f.map(); } catch (e) { refused = e.code; }
      const m = f.map({ unsafeAllowShrinking: true });
      m.bytes[3 * 4096] = 1;
      console.log('ready ' + refused);
      process.stdin.once('data', () => {
        m.bytes[3 * 4096 + 1] = 2; // past the new end of file
        console.log('survived');
        process.exit(0);
      });
    `, { fds: [f.fd] });
    const [, refused] = await victim.waitFor(/ready (\S+)/);
    assert.equal(refused, 'ERR_MEMFD_UNSAFE_MAPPING', 'without the unsafe option the child must refuse to map');

    const shrinker = spawnChild('MemFile.fromFd(3).truncate(4096); console.log("shrunk");', { fds: [f.fd] });
    const s = await shrinker.exited;
    assert.equal(s.code, 0, s.err);
    assert.equal(f.size, PAGE);

    victim.send('go\n');
    const v = await victim.exited;
    assert.equal(v.signal, 'SIGBUS', `victim should die of SIGBUS; got ${v.code ?? v.signal}; ${v.out} ${v.err}`);
    assert.doesNotMatch(v.out, /survived/);
    // This process is unaffected and the file is still usable here.
    f.writeSync('alive', 0);
    assert.equal(f.readAllSync().subarray(0, 5).toString(), 'alive');
  } finally {
    f.close();
  }
});

test('with Seal.Shrink the same peer cannot shrink the file, and the mapping child survives', { timeout: 30000 }, async () => {
  const f = MemFile.create('sigbus-sealed');
  try {
    f.truncate(4 * PAGE);
    f.addSeals(Seal.Shrink);
    const reader = spawnChild(`
      const m = MemFile.fromFd(3).map();
      console.log('ready');
      process.stdin.once('data', () => { m.bytes[3 * 4096 + 1] = 2; console.log('survived'); process.exit(0); });
    `, { fds: [f.fd] });
    await reader.waitFor(/ready/);
    const shrinker = spawnChild(`
      try { MemFile.fromFd(3).truncate(4096); console.log('shrunk'); } catch (e) { console.log(e.code); }
    `, { fds: [f.fd] });
    assert.match((await shrinker.exited).out, /EPERM/);
    reader.send('go\n');
    const r = await reader.exited;
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /survived/);
  } finally {
    f.close();
  }
});

test('Atomics on a shared mapping across processes: two children add 1,000,000 each, total 2,000,000', { timeout: 60000 }, async () => {
  const f = MemFile.create('atomics');
  try {
    f.truncate(PAGE);
    const m = f.map();
    f.addSeals(Seal.Shrink); // the owner pattern: peers may map only a file that cannot shrink
    const v = new Int32Array(m.buffer);
    const body = `
      const m = MemFile.fromFd(3, { requireSeals: Seal.Shrink }).map();
      const v = new Int32Array(m.buffer);
      Atomics.add(v, 1, 1); // ready
      while (Atomics.load(v, 2) === 0) futexWait(v, 2, 0, 1000);
      for (let i = 0; i < 1000000; i++) Atomics.add(v, 0, 1);
      console.log('done');
    `;
    const a = spawnChild(body, { fds: [f.fd] });
    const b = spawnChild(body, { fds: [f.fd] });
    const deadline = Date.now() + 30000;
    while (Atomics.load(v, 1) < 2) {
      assert.ok(Date.now() < deadline, 'children did not start');
      await delay(5);
    }
    // Release both at once so that their increments overlap.
    Atomics.store(v, 2, 1);
    futexWake(v, 2);
    const [ra, rb] = await Promise.all([a.exited, b.exited]);
    assert.equal(ra.code, 0, ra.err);
    assert.equal(rb.code, 0, rb.err);
    assert.equal(Atomics.load(v, 0), 2000000);
    m.unmap();
  } finally {
    f.close();
  }
});

test('futexWake from this process wakes a child blocked in futexWait', { timeout: 30000 }, async () => {
  const f = MemFile.create('futex-x');
  try {
    f.truncate(PAGE);
    f.addSeals(Seal.Shrink);
    const m = f.map();
    const v = new Int32Array(m.buffer);
    const child = spawnChild(`
      const v = new Int32Array(MemFile.fromFd(3).map().buffer);
      console.log('ready');
      console.log('result ' + futexWait(v, 7, 0, 20000));
    `, { fds: [f.fd] });
    await child.waitFor(/ready/);
    const woken = await wakeWhenWaiting(v, 7);
    assert.equal(woken, 1);
    const r = await child.exited;
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /result ok/);
    m.unmap();
  } finally {
    f.close();
  }
});

test('futexWaitAsync in a child keeps its event loop running and is woken from this process', { timeout: 30000 }, async () => {
  const f = MemFile.create('futex-async-x');
  try {
    f.truncate(PAGE);
    f.addSeals(Seal.Shrink);
    const m = f.map();
    const v = new Int32Array(m.buffer);
    const child = spawnChild(`
      const v = new Int32Array(MemFile.fromFd(3).map().buffer);
      const ticker = setInterval(() => Atomics.add(v, 1, 1), 5);
      const result = await futexWaitAsync(v, 0, 0, 20000);
      clearInterval(ticker);
      console.log('result ' + result);
    `, { fds: [f.fd] });
    const deadline = Date.now() + 15000;
    while (Atomics.load(v, 1) < 5) {
      assert.ok(Date.now() < deadline, 'child event loop did not tick');
      await delay(5);
    }
    assert.equal(await wakeWhenWaiting(v, 0), 1);
    const r = await child.exited;
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /result ok/);
    assert.ok(Atomics.load(v, 1) >= 5);
    m.unmap();
  } finally {
    f.close();
  }
});

test('a child wakes a futexWaitAsync pending in this process', { timeout: 30000 }, async () => {
  const f = MemFile.create('futex-parent-waits');
  try {
    f.truncate(PAGE);
    f.addSeals(Seal.Shrink);
    const m = f.map();
    const v = new Int32Array(m.buffer);
    const waiting = futexWaitAsync(v, 3, 0, 20000);
    const child = spawnChild(`
      const v = new Int32Array(MemFile.fromFd(3).map().buffer);
      let n = 0;
      for (let i = 0; i < 3000 && n === 0; i++) { n = futexWake(v, 3); if (n === 0) sleep(5); }
      console.log('woke ' + n);
    `, { fds: [f.fd] });
    assert.equal(await waiting, 'ok');
    const r = await child.exited;
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /woke 1/);
    m.unmap();
  } finally {
    f.close();
  }
});

test('owner pattern: map writable, add FutureWrite + Shrink, share; a copy-on-write reader sees the owner and its futexes work', { timeout: 30000 }, async () => {
  const f = MemFile.create('owner');
  try {
    f.truncate(PAGE);
    const owner = f.map();
    f.addSeals(Seal.FutureWrite | Seal.Shrink);
    const v = new Int32Array(owner.buffer);
    const child = spawnChild(`
      const file = MemFile.fromFd(3, { requireSeals: Seal.FutureWrite | Seal.Shrink });
      let refused = 'no';
      try { file.map({ writable: true }); } catch (e) { refused = e.code; }
      const m = file.map();
      const v = new Int32Array(m.buffer);
      console.log('ready ' + refused + ' ' + m.writable);
      console.log('first ' + futexWait(v, 0, 0, 20000));
      while (Atomics.load(v, 1) !== 42) futexWait(v, 1, 0, 1000);
      console.log('saw ' + Atomics.load(v, 1));
    `, { fds: [f.fd] });
    const [, refused, writable] = await child.waitFor(/ready (\S+) (\S+)/);
    assert.equal(refused, 'EPERM');
    assert.equal(writable, 'false');
    assert.equal(await wakeWhenWaiting(v, 0), 1);
    await child.waitFor(/first ok/);
    Atomics.store(v, 1, 42);
    futexWake(v, 1);
    const r = await child.exited;
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /saw 42/);
    owner.unmap();
  } finally {
    f.close();
  }
});
