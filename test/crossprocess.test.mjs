// MemFiles across processes by inheritance: Node child via the stdio array, python3 as the creator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemFile, Seal } from '../dist/index.js';
import { LIB, hasPython, run, runNode } from './helpers.mjs';

test('a child spawned with the memfd in its stdio array reads it and sees its seals', async (t) => {
  const file = MemFile.from('shared with a child', { name: 'to-child' });
  t.after(() => file.close());
  const r = await runNode(`
    import { MemFile } from ${JSON.stringify(LIB)};
    const f = MemFile.fromFd(3, { requireSeals: ['write', 'shrink'] });
    console.log(JSON.stringify({ name: f.name, text: f.readAllSync().toString(), seals: f.getSeals().toString(), origin: f.origin }));
    f.close();
  `, { stdio: ['ignore', 'pipe', 'pipe', file.fd] });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    name: 'to-child', text: 'shared with a child', seals: 'seal|shrink|grow|write|exec', origin: 'adopted',
  });
});

test('a child cannot undo seals or grow a sealed file; changes to an unsealed one are shared', async (t) => {
  const sealed = MemFile.from('immutable');
  const open = MemFile.create('open');
  open.writeSync('before');
  t.after(() => { sealed.close(); open.close(); });
  const r = await runNode(`
    import { MemFile } from ${JSON.stringify(LIB)};
    const s = MemFile.fromFd(3), o = MemFile.fromFd(4);
    const out = [];
    for (const op of [() => s.writeSync('X', 0), () => s.truncate(0), () => s.truncate(100)]) {
      try { op(); out.push('ok'); } catch (e) { out.push(e.code); }
    }
    o.writeSync('after!', 0);
    console.log(out.join(','));
  `, { stdio: ['ignore', 'pipe', 'pipe', sealed.fd, open.fd] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'EPERM,EPERM,EPERM');
  assert.equal(sealed.readAllSync().toString(), 'immutable');
  assert.equal(open.readAllSync().toString(), 'after!');
});

test('a memfd is not inherited unless passed explicitly (cloexec default)', async (t) => {
  const file = MemFile.create('private');
  t.after(() => file.close());
  const r = await run('/bin/sh', ['-c', `ls -l /proc/self/fd/`], { stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(r.code, 0);
  assert.doesNotMatch(r.stdout, /memfd:private/);
});

test('python3 creates a sealed memfd, passes it by inheritance, Node adopts and verifies it', async (t) => {
  if (!(await hasPython())) {
    t.skip('python3 with os.memfd_create is not installed');
    return;
  }
  const nodeScript = `
    import { MemFile, Seal } from ${JSON.stringify(LIB)};
    const fd = Number(process.argv[1]);
    const f = MemFile.fromFd(fd, { requireSeals: Seal.Seal | Seal.Shrink | Seal.Grow | Seal.Write });
    console.log(JSON.stringify({ name: f.name, seals: f.getSeals().toString(), text: f.readAllSync().toString() }));
    f.close();
  `;
  const python = `
import os, fcntl, subprocess, sys
fd = os.memfd_create("from-python", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
os.write(fd, b"hello from python")
fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL)
r = subprocess.run([sys.argv[1], "--input-type=module", "-e", sys.argv[2], str(fd)], pass_fds=[fd], capture_output=True, text=True)
sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); sys.exit(r.returncode)
`;
  const r = await run('python3', ['-c', python, process.execPath, nodeScript]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { name: 'from-python', seals: 'seal|shrink|grow|write', text: 'hello from python' });
});

test('Node rejects an inherited memfd that lacks the seals it requires, and leaves it open', async (t) => {
  if (!(await hasPython())) {
    t.skip('python3 with os.memfd_create is not installed');
    return;
  }
  const nodeScript = `
    import { MemFile, Seal } from ${JSON.stringify(LIB)};
    import { fstatSync } from 'node:fs';
    const fd = Number(process.argv[1]);
    try { MemFile.fromFd(fd, { requireSeals: Seal.Write }); console.log('adopted'); }
    catch (e) { fstatSync(fd); console.log(e.code); }
  `;
  const python = `
import os, subprocess, sys
fd = os.memfd_create("unsealed", os.MFD_ALLOW_SEALING)
r = subprocess.run([sys.argv[1], "--input-type=module", "-e", sys.argv[2], str(fd)], pass_fds=[fd], capture_output=True, text=True)
sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); sys.exit(r.returncode)
`;
  const r = await run('python3', ['-c', python, process.execPath, nodeScript]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'ERR_MEMFD_MISSING_SEALS');
  void Seal;
});
