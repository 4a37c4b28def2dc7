// Node side of the fill/read case; the same operations as bench/c/fill.c. Usage: node fill.mjs SIZE OP
//   map-touch     MemFile.create + truncate + map({ writable }) + bytes.fill  (first-touch page faults)
//   map-populate  the same with map({ writable, populate: true })
//   write         MemFile.create + writeSync of a 1 MiB Buffer until SIZE
//   read-map      (file prepared untimed) map() + copy every 1 MiB chunk into a Buffer (Uint8Array#set)
//   read          (file prepared untimed) readSync into a 1 MiB Buffer until SIZE
//   map-touch-huge  map-touch on a MemFile.create(name, { hugeTLB: true }) file (2 MiB pages)
// Prints {"seconds": S}. Teardown (unmap, close) is not timed, as in C.
import { MemFile } from '../../dist/index.js';
import { parseSize } from './pattern.mjs';

const CHUNK = 1 << 20;
const [sizeArg, op] = process.argv.slice(2);
const size = parseSize(sizeArg);
const buf = Buffer.alloc(CHUNK, 0x5a);
const now = () => performance.now() / 1000;

// The file to read back, written untimed with writeSync (the contents, not the way they got there, is
// what the read ops see).
function prepared() {
  const file = MemFile.create('bench');
  for (let off = 0; off < size; off += CHUNK) {
    const n = Math.min(CHUNK, size - off);
    file.writeSync(n === CHUNK ? buf : buf.subarray(0, n), off);
  }
  return file;
}

let t0, t1, file, mapping;
switch (op) {
  case 'map-touch':
  case 'map-populate':
  case 'map-touch-huge': {
    const populate = op === 'map-populate';
    t0 = now();
    file = MemFile.create('bench', op === 'map-touch-huge' ? { hugeTLB: true } : undefined);
    file.truncate(size);
    mapping = file.map({ writable: true, populate });
    mapping.bytes.fill(0x5a);
    t1 = now();
    break;
  }
  case 'write': {
    t0 = now();
    file = MemFile.create('bench');
    for (let off = 0; off < size; off += CHUNK) {
      const n = Math.min(CHUNK, size - off);
      file.writeSync(n === CHUNK ? buf : buf.subarray(0, n), off);
    }
    t1 = now();
    break;
  }
  case 'read-map': {
    file = prepared();
    t0 = now();
    mapping = file.map({ writable: false });
    const bytes = mapping.bytes;
    for (let off = 0; off < size; off += CHUNK) buf.set(bytes.subarray(off, Math.min(size, off + CHUNK)));
    t1 = now();
    break;
  }
  case 'read': {
    file = prepared();
    t0 = now();
    for (let off = 0; off < size; off += CHUNK) {
      const n = Math.min(CHUNK, size - off);
      file.readSync(n === CHUNK ? buf : buf.subarray(0, n), off);
    }
    t1 = now();
    break;
  }
  default:
    throw new Error(`unknown op ${op}`);
}
mapping?.unmap();
file.close();
console.log(JSON.stringify({ seconds: t1 - t0 }));
