// Parent side of the hand-off case. Usage: node handoff.mjs METHOD SIZE
//   memfd        create + map(populate) + fill + unmap + seal a MemFile, send its fd over a seqpacket
//                UnixSocket; the child maps it read-only and verifies in place (zero copies)
//   memfd-write  the same, but the parent writes the pattern block with writeSync instead of mapping
//   pipe   fill a Buffer, write it to the child's stdin; the child reads it into a Buffer with fs.readSync
//   fork   fill a Buffer, child_process.fork() + send() with serialization: 'advanced'
//   shm    fill a Buffer, write it to a /dev/shm file; the child reads the file into a Buffer
// The child is started and reports "ready" before the clock starts (process start-up is not the
// method's cost). The clock stops when the child reports that it verified every byte (pattern.mjs).
// Prints one JSON object: seconds, bad, PSS/HWM of both processes at that moment, idle PSS, shm bytes.
import { spawn, fork } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { fill, pssOf, hwmOf, parseSize, PERIOD, REF } from './pattern.mjs';

const [method, sizeArg] = process.argv.slice(2);
const size = parseSize(sizeArg);
const childScript = fileURLToPath(new URL('./handoff-child.mjs', import.meta.url));
const now = () => performance.now() / 1000;

/** Resolves the child's JSON lines one at a time. */
function lines(stream) {
  const queue = [];
  const waiters = [];
  createInterface({ input: stream }).on('line', (line) => {
    let msg;
    try { msg = JSON.parse(line); } catch { process.stderr.write(`child: ${line}\n`); return; }
    if (waiters.length) waiters.shift()(msg); else queue.push(msg);
  });
  return () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiters.push(r)));
}

async function main() {
  const pssParentIdle = pssOf();
  let child, next, t0, shmBytes = 0, cleanup = () => {};
  const args = [childScript, method.replace(/-write$/, ''), String(size)];
  switch (method) {
    case 'memfd':
    case 'memfd-write': {
      const { MemFile, UnixSocket } = await import('../../dist/index.js');
      if (typeof UnixSocket?.pair !== 'function') throw new Error('UnixSocket is not built yet');
      const [mine, theirs] = UnixSocket.pair({ type: 'seqpacket' });
      child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit', theirs.fd] });
      theirs.close();
      next = lines(child.stdout);
      const ready = await next();
      t0 = now();
      const file = MemFile.create('handoff');
      file.truncate(size);
      if (method === 'memfd') {
        const mapping = file.map({ writable: true, populate: true });
        fill(mapping.bytes);
        mapping.unmap();
      } else {
        for (let off = 0; off < size; off += PERIOD) {
          const n = Math.min(PERIOD, size - off);
          file.writeSync(n === PERIOD ? REF : REF.subarray(0, n), off);
        }
      }
      file.seal(); // Seal | Shrink | Grow | Write: the child may map it without fearing SIGBUS or changes
      await mine.send(Buffer.from('data'), [file]);
      file.close(); // the kernel keeps the file alive in the child
      cleanup = () => mine.close();
      return finish(child, next, t0, ready, pssParentIdle, shmBytes, cleanup);
    }
    case 'pipe': {
      child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
      next = lines(child.stdout);
      const ready = await next();
      t0 = now();
      const buf = Buffer.allocUnsafeSlow(size);
      fill(buf);
      child.stdin.end(buf);
      return finish(child, next, t0, ready, pssParentIdle, shmBytes, cleanup, buf);
    }
    case 'fork': {
      child = fork(childScript, [method, String(size)], { serialization: 'advanced', stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
      next = lines(child.stdout);
      const ready = await next();
      t0 = now();
      const buf = Buffer.allocUnsafeSlow(size);
      fill(buf);
      child.send(buf);
      return finish(child, next, t0, ready, pssParentIdle, shmBytes, cleanup, buf);
    }
    case 'shm': {
      const path = `/dev/shm/memfd-bench-${process.pid}`;
      child = spawn(process.execPath, [...args, path], { stdio: ['pipe', 'pipe', 'inherit'] });
      next = lines(child.stdout);
      const ready = await next();
      t0 = now();
      const buf = Buffer.allocUnsafeSlow(size);
      fill(buf);
      fs.writeFileSync(path, buf);
      child.stdin.write('go\n');
      shmBytes = size; // tmpfs pages that nobody maps: real memory that PSS does not show
      cleanup = () => fs.rmSync(path, { force: true });
      try {
        return await finish(child, next, t0, ready, pssParentIdle, shmBytes, () => {}, buf);
      } finally {
        cleanup();
      }
    }
    default:
      throw new Error(`unknown method ${method}`);
  }
}

async function finish(child, next, t0, ready, pssParentIdle, shmBytes, cleanup, keepAlive) {
  const done = await next();
  const seconds = now() - t0;
  const pssParent = pssOf();
  const hwmParent = hwmOf();
  if (keepAlive) keepAlive[0] ^= 0; // the parent's copy is still referenced at the measurement
  cleanup();
  child.kill();
  await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
  const out = {
    seconds, bad: done.bad, pssParent, pssChild: done.pss, hwmParent, hwmChild: done.hwm,
    pssParentIdle, pssChildIdle: ready.pss, shmBytes,
  };
  console.log(JSON.stringify(out));
  if (done.bad !== 0) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
