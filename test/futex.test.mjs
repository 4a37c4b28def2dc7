// futexWait / futexWake / futexWaitAsync inside one process: validation, results, the async thread
// model (no thread-pool starvation, cancellation on unmap, Worker termination while waiting).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { pbkdf2 } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { MemFile, Seal, futexWait, futexWake, futexWaitAsync } from '../dist/index.js';
import { run, timeScale } from './helpers.mjs';

const LIB = new URL('../dist/index.js', import.meta.url).href;
const delay = (ms) => new Promise((r) => setTimeout(r, ms));
const threadCount = () => readdirSync('/proc/self/task').length;

function mapped(size = 4096) {
  const file = MemFile.create('futex');
  file.truncate(size);
  file.addSeals(Seal.Shrink);
  const m = file.map();
  return { file, m, v: new Int32Array(m.buffer) };
}

/** Wakes `index` repeatedly until `total` waiters have been woken (they enter the kernel asynchronously). */
async function wakeAll(v, index, total, count = Infinity) {
  let woken = 0;
  const deadline = Date.now() + 10000;
  while (woken < total) {
    const n = futexWake(v, index, count);
    assert.ok(n <= count);
    woken += n;
    if (woken < total) {
      assert.ok(Date.now() < deadline, `only ${woken} of ${total} waiters woke`);
      await delay(2);
    }
  }
  return woken;
}

test('a view that is not over a Mapping is named by its class, not printed element by element', () => {
  const notMapped = new Int32Array(1000).fill(7);
  for (const fn of [futexWait, futexWaitAsync, futexWake]) {
    assert.throws(() => fn(notMapped, 0, 7), (e) => {
      assert.equal(e.code, 'ERR_INVALID_ARG_VALUE');
      assert.match(e.message, /Received an instance of Int32Array$/);
      assert.doesNotMatch(e.message, /7,7/);
      return true;
    });
    assert.throws(() => fn(new Float64Array(4), 0, 0), {
      code: 'ERR_INVALID_ARG_TYPE',
      message: 'The "view" argument must be an instance of Int32Array. Received an instance of Float64Array',
    });
  }
});

