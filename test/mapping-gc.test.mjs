// Mapping lifetimes under the garbage collector and at scale: the finalizer unmaps exactly once, views
// keep their pages alive, 10,000 cycles leak nothing, and a terminated Worker's mappings are released.
// Run with --expose-gc (npm test does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { MemFile, Seal } from '../dist/index.js';
import { checkedOutsideEmulation } from './helpers.mjs';

const LIB = new URL('../dist/index.js', import.meta.url).href;
const delay = (ms) => new Promise((r) => setTimeout(r, ms));
const maps = () => readFileSync('/proc/self/maps', 'utf8').split('\n').filter(Boolean);
const linesOf = (name) => maps().filter((l) => l.endsWith(`/memfd:${name} (deleted)`));
const addressOf = (line) => line.split(' ')[0];
const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const fdCount = () => readdirSync('/proc/self/fd').length;

let serial = 0;
const unique = (p) => `${p}-${process.pid}-${++serial}`;

/** Collects until `done()` holds; Node runs native buffer finalizers from a later event-loop turn. */
async function collectUntil(done, what) {
  for (let i = 0; i < 200; i++) {
    if (done()) return;
    globalThis.gc();
    await new Promise((r) => setImmediate(r));
    if (i % 10 === 9) await delay(5);
  }
  assert.fail(`garbage collection did not ${what}`);
}

test('gc is exposed (run with --expose-gc)', () => {
  assert.equal(typeof globalThis.gc, 'function', 'run this file with node --expose-gc');
});

test('a Mapping dropped without unmap is unmapped by the garbage collector', async () => {
  const file = MemFile.create(unique('gc-drop'));
  file.truncate(65536);
  (() => {
    for (let i = 0; i < 5; i++) file.map().bytes[i] = i + 1;
  })();
  assert.equal(linesOf(file.name).length, 5);
  await collectUntil(() => linesOf(file.name).length === 0, 'unmap dropped mappings');
  // The data went to the file (shared mappings).
  assert.deepEqual([...file.readAllSync().subarray(0, 5)], [1, 2, 3, 4, 5]);
  file.close();
});

