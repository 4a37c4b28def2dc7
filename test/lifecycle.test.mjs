// Lifetimes of MemFile fds: explicit close, GC-only drops, workers, env teardown. Run with --expose-gc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { readdirSync, readlinkSync } from 'node:fs';
import { MemFile } from '../dist/index.js';
import { collectGarbage, fdCount, reuseFdNumber, runNode, LIB } from './helpers.mjs';

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

test('files dropped in the job that made them, past the batch of deferred GC registrations, are all closed', async () => {
  await collectGarbage();
  const before = fdCount();
  const keep = [];
  (() => {
    // One synchronous run: 3000 opens cross the point where pending registrations are made at once
    // (1024); every third file is closed, in and out of creation order, and 100 are kept.
    const made = [];
    for (let i = 0; i < 3000; i++) made.push(MemFile.create('same-job'));
    for (let i = 0; i < 3000; i += 3) made[i].close();
    for (let i = 3000 - 2; i >= 0; i -= 300) keep.push(made[i]);
  })();
  await collectGarbage(8);
  assert.equal(fdCount(), before + keep.length);
  for (const f of keep) assert.equal(f.closed, false);
  for (const f of keep) f.close();
  assert.equal(fdCount(), before);
});

test('a MemFile handle number is stale once closed: it never reaches a later file, whatever reuses its slot', async () => {
  const { binding } = await import('../dist/binding.js');
  const stale = binding.memfdCreate('stale', 1);
  assert.equal(typeof stale, 'number');
  assert.ok(stale < 0);
  assert.ok(binding.handleOwnFd(stale) >= 0);
  assert.equal(binding.handleClose(stale), -2);
  // Enough opens and closes that the freed slot is handed out again (slots are reused FIFO after 1024).
  const later = [];
  for (let i = 0; i < 3000; i++) {
    const h = binding.memfdCreate('later', 1);
    if (i % 2 === 0) binding.handleClose(h);
    else later.push(h);
  }
  assert.equal(binding.handleOwnFd(stale), -1);
  assert.equal(binding.handleFd(stale), -1);
  assert.equal(binding.handleClose(stale), -1);
  assert.throws(() => binding.getSeals(stale), { code: 'EBADF' });
  assert.throws(() => binding.handlePin(stale), { code: 'EBADF' });
  binding.handleRelease(stale); // a late registry callback: nothing happens
  for (const h of later) assert.ok(binding.handleOwnFd(h) >= 0, 'a later file was touched');
  for (const h of later) assert.equal(binding.handleClose(h), -2);
  // Anything else is refused as an argument, not taken for a handle.
  assert.throws(() => binding.handleFd(1.5), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => binding.handleFd({}), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => binding.handleFd(null), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('a closed-then-collected MemFile does not close the fd number a new file reuses', async () => {
  let victim;
  {
    const f = MemFile.create('closed-then-dropped');
    const n = f.fd;
    // The file has two numbers, its private fd and the one `fd` shows: the victim takes both.
    const lowest = Math.min(...readdirSync('/proc/self/fd').filter((e) => {
      try { return readlinkSync(`/proc/self/fd/${e}`).startsWith('/memfd:closed-then-dropped'); } catch { return false; }
    }).map(Number));
    f.close();
    victim = reuseFdNumber(lowest, () => { const v = MemFile.create('victim'); v.fd; return v; });
    assert.equal(victim.fd, n, 'fd number reused');
  }
  await collectGarbage(8);
  victim.writeSync('still mine');
  assert.equal(victim.readAllSync().toString(), 'still mine');
  victim.close();
});

test('the warning for a MemFile the GC closed names the file, and shows the fd the program saw if it saw one', async () => {
  // In children: the warning is emitted once per process. The file is dropped after the job that made it,
  // so the registry's callback closes it (not the end-of-job list). Without file.fd the number shown is the
  // library's private fd, which the program never saw: the name is what tells which file it was.
  for (const readFd of [false, true]) {
    const r = await runNode(`
      import { MemFile } from './dist/index.js';
      const warnings = [];
      process.on('warning', (w) => warnings.push(w.code + ' ' + w.message));
      let file = MemFile.create('forgotten "ring"');
      file.truncate(4096);
      const shown = ${readFd} ? file.fd : -1;
      await new Promise((r) => setImmediate(r)); // registered now
      file = null;
      for (let i = 0; i < 8 && warnings.length === 0; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); }
      console.log(JSON.stringify({ warnings, shown }));
    `, { args: ['--expose-gc'] });
    assert.equal(r.code, 0, r.stderr);
    const { warnings, shown } = JSON.parse(r.stdout);
    assert.equal(warnings.length, 1, r.stdout);
    const m = /^MEMFD_CLOSED_BY_GC A MemFile named "forgotten \\"ring\\"" was closed by the garbage collector \(fd (\d+)\)\. /.exec(warnings[0]);
    assert.ok(m, warnings[0]);
    if (readFd) assert.equal(Number(m[1]), shown, 'the number the program was given');
  }
});

test('a MemFile whose fd was released, then dropped, leaves that fd open: the GC closes nothing of it', async () => {
  // In a child: the MEMFD_CLOSED_BY_GC warning is emitted once per process. Released in the job that made
  // the file (no registry entry yet) and after it (registered): neither may be closed by the safety net.
  const r = await runNode(`
    import { fstatSync, closeSync } from 'node:fs';
    import { MemFile } from './dist/index.js';
    const warnings = [];
    process.on('warning', (w) => warnings.push(w.code));
    const gc = async () => { for (let i = 0; i < 8; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); } };
    const fds = [];
    const sameJob = () => { for (let i = 0; i < 50; i++) fds.push(MemFile.create('released').releaseFd()); };
    sameJob();
    const later = [];
    for (let i = 0; i < 50; i++) later.push(MemFile.create('released-later'));
    await new Promise((r) => setImmediate(r)); // their registry entries are made now
    for (const f of later.splice(0)) fds.push(f.releaseFd());
    await gc();
    let open = 0;
    for (const fd of fds) { try { fstatSync(fd); open++; } catch {} }
    for (const fd of fds) closeSync(fd);
    console.log(JSON.stringify({ open, warnings }));
  `, { args: ['--expose-gc'] });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { open: 100, warnings: [] });
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
  // The main thread's files share the process-wide handle table with the worker's: teardown must leave them.
  const mine = Array.from({ length: 20 }, (_, i) => MemFile.from('main ' + i));
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(source)}`));
  const message = await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
  assert.match(message, /^worker 0,worker 1,/);
  assert.equal(fdCount() >= before + 70, true, 'the worker holds 50 memfds');
  await worker.terminate();
  await collectGarbage();
  assert.ok(fdCount() <= before + 22, `fds closed at worker teardown (before ${before}, after ${fdCount()})`);
  mine.forEach((f, i) => assert.equal(f.readAllSync().toString(), 'main ' + i));
  for (const f of mine) f.close();
});

// A regression shows as a send rejected with EBADF and a receive that never comes: the timeout fails it.
test('a MemFile dropped while its send waits in a full socket still goes out, then is closed by GC', { timeout: 30_000 }, async () => {
  const { UnixSocket } = await import('../dist/index.js');
  await collectGarbage();
  const before = fdCount();
  const [a, b] = UnixSocket.pair({ type: 'seqpacket' });
  const filler = Buffer.alloc(16 * 1024);
  let queued = 0;
  const sends = [];
  // Fill the socket until sends have to wait, then queue files nobody keeps a reference to.
  while (queued === 0) {
    const p = a.send(filler);
    sends.push(p);
    if (await Promise.race([p.then(() => false), new Promise((r) => setImmediate(() => r(true)))])) queued++;
  }
  const failed = [];
  (() => {
    for (let i = 0; i < 5; i++) sends.push(a.send(Buffer.from('f' + i), [MemFile.from('dropped ' + i)]).catch((e) => { failed.push(e); }));
  })();
  await collectGarbage(8); // the files are unreachable from user code: only the queue keeps them
  const contents = [];
  while (contents.length < 5) {
    assert.deepEqual(failed, [], 'no queued send of a dropped file may fail');
    const msg = await b.receive();
    if (msg.fds.length === 0) { msg.close(); continue; }
    const f = MemFile.fromFd(msg.fds[0]);
    contents.push(f.readAllSync().toString());
    f.close();
  }
  await Promise.all(sends);
  assert.deepEqual(contents, [0, 1, 2, 3, 4].map((i) => 'dropped ' + i));
  a.close();
  b.close();
  await collectGarbage(8);
  assert.equal(fdCount(), before);
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
