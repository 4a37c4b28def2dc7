// dbus-daemon and python3-dbus as real peers: examples/dbus.ts speaks D-Bus from scratch over UnixSocket
// (SASL EXTERNAL, NEGOTIATE_UNIX_FD, Hello) on a private bus this test starts, and hands a sealed memfd to
// examples/dbus_service.py as an `h` argument; the service answers with a new sealed memfd.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemFile, Seal } from '../dist/index.js';
import { fdCount, run as runAsync } from './helpers.mjs';
import { startSplitter } from './stream-splitter.mjs';
import { stopGroup } from './server-process.mjs';

const example = fileURLToPath(new URL('../dist-examples/dbus.js', import.meta.url));
const service = fileURLToPath(new URL('../examples/dbus_service.py', import.meta.url));
// Debian's python3-dbus and python3-gi are built for /usr/bin/python3 only (not a pyenv python3 on PATH).
const PYTHON = '/usr/bin/python3';
const hasDaemon = spawnSync('dbus-daemon', ['--version'], { stdio: 'ignore' }).status === 0;
const hasPythonDbus = existsSync(PYTHON) &&
  spawnSync(PYTHON, ['-c', 'import dbus, dbus.service, dbus.mainloop.glib; from gi.repository import GLib'], { stdio: 'ignore' }).status === 0;
const skip = !hasDaemon ? 'dbus-daemon is not installed (Debian package "dbus-daemon"; .ci/run installs it)'
  : !hasPythonDbus ? `${PYTHON} cannot import dbus and gi (Debian packages "python3-dbus" and "python3-gi"; .ci/run installs them)`
  : false;

let dir, address, daemon, serviceProcess, serviceName, logs = '';

/** Spawns `command` in its own process group and resolves with it once stdout has a first line. */
function startWithLine(command, args, options) {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  child.stderr.on('data', (d) => { logs += d; });
  const line = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      if (stdout.includes('\n')) resolve(stdout.split('\n')[0]);
    });
    child.once('exit', (code, signal) => reject(new Error(`${command} exited (${code ?? signal}) before it was ready:\n${logs}`)));
    setTimeout(() => reject(new Error(`${command} was not ready within 20 s:\n${logs}`)), 20_000).unref();
  });
  return { child, line };
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'memfd-dbus-'));
  const bus = startWithLine('dbus-daemon', ['--session', '--nofork', '--nopidfile', '--nosyslog',
    `--address=unix:path=${join(dir, 'bus')}`, '--print-address'], { cwd: dir });
  daemon = bus.child;
  address = (await bus.line).trim();
  const svc = startWithLine(PYTHON, [service, '--address', address], { cwd: dir });
  serviceProcess = svc.child;
  const ready = await svc.line;
  assert.match(ready, /^ready :\d+\.\d+$/);
  serviceName = ready.split(' ')[1];
});

after(async () => {
  const survivors = [...await stopGroup(serviceProcess), ...await stopGroup(daemon)];
  if (dir) rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(survivors, [], 'processes of the service or the bus outlived them');
});

