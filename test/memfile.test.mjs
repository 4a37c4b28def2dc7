// MemFile creation, options, names, I/O, adoption and use-after-close, on the real kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readSync, writeFileSync, unlinkSync, fstatSync, mkdtempSync, copyFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { MemFile, Seal, SystemError, capabilities, hugePagePools } from '../dist/index.js';
import { O_CLOEXEC, checkedOutsideEmulation, fdInfoFlags, own, underEmulation } from './helpers.mjs';

test('defaults: cloexec set, noexec in effect, sealing allowed', (t) => {
  const f = own(t, MemFile.create('defaults'));
  assert.ok(f.fd >= 0);
  assert.equal(f.name, 'defaults');
  assert.equal(f.origin, 'created');
  assert.equal(f.size, 0);
  assert.equal(f.closed, false);
  assert.ok(fdInfoFlags(f.fd) & O_CLOEXEC, 'O_CLOEXEC in /proc/self/fdinfo');
  assert.equal(f.stat().mode & 0o111, 0, 'no executable bits');
  if (capabilities().noexecSeal) assert.ok(f.getSeals().has(Seal.Exec), 'MFD_NOEXEC_SEAL adds the exec seal');
  assert.equal(f.getSeals().has(Seal.Seal), false, 'sealing allowed');
  f.addSeals(Seal.Shrink);
  assert.ok(f.getSeals().has(Seal.Shrink));
  assert.equal(readFileSync(`/proc/self/fd/${f.fd}`, 'utf8'), '');
  assert.match(f.path, /^\/proc\/self\/fd\/\d+$/);
});

test('cloexec: false leaves the fd inheritable by exec', (t) => {
  const f = own(t, MemFile.create('inherit', { cloexec: false }));
  assert.equal(fdInfoFlags(f.fd) & O_CLOEXEC, 0);
});

test('default memfd cannot be executed; exec: true can', (t) => {
  const noexec = own(t, MemFile.create('noexec'));
  noexec.writeSync(readFileSync('/bin/true'));
  const refused = spawnSync(`/proc/${process.pid}/fd/${noexec.fd}`);
  assert.ok(refused.error, 'spawning a non-executable memfd fails');
  assert.equal(refused.error.code, 'EACCES');

  if (capabilities().memfdNoexec === 2) {
    assert.throws(() => MemFile.create('exec', { exec: true }), { code: 'EACCES', message: /memfd_noexec = 2/ });
    return;
  }
  const exec = own(t, MemFile.create('exec', { exec: true }));
  exec.writeSync(readFileSync('/bin/true'));
  assert.equal(exec.stat().mode & 0o111, 0o111);
  assert.equal(exec.getSeals().has(Seal.Exec), false);
  const ran = spawnSync(`/proc/${process.pid}/fd/${exec.fd}`);
  assert.equal(ran.error, undefined);
  assert.equal(ran.status, 0);
});

