// Node side of the call-cost case: MemFile.create()+close(), getSeals(), addSeals(), truncate(), and pure
// Node's closest alternative (an O_TMPFILE file on /dev/shm). Usage: node callcost.mjs ITERATIONS.
// Prints one JSON object of ns/op, measured after a warmup of the same loops (so the JIT has settled).
import fs from 'node:fs';
import { MemFile, Seal } from '../../dist/index.js';

const O_TMPFILE = 0o20000000 | fs.constants.O_DIRECTORY; // __O_TMPFILE | O_DIRECTORY, as in <fcntl.h>
const n = Number(process.argv[2] ?? 200000);
const nc = Math.floor(n / 4);
let sink = 0;

function time(fn, iterations) {
  const t0 = process.hrtime.bigint();
  fn(iterations);
  return Number(process.hrtime.bigint() - t0) / iterations;
}

const loops = {
  createClose(k) {
    for (let i = 0; i < k; i++) MemFile.create('bench').close();
  },
  tmpfileClose(k) {
    const flags = O_TMPFILE | fs.constants.O_RDWR;
    for (let i = 0; i < k; i++) fs.closeSync(fs.openSync('/dev/shm', flags, 0o600));
  },
  getSeals(k) {
    for (let i = 0; i < k; i++) sink ^= loops.file.getSeals().bits;
  },
  addSeals(k) {
    for (let i = 0; i < k; i++) loops.sealFile.addSeals(Seal.Grow);
  },
  truncate(k) {
    for (let i = 0; i < k; i++) loops.file.truncate(i & 1 ? 0 : 4096);
  },
  // Pure Node's ftruncate on an O_TMPFILE fd, for scale.
  fsFtruncate(k) {
    for (let i = 0; i < k; i++) fs.ftruncateSync(loops.tmpFd, i & 1 ? 0 : 4096);
  },
};
loops.file = MemFile.create('bench');
loops.sealFile = MemFile.create('bench');
loops.tmpFd = fs.openSync('/dev/shm', O_TMPFILE | fs.constants.O_RDWR, 0o600);

const iterations = { createClose: nc, tmpfileClose: nc, getSeals: n, addSeals: n, truncate: n, fsFtruncate: n };
const names = Object.keys(iterations);
for (const name of names) time(loops[name], Math.max(1000, Math.floor(iterations[name] / 2))); // warmup
const out = {};
for (const name of names) out[name] = Math.round(time(loops[name], iterations[name]) * 10) / 10;
if (sink === 0.5) console.error(sink);
console.log(JSON.stringify(out));
