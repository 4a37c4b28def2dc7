// Lifetimes of MemFile fds: explicit close, GC-only drops, workers, env teardown. Run with --expose-gc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { MemFile } from '../dist/index.js';
import { collectGarbage, fdCount, runNode, LIB } from './helpers.mjs';

test('100,000 create/close cycles leave the fd count where it was', () => {
  const before = fdCount();
  for (let i = 0; i < 100_000; i++) {
    const f = MemFile.create('cycle');
    f.close();
  }
  assert.equal(fdCount(), before);
});

test('100,000 MemFiles dropped without close are closed by the GC, never twice', async () => {
  await collectGarbage();
  const before = fdCount();
  for (let batch = 0; batch < 100; batch++) {
    for (let i = 0; i < 1000; i++) MemFile.create('dropped');
    // Keep the live count bounded by ulimit -n: let finalizers run between batches.
    if (batch % 10 === 9) await collectGarbage(2);
  }
  await collectGarbage(8);
  assert.equal(fdCount(), before);
});

test('a closed-then-collected MemFile does not close the fd number a new file reuses', async () => {
  let victim;
  {
    const f = MemFile.create('closed-then-dropped');
    const n = f.fd;
    f.close();
    victim = MemFile.create('victim');
    assert.equal(victim.fd, n, 'fd number reused');
  }
  await collectGarbage(8);
  victim.writeSync('still mine');
  assert.equal(victim.readAllSync().toString(), 'still mine');
  victim.close();
});

test('worker threads create, use and drop MemFiles; terminating a worker closes its fds', async () => {
  await collectGarbage();
  const before = fdCount();
  const source = `
    import { parentPort } from 'node:worker_threads';
    import { MemFile } from ${JSON.stringify(LIB)};
    const files = [];
    for (let i = 0; i < 50; i++) { const f = MemFile.from('worker ' + i); files.push(f); }
    parentPort.postMessage(files.map((f) => f.readAllSync().toString()).join(','));
    setInterval(() => {}, 1000); // stay alive until terminated
  `;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(source)}`));
  const message = await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
  assert.match(message, /^worker 0,worker 1,/);
  assert.equal(fdCount() >= before + 50, true, 'the worker holds 50 memfds');
  await worker.terminate();
  await collectGarbage();
  assert.ok(fdCount() <= before + 2, `fds closed at worker teardown (before ${before}, after ${fdCount()})`);
});

test('process exit with MemFiles open and async writes in flight is clean', async () => {
  const r = await runNode(`
    import { MemFile } from ${JSON.stringify(LIB)};
    const files = Array.from({ length: 100 }, (_, i) => MemFile.create('exit' + i));
    for (const f of files) f.write(Buffer.alloc(1 << 16), 0);
    const big = MemFile.create('big'); big.write(Buffer.alloc(32 << 20), 0);
    process.exit(0);
  `);
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.code, 0, r.stderr);
});
