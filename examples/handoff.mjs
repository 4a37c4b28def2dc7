#!/usr/bin/env node
// Cross-process handoff demo: a sealed memfd of a few hundred MiB goes to a child process over a Unix
// socket pair (SCM_RIGHTS), next to the same bytes sent through a pipe.
//
//   node examples/handoff.mjs [--size MiB]     (default 256)
//
// The child checks the seals (so the parent can no longer change or shrink the data under it), maps the
// file read-only (or reads it, where mapping is not available) and verifies every byte.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { UnixSocket, MemFile, Seal } from '../dist/index.js';

const MiB = 1024 * 1024;
const CHUNK = MiB;
const REQUIRED = Seal.Seal | Seal.Shrink | Seal.Grow | Seal.Write;

// Content: every 1 MiB block is a fixed pseudo-random chunk whose first 8 bytes hold the block number,
// so a swapped, repeated or truncated block is caught, and checking is a memcmp per block.
function baseChunk() {
  const b = Buffer.alloc(CHUNK);
  let x = 0x9e3779b9;
  for (let i = 0; i < CHUNK; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
function blockInto(base, index, out = Buffer.allocUnsafe(CHUNK)) {
  base.copy(out);
  out.writeBigUInt64LE(BigInt(index), 0);
  return out;
}
/** Verifies one block; returns false on the first wrong byte. */
function checkBlock(base, index, bytes) {
  if (bytes.length !== CHUNK) return false;
  if (Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64LE(0) !== BigInt(index)) return false;
  return Buffer.from(bytes.buffer, bytes.byteOffset + 8, CHUNK - 8).equals(base.subarray(8));
}

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const fmt = (x) => `${x.toFixed(1).padStart(8)} ms`;

// ---------------- child ----------------

async function childSocket() {
  const t0 = process.hrtime.bigint();
  const sock = UnixSocket.fromFd(3);
  const msg = await sock.receive();
  const tReceived = ms(t0);
  const file = MemFile.fromFd(msg.fds[0], { requireSeals: REQUIRED });
  const seals = file.getSeals();
  const size = file.stat().size;
  const base = baseChunk();
  const blocks = size / CHUNK;
  let method, ok = Number.isInteger(blocks);
  const tVerify = process.hrtime.bigint();
  let mapping = null;
  try {
    if (typeof file.map === 'function') mapping = file.map({ writable: false });
  } catch (e) {
    if (e.code !== 'ERR_MEMFD_UNAVAILABLE') throw e;
  }
  if (mapping) {
    method = 'mmap read-only';
    const bytes = mapping.bytes;
    for (let i = 0; ok && i < blocks; i++) ok = checkBlock(base, i, bytes.subarray(i * CHUNK, (i + 1) * CHUNK));
    mapping.unmap();
  } else {
    method = 'pread in 1 MiB chunks (mapping not built yet)';
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let i = 0; ok && i < blocks; i++) {
      const n = file.readSync(buf, { position: i * CHUNK });
      ok = n === CHUNK && checkBlock(base, i, buf);
    }
  }
  const verifyMs = ms(tVerify);
  file.close();
  await sock.send(JSON.stringify({ ok, size, seals: String(seals), method, receiveMs: tReceived, verifyMs, from: sock.peerCredentials.pid }));
  sock.close();
}

async function childPipe(size) {
  const base = baseChunk();
  const tFirst = { t: null };
  let received = 0, block = 0, ok = true;
  const pending = Buffer.allocUnsafe(CHUNK);
  let filled = 0;
  for await (const chunk of process.stdin) {
    tFirst.t ??= process.hrtime.bigint();
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(CHUNK - filled, chunk.length - off);
      chunk.copy(pending, filled, off, off + n);
      filled += n; off += n; received += n;
      if (filled === CHUNK) {
        ok &&= checkBlock(base, block++, pending);
        filled = 0;
      }
    }
  }
  ok &&= filled === 0 && received === size;
  process.stdout.write(JSON.stringify({ ok, size: received, method: 'read(2) from a pipe', transferMs: tFirst.t ? ms(tFirst.t) : 0 }));
}

