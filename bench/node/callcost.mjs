// Node side of the call-cost case: MemFile.create()+close() (also with `fd` read in between), getSeals(), addSeals(), truncate(), and pure
// Node's closest alternative (an O_TMPFILE file on /dev/shm, plus fs.ftruncateSync on it).
// Usage: node callcost.mjs ITERATIONS [REPS [LIBRARY_DIR]]. After a warmup (which also lets the JIT
// settle), each operation is timed REPS times, operations interleaved, and the median rep is printed as
// one JSON object of ns/op, exactly as bench/c/callcost.c does. LIBRARY_DIR (default ../../dist) lets
// bench/ab.mjs compare two builds of the library.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const n = Number(process.argv[2] ?? 200000);
const reps = Number(process.argv[3] ?? 11);
const libDir = process.argv[4] ?? new URL('../../dist', import.meta.url).pathname;
const { MemFile, Seal } = await import(pathToFileURL(path.join(libDir, 'index.js')).href);

const O_TMPFILE = 0o20000000 | fs.constants.O_DIRECTORY; // __O_TMPFILE | O_DIRECTORY, as in <fcntl.h>
const per = Math.floor(n / reps);
const perc = Math.max(1, Math.floor(per / 4));
let sink = 0;

const file = MemFile.create('bench');
const sealFile = MemFile.create('bench');
const tmpFd = fs.openSync('/dev/shm', O_TMPFILE | fs.constants.O_RDWR, 0o600);

const loops = {
  createClose(k) {
    for (let i = 0; i < k; i++) MemFile.create('bench').close();
  },
  // A program that also gives the fd away: the shown duplicate, its identity record and the check at close.
  createFdClose(k) {
    for (let i = 0; i < k; i++) {
      const f = MemFile.create('bench');
      sink ^= f.fd;
      f.close();
    }
  },
  tmpfileClose(k) {
    const flags = O_TMPFILE | fs.constants.O_RDWR;
    for (let i = 0; i < k; i++) fs.closeSync(fs.openSync('/dev/shm', flags, 0o600));
  },
  getSeals(k) {
    for (let i = 0; i < k; i++) sink ^= file.getSeals().bits;
  },
  addSeals(k) {
    for (let i = 0; i < k; i++) sealFile.addSeals(Seal.Grow);
  },
  truncate(k) {
    for (let i = 0; i < k; i++) file.truncate(i & 1 ? 0 : 4096);
  },
  fsFtruncate(k) {
    for (let i = 0; i < k; i++) fs.ftruncateSync(tmpFd, i & 1 ? 0 : 4096);
  },
};
const calls = { createClose: perc, createFdClose: perc, tmpfileClose: perc, getSeals: per, addSeals: per, truncate: per, fsFtruncate: per };

// Wall time, and process CPU time (all threads, user + system: V8's GC helpers count too), per call.
let lastCpu = 0;
function time(name, k) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  loops[name](k);
  const wall = Number(process.hrtime.bigint() - t0) / k;
  const c = process.cpuUsage(c0);
  lastCpu = ((c.user + c.system) * 1000) / k;
  return wall;
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

const names = Object.keys(loops);
for (const name of names) time(name, Math.max(1000, Math.floor(calls[name] * reps / 2))); // warmup
const samples = Object.fromEntries(names.map((k) => [k, []]));
const cpuSamples = Object.fromEntries(names.map((k) => [k, []]));
for (let r = 0; r < reps; r++) {
  for (const name of names) {
    samples[name].push(time(name, calls[name]));
    cpuSamples[name].push(lastCpu);
  }
}
const out = { cpu: {} };
for (const name of names) {
  out[name] = Math.round(median(samples[name]) * 10) / 10;
  out.cpu[name] = Math.round(median(cpuSamples[name]) * 10) / 10;
}
if (sink === 0.5) console.error(sink);
console.log(JSON.stringify(out));
