// The `memfd` command against real processes: python3 and Node holders, a process that only maps its memfd,
// a memfd shared by two processes, and an unprivileged caller. The command always runs as a child process
// (bin/memfd.mjs), exactly as `npx memfd` would run it.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, readFileSync } from 'node:fs';
import { run, LIB, checkedOutsideEmulation } from './helpers.mjs';

const root = new URL('..', import.meta.url).pathname;
const BIN = `${root}bin/memfd.mjs`;
// Debian's interpreter, not a per-user shim: the unprivileged test runs it as nobody too.
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
const noPython = spawnSync(PYTHON, ['-c', 'import os; os.memfd_create']).status === 0 ? false
  : 'python3 with os.memfd_create is not installed';

const SEALED_PY = `
import os, fcntl, sys, time
fd = os.memfd_create("cli-sealed", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
os.write(fd, bytes(range(256)) * 20 + b"tail")
fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
print(os.getpid(), fd, flush=True)
sys.stdin.read()
`;

// Python's mmap module keeps a dup of the fd: map through libc so that, after os.close, only the mapping is left.
const MAP_ONLY_PY = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
size = 65536
fd = os.memfd_create(sys.argv[1], os.MFD_CLOEXEC)
os.ftruncate(fd, size)
addr = libc.mmap(None, size, 3, 1, fd, 0)  # PROT_READ|PROT_WRITE, MAP_SHARED
assert addr not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
ctypes.memmove(addr, b"mapped-only bytes", 17)
os.close(fd)
print(os.getpid(), hex(addr), flush=True)
sys.stdin.read()
`;

// A Node process holding an unsealed memfd made by this library, shared with a child (sleep) by inheritance.
const NODE_HOLDER = `
import { MemFile, capabilities } from ${JSON.stringify(LIB)};
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
const file = MemFile.create('cli-node', { allowSealing: true });
file.writeSync(Buffer.alloc(3 * 1024 * 1024 + 7, 0x61), 0);
const seals = file.getSeals().bits;
// One raw fd per memfd, as a C program holds it (a MemFile holds two: its private fd and the one it shows).
const fd = file.releaseFd();
const secret = capabilities().memfdSecret ? MemFile.createSecret(8192) : null;
const secretMap = secret?.map();
const secretFd = secret ? secret.releaseFd() : null;
const child = spawn('sleep', ['600'], { stdio: ['ignore', 'ignore', 'ignore', fd] });
child.on('spawn', () => console.log(JSON.stringify({ pid: process.pid, fd, seals, child: child.pid, secretFd })));
process.stdin.on('end', () => { child.kill(); secretMap?.unmap(); if (secretFd !== null) closeSync(secretFd); closeSync(fd); });
process.stdin.resume();
`;

describe('the memfd command', { skip: noPython }, () => {
  const procs = [];

  /** Starts a helper that prints one line when ready and exits when its stdin closes. */
  function startHelper(command, args, options = {}) {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'], ...options });
    procs.push(child);
    return new Promise((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      lines.once('line', (line) => resolve(line.trim()));
      child.once('exit', (code) => reject(new Error(`${command} exited early (${code})`)));
    });
  }

  function cli(args, options = {}) {
    return run(process.execPath, [BIN, ...args], { cwd: root, ...options });
  }

  function cliAsNobody(args) {
    return run('setpriv', [...NOBODY, process.execPath, BIN, ...args], { cwd: root });
  }

  async function lsJson(...pids) {
    const r = await cli(['ls', '--json', ...pids.flatMap((p) => ['--pid', String(p)])]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    return JSON.parse(r.stdout);
  }

  const oneLine = (r) => {
    assert.match(r.stderr, /^memfd: [^\n]+\n$/, `one line on stderr, got ${JSON.stringify(r.stderr)}`);
    assert.doesNotMatch(r.stderr, /\bat .+:\d+:\d+/, 'no stack trace');
  };

  let sealed; // { pid, fd }
  let mapOnly; // { pid, addr }
  let node; // { pid, fd, seals, child }
  let hasSetpriv = false;

  before(async () => {
    const [s, m, n] = await Promise.all([
      startHelper(PYTHON, ['-c', SEALED_PY]),
      startHelper(PYTHON, ['-c', MAP_ONLY_PY, 'cli-map-only']),
      startHelper(process.execPath, ['--input-type=module', '-e', NODE_HOLDER], { cwd: root }),
    ]);
    sealed = { pid: Number(s.split(' ')[0]), fd: Number(s.split(' ')[1]) };
    mapOnly = { pid: Number(m.split(' ')[0]), addr: m.split(' ')[1] };
    node = JSON.parse(n);
    hasSetpriv = spawnSync('setpriv', [...NOBODY, 'true']).status === 0;
  });

  after(() => {
    for (const p of procs) p.stdin.end();
  });

  test('ls --json: the python3 process holding a sealed memfd, with size, allocation, seals and sharing', async () => {
    const { version, memfds, inaccessible } = await lsJson(sealed.pid);
    assert.equal(version, 1);
    assert.deepEqual(inaccessible, []);
    assert.equal(memfds.length, 1);
    const [row] = memfds;
    assert.equal(row.pid, sealed.pid);
    assert.equal(row.command, 'python3');
    assert.equal(row.fd, sealed.fd);
    assert.equal(row.kind, 'memfd');
    assert.equal(row.name, 'cli-sealed');
    assert.equal(row.size, 256 * 20 + 4);
    assert.equal(row.allocated, 8192);
    assert.deepEqual(row.seals, ['seal', 'shrink', 'grow', 'write']);
    assert.equal(row.sealBits, 0xf);
    assert.equal(row.sealsVia, 'pidfd_getfd');
    assert.equal(row.unknown, null);
    assert.equal(row.sharedBy, 1);
    assert.deepEqual(row.maps, []);
    assert.match(row.dev, /^\d+:\d+$/);
    assert.ok(Number.isInteger(row.inode) && row.inode > 0);
  });

  test('ls --json: the Node process and the child it passed the fd to, unsealed, shared by 2', async () => {
    const { memfds } = await lsJson(node.pid, node.child);
    const mine = memfds.filter((r) => r.name === 'cli-node' && r.kind === 'memfd');
    assert.deepEqual(mine.map((r) => [r.pid, r.fd]), [[node.pid, node.fd], [node.child, 3]]);
    for (const row of mine) {
      assert.equal(row.size, 3 * 1024 * 1024 + 7);
      assert.ok(row.allocated >= row.size, `allocated ${row.allocated}`);
      assert.equal(row.sealBits, node.seals);
      assert.equal(row.seals.includes('write'), false);
      assert.equal(row.sharedBy, 2);
    }
    assert.equal(mine[0].inode, mine[1].inode);
  });

  test('ls --json: a process that only maps its memfd is a "map" row (fd null) with its mapping', async () => {
    const { memfds } = await lsJson(mapOnly.pid);
    assert.equal(memfds.length, 1);
    const [row] = memfds;
    assert.equal(row.fd, null);
    assert.equal(row.name, 'cli-map-only');
    assert.equal(row.sharedBy, 1);
    assert.equal(row.maps.length, 1);
    assert.equal(`0x${row.maps[0].start}`, mapOnly.addr);
    assert.equal(row.maps[0].perms, 'rw-s');
    // As root the kernel opens map_files: size and seals are known (an unprivileged caller: see below).
    assert.equal(row.size, 65536);
    assert.equal(row.allocated, 4096);
    assert.deepEqual(row.seals, ['seal']); // created without MFD_ALLOW_SEALING
    assert.equal(row.sealsVia, 'map_files');
  });

  test('ls: a memfd_secret file is a "secretmem" row: size known, seals "-" (it cannot be sealed); cat refuses', async (t) => {
    if (node.secretFd === null) return t.skip('memfd_secret is not available on this kernel');
    const { memfds } = await lsJson(node.pid);
    const secret = memfds.find((r) => r.kind === 'secretmem');
    assert.equal(secret.fd, node.secretFd);
    assert.equal(secret.name, '');
    assert.equal(secret.size, 8192);
    assert.equal(secret.seals, null);
    assert.equal(secret.unknown.code, 'EINVAL');
    assert.equal(secret.maps.length, 1);
    const text = await cli(['ls', '--pid', String(node.pid)]);
    // The command is the thread name of the main thread: 'node' on Node 20 and 22, 'node-MainThread' on 26.
    assert.match(text.stdout, new RegExp(`^ *${node.pid}  node\\S* +${node.secretFd}  8\\.0K +0  - +1  \\[secretmem\\]$`, 'm'));
    const cat = await cli(['cat', `${node.pid}:${node.secretFd}`]);
    assert.equal(cat.code, 1);
    oneLine(cat);
    assert.match(cat.stderr, /secretmem/);
  });

  test('ls: human output has a header and columns aligned like ps, sizes readable', async () => {
    const r = await cli(['ls', '--pid', String(sealed.pid), '--pid', `${node.pid},${node.child}`, '--pid', String(mapOnly.pid)]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0], /^ *PID  COMMAND +FD  SIZE  ALLOC  SEALS +SHARED  NAME$/);
    const rows = lines.slice(1);
    assert.equal(rows.length, node.secretFd === null ? 4 : 5, r.stdout);
    // Right-aligned numbers end under their header; left-aligned text starts under it.
    const end = (word) => lines[0].indexOf(word) + word.length;
    const start = (word) => lines[0].indexOf(word);
    for (const row of rows) {
      assert.notEqual(row[end('PID') - 1], ' ', row);
      assert.notEqual(row[end('SIZE') - 1], ' ', row);
      assert.notEqual(row[end('SHARED') - 1], ' ', row);
      assert.equal(row[start('SEALS') - 1], ' ', row);
      assert.notEqual(row[start('SEALS')], ' ', row);
      assert.notEqual(row[start('NAME')], ' ', row);
    }
    const byName = (name) => rows.find((l) => l.endsWith(` ${name}`));
    assert.match(byName('cli-sealed'), new RegExp(`^ *${sealed.pid}  python3 +${sealed.fd}  5\\.1K +8\\.0K  seal\\|shrink\\|grow\\|write +1  cli-sealed$`));
    assert.match(byName('cli-map-only'), / map +64K +4\.0K  seal +1  cli-map-only$/);
    assert.equal(rows.filter((l) => / 3\.1M +3\.1M .* 2  cli-node$/.test(l)).length, 2, r.stdout);
  });

  test('show PID:FD: everything known, in text and JSON; the holders of a shared memfd', async (t) => {
    const text = await cli(['show', `${sealed.pid}:${sealed.fd}`]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^name +cli-sealed$/m);
    assert.match(text.stdout, /^size +5124 bytes \(5\.1K\)$/m);
    assert.match(text.stdout, /^seals +seal\|shrink\|grow\|write \(0xf\), read via pidfd_getfd$/m);
    assert.match(text.stdout, /^mode +0\d{3}, uid 0, gid 0$/m);
    if (checkedOutsideEmulation(t, 'hostKernel')) {
      assert.match(text.stdout, /^fd +pos 5124, flags 0\d+ \(O_RDWR\|O_LARGEFILE\|O_CLOEXEC\), mnt_id \d+$/m);
    }

    const r = await cli(['show', `${node.pid}:${node.fd}`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.version, 1);
    assert.equal(j.name, 'cli-node');
    assert.equal(j.size, 3 * 1024 * 1024 + 7);
    assert.equal(j.sealBits, node.seals);
    assert.equal(j.hugetlb, false);
    assert.equal(j.fdinfo.pos, 0);
    assert.ok(j.fdinfo.flagNames.includes('O_RDWR'));
    assert.equal(j.sharedBy, 2);
    assert.deepEqual(j.holders.map((h) => [h.pid, h.fds]), [[node.pid, [node.fd]], [node.child, [3]]]);
    assert.deepEqual(j.mappers, []);
  });

  test('show PID:map:ADDR: a mapped-only memfd with its mapping range and permissions', async () => {
    const r = await cli(['show', `${mapOnly.pid}:map:${mapOnly.addr}`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.fd, null);
    assert.equal(j.fdinfo, null);
    assert.equal(j.name, 'cli-map-only');
    assert.deepEqual(j.holders, []);
    assert.equal(j.mappers.length, 1);
    assert.equal(j.mappers[0].pid, mapOnly.pid);
    assert.equal(j.mappers[0].maps[0].perms, 'rw-s');
    const text = await cli(['show', `${mapOnly.pid}:map:${mapOnly.addr.slice(2)}`]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^mapped by:\n +PID  COMMAND +ADDRESS +PERMS  OFFSET\n +\d+  \S+ +[0-9a-f]+-[0-9a-f]+  rw-s +0$/m);
  });

  test('cat PID:FD and PID:map:ADDR write the exact bytes; the holder\'s file offset does not move', async () => {
    const r = await run(process.execPath, [BIN, 'cat', `${sealed.pid}:${sealed.fd}`], { cwd: root, encoding: 'buffer' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const expected = Buffer.concat([Buffer.from(Array.from({ length: 20 }, () => [...Array(256).keys()]).flat()), Buffer.from('tail')]);
    // run() concatenates chunks as strings: compare through latin1 (a 1:1 byte mapping).
    const got = await new Promise((resolve) => {
      const child = spawn(process.execPath, [BIN, 'cat', `${sealed.pid}:${sealed.fd}`], { stdio: ['ignore', 'pipe', 'inherit'] });
      const chunks = [];
      child.stdout.on('data', (c) => chunks.push(c));
      child.on('close', () => resolve(Buffer.concat(chunks)));
    });
    assert.ok(got.equals(expected));
    assert.match(readFileSync(`/proc/${sealed.pid}/fdinfo/${sealed.fd}`, 'utf8'), /^pos:\s+5124$/m);

    const mapped = spawnSync(process.execPath, [BIN, 'cat', `${mapOnly.pid}:map:${mapOnly.addr}`]);
    assert.equal(mapped.status, 0, String(mapped.stderr));
    assert.equal(mapped.stdout.length, 65536);
    assert.equal(mapped.stdout.subarray(0, 17).toString(), 'mapped-only bytes');
  });

  test('cat into a reader that goes away (| head -c) stops quietly', async () => {
    const r = await run('sh', ['-c', `"${process.execPath}" "${BIN}" cat ${node.pid}:${node.fd} | head -c 5; echo " status=$?"`], { cwd: root });
    assert.equal(r.stdout, 'aaaaa status=0\n');
    assert.equal(r.stderr, '');
    const pipefail = await run('bash', ['-o', 'pipefail', '-c', `"${process.execPath}" "${BIN}" cat ${node.pid}:${node.fd} | head -c 1 >/dev/null`]);
    assert.equal(pipefail.code, 0, pipefail.stderr);
  });

  test('ls while processes holding memfds come and go: they are skipped silently, never an error', async () => {
    // Children that create a memfd, map it and exit at once, as fast as python3 can fork them.
    const churn = spawn(PYTHON, ['-c', `
