// Shared memory between two Node processes: one memfd mapped by both, a counter both add to with
// Atomics, and a real cross-process futex to say "go" and "done" (Atomics.wait cannot: V8 emulates it
// inside one process). The child gets the memfd as fd 3 through spawn's stdio array.
import { spawn } from 'node:child_process';
import { MemFile, futexWaitAsync, futexWake } from 'memfd';

const ADDS = Number(process.argv[2] ?? 1_000_000);
const GO = 0, DONE = 1, COUNTER = 2;

if (process.argv[3] === 'child') {
  const file = MemFile.fromFd(3, { requireSeals: ['shrink', 'grow'] });
  const m = file.map();
  const words = new Int32Array(m.buffer);
  while (Atomics.load(words, GO) === 0) await futexWaitAsync(words, GO, 0, 5000);
  for (let i = 0; i < ADDS; i++) Atomics.add(words, COUNTER, 1);
  Atomics.add(words, DONE, 1);
  futexWake(words, DONE);
  m.unmap();
  file.close();
} else {
  const file = MemFile.create('shared-counter');
  file.truncate(4096);
  file.addSeals(['shrink', 'grow']); // the child may map it: it can never shrink under either of us
  const m = file.map();
  const words = new Int32Array(m.buffer);
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, String(ADDS), 'child'], {
    stdio: ['inherit', 'inherit', 'inherit', file.fd],
  });
  const started = performance.now();
  Atomics.store(words, GO, 1);
  futexWake(words, GO); // wakes the child's futex wait in the other process
  for (let i = 0; i < ADDS; i++) Atomics.add(words, COUNTER, 1);
  Atomics.add(words, DONE, 1);
  while (Atomics.load(words, DONE) < 2) await futexWaitAsync(words, DONE, 1, 5000);
  const elapsed = performance.now() - started;
  await new Promise((resolve) => child.on('exit', resolve));
  console.log(`two processes each added ${ADDS.toLocaleString('en')} to one counter in ${elapsed.toFixed(0)} ms: ` +
    `${Atomics.load(words, COUNTER).toLocaleString('en')} (expected ${(2 * ADDS).toLocaleString('en')})`);
  if (Atomics.load(words, COUNTER) !== 2 * ADDS || child.exitCode !== 0) process.exitCode = 1;
  m.unmap();
  file.close();
}
