// Child process of mapping-inflight.test.mjs: unmaps Mappings while Node's own thread-pool work still
// reads or writes their memory through the raw pointer it took (crypto.randomFill, zlib.deflate, fs.read).
// A regression kills this process with SIGSEGV, which the parent reports, instead of the test runner.
// Prints one JSON line of findings and exits 0.
//   node unmap-inflight-child.mjs <randomFill|zlib|fs-read|worker> [rounds]
import { randomFill } from 'node:crypto';
import { closeSync, openSync, read } from 'node:fs';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import zlib from 'node:zlib';
import { MemFile } from '../dist/index.js';

const kind = process.argv[2];
const rounds = Number(process.argv[3] ?? 12);
const SIZE = 16 << 20;
const PATTERN = 0xa5;
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

function patterned(name, size = SIZE) {
  const f = MemFile.create(name);
  f.truncate(size);
  const m = f.map();
  m.bytes.fill(PATTERN);
  m.unmap();
  return f;
}

/** Another file mapped after the unmaps: late writers must not land in it (the address-reuse hazard). */
function bystander() {
  const f = MemFile.create('bystander');
  f.truncate(SIZE);
  const maps = [];
  for (let i = 0; i < 4; i++) {
    const m = f.map({ offset: i * (SIZE / 4), length: SIZE / 4 });
    m.bytes.fill(7);
    maps.push(m);
  }
  return { f, maps };
}

function checkBystander({ f, maps }) {
  for (const m of maps) if (m.bytes.some((b) => b !== 7)) return 'a bystander mapping changed';
  if (f.readAllSync().some((b) => b !== 7)) return "a bystander's file changed";
  for (const m of maps) m.unmap();
  f.close();
  return null;
}

const findings = { kind, rounds, problems: [] };
const problem = (p) => { if (p) findings.problems.push(p); };

if (kind === 'randomFill') {
  // Copy-on-write mappings: nothing randomFill writes, before or after the unmap, may reach the file.
  const f = patterned('rf');
  const pending = [];
  for (let i = 0; i < rounds; i++) {
    const m = f.map({ writable: false });
    pending.push(promisify(randomFill)(m.bytes));
    m.unmap();
  }
  // Shared mappings too: the file may get random bytes (written before the unmap), the process must live.
  const g = patterned('rf-shared');
  for (let i = 0; i < rounds; i++) {
    const m = g.map();
    pending.push(promisify(randomFill)(m.bytes));
    m.unmap();
  }
  const other = bystander();
  await Promise.all(pending);
  problem(checkBystander(other));
  if (f.readAllSync().some((b) => b !== PATTERN)) problem('randomFill changed a file through a copy-on-write mapping');
} else if (kind === 'zlib') {
  // chunkSize covers the whole output so that deflate finishes in one pass: a second pass would hand
  // Node's zlib the detached buffer, which it refuses (ERR_OUT_OF_RANGE; Node 20 aborts on an assertion),
  // as it does for any ArrayBuffer detached under it.
  const f = patterned('zlib');
  const pending = [];
  for (let i = 0; i < rounds; i++) {
    const m = f.map();
    pending.push(promisify(zlib.deflate)(m.bytes, { chunkSize: 2 * SIZE }));
    m.unmap();
  }
  const other = bystander();
  for (const out of await Promise.all(pending)) {
    // Late reads see the placeholder's zeros: every byte is the file's or 0, and the length is right.
    const plain = zlib.inflateSync(out);
    if (plain.length !== SIZE) problem(`inflated ${plain.length} bytes, expected ${SIZE}`);
    if (plain.some((b) => b !== PATTERN && b !== 0)) problem('deflate read bytes that were never in the file');
  }
  problem(checkBystander(other));
  if (f.readAllSync().some((b) => b !== PATTERN)) problem('deflate changed the file');
} else if (kind === 'fs-read') {
  // read(2) on the pool into a copy-on-write mapping of one file, from another file.
  const src = patterned('src');
  const dst = MemFile.create('dst');
  dst.truncate(SIZE);
  const fd = openSync(src.path, 'r');
  const pending = [];
  for (let i = 0; i < rounds; i++) {
    const m = dst.map({ writable: false });
    pending.push(new Promise((resolve) => read(fd, m.bytes, 0, SIZE, 0, (err, n) => resolve(err ?? n))));
    m.unmap();
  }
  const other = bystander();
  for (const r of await Promise.all(pending)) {
    // EFAULT is impossible with the placeholder; the read may be short (it raced the detach) or whole.
    if (typeof r !== 'number') problem(`fs.read failed: ${r.code}`);
  }
  closeSync(fd);
  problem(checkBystander(other));
  if (dst.readAllSync().some((b) => b !== 0)) problem('fs.read changed a file through a copy-on-write mapping');
} else if (kind === 'worker') {
  // A Worker unmaps under its own pool work and is terminated at once: its teardown releases its
  // quarantined placeholders only after Node has let that pool work finish.
  const lib = JSON.stringify(new URL('../dist/index.js', import.meta.url).href);
  for (let i = 0; i < Math.max(1, rounds / 4); i++) {
    const w = new Worker(`
      const { parentPort } = require('node:worker_threads');
      const { randomFill } = require('node:crypto');
      import(${lib}).then(({ MemFile }) => {
        const f = MemFile.create('w'); f.truncate(${SIZE});
        for (let i = 0; i < 8; i++) { const m = f.map(); randomFill(m.bytes, () => {}); m.unmap(); }
        parentPort.postMessage('unmapped');
      });`, { eval: true });
    await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
    await w.terminate();
  }
  await delay(200);
} else {
  throw new Error(`unknown kind ${kind}`);
}
await delay(50);
console.log(JSON.stringify(findings));
