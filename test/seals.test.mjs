// Every seal against every operation it forbids or allows, on the real kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemFile, Seal, Seals, FROZEN } from '../dist/index.js';
import { own } from './helpers.mjs';

const SIZE = 8192;

// What the kernel must answer for each operation under one seal: 'ok' or an error code.
const OPERATIONS = {
  'write at current position': (f) => f.writeSync('abc'),
  'positional write inside': (f) => f.writeSync('abc', 100),
  'positional write growing': (f) => f.writeSync('abc', SIZE),
  'async positional write': (f) => f.write('abc', 100),
  'truncate up': (f) => f.truncate(SIZE * 2),
  'truncate down': (f) => f.truncate(SIZE / 2),
  'truncate to same size': (f) => f.truncate(SIZE),
  'allocate inside': (f) => f.allocate(0, SIZE),
  'allocate growing': (f) => f.allocate(SIZE, 4096),
  'allocate keepSize past end': (f) => f.allocate(SIZE, 4096, { keepSize: true }),
  'punch hole': (f) => f.punchHole(0, 4096),
  'add another seal': (f) => f.addSeals(Seal.Grow | Seal.Shrink),
  'chmod changing x bits': (f) => f.chmod(0o700),
  'read': (f) => { const b = Buffer.alloc(10); return f.readSync(b, 0); },
};

function expected(seal, op) {
  const writes = op.includes('write') || op === 'punch hole';
  // Seal.Grow refuses any fallocate past the end, even with KEEP_SIZE (shmem_fallocate checks the range).
  const grows = op === 'positional write growing' || op === 'truncate up' || op.startsWith('allocate') && op !== 'allocate inside';
  switch (seal) {
    case 'write':
    case 'future-write':
      return writes ? 'EPERM' : 'ok';
    case 'shrink':
      return op === 'truncate down' ? 'EPERM' : 'ok';
    case 'grow':
      return grows ? 'EPERM' : 'ok';
    case 'seal':
      return op === 'add another seal' ? 'EPERM' : 'ok';
    case 'exec':
      return op === 'chmod changing x bits' ? 'EPERM' : 'ok';
    default:
      return 'ok';
  }
}

function freshFile(seal) {
  // The default (noexec) file already carries the exec seal; the other rows use an exec: true file so
  // that each row tests one seal alone. (Sealing exec on an executable file implies more: tested below.)
  const f = MemFile.create('seal-matrix', { exec: seal !== 'exec' });
  f.writeSync(Buffer.alloc(SIZE, 7), 0);
  return f;
}

for (const seal of ['none', 'seal', 'shrink', 'grow', 'write', 'future-write', 'exec']) {
  for (const [op, run] of Object.entries(OPERATIONS)) {
    const want = expected(seal, op);
    test(`seal ${seal} x ${op}: ${want}`, async () => {
      const f = freshFile(seal);
      try {
        if (seal !== 'none') f.addSeals([seal]);
        let got = 'ok';
        try {
          await run(f);
        } catch (e) {
          got = e.code;
          assert.equal(e.errno, -1, 'EPERM is errno -1');
          assert.ok(e.syscall, 'syscall is named');
          assert.match(e.message, /^EPERM: operation not permitted, \w+/);
          assert.ok(e.hint, `a hint explains the seal: ${e.message}`);
        }
        assert.equal(got, want);
      } finally {
        f.close();
      }
    });
  }
}

test('seals are only ever added; re-adding is a no-op', (t) => {
  const f = own(t, MemFile.create('add'));
  assert.equal(f.getSeals().toString(), 'exec');
  f.addSeals(Seal.Write);
  f.addSeals(Seal.Write);
  assert.deepEqual([...f.getSeals()], ['write', 'exec']);
  f.addSeals(['shrink', 'grow']);
  assert.ok(f.getSeals().has(Seal.Shrink | Seal.Grow | Seal.Write));
});