// ---------------- parent ----------------

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i >= 0 && process.argv[i + 1]) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`${name}=`));
  return eq ? eq.slice(name.length + 1) : fallback;
}

async function parent() {
  const sizeMiB = Number(arg('--size', '256'));
  if (!Number.isInteger(sizeMiB) || sizeMiB < 1) throw new RangeError('--size must be a whole number of MiB >= 1');
  const size = sizeMiB * MiB;
  const self = fileURLToPath(import.meta.url);
  const base = baseChunk();
  console.log(`memfd handoff demo: ${sizeMiB} MiB to a child process, verified byte for byte\n`);

  // 1. Build the file and seal it for good.
  let t0 = process.hrtime.bigint();
  const file = MemFile.create('handoff');
  file.allocate(0, size);
  const block = Buffer.allocUnsafe(CHUNK);
  for (let i = 0; i < sizeMiB; i++) file.writeSync(blockInto(base, i, block), { position: i * CHUNK });
  file.seal();
  const createMs = ms(t0);
  console.log(`parent: memfd of ${sizeMiB} MiB written and sealed (${file.getSeals()}) in ${createMs.toFixed(1)} ms`);

  // 2. Hand it over: one fd in one message.
  t0 = process.hrtime.bigint();
  const [a, b] = UnixSocket.pair();
  const child = spawn(process.execPath, [self, '--child-socket'], { stdio: ['ignore', 'inherit', 'inherit', b.fd] });
  b.close();
  const tSend = process.hrtime.bigint();
  await a.send('here is the data', [file]);
  const sendMs = ms(tSend);
  file.close(); // the child holds its own reference now
  const reply = await a.receive();
  const viaSocket = JSON.parse(reply.data.toString());
  const socketTotal = ms(t0);
  a.close();
  await new Promise((r) => child.once('exit', r));
  if (!viaSocket.ok) throw new Error('child: verification through the memfd FAILED');
  console.log(`child ${child.pid}: got the fd from pid ${viaSocket.from}; seals ${viaSocket.seals}; verified ${viaSocket.size} bytes by ${viaSocket.method}`);

  // 3. The same bytes through a pipe, for comparison.
  t0 = process.hrtime.bigint();
  const pipeChild = spawn(process.execPath, [self, '--child-pipe', String(size)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  pipeChild.stdout.on('data', (d) => { out += d; });
  const writeAll = (async () => {
    for (let i = 0; i < sizeMiB; i++) {
      if (!pipeChild.stdin.write(Buffer.from(blockInto(base, i)))) await new Promise((r) => pipeChild.stdin.once('drain', r));
    }
    pipeChild.stdin.end();
  })();
  await writeAll;
  await new Promise((r) => pipeChild.once('exit', r));
  const pipeTotal = ms(t0);
  const viaPipe = JSON.parse(out);
  if (!viaPipe.ok) throw new Error('child: verification through the pipe FAILED');
  console.log(`child ${pipeChild.pid}: read ${viaPipe.size} bytes from a pipe and verified them\n`);

  console.log('                                memfd + SCM_RIGHTS     pipe');
  console.log(`  bytes through the channel     ${'0 (one fd)'.padStart(11)}   ${String(size).padStart(11)}`);
  console.log(`  hand-over (send / transfer)   ${fmt(sendMs)}   ${fmt(viaPipe.transferMs)}`);
  console.log(`  child verify                  ${fmt(viaSocket.verifyMs)}   (included above)`);
  console.log(`  total incl. child start       ${fmt(socketTotal)}   ${fmt(pipeTotal)}`);
  console.log('\nThe memfd is sealed: the child knows the parent can no longer write, shrink or grow it, so it can');
  console.log('map it and read it without copying and without fear of SIGBUS. The pipe copies every byte twice.');
}

if (process.argv.includes('--child-socket')) await childSocket();
else if (process.argv.includes('--child-pipe')) await childPipe(Number(process.argv[process.argv.indexOf('--child-pipe') + 1]));
else await parent();
