// The README's synopsis and the examples run as shown; CommonJS users can require() the package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from './helpers.mjs';

const root = new URL('..', import.meta.url).pathname;

test('README synopsis (examples/synopsis.mjs) runs as shown', async () => {
  const r = await run(process.execPath, ['examples/synopsis.mjs'], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^seal\|shrink\|grow\|write\|exec$/m);
  assert.match(r.stdout, /^EPERM pwrite EPERM: operation not permitted, pwrite/m);
  assert.match(r.stdout, /^child sees pixels\.\.\.$/m);
});

test('demo part 1 (examples/demo.mjs): seals are enforced in this process and in a child', async () => {
  const r = await run(process.execPath, ['examples/demo.mjs'], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((r.stdout.match(/refused by the kernel: EPERM/g) ?? []).length, 4);
  assert.match(r.stdout, /write -> EPERM/);
  assert.match(r.stdout, /content unchanged: true/);
});

test('CommonJS code loads the package with require() (require(esm))', async () => {
  const r = await run(process.execPath, ['-e', `
    const { MemFile, Seal } = require('memfd');
    const f = MemFile.from('from cjs');
    console.log(f.readAllSync().toString(), f.getSeals().has(Seal.Write));
    f.close();
  `], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'from cjs true');
});

test('examples/exec.mjs runs an in-memory executable and a default memfd refuses to run', async () => {
  const r = await run(process.execPath, ['examples/exec.mjs'], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /exec: true {2}-> exit 0: hello from a program that only exists in memory/);
  assert.match(r.stdout, /exec: false -> EACCES \(mode 666, seals exec\)/);
});

test('demo part 2 (examples/handoff.mjs): a sealed memfd handed to a child over a socket pair, next to a pipe', async () => {
  const r = await run(process.execPath, ['examples/handoff.mjs', '--size', '8'], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /seals seal\|shrink\|grow\|write/);
  assert.match(r.stdout, /verified 8388608 bytes/);
  assert.match(r.stdout, /read 8388608 bytes from a pipe and verified them/);
  assert.match(r.stdout, /hand-over \(send \/ transfer\)\s+[\d.]+ ms\s+[\d.]+ ms/);
});