test('hugeTLB option: validated, and works where huge pages are reserved', (t) => {
  assert.throws(() => MemFile.create('h', { hugeTLB: '3MB' }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => MemFile.create('h', { hugeTLB: 2 }), { code: 'ERR_INVALID_ARG_TYPE' });
  const pool = hugePagePools().find((p) => p.size === '2MB');
  if (!capabilities().hugeTLB || !pool || pool.free < 2) {
    t.skip(`no free 2MB huge pages reserved (pools: ${JSON.stringify(hugePagePools())}); ` +
      'reserve some with: echo 8 > /proc/sys/vm/nr_hugepages');
    return;
  }
  for (const hugeTLB of [true, '2MB']) {
    const f = MemFile.create('huge', { hugeTLB });
    try {
      assert.throws(() => f.truncate(4096), (e) => e.code === 'EINVAL' && /huge page size \(2MB\)/.test(e.message));
      f.truncate(2 * 1024 * 1024);
      assert.equal(f.size, 2 * 1024 * 1024);
      assert.equal(f.stat().blksize, 2 * 1024 * 1024);
      assert.throws(() => f.writeSync('x', 0), (e) => e.code === 'EINVAL' && /map/.test(e.message));
      f.addSeals(Seal.Shrink);
      assert.ok(MemFile.isMemFd(f.fd));
    } finally {
      f.close();
    }
  }
});

test('a hugeTLB map() or allocate() the pool cannot serve explains the pool, with its numbers', (t) => {
  const pool = hugePagePools().find((p) => p.size === '2MB');
  if (!capabilities().hugeTLB || !pool || pool.total < 1) {
    t.skip(`no 2MB huge page pool (pools: ${JSON.stringify(hugePagePools())}); reserve some with: echo 8 > /proc/sys/vm/nr_hugepages`);
    return;
  }
  const pages = pool.total + 1; // more than the whole pool: refused however many are free
  const f = MemFile.create('too-big', { hugeTLB: '2MB' });
  try {
    f.truncate(pages * 2 * 1024 * 1024);
    // The generic ENOMEM hint (address space, vm.max_map_count) would send the user the wrong way.
    if (checkedOutsideEmulation(t, 'hugeTLBMap')) {
      assert.throws(() => f.map(), (e) => e.code === 'ENOMEM' && e.syscall === 'mmap' &&
        e.hint.includes(`not enough free 2MB huge pages: this needs up to ${pages}, and `) &&
        e.hint.includes(`of the ${pool.total} in the pool`) && e.hint.includes('hugepages-2048kB/nr_hugepages') &&
        !/max_map_count/.test(e.message));
    }
    assert.throws(() => f.allocate(0, pages * 2 * 1024 * 1024), (e) => ['ENOSPC', 'ENOMEM'].includes(e.code) &&
      e.hint.startsWith('not enough free 2MB huge pages: ') && e.hint.includes(`of the ${pool.total} in the pool`));
  } finally {
    f.close();
  }
  const empty = hugePagePools().find((p) => p.size === '1GB' && p.total === 0);
  if (empty && !underEmulation) {
    const g = MemFile.create('no-pool', { hugeTLB: '1GB' });
    try {
      g.truncate(2 ** 30);
      assert.throws(() => g.map(), (e) => e.code === 'ENOMEM' && /no 1GB huge pages are reserved on this machine/.test(e.hint));
    } finally {
      g.close();
    }
  }
});

test('every huge page size is encoded as log2 << 26', () => {
  // The kernel validates the encoding: an unsupported size is EINVAL (or ENOENT/ENOSYS without hugetlbfs),
  // never a silently different page size. 2MB is supported by x86-64.
  for (const size of ['64KB', '512KB', '1MB', '2MB', '8MB', '16MB', '32MB', '256MB', '512MB', '1GB', '2GB', '16GB']) {
    try {
      MemFile.create('hs', { hugeTLB: size }).close();
    } catch (e) {
      assert.ok(e instanceof SystemError, `${size}: ${e}`);
      assert.ok(['EINVAL', 'ENOENT', 'ENOSYS', 'EPERM', 'ENODEV'].includes(e.code), `${size}: ${e.code}`);
      assert.ok(e.hint, 'hugeTLB errors carry a hint');
    }
  }
});

test('name limits: 249 bytes ok, 250 rejected, multibyte counted in bytes, NUL rejected', () => {
  MemFile.create('a'.repeat(249)).close();
  assert.throws(() => MemFile.create('a'.repeat(250)), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  // 'é' is 2 bytes in UTF-8: 124 of them (248 bytes) fit, 125 (250 bytes) do not.
  const ok = MemFile.create('é'.repeat(124));
  assert.equal(ok.name, 'é'.repeat(124));
  ok.close();
  assert.throws(() => MemFile.create('é'.repeat(125)), { code: 'ERR_OUT_OF_RANGE', message: /250 bytes/ });
  assert.throws(() => MemFile.create('€'.repeat(84)), { code: 'ERR_OUT_OF_RANGE' }); // 252 bytes
  assert.throws(() => MemFile.create('a\0b'), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  const empty = MemFile.create('');
  assert.equal(empty.name, '');
  empty.close();
});

test('a read target that is not a buffer names only buffer types (a string cannot be read into)', async (t) => {
  const f = own(t, MemFile.create('read-target'));
  f.writeSync('abcd', 0);
  const expected = (received) => ({
    code: 'ERR_INVALID_ARG_TYPE',
    message: `The "buffer" argument must be an instance of Buffer, TypedArray, DataView or ArrayBuffer. Received ${received}`,
  });
  assert.throws(() => f.readSync(10), expected('type number (10)'));
  assert.throws(() => f.readSync(null), expected('null'));
  assert.throws(() => f.readSync('abc'), expected('type string ("abc")'));
  assert.throws(() => f.readSync({}, 0), expected('an instance of Object'));
  await assert.rejects(f.read(10), expected('type number (10)'));
  // Writes do take strings, and their message says so.
  assert.throws(() => f.writeSync(10), { code: 'ERR_INVALID_ARG_TYPE', message: /must be of type string or an instance of Buffer/ });
  // Every kind the message names is accepted.
  for (const target of [Buffer.alloc(4), new Uint16Array(2), new DataView(new ArrayBuffer(4)), new ArrayBuffer(4), new SharedArrayBuffer(4)]) {
    assert.equal(f.readSync(target, 0), 4);
  }
});

test('wrong argument types are TypeErrors with Node codes, before any syscall', (t) => {
  assert.throws(() => MemFile.create(42), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => MemFile.create('x', 'opts'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => MemFile.create('x', { allowSealing: 'yes' }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => MemFile.create('x', { cloexec: 1 }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => MemFile.create('x', { exec: null }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new MemFile(), { name: 'TypeError', message: /Illegal constructor/ });
  const f = own(t, MemFile.create('types'));
  assert.throws(() => f.writeSync(123), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => f.writeSync({}), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => f.writeSync('x', -5), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => f.writeSync('x', 1.5), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => f.writeSync('x', '0'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => f.writeSync('x', 2 ** 53), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => f.readSync('string'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => f.readSync(Buffer.alloc(4), { offset: 5 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => f.readSync(Buffer.alloc(4), { offset: 2, length: 3 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => f.truncate(-1), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => f.truncate('10'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => f.allocate(0, 0), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => f.chmod(0o17777), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => MemFile.fromFd(-1), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => MemFile.fromFd('3'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => MemFile.isMemFd(1.5), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => MemFile.from(5), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(f.size, 0, 'nothing was written by the rejected calls');
  assert.rejects(f.write(5), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('kernel errors have the shape of node:fs errors', (t) => {
  const f = own(t, MemFile.from('x'));
  try {
    f.writeSync('y', 0);
    assert.fail('write should be refused');
  } catch (e) {
    assert.ok(e instanceof SystemError);
    assert.ok(e instanceof Error);
    assert.equal(e.code, 'EPERM');
    assert.equal(e.errno, -1);
    assert.equal(e.syscall, 'pwrite');
    assert.match(e.message, /^EPERM: operation not permitted, pwrite/);
    assert.match(e.stack, /memfile\.test\.mjs/);
  }
});

test('positional and sequential I/O, strings, typed arrays, options form', (t) => {
  const f = own(t, MemFile.create('io'));
  assert.equal(f.writeSync('hello '), 6);
  assert.equal(f.writeSync(Buffer.from('world')), 5);
  assert.equal(f.readAllSync().toString(), 'hello world');
  assert.equal(f.writeSync(new Uint16Array([0x4142]), 20), 2);
  assert.equal(f.size, 22);
  assert.deepEqual([...f.readAllSync().subarray(11, 22)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0x41]);
  const b = Buffer.alloc(5);
  assert.equal(f.readSync(b, 6), 5);
  assert.equal(b.toString(), 'world');
  const c = Buffer.alloc(10, '.');
  assert.equal(f.readSync(c, { offset: 2, length: 3, position: 0 }), 3);
  assert.equal(c.toString(), '..hel.....');
  assert.equal(f.writeSync(Buffer.from('XXabcXX'), { offset: 2, length: 3, position: 0n }), 3);
  assert.equal(f.readAllSync().subarray(0, 5).toString(), 'abclo');
  assert.equal(f.readSync(Buffer.alloc(4), 1000), 0, 'reading past the end gives 0');
  const dv = new DataView(new ArrayBuffer(4));
  f.readSync(dv, 0);
  assert.equal(dv.getUint8(0), 'a'.charCodeAt(0));
  f.writeSync(new ArrayBuffer(3), 0);
  assert.equal(f.readAllSync().subarray(0, 3).toString('hex'), '000000');
});

test('async read/write/readAll run on the thread pool', async (t) => {
  const f = own(t, MemFile.create('async'));
  const data = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = i * 7;
  assert.equal(await f.write(data, 0), data.length);
  assert.equal(await f.write('tail', data.length), 4);
  const all = await f.readAll();
  assert.equal(all.length, data.length + 4);
  assert.ok(all.subarray(0, data.length).equals(data));
  const b = Buffer.alloc(4);
  assert.equal(await f.read(b, data.length), 4);
  assert.equal(b.toString(), 'tail');
  // Many concurrent positional writes land where they should.
  await Promise.all(Array.from({ length: 64 }, (_, i) => f.write(Buffer.alloc(1024, i), i * 1024)));
  const back = await f.readAll();
  for (let i = 0; i < 64; i++) assert.equal(back[i * 1024 + 512], i);
  assert.deepEqual(f.readAllSync(), await f.readAll());
  await assert.rejects(f.read(Buffer.alloc(1), -2), { code: 'ERR_OUT_OF_RANGE' });
});

test('async write copies its data: changing or detaching the buffer after the call is safe', async (t) => {
  const f = own(t, MemFile.create('copy'));
  const ab = new ArrayBuffer(1 << 20);
  new Uint8Array(ab).fill(9);
  const pending = f.write(new Uint8Array(ab), 0);
  structuredClone(ab, { transfer: [ab] }); // detaches ab
  assert.equal(ab.byteLength, 0);
  assert.equal(await pending, 1 << 20);
  assert.equal((await f.readAll())[12345], 9);
  // A read whose target gets detached before completion fills nothing and does not crash.
  const target = new ArrayBuffer(16);
  const reading = f.read(new Uint8Array(target), 0);
  structuredClone(target, { transfer: [target] });
  assert.equal(await reading, 0);
});

test('close while an async operation is in flight: the operation finishes on the old file', async () => {
  const f = MemFile.create('inflight');
  const pending = f.write(Buffer.alloc(8 << 20, 1), 0);
  f.close();
  assert.equal(f.closed, true);
  assert.equal(await pending, 8 << 20);
});

test('truncate, allocate, punchHole, stat', (t) => {
  const f = own(t, MemFile.create('sizes'));
  f.truncate(10000);
  assert.equal(f.size, 10000);
  assert.equal(f.stat().blocks, 0, 'truncate up is sparse');
  f.allocate(0, 8192);
  assert.ok(f.stat().allocatedBytes >= 8192);
  f.allocate(20000, 100);
  assert.equal(f.size, 20100);
  f.allocate(30000, 100, { keepSize: true });
  assert.equal(f.size, 20100);
  f.writeSync(Buffer.alloc(4096, 1), 0);
  f.punchHole(0, 4096);
  assert.equal(f.readAllSync()[100], 0);
  assert.equal(f.size, 20100);
  f.truncate(2n ** 33n); // 8 GiB, sparse: 64-bit sizes end to end
  assert.equal(f.size, 2 ** 33);
  f.writeSync('far', 2 ** 33 - 3);
  const b = Buffer.alloc(3);
  f.readSync(b, 2 ** 33 - 3);
  assert.equal(b.toString(), 'far');
  f.truncate();
  assert.equal(f.size, 0);
  const st = f.stat();
  assert.ok(st.isFile());
  assert.equal(typeof st.ino, 'number');
  assert.ok(st.mtime instanceof Date);
});

test('from(): create, write and seal in one call', (t) => {
  const f = own(t, MemFile.from('payload', { name: 'from' }));
  assert.equal(f.name, 'from');
  assert.equal(f.readAllSync().toString(), 'payload');
  assert.ok(f.getSeals().has(Seal.Seal | Seal.Shrink | Seal.Grow | Seal.Write));
  const open = own(t, MemFile.from(new Uint8Array([1, 2, 3]), { seal: false }));
  assert.equal(open.getSeals().has(Seal.Write), false);
  open.writeSync('more');
  const fw = own(t, MemFile.from('x', { seal: ['future-write', 'shrink'] }));
  assert.equal(fw.getSeals().toString(), 'shrink|future-write|exec');
  const empty = own(t, MemFile.from(''));
  assert.equal(empty.size, 0);
});

test('reopen({ readOnly: true }) gives a handle that cannot write', (t) => {
  const f = own(t, MemFile.create('reopen'));
  f.writeSync('shared');
  const ro = own(t, f.reopen({ readOnly: true }));
  assert.equal(ro.readOnly, true);
  assert.equal(ro.origin, 'reopened');
  assert.equal(ro.readAllSync().toString(), 'shared');
  assert.throws(() => ro.writeSync('x', 0), (e) => e.code === 'EBADF' && /read-only/.test(e.message));
  assert.throws(() => ro.truncate(0), (e) => ['EBADF', 'EINVAL'].includes(e.code) && /read-only/.test(e.message));
  const rw = own(t, f.reopen());
  assert.equal(rw.readOnly, false);
  rw.writeSync('S', 0);
  assert.equal(f.readAllSync().toString(), 'Shared');
  assert.notEqual(ro.fd, f.fd);
});

test('dup() shares the open file description (and its position)', (t) => {
  const f = own(t, MemFile.create('dup'));
  const d = own(t, f.dup());
  assert.notEqual(d.fd, f.fd);
  f.writeSync('ab');
  d.writeSync('cd');
  assert.equal(f.readAllSync().toString(), 'abcd');
  assert.ok(fdInfoFlags(d.fd) & O_CLOEXEC);
  const inheritable = own(t, f.dup({ cloexec: false }));
  assert.equal(fdInfoFlags(inheritable.fd) & O_CLOEXEC, 0);
  f.close();
  assert.equal(d.readAllSync().toString(), 'abcd', 'the duplicate survives closing the original');
});

test('streams: pipeline in and out', async (t) => {
  const f = own(t, MemFile.create('streams'));
  const chunks = Array.from({ length: 100 }, (_, i) => Buffer.alloc(10000, i));
  await pipeline(Readable.from(chunks), f.createWriteStream({ start: 0 }));
  assert.equal(f.size, 1_000_000);
  const got = [];
  for await (const c of f.createReadStream()) got.push(c);
  assert.ok(Buffer.concat(got).equals(Buffer.concat(chunks)));
  const part = [];
  for await (const c of f.createReadStream({ start: 10, end: 19 })) part.push(c);
  assert.equal(Buffer.concat(part).length, 10);
  assert.throws(() => f.createReadStream({ start: 5, end: 1 }), { code: 'ERR_OUT_OF_RANGE' });
  // A write stream on a sealed file reports the seal.
  f.addSeals(Seal.Write);
  await assert.rejects(pipeline(Readable.from([Buffer.from('x')]), f.createWriteStream({ start: 0 })), { code: 'EPERM' });
});

test('isMemFd / fromFd: memfd, /dev/shm file, regular file, pipe, closed fd', async (t) => {
  const mem = MemFile.from('adopt me', { name: 'adoptee' });
  // A raw fd no MemFile owns (as a child or a socket would receive it): reopen through /proc.
  const rawFd = openSync(`/proc/self/fd/${mem.fd}`, 'r+');
  assert.equal(MemFile.isMemFd(rawFd), true);

  const shmPath = `/dev/shm/memfd-test-${process.pid}`;
  writeFileSync(shmPath, 'shm');
  const shmFd = openSync(shmPath, 'r+');
  unlinkSync(shmPath);
  const dir = mkdtempSync(join(tmpdir(), 'memfd-'));
  const regularFd = openSync(join(dir, 'regular'), 'w+');
  rmSync(dir, { recursive: true }); // the open fd is all the test needs
  const { pipeFds } = await import('./pipe-helper.mjs');
  const [pr, pw] = pipeFds();
  const closedFd = openSync('/dev/null', 'r');
  closeSync(closedFd);

  t.after(() => { for (const fd of [shmFd, regularFd, pr, pw]) closeSync(fd); mem.close(); });

  for (const [what, fd] of [['a /dev/shm file', shmFd], ['a regular file', regularFd], ['a pipe', pr], ['a pipe (write end)', pw]]) {
    assert.equal(MemFile.isMemFd(fd), false, what);
    assert.throws(() => MemFile.fromFd(fd), { code: 'ERR_MEMFD_NOT_A_MEMFD' }, what);
    fstatSync(fd); // still open: fromFd left it alone
  }
  assert.equal(MemFile.isMemFd(closedFd), false);
  assert.throws(() => MemFile.fromFd(closedFd), { code: 'EBADF' });
  assert.equal(MemFile.isMemFd(99999), false);

  // requireSeals: rejected without taking the fd.
  const unsealed = MemFile.create('unsealed');
  const unsealedFd = openSync(`/proc/self/fd/${unsealed.fd}`, 'r+');
  assert.throws(() => MemFile.fromFd(unsealedFd, { requireSeals: Seal.Write | Seal.Shrink }),
    { code: 'ERR_MEMFD_MISSING_SEALS', message: /shrink\|write/ });
  fstatSync(unsealedFd);
  closeSync(unsealedFd);
  unsealed.close();

  // Success: the MemFile owns the fd.
  const adopted = MemFile.fromFd(rawFd, { requireSeals: ['write', 'shrink'] });
  assert.equal(adopted.name, 'adoptee');
  assert.equal(adopted.origin, 'adopted');
  assert.equal(adopted.readAllSync().toString(), 'adopt me');
  adopted.close();
  assert.throws(() => fstatSync(rawFd), { code: 'EBADF' });
});

test('use after close: clear error, and a file that reuses the fd number is untouched', async () => {
  const f = MemFile.create('closed');
  f.writeSync('old');
  const number = f.fd;
  f.close();
  f.close(); // harmless
  f[Symbol.dispose]();
  assert.equal(f.closed, true);
  assert.equal(f.fd, -1);
  const dir = mkdtempSync(join(tmpdir(), 'memfd-reuse-'));
  const victimPath = join(dir, 'victim');
  writeFileSync(victimPath, 'victim content');
  // The MemFile had two numbers (its private fd and the one `fd` showed): reuse both. Open until the shown
  // number is taken: any free number below it gets a victim too.
  const opened = [];
  do opened.push(openSync(victimPath, 'r+')); while (opened.length < 2 || opened.at(-1) < number);
  const victim = opened.find((n) => n === number);
  assert.notEqual(victim, undefined, 'the kernel reused the fd number');
  try {
    const calls = {
      size: () => f.size, path: () => f.path, writeSync: () => f.writeSync('X', 0), readSync: () => f.readSync(Buffer.alloc(3), 0),
      readAllSync: () => f.readAllSync(), truncate: () => f.truncate(0), allocate: () => f.allocate(0, 10),
      punchHole: () => f.punchHole(0, 10), stat: () => f.stat(), chmod: () => f.chmod(0o600), getSeals: () => f.getSeals(),
      addSeals: () => f.addSeals(Seal.Write), seal: () => f.seal(), dup: () => f.dup(), reopen: () => f.reopen(),
      readOnly: () => f.readOnly, createReadStream: () => f.createReadStream(), createWriteStream: () => f.createWriteStream(),
      map: () => f.map(),
    };
    for (const [name, call] of Object.entries(calls)) {
      assert.throws(call, { code: 'ERR_MEMFD_CLOSED', message: new RegExp(`closed before ${name}`) }, name);
    }
    for (const call of [() => f.write('X', 0), () => f.read(Buffer.alloc(3), 0), () => f.readAll()]) {
      await assert.rejects(call(), { code: 'ERR_MEMFD_CLOSED' });
    }
    assert.equal(readFileSync(victimPath, 'utf8'), 'victim content');
    fstatSync(victim);
  } finally {
    for (const n of opened) closeSync(n);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('capabilities() reports what this kernel supports, cached', () => {
  const caps = capabilities();
  assert.equal(caps, capabilities());
  assert.equal(typeof caps.noexecSeal, 'boolean');
  assert.equal(caps.sealing, true);
  assert.equal(caps.pageSize, 4096);
  assert.ok(Object.isFrozen(caps));
  assert.ok(Array.isArray(caps.hugePagePools));
});

test('util.inspect shows name, size and seals', (t) => {
  const f = own(t, MemFile.from('abc', { name: 'shown' }));
  const text = String(f[Symbol.for('nodejs.util.inspect.custom')]());
  assert.match(text, /name: "shown", size: 3, seals: seal\|shrink\|grow\|write/);
  assert.equal(Object.prototype.toString.call(f), '[object MemFile]');
});

test('readSync at current position reads sequentially', (t) => {
  const f = own(t, MemFile.from('0123456789', { seal: false }));
  const b = Buffer.alloc(4);
  const r = own(t, f.reopen());
  assert.equal(r.readSync(b), 4);
  assert.equal(b.toString(), '0123');
  assert.equal(r.readSync(b), 4);
  assert.equal(b.toString(), '4567');
  void readSync;
});

test('an fd already owned by a MemFile cannot be adopted a second time (no double close)', async (t) => {
  const f = own(t, MemFile.from('owned once'));
  assert.throws(() => MemFile.fromFd(f.fd), { code: 'ERR_MEMFD_FD_ALREADY_OWNED', message: /dup\(\)/ });
  const d = f.dup();
  const viaNumber = d.fd;
  assert.throws(() => MemFile.fromFd(viaNumber), { code: 'ERR_MEMFD_FD_ALREADY_OWNED' });
  d.close();
  // Once closed, the number is free: a new file that reuses it is adoptable by its real owner only.
  assert.equal(f.readAllSync().toString(), 'owned once');
  // In a worker, the same process-wide rule holds.
  const { Worker } = await import('node:worker_threads');
  const { LIB } = await import('./helpers.mjs');
  const w = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.lib).then(({ MemFile }) => {
      try { MemFile.fromFd(workerData.fd); parentPort.postMessage('adopted'); }
      catch (e) { parentPort.postMessage(e.code); }
    });
  `, { eval: true, workerData: { lib: LIB, fd: f.fd } });
  const answer = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  await w.terminate();
  assert.equal(answer, 'ERR_MEMFD_FD_ALREADY_OWNED');
});

test('SharedArrayBuffer and views over it work as sources and targets', async (t) => {
  const f = own(t, MemFile.create('sab'));
  const sab = new SharedArrayBuffer(8);
  new Uint8Array(sab).set([1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(f.writeSync(sab, 0), 8);
  const target = new SharedArrayBuffer(8);
  assert.equal(f.readSync(target, 0), 8);
  assert.deepEqual([...new Uint8Array(target)], [1, 2, 3, 4, 5, 6, 7, 8]);
  const view = new Int32Array(new SharedArrayBuffer(8));
  assert.equal(await f.read(view, 0), 8);
  assert.equal(view[0], 0x04030201);
});

test('allocate() larger than the memory available is refused with ENOMEM instead of waking the OOM killer', (t) => {
  const f = own(t, MemFile.create('huge-allocate'));
  assert.throws(() => f.allocate(0, 2 ** 50), (e) => {
    assert.ok(e instanceof SystemError);
    assert.equal(e.code, 'ENOMEM');
    assert.equal(e.syscall, 'fallocate');
    assert.match(e.message, /refused before the call: .* would charge 1\.0 PiB, and only .* is available .*OOM killer/);
    return true;
  });
  assert.equal(f.size, 0);
  assert.equal(f.stat().blocks, 0);
  // The kernel's own answers keep precedence: a read-only handle is EBADF, a grow seal EPERM.
  const ro = own(t, f.reopen({ readOnly: true }));
  assert.throws(() => ro.allocate(0, 2 ** 50), { code: 'EBADF' });
  f.addSeals(Seal.Grow);
  assert.throws(() => f.allocate(0, 2 ** 50), { code: 'EPERM' });
});

test('releaseFd() hands the fd over without closing it; a Worker adopts and maps it', async (t) => {
  const file = own(t, MemFile.from(Buffer.alloc(8192, 5), { seal: ['shrink', 'grow'] }));
  const released = file.dup();
  const fd = released.releaseFd();
  assert.equal(released.closed, true);
  assert.throws(() => released.size, { code: 'ERR_MEMFD_CLOSED' });
  fstatSync(fd); // still open, and now adoptable (nobody owns it)
  const { Worker } = await import('node:worker_threads');
  const { LIB } = await import('./helpers.mjs');
  const w = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.lib).then(({ MemFile, Seal }) => {
      const f = MemFile.fromFd(workerData.fd, { requireSeals: Seal.Shrink });
      const m = f.map();
      parentPort.postMessage([f.origin, m.length, m.bytes[8191]]);
      m.unmap(); f.close();
    });
  `, { eval: true, workerData: { lib: LIB, fd } });
  const answer = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  await w.terminate();
  assert.deepEqual(answer, ['adopted', 8192, 5]);
  assert.throws(() => fstatSync(fd), { code: 'EBADF' }, 'the worker closed what it adopted');
  // seal() twice is harmless.
  const frozen = own(t, MemFile.from('x'));
  assert.equal(frozen.seal().toString(), frozen.seal().toString());
});