test('a sealed memfd goes to a python3-dbus service as `h` and a sealed memfd comes back', { skip, timeout: 30_000 }, async () => {
  assert.ok(existsSync(example), 'dist-examples/dbus.js is missing: run `npm run build`');
  const text = 'hello from node, through d-bus, in a memfd';
  const run = spawnSync(process.execPath, [example, '--address', address, '--text', text], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  assert.match(result.uniqueName, /^:\d+\.\d+$/, 'Hello gave a unique name');
  assert.notEqual(result.uniqueName, serviceName);
  assert.equal(result.reply, text.toUpperCase());
  assert.equal(result.replySeals, 'seal|shrink|grow|write');
  assert.match(result.serviceSaw, new RegExp(`^python read ${Buffer.byteLength(text)} bytes sealed seal\\|shrink\\|grow\\|write`));
});

test('in process: 2 MiB of UTF-8 both ways, bus methods with arrays, no fd left behind', { skip, timeout: 30_000 }, async () => {
  const { DBusConnection, shout } = await import(example);
  const before = fdCount();
  const connection = await DBusConnection.connect(address);
  try {
    const text = 'déjà vu, memfd über d-bus\n'.repeat(80_000);
    const file = MemFile.from(text, { name: 'big-request' });
    let result;
    try {
      result = await shout(connection, file);
    } finally {
      file.close();
    }
    assert.equal(result.reply.length, text.length);
    assert.ok(result.reply === text.toUpperCase(), 'the service upper-cased the whole text');
    assert.match(result.serviceSaw, new RegExp(`^python read ${Buffer.byteLength(text)} bytes`));

    // Arrays, strings and uints through the same marshalling, answered by dbus-daemon itself.
    const names = await connection.call({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus', member: 'ListNames' });
    assert.equal(names.signature, 'as');
    for (const name of ['org.freedesktop.DBus', 'org.memfd.Example', serviceName, connection.uniqueName]) {
      assert.ok(names.body[0].includes(name), `ListNames lacks ${name}: ${names.body[0]}`);
    }
    const pid = await connection.call({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus', member: 'GetConnectionUnixProcessID', signature: 's', body: ['org.memfd.Example'] });
    assert.deepEqual(pid.body, [serviceProcess.pid]);
  } finally {
    connection.close();
  }
  // The socket's fd is closed once libuv has stopped watching it, a loop turn or two after close().
  for (let i = 0; i < 50 && fdCount() !== before; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(fdCount(), before);
});

test('the service refuses a memfd that is not sealed: the D-Bus error reaches the caller', { skip, timeout: 30_000 }, async () => {
  const { DBusConnection, DBusError, shout } = await import(example);
  const connection = await DBusConnection.connect(address);
  const file = MemFile.create('unsealed');
  try {
    file.writeSync('anyone may change this while python reads it', 0);
    await assert.rejects(shout(connection, file), (e) => {
      assert.ok(e instanceof DBusError, String(e));
      assert.equal(e.errorName, 'org.memfd.Example.Error.NotSealed');
      assert.match(e.message, /needs shrink\|grow\|write/);
      return true;
    });
    // Sealed only against shrinking and growing (what a wl_shm pool gets) is still not enough here.
    file.addSeals(Seal.Shrink | Seal.Grow);
    await assert.rejects(shout(connection, file), { errorName: 'org.memfd.Example.Error.NotSealed' });
    // The connection is still fine after an error reply.
    file.addSeals(Seal.Write);
    const ok = await shout(connection, file);
    assert.equal(ok.reply, 'ANYONE MAY CHANGE THIS WHILE PYTHON READS IT');
  } finally {
    file.close();
    connection.close();
  }
});

test('the bus\'s bytes in pieces of 1 to 64 bytes, the reply fd ahead of its message: still one answer', { skip, timeout: 30_000 }, async () => {
  const splitter = await startSplitter(join(dir, 'split'), join(dir, 'bus'));
  try {
    // Not spawnSync: the relay runs in this process's event loop.
    const run = await runAsync(process.execPath, [example, '--address', `unix:path=${join(dir, 'split')}`, '--text', 'split me']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).reply, 'SPLIT ME');
    assert.ok(splitter.stats.pieces > 20, `only ${splitter.stats.pieces} pieces: the relay did not split`);
    assert.equal(splitter.stats.fdsRelayed, 1, 'the reply memfd travelled through the relay');
  } finally {
    splitter.close();
  }
});

test('without NEGOTIATE_UNIX_FD the bus hangs up on the first message that carries an fd', { skip, timeout: 30_000 }, async () => {
  const { DBusConnection, shout } = await import(example);
  const connection = await DBusConnection.connect(address, { negotiateUnixFds: false });
  const file = MemFile.from('never delivered');
  try {
    assert.match(connection.uniqueName, /^:\d+\.\d+$/, 'the connection itself works');
    await assert.rejects(shout(connection, file), /the bus closed the connection/);
  } finally {
    file.close();
    connection.close();
  }
});
