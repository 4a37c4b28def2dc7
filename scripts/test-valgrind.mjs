#!/usr/bin/env node
// npm run test:valgrind: runs scripts/valgrind-smoke.mjs (every native path: MemFile now, mappings and
// sockets once they exist) under valgrind's memcheck with `node --jitless` (valgrind cannot follow V8's
// JIT-generated code). Any memcheck error fails the run (exit 99). scripts/valgrind-node.supp hides
// V8's own conservative stack scanning only; see the comments in it. Takes ~20 s.
//
// Loads the addon the usual way (the MEMFD_BINDING file if set, else build/Release): build it first (npm run build).
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const probe = spawnSync('valgrind', ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  console.error('test:valgrind: valgrind is not installed (Debian: apt-get install valgrind)');
  process.exit(1);
}
const args = [
  '--error-exitcode=99',
  '--leak-check=no', // V8 keeps its heap until exit; fd/mapping leaks are the lifecycle tests' job
  '--errors-for-leak-kinds=none',
  `--suppressions=${join(root, 'scripts', 'valgrind-node.supp')}`,
  process.execPath, '--jitless', '--expose-gc', join(root, 'scripts', 'valgrind-smoke.mjs'),
];
console.log(`== ${probe.stdout.trim()}: valgrind ${args.join(' ')}`);
const started = Date.now();
const r = spawnSync('valgrind', args, { cwd: root, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
process.stdout.write(r.stdout);
process.stderr.write(r.stderr);
const seconds = ((Date.now() - started) / 1000).toFixed(1);
const summary = /ERROR SUMMARY: (\d+) errors/.exec(r.stderr);
const errors = summary ? Number(summary[1]) : NaN;
if (r.status !== 0 || errors !== 0 || !/valgrind smoke: \d+ checks passed/.test(r.stdout)) {
  console.error(`test:valgrind: FAILED in ${seconds} s (exit ${r.status ?? r.signal}, memcheck errors: ${summary ? errors : 'no summary'})`);
  process.exit(1);
}
console.log(`== test:valgrind: passed in ${seconds} s, 0 memcheck errors`);
