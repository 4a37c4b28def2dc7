#!/usr/bin/env node
// npm run test:fuzz: the model-based property tests (test/model-*.test.mjs) with many more runs and a
// fresh random seed each time (npm test runs them bounded and with a fixed seed).
//
//   MEMFD_FUZZ_RUNS=20000   runs per property (default 20000)
//   MEMFD_FUZZ_SEED=123     replay a seed printed by a failing run
//   MEMFD_FUZZ_PATH=...     with the seed: replay exactly the shrunk counterexample fast-check printed
//
// Watchdog: a wrong model could ask the kernel for a petabyte fallocate that it would really try to
// satisfy, filling RAM with shmem pages and calling the OOM killer on the whole machine. The test process
// group is killed when the machine's Shmem grows by more than MEMFD_FUZZ_SHMEM_LIMIT_MB (default 4096).
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const files = readdirSync(join(root, 'test')).filter((f) => /^model-.*\.test\.mjs$/.test(f)).map((f) => join('test', f));
if (files.length === 0) {
  console.error('test:fuzz: no test/model-*.test.mjs files');
  process.exit(1);
}
const runs = process.env.MEMFD_FUZZ_RUNS ?? '20000';
const seed = process.env.MEMFD_FUZZ_SEED ?? String((Math.random() * 2 ** 31) | 0);
const limitKb = Number(process.env.MEMFD_FUZZ_SHMEM_LIMIT_MB ?? 4096) * 1024;

function shmemKb() {
  const m = /^Shmem:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) : 0;
}

console.log(`== test:fuzz: ${files.join(', ')}: MEMFD_FUZZ_RUNS=${runs} MEMFD_FUZZ_SEED=${seed}` +
  (process.env.MEMFD_FUZZ_PATH ? ` MEMFD_FUZZ_PATH=${process.env.MEMFD_FUZZ_PATH}` : ''));
const started = Date.now();
const startShmem = shmemKb();
const child = spawn(process.execPath, ['--expose-gc', '--test', '--test-concurrency=1', ...files], {
  cwd: root,
  stdio: 'inherit',
  detached: true, // its own process group, so the watchdog can stop the test files it starts
  env: { ...process.env, MEMFD_FUZZ_RUNS: runs, MEMFD_FUZZ_SEED: seed },
});
let killedForMemory = false;
const watchdog = setInterval(() => {
  const grown = shmemKb() - startShmem;
  if (grown > limitKb && !killedForMemory) {
    killedForMemory = true;
    console.error(`test:fuzz: shmem grew by ${Math.round(grown / 1024)} MiB: a model let a huge allocation reach the kernel; stopping`);
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
}, 100);
child.on('close', (code, signal) => {
  clearInterval(watchdog);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (killedForMemory || code !== 0) {
    console.error(`test:fuzz: FAILED (exit ${code ?? signal}) after ${seconds} s. Replay: MEMFD_FUZZ_SEED=${seed} ` +
      'MEMFD_FUZZ_RUNS=... plus MEMFD_FUZZ_PATH from the counterexample above, npm run test:fuzz');
    process.exit(1);
  }
  console.log(`== test:fuzz: passed in ${seconds} s (MEMFD_FUZZ_RUNS=${runs}, MEMFD_FUZZ_SEED=${seed})`);
});