test('views keep the pages mapped after the Mapping object is gone', async () => {
  const file = MemFile.create(unique('gc-view'));
  file.truncate(4096);
  let bytes = (() => file.map().bytes)();
  bytes[0] = 42;
  for (let i = 0; i < 10; i++) {
    globalThis.gc();
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(linesOf(file.name).length, 1, 'still mapped while a view lives');
  assert.equal(bytes[0], 42);
  bytes[1] = 43;
  bytes = null;
  await collectUntil(() => linesOf(file.name).length === 0, 'unmap once the last view went');
  assert.equal(file.readAllSync()[1], 43);
  file.close();
});

test('no double munmap: the finalizer of an explicitly unmapped buffer leaves a reused address range alone', async () => {
  const a = MemFile.create(unique('gc-a'));
  const b = MemFile.create(unique('gc-b'));
  a.truncate(1 << 20);
  b.truncate(1 << 20);
  let collected = false;
  const registry = new FinalizationRegistry(() => { collected = true; });
  let addressA;
  (() => {
    const ma = a.map();
    registry.register(ma.buffer, 'a');
    addressA = addressOf(linesOf(a.name)[0]);
    ma.unmap();
  })();
  const mb = b.map();
  mb.bytes.fill(7);
  const addressB = addressOf(linesOf(b.name)[0]);
  // Usually the kernel hands B the range A just released; the test is strongest then, and still valid
  // otherwise.
  const reused = addressA === addressB;
  await collectUntil(() => collected, "collect A's buffer");
  for (let i = 0; i < 10; i++) {
    globalThis.gc();
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(linesOf(b.name).length, 1, `B is still mapped (address reused: ${reused})`);
  assert.equal(addressOf(linesOf(b.name)[0]), addressB);
  assert.equal(mb.bytes[12345], 7);
  mb.bytes[0] = 8;
  assert.equal(b.readAllSync()[0], 8);
  mb.unmap();
  a.close();
  b.close();
});

test('10,000 map/unmap cycles: stable RSS, mapping count and fd count', { timeout: 60000 }, async (t) => {
  const file = MemFile.create(unique('cycles'));
  file.truncate(64 * 1024);
  const cycle = (i) => {
    const m = file.map({ offset: (i % 4) * 4096, length: 8192, populate: i % 2 === 0 });
    m.bytes[i % 8192] = i & 0xff;
    const ro = file.map({ writable: false, length: 4096 });
    if (ro.bytes[0] === undefined) throw new Error('unreachable');
    ro.unmap();
    m.unmap();
  };
  // Node releases an external buffer's bookkeeping from a later event-loop turn (SetImmediate), so the
  // cycles run in batches with a turn in between, as any real program would.
  const settle = async () => {
    globalThis.gc();
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  };
  // Warm up the JIT, the heaps and malloc's arenas first: RSS climbs for the first ~20,000 mappings
  // (more on newer Node) and then stays flat for hundreds of thousands of cycles.
  for (let batch = 0; batch < 10; batch++) {
    for (let i = 0; i < 1000; i++) cycle(i);
    await settle();
  }
  const mapsBefore = maps().length;
  const memfdBefore = maps().filter((l) => l.includes('/memfd:')).length;
  const rssBefore = rss();
  const fdsBefore = fdCount();
  for (let batch = 0; batch < 10; batch++) {
    for (let i = 0; i < 1000; i++) cycle(batch * 1000 + i);
    await settle();
  }
  const growth = rss() - rssBefore;
  t.diagnostic(`RSS growth over 10,000 cycles: ${(growth / 2 ** 20).toFixed(2)} MiB; mappings ${mapsBefore} -> ${maps().length}`);
  assert.equal(linesOf(file.name).length, 0);
  assert.equal(maps().filter((l) => l.includes('/memfd:')).length, memfdBefore, 'memfd mappings back to where they were');
  // Anonymous VMAs come and go with V8's 256 KiB heap pages; a leak would add 20,000 of them.
  assert.ok(Math.abs(maps().length - mapsBefore) <= 40, `mappings: ${mapsBefore} -> ${maps().length}`);
  if (checkedOutsideEmulation(t, 'rss')) assert.ok(growth < 8 * 2 ** 20, `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB`);
  assert.ok(fdCount() <= fdsBefore, `fds: ${fdsBefore} -> ${fdCount()}`);
  file.close();
});

test('2,000 mappings left to the garbage collector are all released', { timeout: 60000 }, async () => {
  const file = MemFile.create(unique('gc-many'));
  file.truncate(4096);
  const fdsBefore = fdCount();
  for (let i = 0; i < 2000; i++) file.map().bytes[0] = i & 0xff;
  await collectUntil(() => linesOf(file.name).length === 0, 'release 2,000 dropped mappings');
  assert.ok(fdCount() <= fdsBefore, `fds: ${fdsBefore} -> ${fdCount()}`);
  file.close();
});

test('a Worker terminated with live mappings releases them; this process keeps working', { timeout: 30000 }, async () => {
  const shared = MemFile.create(unique('gc-shared'));
  shared.truncate(8192);
  shared.addSeals(Seal.Shrink);
  const mine = shared.map();
  const workerFile = unique('gc-worker');
  for (let round = 0; round < 3; round++) {
    const w = new Worker(`
      const { parentPort } = await import('node:worker_threads');
      const { openSync } = await import('node:fs');
      const { MemFile } = await import(${JSON.stringify(LIB)});
      const own = MemFile.create(${JSON.stringify(workerFile)});
      own.truncate(1 << 20);
      const peer = MemFile.fromFd(openSync(${JSON.stringify(shared.path)}, 'r+'));
      globalThis.keep = [own.map(), own.map({ offset: 4096 }), peer.map()];
      globalThis.keep[2].bytes[${round}] = ${round + 10};
      parentPort.postMessage('mapped');
      setInterval(() => globalThis.keep[0].bytes[0]++, 1); // busy with the mapping when terminated
    `, { eval: true });
    await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
    assert.equal(linesOf(workerFile).length, 2);
    await delay(5);
    await w.terminate();
    await collectUntil(() => linesOf(workerFile).length === 0, "release the terminated Worker's mappings");
  }
  assert.deepEqual([...mine.bytes.subarray(0, 3)], [10, 11, 12]);
  assert.equal(linesOf(shared.name).length, 1, "only this thread's mapping of the shared file is left");
  mine.unmap();
  shared.close();
});

test('a buffer moved with ArrayBuffer.prototype.transfer() keeps its pages until collected; unmap cannot crash it', async (t) => {
  if (typeof ArrayBuffer.prototype.transfer !== 'function') {
    t.skip('ArrayBuffer.prototype.transfer does not exist on this Node (it arrived with Node 22)');
    return;
  }
  const file = MemFile.create(unique('gc-transfer'));
  file.truncate(8192);
  const m = file.map();
  m.bytes[0] = 5;
  let moved = m.buffer.transfer();
  assert.equal(m.buffer.byteLength, 0);
  m.unmap(); // the new buffer owns the pages now: they must stay mapped
  assert.equal(m.mapped, false);
  let view = new Uint8Array(moved);
  assert.equal(view[0], 5);
  view[1] = 6;
  assert.equal(file.readAllSync()[1], 6);
  assert.equal(linesOf(file.name).length, 1);
  moved = null;
  view = null;
  await collectUntil(() => linesOf(file.name).length === 0, 'unmap after the moved buffer died');
  file.close();
});
