#!/usr/bin/env node
// A/B of the call-cost case between builds of the library (used for the numbers in perf commits):
//   node bench/ab.mjs [--rounds 9] [--iterations 200000] NAME=DIR NAME=DIR ...
// DIR is a compiled dist/ directory (e.g. from `npx tsc --outDir bench/build/ab/NAME/dist`, with
// bench/build/ab/NAME/build symlinked to ../../../../build so the addon resolves). The builds run in
// alternating order, each in a fresh process, together with the C reference; medians of the rounds.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
let rounds = 9, iterations = 200000;
const builds = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--rounds') rounds = Number(argv[++i]);
  else if (argv[i] === '--iterations') iterations = Number(argv[++i]);
  else { const [name, dir] = argv[i].split('='); builds.push({ name, dir: path.resolve(dir) }); }
}
const variants = [
  ...builds.map((b) => ({ name: b.name, cmd: process.execPath, args: [path.join(here, 'node', 'callcost.mjs'), iterations, 11, b.dir] })),
  { name: 'C', cmd: path.join(here, 'build', 'callcost'), args: [iterations, 11] },
];
const samples = Object.fromEntries(variants.map((v) => [v.name, []]));
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < variants.length; k++) {
    const v = variants[(k + r) % variants.length];
    const p = spawnSync(v.cmd, v.args.map(String), { encoding: 'utf8' });
    if (p.status !== 0) throw new Error(`${v.name}: ${p.stderr}`);
    samples[v.name].push(JSON.parse(p.stdout.trim().split('\n').pop()));
  }
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const ops = ['createClose', 'createFdClose', 'getSeals', 'addSeals', 'truncate'];
for (const [what, pick] of [['wall', (s) => s], ['CPU', (s) => s.cpu]]) {
  console.log(`${what} ns/op: median of ${rounds} rounds (each round = median of 11 reps), ratio to C`);
  console.log('build'.padEnd(12) + ops.map((o) => o.padStart(20)).join(''));
  // In C the fd from memfd_create is the one you give away: createFdClose compares with createClose.
  const cOp = (o) => (o === 'createFdClose' ? 'createClose' : o);
  const c = Object.fromEntries(ops.map((o) => [o, median(samples.C.map((s) => pick(s)[cOp(o)]))]));
  for (const v of variants) {
    console.log(v.name.padEnd(12) + ops.map((o) => {
      const values = samples[v.name].map((s) => pick(s)[o]).filter((x) => x !== undefined);
      if (values.length === 0) return 'n/a'.padStart(20);
      const m = median(values);
      return `${m.toFixed(0)} (${(m / c[o]).toFixed(2)}x)`.padStart(20);
    }).join(''));
  }
}