test('seal() freezes contents and size for good', (t) => {
  const f = own(t, MemFile.from('frozen'));
  const seals = f.getSeals();
  assert.ok(seals.has(FROZEN));
  assert.throws(() => f.writeSync('x', 0), { code: 'EPERM' });
  assert.throws(() => f.truncate(0), { code: 'EPERM' });
  assert.throws(() => f.truncate(100), { code: 'EPERM' });
  assert.throws(() => f.addSeals(Seal.FutureWrite), { code: 'EPERM', message: /no seal can be added: the file carries Seal\.Seal/ });
  assert.equal(f.readAllSync().toString(), 'frozen');
});

test('allowSealing: false forbids sealing even though NOEXEC_SEAL implies it', (t) => {
  const f = own(t, MemFile.create('nosealing', { allowSealing: false }));
  assert.ok(f.getSeals().has(Seal.Seal));
  assert.throws(() => f.addSeals(Seal.Write), (e) => {
    assert.equal(e.code, 'EPERM');
    assert.equal(e.syscall, 'fcntl');
    assert.match(e.message, /no seal can be added/);
    return true;
  });
  // The file itself is usable.
  f.writeSync('still writable');
  assert.equal(f.readAllSync().toString(), 'still writable');
});

test('allowSealing: false with exec: true', (t) => {
  const f = own(t, MemFile.create('nosealing-exec', { allowSealing: false, exec: true }));
  assert.equal(f.getSeals().toString(), 'seal');
  assert.throws(() => f.addSeals(['write']), { code: 'EPERM' });
});

test('FutureWrite: writes refused, size changes still allowed', (t) => {
  const f = own(t, MemFile.create('fw'));
  f.writeSync('hello', 0);
  f.addSeals(Seal.FutureWrite);
  assert.throws(() => f.writeSync('x', 0), { code: 'EPERM', hint: /future-write/ });
  f.truncate(100);
  assert.equal(f.size, 100);
});

test('adding seals through a read-only handle is refused with a hint', (t) => {
  const f = own(t, MemFile.create('ro-seal'));
  const ro = own(t, f.reopen({ readOnly: true }));
  assert.throws(() => ro.addSeals(Seal.Write), (e) => e.code === 'EPERM' && /read-only/.test(e.message));
  assert.equal(f.getSeals().has(Seal.Write), false);
});

test('Seals: bits, has, missing, names, toString, unknown bits kept', () => {
  const s = new Seals(Seal.Write | Seal.Shrink | 0x40);
  assert.equal(s.bits, 0x4a);
  assert.ok(s.has(Seal.Write));
  assert.ok(s.has(['write', 'shrink']));
  assert.equal(s.has(Seal.Grow), false);
  assert.deepEqual([...s], ['shrink', 'write', '0x40']);
  assert.equal(s.toString(), 'shrink|write|0x40');
  assert.equal(s.missing(FROZEN).toString(), 'seal|grow');
  assert.equal(new Seals(0).toString(), 'none');
  assert.equal(s.size, 3);
  assert.deepEqual(JSON.parse(JSON.stringify(s)), ['shrink', 'write', '0x40']);
  assert.equal(Seals.from(['seal', 'exec']).bits, 0x21);
});

test('seal arguments are validated before any syscall', (t) => {
  const f = own(t, MemFile.create('badseal'));
  assert.throws(() => f.addSeals(0x40), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => f.addSeals(-1), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => f.addSeals(1.5), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => f.addSeals(['nope']), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => f.addSeals([{}]), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => f.addSeals(null), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => f.addSeals({ write: true }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(f.getSeals().toString(), 'exec', 'nothing was sealed');
});

test('Seal values are the kernel bits', () => {
  assert.deepEqual({ ...Seal }, { Seal: 1, Shrink: 2, Grow: 4, Write: 8, FutureWrite: 0x10, Exec: 0x20 });
});

test('exec seal on an executable file also adds shrink, grow, write and future-write (kernel rule)', (t) => {
  const f = own(t, MemFile.create('exec-x', { exec: true }));
  assert.equal(f.stat().mode & 0o111, 0o111);
  f.addSeals(Seal.Exec);
  assert.equal(f.getSeals().toString(), 'shrink|grow|write|future-write|exec');
});
