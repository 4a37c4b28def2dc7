// vm.memfd_noexec is per pid namespace: set it in a fresh namespace (unshare, as root) so that the rest of
// the machine is unaffected, and check what the library does under each value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { LIB, run } from './helpers.mjs';

const canUnshare = process.getuid?.() === 0 && existsSync('/usr/bin/unshare') && existsSync('/proc/sys/vm/memfd_noexec');

function inNamespace(value, source) {
  const script = `echo ${value} > /proc/sys/vm/memfd_noexec && exec "$0" --input-type=module -e "$1"`;
  return run('unshare', ['--pid', '--fork', '--mount-proc', 'sh', '-c', script, process.execPath, source]);
}

const probe = `
  import { MemFile, capabilities } from ${JSON.stringify(LIB)};
  const out = { sysctl: capabilities().memfdNoexec };
  const d = MemFile.create('default');
  out.defaultSeals = d.getSeals().toString();
  out.defaultMode = (d.stat().mode & 0o777).toString(8);
  try { const e = MemFile.create('exec', { exec: true }); out.exec = (e.stat().mode & 0o777).toString(8); }
  catch (e) { out.exec = e.code; out.execMessage = e.message; }
  console.log(JSON.stringify(out));
`;

test('vm.memfd_noexec = 2: exec: true fails with EACCES and says why; the default still works', { skip: !canUnshare && 'needs root, unshare(1) and Linux >= 6.3' }, async () => {
  const r = await inNamespace(2, probe);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.sysctl, 2);
  assert.equal(out.exec, 'EACCES');
  assert.match(out.execMessage, /^EACCES: permission denied, memfd_create \(vm\.memfd_noexec = 2 on this system forbids executable memfds/);
  assert.equal(out.defaultSeals, 'exec');
  assert.equal(out.defaultMode, '666');
});

test('vm.memfd_noexec = 1: defaults unchanged, exec: true still executable', { skip: !canUnshare && 'needs root, unshare(1) and Linux >= 6.3' }, async () => {
  const r = await inNamespace(1, probe);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.sysctl, 1);
  assert.equal(out.defaultSeals, 'exec');
  assert.equal(out.exec, '777');
});
