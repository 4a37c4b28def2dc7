#!/usr/bin/env node
// A/B of the call-cost case between builds of the library (used for the numbers in perf commits):
//   node bench/ab.mjs [--rounds 9] [--iterations 200000] NAME=DIR NAME=DIR ...
// or of the message-rate loop (bench/node/fdpass.mjs) through the given receiving APIs and fd modes:
//   node bench/ab.mjs --case fdpass [--rounds 7] [--messages 100000] [--apis receive,iter,event] [--fds nofd,fd] NAME=DIR ...
// DIR is a compiled dist/ directory (e.g. from `npx tsc --outDir bench/build/ab/NAME/dist`, with
// bench/build/ab/NAME/build symlinked to ../../../../build so the addon resolves). The builds run in
// alternating order, each in a fresh process, together with the C reference; medians of the rounds.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
let rounds = 9, iterations = 200000, which = 'callcost', messages = 100000, apis = ['receive', 'iter', 'event'], fdModes = ['nofd', 'fd'];
const builds = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--rounds') rounds = Number(argv[++i]);
  else if (argv[i] === '--iterations') iterations = Number(argv[++i]);
  else if (argv[i] === '--case') which = argv[++i];
  else if (argv[i] === '--messages') messages = Number(argv[++i]);
  else if (argv[i] === '--apis') apis = argv[++i].split(',');
  else if (argv[i] === '--fds') fdModes = argv[++i].split(',');
  else { const [name, dir] = argv[i].split('='); builds.push({ name, dir: path.resolve(dir) }); }
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

if (which === 'fdpass') {
  // Every (api, fds) pair of every build is one variant; the order rotates each round.
  const vs = [];
  for (const fds of fdModes) for (const api of apis) for (const b of builds) {
    vs.push({ key: `${api} ${fds}`, build: b.name, args: [path.join(here, 'node', 'fdpass.mjs'), messages, 32, api, fds, 'loop', b.dir] });
  }
  const got = new Map(vs.map((v) => [`${v.key}|${v.build}`, []]));
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < vs.length; k++) {
      const v = vs[(k + r) % vs.length];
      const p = spawnSync(process.execPath, v.args.map(String), { encoding: 'utf8' });
      if (p.status !== 0) throw new Error(`${v.key} ${v.build}: ${p.stderr}`);
      got.get(`${v.key}|${v.build}`).push(JSON.parse(p.stdout.trim().split('\n').pop()).perSecond);
    }
  }
  console.log(`messages/s, median of ${rounds} alternating rounds (${messages} messages, window 32); ratio to ${builds[0].name}`);
  console.log('variant'.padEnd(16) + builds.map((b) => b.name.padStart(22)).join(''));
  for (const fds of fdModes) for (const api of apis) {
    const key = `${api} ${fds}`;
    const base = median(got.get(`${key}|${builds[0].name}`));
    console.log(key.padEnd(16) + builds.map((b) => {
      const m = median(got.get(`${key}|${b.name}`));
      return `${(m / 1000).toFixed(1)} k/s (${(m / base).toFixed(2)}x)`.padStart(22);
    }).join(''));
  }
  process.exit(0);
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