import os, mmap, sys, time
end = time.time() + 3
while time.time() < end:
    pid = os.fork()
    if pid == 0:
        fd = os.memfd_create("churn")
        os.ftruncate(fd, 4096)
        m = mmap.mmap(fd, 4096)
        os._exit(0)
    os.waitpid(pid, 0)
`], { stdio: 'ignore' });
    const exited = new Promise((r) => churn.on('exit', r));
    try {
      for (let i = 0; i < 6; i++) {
        const r = await cli(['ls', '--json']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, '');
        JSON.parse(r.stdout);
      }
    } finally {
      churn.kill();
      await exited;
    }
  });

  test('bad arguments: exit 2 and one line on stderr', async () => {
    const cases = [['ls', '--bogus'], ['ls', '--pid', 'abc'], ['ls', '--pid', '0'], ['ls', 'extra'], ['show'],
      ['show', '12'], ['show', '1:2', '3:4'], ['show', '1:map:xyz'], ['cat', 'x:y'], ['cat', '--json', '1:3'],
      ['frobnicate'], ['--bogus'], ['ls', '--pid']];
    const results = await Promise.all(cases.map((args) => cli(args)));
    results.forEach((r, i) => {
      assert.equal(r.code, 2, `${cases[i].join(' ')}: ${r.stderr}`);
      oneLine(r);
      assert.equal(r.stdout, '');
    });
    const bare = await cli([]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /^Usage: memfd <command>/);
  });

  test('--help for the command and each subcommand, --version', async () => {
    const cases = [[['--help'], 'Usage: memfd <command>'], [['help', 'ls'], 'Usage: memfd ls'],
      [['ls', '--help'], 'Usage: memfd ls'], [['show', '-h'], 'Usage: memfd show'], [['cat', '--help'], 'Usage: memfd cat']];
    const results = await Promise.all(cases.map(([args]) => cli(args)));
    results.forEach((r, i) => {
      assert.equal(r.code, 0, cases[i][0].join(' '));
      assert.ok(r.stdout.startsWith(cases[i][1]), r.stdout);
      assert.match(r.stdout, /Exit codes: 0 ok/);
    });
    const v = await cli(['--version']);
    assert.equal(v.stdout, `${JSON.parse(readFileSync(`${root}package.json`, 'utf8')).version}\n`);
  });

  test('a vanished process, a missing fd, an fd that is not a memfd: exit 1 and one line', async () => {
    const gone = spawn('sleep', ['0']);
    await new Promise((r) => gone.on('exit', r));
    for (const args of [['ls', '--pid', String(gone.pid)], ['show', `${gone.pid}:3`], ['cat', `${gone.pid}:3`]]) {
      const r = await cli(args);
      assert.equal(r.code, 1, args.join(' '));
      oneLine(r);
      assert.match(r.stderr, new RegExp(`no such process: ${gone.pid}`));
    }
    const noFd = await cli(['show', `${sealed.pid}:999`]);
    assert.equal(noFd.code, 1);
    oneLine(noFd);
    assert.match(noFd.stderr, /has no fd 999/);
    // fd 0 of the python helper is the pipe to this test.
    const notMemfd = await cli(['cat', `${sealed.pid}:0`]);
    assert.equal(notMemfd.code, 1);
    oneLine(notMemfd);
    assert.match(notMemfd.stderr, /is not a memfd \(it is (pipe|socket):\[\d+\]\)/);
    const noMap = await cli(['show', `${sealed.pid}:map:10`]);
    assert.equal(noMap.code, 1);
    oneLine(noMap);
  });

  test('unprivileged caller: root processes are "could not be inspected", --pid on one is exit 3, no crash', async (t) => {
    if (!hasSetpriv) return t.skip('cannot drop privileges here (setpriv missing or not root)');
    const all = await cliAsNobody(['ls']);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(all.stderr, '');
    assert.doesNotMatch(all.stdout, /cli-sealed/);
    assert.match(all.stdout, /\d+ process(es)? could not be inspected \(EACCES: not permitted to this user\): .*SHARED counts only/);
    const json = JSON.parse((await cliAsNobody(['ls', '--json'])).stdout);
    assert.ok(json.inaccessible.some((p) => p.pid === sealed.pid && p.code === 'EACCES'));
    const one = await cliAsNobody(['ls', '--pid', String(sealed.pid)]);
    assert.equal(one.code, 3);
    oneLine(one);
    assert.match(one.stderr, /permission denied \(EACCES\): inspecting another user's process .*needs root or CAP_SYS_PTRACE/);
    for (const args of [['show', `${sealed.pid}:${sealed.fd}`], ['cat', `${sealed.pid}:${sealed.fd}`]]) {
      const r = await cliAsNobody(args);
      assert.equal(r.code, 3, args.join(' '));
      oneLine(r);
    }
  });

  test('root refused (a parent user namespace, an LSM): the message says root was refused, not "another user"', async (t) => {
    // Only where this machine has such a process: pid 1 of a sandbox whose root is not root over it.
    if (process.geteuid?.() !== 0) return t.skip('not running as root');
    const one = await cli(['ls', '--pid', '1']);
    if (one.code !== 3) return t.skip(`root may inspect pid 1 here (exit ${one.code})`);
    oneLine(one);
    assert.match(one.stderr, /permission denied \(\w+\): refused even to root here: .*user namespace.*LSM/);
    const all = await cli(['ls']);
    assert.match(all.stdout, /could not be inspected \(\w+: refused even to root: a parent user namespace or an LSM policy\)/);
  });

  test('unprivileged caller, own map-only process: size and seals unknown, marked and explained', async (t) => {
    if (!hasSetpriv) return t.skip('cannot drop privileges here (setpriv missing or not root)');
    const line = await startHelper('setpriv', [...NOBODY, PYTHON, '-c', MAP_ONLY_PY, 'nobody-map']);
    const pid = Number(line.split(' ')[0]);
    const json = await cliAsNobody(['ls', '--json', '--pid', String(pid)]);
    assert.equal(json.code, 0, json.stderr);
    const [row] = JSON.parse(json.stdout).memfds;
    assert.equal(row.fd, null);
    assert.equal(row.name, 'nobody-map');
    assert.equal(row.size, null);
    assert.equal(row.seals, null);
    assert.equal(row.sealBits, null);
    assert.equal(row.unknown.code, 'EPERM');
    assert.match(row.unknown.reason, /map_files.*CAP_SYS_ADMIN/);

    const text = await cliAsNobody(['ls', '--pid', String(pid)]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, / map +\? +\? +\?\[1\] +1  nobody-map\n/);
    assert.match(text.stdout, /^\[1\] size and seals unknown: EPERM: .*map_files/m);
    // The same process as root: known, never guessed for the unprivileged one above.
    const asRoot = await lsJson(pid);
    assert.deepEqual(asRoot.memfds[0].seals, ['seal']);
  });

  test('pidfd_getfd refused but /proc/PID/fd readable: seals read through the open instead, not guessed', async (t) => {
    if (!hasSetpriv) return t.skip('cannot drop privileges here (setpriv missing or not root)');
    const line = await startHelper('setpriv', [...NOBODY, PYTHON, '-c', SEALED_PY]);
    const pid = Number(line.split(' ')[0]);
    // ptrace attach (pidfd_getfd) checks the caller's real uid, ptrace read (/proc/PID/fd) its fs uid: a
    // caller with real uid 1000 and effective uid nobody reproduces what Yama's ptrace_scope=1 does.
    // ruid != euid makes the exec "secure": the loader ignores LD_PRELOAD, so under `npm run test:asan` this
    // one child loads the regular build instead of the sanitizer build that needs the preloaded runtime.
    const { LD_PRELOAD, MEMFD_BINDING, ...env } = process.env;
    const r = await run('setpriv', ['--ruid=1000', '--euid=65534', '--regid=65534', '--clear-groups',
      process.execPath, BIN, 'ls', '--json', '--pid', String(pid)], { cwd: root, env });
    assert.equal(r.code, 0, r.stderr);
    const [row] = JSON.parse(r.stdout).memfds;
    assert.equal(row.sealsVia, 'proc-fd');
    assert.deepEqual(row.seals, ['seal', 'shrink', 'grow', 'write']);
    assert.equal(row.unknown, null);
  });
});

test('in-process helpers: human sizes, printable names, targets', async () => {
  const { humanSize, printable, parseTarget } = await import('../dist/cli.js');
  assert.deepEqual([0, 1023, 1024, 1536, 4096, 10239, 10240, 1048575, 256 * 2 ** 20, 2 ** 40].map(humanSize),
    ['0', '1023', '1.0K', '1.5K', '4.0K', '10K', '10K', '1.0M', '256M', '1.0T']);
  assert.equal(printable('a\nb\x1b[2J\\'), 'a\\nb\\x1b[2J\\\\');
  assert.deepEqual(parseTarget('12:3', 'show'), { pid: 12, fd: 3 });
  assert.deepEqual(parseTarget('12:map:0x7fAB', 'show'), { pid: 12, fd: null, address: 0x7fabn });
  assert.throws(() => parseTarget('0:3', 'show'), /not a process id/);
});

test('package: "memfd" bin is registered, shipped and executable', () => {
  const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));
  assert.equal(pkg.bin.memfd, 'bin/memfd.mjs');
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const files = JSON.parse(r.stdout)[0].files;
  const bin = files.find((f) => f.path === 'bin/memfd.mjs');
  assert.ok(bin, 'bin/memfd.mjs is in the tarball');
  assert.equal(bin.mode & 0o111, 0o111, 'executable');
  assert.ok(files.some((f) => f.path === 'dist/cli.js'));
  assert.ok(files.some((f) => f.path === 'docs/cli.md'));
  assert.match(readFileSync(`${root}bin/memfd.mjs`, 'utf8'), /^#!\/usr\/bin\/env node\n/);
});
