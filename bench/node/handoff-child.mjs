// Child side of the hand-off case (see handoff.mjs). Usage: node handoff-child.mjs METHOD SIZE [PATH]
// Prints {"ready", "pss"} when set up, then {"bad", "pss", "hwm"} once every byte has been verified.
// Reports its PSS while it still holds the data, then waits to be killed.
import fs from 'node:fs';
import { verify, pssOf, hwmOf } from './pattern.mjs';

const [method, sizeArg, path] = process.argv.slice(2);
const size = Number(sizeArg);
const say = (o) => fs.writeSync(1, JSON.stringify(o) + '\n');
let held; // keep the data reachable until the end

function report(bytes) {
  const bad = verify(bytes);
  held = bytes;
  say({ bad, pss: pssOf(), hwm: hwmOf() });
  setInterval(() => {}, 1 << 30); // stay alive, holding the data, until the parent kills us
}

/** Reads exactly size bytes (or to end of file) from fd into buf with fs.readSync. */
function readInto(fd, buf, position) {
  let off = 0;
  while (off < buf.length) {
    let n;
    try {
      n = fs.readSync(fd, buf, off, buf.length - off, position === undefined ? null : position + off);
    } catch (e) {
      if (e.code === 'EAGAIN') continue; // a non-blocking pipe: keep trying
      throw e;
    }
    if (n === 0) break;
    off += n;
  }
  return off;
}

switch (method) {
  case 'memfd': {
    const { MemFile, UnixSocket, Seal } = await import('../../dist/index.js');
    const sock = UnixSocket.fromFd(3);
    say({ ready: true, pss: pssOf() });
    const msg = await sock.receive();
    // Refuses a file the parent could still shrink (SIGBUS) or change under us.
    const file = MemFile.fromFd(msg.fds[0], { requireSeals: Seal.Shrink | Seal.Write });
    const mapping = file.map({ writable: false });
    file.close(); // the mapping keeps the memory
    held = mapping;
    report(mapping.bytes);
    break;
  }
  case 'pipe': {
    const buf = Buffer.allocUnsafeSlow(size);
    say({ ready: true, pss: pssOf() });
    const n = readInto(0, buf);
    report(n === size ? buf : buf.subarray(0, n));
    break;
  }
  case 'fork': {
    say({ ready: true, pss: pssOf() });
    process.once('message', (buf) => {
      report(buf);
    });
    break;
  }
  case 'shm': {
    const buf = Buffer.allocUnsafeSlow(size);
    say({ ready: true, pss: pssOf() });
    process.stdin.once('data', () => {
      process.stdin.pause();
      const fd = fs.openSync(path, 'r');
      const n = readInto(fd, buf, 0);
      fs.closeSync(fd);
      report(n === size ? buf : buf.subarray(0, n));
    });
    break;
  }
  default:
    throw new Error(`unknown method ${method}`);
}
