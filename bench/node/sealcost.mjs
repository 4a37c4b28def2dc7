// Node side of the seal-cost measurement; the same as bench/c/sealcost.c. Usage: node sealcost.mjs SIZE
// Two MemFiles of SIZE bytes are filled through a writable mapping that is then unmapped; addSeals(Write)
// is timed on one and addSeals(FutureWrite) on the other. Prints {"write": s, "futureWrite": s}.
import { MemFile, Seal } from '../../dist/index.js';
import { parseSize } from './pattern.mjs';

const size = parseSize(process.argv[2] ?? '64M');
function filled() {
  const file = MemFile.create('seal');
  file.truncate(size);
  const m = file.map({ writable: true, populate: true });
  m.bytes.fill(0x5a);
  m.unmap();
  return file;
}
const spare = MemFile.create('spare');
function seal(file, bits) {
  // Run any collection the unmapped external memory has made due now, not inside the timed call
  // (bench/run.mjs starts this with --expose-gc), and make one cheap call first: right after V8 lets go of
  // a large external buffer (and after gc()) the first addSeals costs 10-20 us more: warm that exact path.
  globalThis.gc?.();
  spare.addSeals(Seal.FutureWrite);
  const t0 = process.hrtime.bigint();
  file.addSeals(bits);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  file.close();
  return s;
}
// Warm up the whole path on small files, so that the timed calls are not the first (unoptimized) ones.
for (let i = 0; i < 20; i++) {
  seal(MemFile.create('warm'), Seal.Write);
  seal(MemFile.create('warm'), Seal.FutureWrite);
}
const write = seal(filled(), Seal.Write);
const futureWrite = seal(filled(), Seal.FutureWrite);
console.log(JSON.stringify({ write, futureWrite }));
