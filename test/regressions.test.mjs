// Regression tests for crashes and leaks found in review; each crash case runs in a child process, so a
// regression shows up as that child's signal instead of killing the test runner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as bufferConstants } from 'node:buffer';
import { readdirSync, readlinkSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { MemFile } from '../dist/index.js';
import { LIB, collectGarbage, runNode } from './helpers.mjs';

test('pair(): when wrapping the second end fails, the first is closed cleanly (was a NULL dereference)', async () => {
  const r = await runNode(`
    import { closeSync } from 'node:fs';
    import { MemFile, UnixSocket } from ${JSON.stringify(LIB)};
    const m = MemFile.create('gap');
    const [x0, x1] = UnixSocket.pair();
    m.close();
    closeSync(x1.fd); // behind the library's back: the number stays registered
    let outcome = 'ok';
    try { UnixSocket.pair(); } catch (e) { outcome = e.code; }
    console.log(outcome);
  `);
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.trim(), /^(ok|EEXIST|ERR_MEMFD_\w+)$/);
});

test('a Worker terminated with sends queued behind backpressure leaks none of the MemFiles they pin', async () => {
  const memfds = () => readdirSync('/proc/self/fd').filter((fd) => {
    try { return readlinkSync(`/proc/self/fd/${fd}`).startsWith('/memfd:pinned'); } catch { return false; }
  }).length;
  const code = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(LIB)}).then(async ({ MemFile, UnixSocket }) => {
      const [a, b] = UnixSocket.pair({ type: 'stream' });
      globalThis.keep = [a, b]; // or the GC safety net may close everything before we look
      const big = Buffer.alloc(1 << 20);
      for (let i = 0; i < 64; i++) a.send(big).catch(() => {}); // b never reads
      for (let i = 0; i < 20; i++) {
        const m = MemFile.create('pinned' + i);
        a.send(Buffer.from('x'), [m]).catch(() => {});
        m.close(); // deferred: the queued send pins the handle
      }
      parentPort.postMessage(b.fd);
    });`;
  for (let round = 0; round < 3; round++) {
    const w = new Worker(code, { eval: true });
    await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
    assert.ok(memfds() >= 20, 'the worker holds pinned memfds');
    await w.terminate();
  }
  await collectGarbage();
  assert.equal(memfds(), 0);
});

test('readAll/readAllSync of a file larger than one Buffer can hold: ERR_FS_FILE_TOO_LARGE, no crash', async (t) => {
  if (bufferConstants.MAX_LENGTH > 2 ** 33) {
    t.skip(`this Node's Buffers hold up to ${bufferConstants.MAX_LENGTH} bytes; the limit is only reachable on Node 20`);
    return;
  }
  const f = MemFile.create('too-large');
  t.after(() => f.close());
  f.truncate(bufferConstants.MAX_LENGTH + 4096); // sparse
  assert.throws(() => f.readAllSync(), { name: 'RangeError', code: 'ERR_FS_FILE_TOO_LARGE' });
  await assert.rejects(f.readAll(), { name: 'RangeError', code: 'ERR_FS_FILE_TOO_LARGE' });
  // The native path itself refuses cleanly when asked for more than a Buffer can hold.
  const r = await runNode(`
    import { MemFile } from ${JSON.stringify(LIB)};
    import { binding } from ${JSON.stringify(new URL('../dist/binding.js', import.meta.url).href)};
    import { fileInternals } from ${JSON.stringify(new URL('../dist/memfile.js', import.meta.url).href)};
    const f = MemFile.create('raw');
    f.truncate(2 ** 32 + 4096);
    try { await binding.readAsync(fileInternals(f).handle, 2 ** 32 + 4096, 0); console.log('resolved'); }
    catch (e) { console.log('rejected', e.code); }
  `);
  assert.equal(r.signal, null, r.stderr);
  assert.match(r.stdout, /^(resolved|rejected \w+)/);
});
