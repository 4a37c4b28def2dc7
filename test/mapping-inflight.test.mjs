// unmap() while Node's own thread-pool work still holds the raw pointer of the mapping's memory
// (crypto.randomFill, zlib.deflate, fs.read into the view). Detaching stops JS, not native code already
// running: the range is replaced by an anonymous placeholder that is quarantined, never munmapped under
// it. Each scenario runs in a child process (unmap-inflight-child.mjs), so a regression shows up as that
// child's SIGSEGV rather than killing the test runner. Run with --expose-gc (npm test does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { binding } from '../dist/binding.js';
import { mappingOfBuffer } from '../dist/mapping.js';
import { MemFile, Seal } from '../dist/index.js';
import { LIB, run } from './helpers.mjs';

const CHILD = new URL('./unmap-inflight-child.mjs', import.meta.url).pathname;

async function scenario(kind) {
  const r = await run(process.execPath, [CHILD, kind], { timeout: 60000 });
  const detail = `exit ${r.code}, signal ${r.signal}\n${r.stderr.slice(-2000)}`;
  assert.equal(r.signal, null, `the child died of ${r.signal} (late access to unmapped memory?): ${detail}`);
  assert.equal(r.code, 0, detail);
  const findings = JSON.parse(r.stdout.trim().split('\n').at(-1));
  assert.deepEqual(findings.problems, [], detail);
}

test('crypto.randomFill into m.bytes, then unmap at once: no crash, the file and later mappings untouched', () => scenario('randomFill'));
test('zlib.deflate of m.bytes, then unmap at once: no crash, late reads see zeros', () => scenario('zlib'));
test('fs.read into m.bytes with a callback, then unmap at once: no crash, no EFAULT, the file untouched', () => scenario('fs-read'));
test('a Worker unmapping under its own pool work and terminated at once: no crash', () => scenario('worker'));

const mapsLine = (address) => readFileSync('/proc/self/maps', 'utf8').split('\n')
  .find((l) => parseInt(l.split('-')[0], 16) <= address && address < parseInt(l.split(/[- ]/)[1], 16));

test('an unmapped range becomes an anonymous placeholder that holds neither the file nor memory', () => {
  const f = MemFile.create('placeholder');
  f.truncate(1 << 20);
  const m = f.map();
  m.bytes.fill(1);
  const [, address] = binding.mappingInfo(mappingOfBuffer(m.buffer).record);
  assert.match(mapsLine(address), /memfd:placeholder/);
  m.unmap();
  const line = mapsLine(address);
  assert.ok(line, 'the range stays reserved while quarantined');
  assert.doesNotMatch(line, /memfd/, 'the file is no longer mapped');
  assert.match(line, /^\S+ rw-p /);
  // Not a mapping of the file any more: the shrink guard lets it go (nothing can fault on a placeholder),
  // and the Write seal (which needs no writable shared mapping) is allowed.
  f.truncate(4096);
  f.addSeals(Seal.Write);
  f.close();
});

test("a terminated Worker's placeholders are released with its env; the quarantine stays bounded", { timeout: 30000 }, async () => {
  const before = binding.mappingQuarantine()[0];
  const w = new Worker(`
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(LIB)}).then(({ MemFile }) => {
      const f = MemFile.create('wq'); f.truncate(65536);
      for (let i = 0; i < 10; i++) f.map().unmap();
      parentPort.postMessage('unmapped');
      setInterval(() => {}, 1000); // alive until terminated
    });`, { eval: true });
  await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  assert.equal(binding.mappingQuarantine()[0], Math.min(256, before + 10), 'process-wide: the Worker\'s entries show here');
  await w.terminate();
  assert.equal(binding.mappingQuarantine()[0], before, "the Worker's entries left with it");

  const f = MemFile.create('bound');
  f.truncate(1 << 20);
  for (let i = 0; i < 1000; i++) f.map({ length: 4096 + (i % 4) * 4096 }).unmap();
  const [entries, bytes] = binding.mappingQuarantine();
  assert.equal(entries, 256, 'FIFO: the oldest placeholders are munmapped beyond 256');
  assert.ok(bytes <= 256 * 16384, `quarantined bytes: ${bytes}`);
  // A big mapping is accepted too (address space only; untouched placeholders cost no memory).
  const big = MemFile.create('big');
  big.truncate(1 << 30);
  big.map().unmap();
  assert.ok(binding.mappingQuarantine()[1] >= 1 << 30);
  big.close();
  f.close();
});