test('arguments are validated before the syscall', () => {
  const { file, m, v } = mapped();
  try {
    for (const fn of [futexWait, futexWaitAsync]) {
      assert.throws(() => fn(new Uint32Array(m.buffer), 0, 0), { code: 'ERR_INVALID_ARG_TYPE' });
      assert.throws(() => fn([0], 0, 0), { code: 'ERR_INVALID_ARG_TYPE' });
      assert.throws(() => fn(new Int32Array(4), 0, 0), { code: 'ERR_INVALID_ARG_VALUE' });
      assert.throws(() => fn(new Int32Array(new SharedArrayBuffer(16)), 0, 0), { code: 'ERR_INVALID_ARG_VALUE' });
      assert.throws(() => fn(v, v.length, 0), { code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => fn(v, -1, 0), { code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => fn(v, 0.5, 0), { code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => fn(v, '0', 0), { code: 'ERR_INVALID_ARG_TYPE' });
      assert.throws(() => fn(v, 0, '0'), { code: 'ERR_INVALID_ARG_TYPE' });
      assert.throws(() => fn(v, 0, 2 ** 32), { code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => fn(v, 0, 0, NaN), { code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => fn(v, 0, 0, -1), { code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => fn(v, 0, 0, '10'), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    assert.throws(() => futexWake(v, 0, -1), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => futexWake(v, 0, 1.5), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => futexWake(new Int32Array(8), 0), { code: 'ERR_INVALID_ARG_VALUE' });
    // Unsigned expected values are accepted (compared as the same 32 bits).
    v[0] = -1;
    assert.equal(futexWait(v, 0, 0xffffffff, 0), 'timed-out');
    // A sub-view works; its index is relative to the view.
    const sub = new Int32Array(m.buffer, 8, 2);
    sub[1] = 5;
    assert.equal(futexWait(sub, 1, 4), 'not-equal');
    assert.equal(futexWait(sub, 1, 5, 1), 'timed-out');
    // An unaligned word (mapping at an odd offset) is refused with a reason.
    const odd = file.map({ offset: 1, length: 8 });
    assert.throws(() => futexWait(new Int32Array(odd.buffer, 0, 1), 0, 0, 0), /aligned/);
    odd.unmap();
    m.unmap();
    assert.throws(() => futexWait(v, 0, 0), { code: 'ERR_MEMFD_UNMAPPED' });
    assert.throws(() => futexWake(v, 0), { code: 'ERR_MEMFD_UNMAPPED' });
  } finally {
    file.close();
  }
});

test('futexWait: not-equal at once, timed-out after the timeout; futexWake with no waiter wakes 0', () => {
  const { file, m, v } = mapped();
  try {
    v[0] = 1;
    assert.equal(futexWait(v, 0, 0), 'not-equal');
    const start = performance.now();
    assert.equal(futexWait(v, 0, 1, 50), 'timed-out');
    assert.ok(performance.now() - start >= 45, 'waited for the timeout');
    assert.equal(futexWait(v, 0, 1, 0), 'timed-out');
    assert.equal(futexWait(v, 0, 1, 0.5), 'timed-out');
    assert.equal(futexWait(v, 0, 2, 1e300), 'not-equal'); // huge timeouts mean "none", without overflow
    assert.equal(futexWake(v, 0), 0);
    m.unmap();
  } finally {
    file.close();
  }
});

test('futexWaitAsync: ok on wake, not-equal, timed-out, and the event loop keeps running', async () => {
  const { file, m, v } = mapped();
  try {
    assert.equal(await futexWaitAsync(v, 0, 1), 'not-equal');
    assert.equal(await futexWaitAsync(v, 0, 0, 20), 'timed-out');
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    const waiting = futexWaitAsync(v, 1, 0);
    await delay(30 * timeScale);
    assert.ok(ticks > 3, `event loop ran (${ticks} ticks) while waiting`);
    Atomics.store(v, 1, 1);
    await wakeAll(v, 1, 1);
    assert.equal(await waiting, 'ok');
    clearInterval(ticker);
    m.unmap();
  } finally {
    file.close();
  }
});

test('many async waits: count is honoured, all are woken, and the libuv thread pool is not starved', { timeout: 30000 }, async () => {
  const { file, m, v } = mapped();
  try {
    await readFile(new URL(import.meta.url)); // start the libuv pool's threads before counting threads
    const before = threadCount();
    const waits = Array.from({ length: 16 }, () => futexWaitAsync(v, 2, 0));
    // Thread-pool work (4 threads by default) still completes while 16 waits are pending.
    const [text] = await Promise.all([
      readFile(new URL(import.meta.url), 'utf8'),
      new Promise((resolve, reject) => pbkdf2('x', 'y', 1000, 32, 'sha256', (e, k) => (e ? reject(e) : resolve(k)))),
    ]);
    assert.match(text, /thread pool is not starved/);
    // Wake one at a time first.
    assert.equal(await wakeAll(v, 2, 3, 1), 3);
    assert.equal(await wakeAll(v, 2, 13), 13);
    const results = await Promise.all(waits);
    assert.deepEqual(new Set(results), new Set(['ok']));
    await delay(20);
    assert.ok(threadCount() <= before + 1, `waiter threads are joined (${before} -> ${threadCount()})`);
    m.unmap();
  } finally {
    file.close();
  }
});

test('unmapping during an async wait cancels it (ERR_MEMFD_UNMAPPED), without crashing', async () => {
  const { file, m, v } = mapped();
  const other = file.map();
  try {
    const waiting = futexWaitAsync(v, 0, 0); // no timeout: only the cancellation ends it
    const alsoWaiting = futexWaitAsync(new Int32Array(other.buffer), 0, 0, 5000);
    await delay(20);
    m.unmap();
    await assert.rejects(waiting, { code: 'ERR_MEMFD_UNMAPPED' });
    // A waiter on another mapping of the word may see the cancellation as a spurious wakeup.
    other.unmap();
    const r = await alsoWaiting.catch((e) => e.code);
    assert.ok(['ok', 'ERR_MEMFD_UNMAPPED'].includes(r), String(r));
  } finally {
    file.close();
  }
});

test('a pending async wait keeps its Mapping alive through garbage collection', async () => {
  const file = MemFile.create('futex-gc');
  file.truncate(4096);
  let waiting = (() => {
    const m = file.map();
    return futexWaitAsync(new Int32Array(m.buffer), 0, 0, 10000);
  })();
  for (let i = 0; i < 5; i++) {
    globalThis.gc?.();
    await delay(5);
  }
  const waker = file.map();
  await wakeAll(new Int32Array(waker.buffer), 0, 1);
  assert.equal(await waiting, 'ok');
  waiting = null;
  waker.unmap();
  file.close();
});

test('futexWait on a read-only (copy-on-write) mapping does not copy the page', () => {
  const { file, m, v } = mapped();
  try {
    file.addSeals(Seal.FutureWrite);
    const reader = file.map();
    assert.equal(reader.writable, false);
    const rv = new Int32Array(reader.buffer);
    assert.equal(futexWait(rv, 0, 0, 1), 'timed-out');
    Atomics.store(v, 0, 99);
    assert.equal(Atomics.load(rv, 0), 99, 'the reader still sees the owner after a futex wait');
    assert.equal(futexWait(rv, 0, 99, 1), 'timed-out');
    reader.unmap();
    m.unmap();
  } finally {
    file.close();
  }
});

function workerWithFile(file, body) {
  const path = file.path; // /proc/self/fd/N: a Worker shares the process's fds
  const code = `
    const { parentPort } = await import('node:worker_threads');
    const { openSync } = await import('node:fs');
    const { MemFile, futexWait, futexWake, futexWaitAsync } = await import(${JSON.stringify(LIB)});
    const file = MemFile.fromFd(openSync(${JSON.stringify(path)}, 'r+'), { requireSeals: ['shrink'] });
    ${body}
  `;
  return new Worker(code, { eval: true });
}

test('a Worker terminated while its futexWaitAsync is pending (mapping live) does not crash this process', { timeout: 30000 }, async () => {
  const { file, m, v } = mapped();
  try {
    const before = threadCount();
    for (let round = 0; round < 3; round++) {
      const w = workerWithFile(file, `
        const mine = MemFile.create('worker-own'); mine.truncate(8192);
        globalThis.keep = [mine.map(), file.map()];
        const v = new Int32Array(globalThis.keep[1].buffer);
        futexWaitAsync(v, 5, 0).then((r) => parentPort.postMessage('woke ' + r));
        futexWaitAsync(new Int32Array(globalThis.keep[0].buffer), 0, 0);
        parentPort.postMessage('waiting');
      `);
      const messages = [];
      w.on('message', (msg) => messages.push(msg));
      await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
      await delay(10);
      await w.terminate();
      assert.deepEqual(messages, ['waiting']);
    }
    // This process is fine, and its own mapping of the shared word still works.
    Atomics.store(v, 5, 1);
    assert.equal(futexWake(v, 5), 0, 'the terminated Workers left no waiter behind');
    await delay(20);
    assert.ok(threadCount() <= before + 2, `threads joined (${before} -> ${threadCount()})`);
    m.unmap();
  } finally {
    file.close();
  }
});

test('the main thread wakes a Worker waiting sync and async on another mapping of the same file', { timeout: 30000 }, async () => {
  const { file, m, v } = mapped();
  try {
    const w = workerWithFile(file, `
      const v = new Int32Array(file.map().buffer);
      parentPort.postMessage('ready');
      parentPort.postMessage('sync ' + futexWait(v, 0, 0, 10000));
      parentPort.postMessage('async ' + await futexWaitAsync(v, 1, 0, 10000));
    `);
    const messages = [];
    const next = () => new Promise((resolve) => w.once('message', resolve));
    w.on('message', (msg) => messages.push(msg));
    await next();
    await wakeAll(v, 0, 1);
    await new Promise((resolve) => { const t = setInterval(() => { if (messages.length >= 2) { clearInterval(t); resolve(); } }, 2); });
    await wakeAll(v, 1, 1);
    await new Promise((resolve) => w.once('exit', resolve));
    assert.deepEqual(messages, ['ready', 'sync ok', 'async ok']);
    m.unmap();
  } finally {
    file.close();
  }
});

test('an fd opened for a Worker is still open here (sanity of the helper)', () => {
  const { file, m } = mapped();
  const fd = openSync(file.path, 'r');
  const other = MemFile.fromFd(fd);
  assert.equal(other.size, 4096);
  other.close();
  m.unmap();
  file.close();
});

test('a Worker blocked in futexWait with no timeout is terminated promptly; this process stays healthy', { timeout: 30000 }, async () => {
  const { file, m, v } = mapped();
  try {
    for (let round = 0; round < 3; round++) {
      const w = workerWithFile(file, `
        const v = new Int32Array(file.map().buffer);
        parentPort.postMessage('waiting');
        let r;
        try {
          r = futexWait(v, 0, 0); // no timeout: only V8's termination can end it
        } catch (e) {
          r = e.code; // ERR_MEMFD_TERMINATING: nothing runs as if woken
        }
        if (r !== 'ERR_MEMFD_TERMINATING') parentPort.postMessage('returned ' + r + ' ' + v[0]);
      `);
      const messages = [];
      w.on('message', (msg) => messages.push(msg));
      await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
      await delay(150); // inside the kernel wait, past a slice or more
      const started = Date.now();
      const outcome = await Promise.race([w.terminate().then(() => 'terminated'), delay(2000).then(() => 'still blocked')]);
      assert.equal(outcome, 'terminated', 'Worker.terminate() returned within 2 s');
      assert.ok(Date.now() - started < 2000);
      assert.deepEqual(messages, ['waiting']);
    }
    // The word still works here: a wait times out, a wake finds no leftover waiter.
    assert.equal(futexWait(v, 0, 0, 5), 'timed-out');
    assert.equal(futexWake(v, 0), 0);
    m.unmap();
  } finally {
    file.close();
  }
});

test('process.exit() while a Worker is blocked in futexWait with no timeout exits promptly', { timeout: 30000 * timeScale }, async () => {
  const child = `
    import { Worker } from 'node:worker_threads';
    const w = new Worker(\`
      const { parentPort } = await import('node:worker_threads');
      const { MemFile, futexWait } = await import(${JSON.stringify(LIB)});
      const f = MemFile.create('w'); f.truncate(4096);
      const v = new Int32Array(f.map().buffer);
      parentPort.postMessage('waiting');
      futexWait(v, 0, 0);
    \`, { eval: true });
    w.once('message', () => setTimeout(() => process.exit(7), 150));
  `;
  const started = Date.now();
  const r = await run(process.execPath, ['--input-type=module', '-e', child], { timeout: 10000 * timeScale });
  assert.equal(r.signal, null, `killed (${r.signal}): the exit hung or crashed\n${r.stderr}`);
  assert.equal(r.code, 7, r.stderr);
  assert.ok(Date.now() - started < 5000 * timeScale, `took ${Date.now() - started} ms`);
});

test('futexWait in slices keeps exact results: timeouts across slices, wakes from another thread, not-equal on entry', { timeout: 30000 * timeScale }, async () => {
  const { file, m, v } = mapped();
  try {
    let t = Date.now();
    assert.equal(futexWait(v, 0, 0, 330), 'timed-out');
    const took = Date.now() - t;
    assert.ok(took >= 329 && took < 1500 * timeScale, `a 330 ms timeout took ${took} ms`);
    Atomics.store(v, 0, 1);
    assert.equal(futexWait(v, 0, 0), 'not-equal');
    assert.equal(futexWait(v, 0, 0, 0), 'not-equal');
    Atomics.store(v, 0, 0);
    assert.equal(futexWait(v, 0, 0, 0), 'timed-out');
    // A Worker wakes the main thread after several slices.
    const w = workerWithFile(file, `
      const v = new Int32Array(file.map().buffer);
      setTimeout(() => {
        const deadline = Date.now() + 2000;
        Atomics.store(v, 1, 1);
        while (futexWake(v, 1) === 0 && Date.now() < deadline) { /* until the waiter is in the kernel */ }
        parentPort.postMessage('woke');
      }, 350);
    `);
    t = Date.now();
    const r = futexWait(v, 1, 0, 10000 * timeScale);
    assert.ok(r === 'ok', `woken after ${Date.now() - t} ms: ${r}`);
    assert.ok(Date.now() - t < 5000 * timeScale, `woken after ${Date.now() - t} ms`);
    await new Promise((resolve) => w.once('exit', resolve));
    m.unmap();
  } finally {
    file.close();
  }
});
