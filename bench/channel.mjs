#!/usr/bin/env node
// Channel benchmark: one-way throughput (64 B, 4 KiB, 1 MiB) and ping-pong round trip (64 B, p50/p99) of
// Channel (per message, batched with trySendMany/tryReceiveMany, into a reused buffer, zero copy, and
// for 1 MiB trySend read in place; round trips through await receive() and polling tryReceiveInto),
// a plain-JS floor of the polling round trip, UnixSocket, child_process.send (json and advanced),
// worker_threads MessagePort (in-process) and the C ring of bench/c/channel.c over the same layout
// (compiled here with cc -O2; its reader copying each message out, and reading in place as Channel's views
// do), plus memcpy: cache-hot between two 1 MiB buffers, and into a ring-sized memfd mapping at the
// frames' offsets (the ring's footprint).
// Every measurement is a fresh process; variants run interleaved round by round, and the ratios are
// ratios of medians from this same run. Reported, never asserted. Both ends of every ring (Channel and C)
// are faulted in before the clock starts: a first-touch page fault costs ~22 µs on the project's VM, which
// would otherwise weigh on short runs (a 1 MiB run's 8 MiB ring is 2048 faults per process).
//
//   node bench/channel.mjs [--runs N] [--quick] [--pin A,B | --no-pin] [--update-docs]
//     --update-docs: rewrite the Channel section of docs/performance.md
//     --pin A,B: each pair's two processes on CPUs A and B (default 0,1 when there are two CPUs or more);
//     --no-pin: where the scheduler puts them
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

const self = fileURLToPath(import.meta.url);
const benchDir = path.dirname(self);
const root = path.join(benchDir, '..');
const lib = path.join(root, 'dist', 'index.js');
const KiB = 1024, MiB = 1024 * 1024;
const ringFor = (size) => Math.max(1 << 16, 2 ** Math.ceil(Math.log2(4 * (size + 8))));
/** Messages per trySendMany() call: up to half the ring, at most 256. */
const batchFor = (size) => Math.max(1, Math.min(256, Math.floor(ringFor(size) / 2 / (size + 8))));
const isChannel = (v) => ['channel', 'channel-zc', 'channel-into', 'channel-batch', 'channel-poll', 'channel-send-view'].includes(v);

// The JS floor of a round trip (variant 'js-floor'): the C ring's loop written in plain JavaScript over a
// shared page, with nothing of Channel: each side polls one sequence word, copies the 64 B payload out of
// its slot into a reused buffer, copies it into the other slot and stores the other word. No framing, no
// checks, no wake-ups: what any JavaScript pays for the same copies and the same cache-line transfers.
const FLOOR_WORD = [0, 16], FLOOR_SLOT = [128, 256];

// --pin (the default with two or more CPUs): BENCH_CPUS=A,B is set for the measuring process, which runs on
// CPU A, and its peer process runs on CPU B (the C ring pins its two processes itself): both sides awake,
// each on its own CPU, in every run. Left to the scheduler, the same Channel pair gave 1.0 to 9.9 M 64 B
// messages/s in six runs minutes apart (pinned: 5.4-5.8), and the C ring 33-74 M/s (pinned: 34-42).
const pinnedCpus = process.env.BENCH_CPUS?.split(',');
/** Starts a peer Node process (`args` after node), on CPU B when pinned. */
function spawnPeer(args, options) {
  return pinnedCpus
    ? spawn('taskset', ['-c', pinnedCpus[1], process.execPath, ...args], options)
    : spawn(process.execPath, args, options);
}

// ------------------------------------------------------------------------------------ child roles
// Every Node variant runs twice: `warm` messages (or round trips) first, unmeasured, then `count` measured
// ones. A short run of a JIT-compiled loop mostly measures the compiler, the first garbage collections and
// V8's heap sizing: 2000 zero-copy 1 MiB messages averaged 96-104 µs each, 20000 averaged 43 µs. For
// one-way runs the reader reports after the warm-up, and the clock starts only then.
async function childRole([variant, mode, sizeArg, countArg, warmArg]) {
  const size = Number(sizeArg), count = Number(countArg), warm = Number(warmArg);
  const { Channel, UnixSocket } = await import(lib);
  if (isChannel(variant)) {
    const ch = Channel.fromFd(3, { populate: true });
    ch.trySend('ready');
    if (mode === 'rtt' && variant === 'channel-poll') {
      // Both sides awake, as in the C ring: poll, copy into a reused buffer, answer from it.
      const into = Buffer.allocUnsafe(size);
      for (let i = 0; i < warm + count; i++) {
        let n;
        while ((n = ch.tryReceiveInto(into)) === undefined);
        if (n !== size || !ch.trySend(into)) throw new Error('echo failed');
      }
    } else if (mode === 'rtt') {
      for (let i = 0; i < warm + count; i++) {
        const m = ch.tryReceive() ?? await ch.receive();
        if (!ch.trySend(m)) await ch.send(m);
      }
    } else {
      const drain = drainerFor(ch, variant, size);
      await drain(warm);
      await ch.send('warm');
      await drain(count);
      await ch.send('done');
    }
    await ch.receive(); // the parent closes
    ch.close();
  } else if (variant === 'js-floor') {
    const { MemFile } = await import(lib);
    const page = MemFile.fromFd(3).map();
    const words = new Int32Array(page.buffer), bytes = new Uint8Array(page.buffer);
    const into = Buffer.allocUnsafe(size);
    Atomics.store(words, FLOOR_WORD[1], -1); // ready
    for (let i = 1; i <= warm + count; i++) {
      while (Atomics.load(words, FLOOR_WORD[0]) !== i);
      into.set(bytes.subarray(FLOOR_SLOT[0], FLOOR_SLOT[0] + size));
      bytes.set(into, FLOOR_SLOT[1]);
      words[FLOOR_WORD[1]] = i;
    }
    page.unmap();
  } else if (variant === 'unixsocket') {
    const s = UnixSocket.fromFd(3);
    await s.send('r');
    if (mode === 'rtt') {
      let pending = 0;
      for await (const m of s) {
        pending += m.data.length;
        while (pending >= size) { pending -= size; await s.send(Buffer.alloc(size, 7)); }
      }
    } else {
      // The parent sends the measured messages only after the 'w', so the phases never share a read.
      let bytes = 0, phase = 0;
      const wants = [warm * size, count * size], replies = ['w', 'd'];
      for await (const m of s) {
        bytes += m.data.length;
        if (bytes < wants[phase]) continue;
        await s.send(replies[phase]);
        bytes = 0;
        if (++phase === wants.length) break;
      }
    }
    s.close();
  }
}

/** The Channel reader of a one-way run: `drain(n)` takes n messages in the variant's way. */
function drainerFor(ch, variant, size) {
  if (variant === 'channel-zc' || variant === 'channel-send-view') {
    return async (count) => {
      for (let i = 0; i < count; i++) {
        const v = ch.tryReceiveView() ?? await ch.receiveView();
        if (v.bytes[v.length - 1] !== 7) throw new Error('bad byte');
        v.release();
      }
    };
  }
  if (variant === 'channel-batch') {
    // One copy per run of messages (the C reader's memcpy per message is the equivalent); each message
    // is checked through the batch's offsets and lengths, without an object per message.
    return async (count) => {
      for (let got = 0; got < count;) {
        const b = ch.tryReceiveMany() ?? await ch.receiveMany();
        const bytes = b.bytes;
        for (let i = 0; i < b.count; i++) if (bytes[b.offsetOf(i) + b.lengthOf(i) - 1] !== 7) throw new Error('bad byte');
        got += b.count;
        b.release(); // the next batch reuses the memory, as the C reader reuses its buffer
      }
    };
  }
  if (variant === 'channel-into') {
    // Into one reused buffer. A receive that has to wait goes through a view (receive() would allocate a
    // fresh Buffer, and fresh memory costs a page fault per 4 KiB).
    const into = Buffer.allocUnsafe(size);
    return async (count) => {
      for (let i = 0; i < count; i++) {
        let n = ch.tryReceiveInto(into);
        if (n === undefined) {
          const v = await ch.receiveView();
          into.set(v.bytes);
          n = v.length;
          v.release();
        }
        if (into[n - 1] !== 7) throw new Error('bad byte');
      }
    };
  }
  return async (count) => {
    for (let i = 0; i < count; i++) {
      const m = ch.tryReceive() ?? await ch.receive();
      if (m[m.length - 1] !== 7) throw new Error('bad byte');
    }
  };
}

async function cpChild() {
  // Forked with an IPC channel: echo (rtt) or count (tp: 'warm' after the warm-up, 'done' at the end).
  let n = 0;
  const [mode, , countArg, warmArg] = process.argv.slice(3);
  const count = Number(countArg), warm = Number(warmArg);
  process.on('message', (m) => {
    if (mode === 'rtt') process.send(m);
    else if (++n === warm) process.send('warm');
    else if (n === warm + count) process.send('done');
  });
  process.send('ready');
}

// ------------------------------------------------------------------------------------ parent roles
function lines(child) {
  const queue = [];
  let wake;
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { queue.push(buf.slice(0, i)); buf = buf.slice(i + 1); wake?.(); }
  });
  return async () => { while (queue.length === 0) await new Promise((r) => { wake = r; }); return queue.shift(); };
}

function percentiles(lat) {
  lat.sort((a, b) => a - b);
  return { p50us: lat[lat.length >> 1] * 1000, p99us: lat[Math.floor(lat.length * 0.99)] * 1000 };
}

/** The Channel writer of a one-way run: `produce(n)` sends n messages in the variant's way. */
function producerFor(ch, variant, size, msg) {
  if (variant === 'channel-zc') {
    return async (count) => {
      for (let i = 0; i < count; i++) {
        const loan = ch.tryReserve(size) ?? await ch.reserve(size);
        loan.bytes.set(msg); // producing the data: the one copy there is
        loan.commit();
      }
    };
  }
  if (variant === 'channel-batch') {
    const per = batchFor(size);
    const batch = Array.from({ length: per }, () => msg);
    return async (count) => {
      for (let left = count; left > 0;) {
        const list = left >= per ? batch : batch.slice(0, left);
        const sent = ch.trySendMany(list);
        if (sent < list.length) await ch.sendMany(list.slice(sent));
        left -= list.length;
      }
    };
  }
  return async (count) => {
    for (let i = 0; i < count; i++) if (!ch.trySend(msg)) await ch.send(msg);
  };
}

async function measure([variant, mode, sizeArg, countArg, warmArg]) {
  const size = Number(sizeArg), count = Number(countArg), warm = Number(warmArg);
  const childArgs = [mode, sizeArg, countArg, warmArg];
  const { Channel, UnixSocket } = await import(lib);
  const msg = Buffer.alloc(size, 7);
  if (isChannel(variant)) {
    const ch = Channel.create({ size: ringFor(size), populate: true });
    const child = spawnPeer([self, 'child', variant, ...childArgs], { stdio: ['ignore', 'inherit', 'inherit', ch.fd] });
    await ch.receive();
    let result;
    if (mode === 'rtt') {
      const lat = new Float64Array(count);
      const into = Buffer.allocUnsafe(size);
      for (let i = -warm; i < count; i++) {
        const t0 = performance.now();
        if (variant === 'channel-poll') {
          if (!ch.trySend(msg)) throw new Error('no room');
          while (ch.tryReceiveInto(into) === undefined);
        } else {
          if (!ch.trySend(msg)) await ch.send(msg);
          ch.tryReceive() ?? await ch.receive();
        }
        if (i >= 0) lat[i] = performance.now() - t0;
      }
      result = percentiles(Array.from(lat));
    } else {
      const produce = producerFor(ch, variant, size, msg);
      await produce(warm);
      await ch.receive(); // the reader's 'warm'
      const t0 = performance.now();
      await produce(count);
      await ch.receive();
      const s = (performance.now() - t0) / 1000;
      result = { msgsPerSec: count / s, bytesPerSec: count * size / s };
    }
    ch.close();
    await new Promise((r) => child.on('exit', r));
    return result;
  }
  if (variant === 'js-floor') {
    const { MemFile, Seal } = await import(lib);
    const file = MemFile.create('js-floor');
    file.truncate(4096);
    file.addSeals(Seal.Shrink | Seal.Grow);
    const page = file.map();
    const words = new Int32Array(page.buffer), bytes = new Uint8Array(page.buffer);
    const child = spawnPeer([self, 'child', variant, ...childArgs], { stdio: ['ignore', 'inherit', 'inherit', file.fd] });
    while (Atomics.load(words, FLOOR_WORD[1]) !== -1) await new Promise((r) => setTimeout(r, 1));
    const into = Buffer.allocUnsafe(size);
    const lat = new Float64Array(count);
    for (let i = 1; i <= warm + count; i++) {
      const t0 = performance.now();
      bytes.set(msg, FLOOR_SLOT[0]);
      words[FLOOR_WORD[0]] = i;
      while (Atomics.load(words, FLOOR_WORD[1]) !== i);
      into.set(bytes.subarray(FLOOR_SLOT[1], FLOOR_SLOT[1] + size));
      if (i > warm) lat[i - warm - 1] = performance.now() - t0;
    }
    await new Promise((r) => child.on('exit', r));
    page.unmap();
    file.close();
    return percentiles(Array.from(lat));
  }
  if (variant === 'unixsocket') {
    const [a, b] = UnixSocket.pair({ type: 'stream' });
    const child = spawnPeer([self, 'child', variant, ...childArgs], { stdio: ['ignore', 'inherit', 'inherit', b.fd] });
    b.close();
    await a.receive();
    let result;
    if (mode === 'rtt') {
      const lat = [];
      for (let i = -warm; i < count; i++) {
        const t0 = performance.now();
        await a.send(msg);
        let got = 0;
        while (got < size) got += (await a.receive()).data.length;
        if (i >= 0) lat.push(performance.now() - t0);
      }
      result = percentiles(lat);
    } else {
      const produce = async (n) => {
        let inflight = [];
        for (let i = 0; i < n; i++) {
          inflight.push(a.send(msg));
          if (inflight.length === 256) { await Promise.all(inflight); inflight = []; }
        }
        await Promise.all(inflight);
      };
      await produce(warm);
      await a.receive(); // 'w'
      const t0 = performance.now();
      await produce(count);
      await a.receive();
      const s = (performance.now() - t0) / 1000;
      result = { msgsPerSec: count / s, bytesPerSec: count * size / s };
    }
    a.close();
    await new Promise((r) => child.on('exit', r));
    return result;
  }
  if (variant === 'cp-json' || variant === 'cp-advanced') {
    const serialization = variant === 'cp-json' ? 'json' : 'advanced';
    const child = spawnPeer([self, 'cp-child', ...childArgs], { serialization, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const payload = variant === 'cp-json' ? 'x'.repeat(size) : msg; // json: a string of `size` bytes
    const next = () => new Promise((r) => child.once('message', r));
    await next();
    let result;
    if (mode === 'rtt') {
      const lat = [];
      for (let i = -warm; i < count; i++) {
        const t0 = performance.now();
        const p = next();
        child.send(payload);
        await p;
        if (i >= 0) lat.push(performance.now() - t0);
      }
      result = percentiles(lat);
    } else {
      const produce = async (n) => {
        for (let i = 0; i < n; i++) {
          if (!child.send(payload)) await new Promise((r) => setImmediate(r));
        }
      };
      const warmed = next();
      await produce(warm);
      await warmed;
      const t0 = performance.now();
      const done = next();
      await produce(count);
      await done;
      const s = (performance.now() - t0) / 1000;
      result = { msgsPerSec: count / s, bytesPerSec: count * size / s };
    }
    child.disconnect();
    await new Promise((r) => child.on('exit', r));
    return result;
  }
  if (variant === 'messageport') {
    const worker = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      let n = 0;
      parentPort.on('message', (m) => {
        if (workerData.mode === 'rtt') parentPort.postMessage(m);
        else if (++n === workerData.warm) parentPort.postMessage('warm');
        else if (n === workerData.warm + workerData.count) parentPort.postMessage('done');
      });
      parentPort.postMessage('ready');
    `, { eval: true, workerData: { mode, count, warm } });
    const next = () => new Promise((r) => worker.once('message', r));
    await next();
    let result;
    if (mode === 'rtt') {
      const lat = [];
      for (let i = -warm; i < count; i++) {
        const t0 = performance.now();
        const p = next();
        worker.postMessage(msg);
        await p;
        if (i >= 0) lat.push(performance.now() - t0);
      }
      result = percentiles(lat);
    } else {
      const warmed = next();
      for (let i = 0; i < warm; i++) worker.postMessage(msg);
      await warmed;
      const t0 = performance.now();
      const done = next();
      for (let i = 0; i < count; i++) worker.postMessage(msg);
      await done;
      const s = (performance.now() - t0) / 1000;
      result = { msgsPerSec: count / s, bytesPerSec: count * size / s };
    }
    await worker.terminate();
    return result;
  }
  if (variant === 'node-memcpy' || variant === 'node-alloc-copy') {
    const dst = Buffer.allocUnsafeSlow(size);
    const copy = (n) => {
      for (let i = 0; i < n; i++) {
        if (variant === 'node-memcpy') dst.set(msg);
        else Buffer.from(msg.buffer.slice(msg.byteOffset, msg.byteOffset + size));
      }
    };
    copy(warm);
    const t0 = performance.now();
    copy(count);
    const s = (performance.now() - t0) / 1000;
    return { msgsPerSec: count / s, bytesPerSec: count * size / s };
  }
  throw new Error(`unknown variant ${variant}`);
}

// ------------------------------------------------------------------------------------ orchestration
function buildC() {
  const out = path.join(benchDir, 'build', 'channel');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  execFileSync(process.env.CC || 'cc', ['-O2', '-Wall', '-o', out, path.join(benchDir, 'c', 'channel.c')], { stdio: 'inherit' });
  return out;
}

function runOne(cBinary, variant, mode, size, count, warm, cpus) {
  const cModes = { 'c-ring': mode, 'c-ring-zc': 'tp-zc', 'c-memcpy': 'memcpy', 'c-memcpy-ring': 'memcpy-ring', 'c-alloc-copy': 'memcpy-fresh' };
  let args = variant in cModes
    ? [cBinary, [cModes[variant], String(size), String(count)]]
    : [process.execPath, [self, 'measure', variant, mode, String(size), String(count), String(warm)]];
  // MessagePort's two ends are threads of one process: pinning that process would put both on one CPU.
  const pin = cpus && variant !== 'messageport';
  if (pin && !(variant in cModes)) args = ['taskset', ['-c', String(cpus[0]), ...args.flat()]];
  const env = pin ? { ...process.env, BENCH_CPUS: cpus.join(',') } : process.env;
  const r = spawnSync(args[0], args[1], { encoding: 'utf8', timeout: 300000, env });
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').pop() };
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const median = (xs) => { const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b); return s.length ? s[s.length >> 1] : NaN; };
const fmtRate = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(0));
const fmtBytes = (x) => (x >= 1e9 ? `${(x / 1e9).toFixed(2)} GB/s` : `${(x / 1e6).toFixed(1)} MB/s`);

async function main() {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const runsIdx = argv.indexOf('--runs');
  const runs = runsIdx >= 0 ? Number(argv[runsIdx + 1]) : quick ? 1 : 3;
  const scale = quick ? 0.2 : 1;
  const pinIdx = argv.indexOf('--pin');
  const canPin = spawnSync('taskset', ['-c', '0', 'true']).status === 0; // util-linux, on every Debian
  const cpus = argv.includes('--no-pin') || os.availableParallelism() < 2 || !canPin ? undefined
    : pinIdx >= 0 && /^\d+,\d+$/.test(argv[pinIdx + 1] ?? '') ? argv[pinIdx + 1].split(',').map(Number) : [0, 1];
  const n = (x) => Math.max(10, Math.round(x * scale));
  const cBinary = buildC();
  if (!fs.existsSync(lib)) execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });

  const tpVariants = {
    [64]: { channel: 1e6, 'channel-batch': 5e6, 'channel-into': 1e6, unixsocket: 1e5, 'cp-json': 3e4, 'cp-advanced': 3e4, messageport: 2e5, 'c-ring': 5e6 },
    [4 * KiB]: { channel: 2e5, 'channel-batch': 2e5, 'channel-zc': 2e5, 'channel-into': 2e5, unixsocket: 5e4, 'cp-json': 1e4, 'cp-advanced': 1e4, messageport: 5e4, 'c-ring': 5e5, 'c-ring-zc': 5e5 },
    [MiB]: { channel: 1000, 'channel-zc': 5000, 'channel-into': 2000, unixsocket: 300, 'cp-json': 50, 'cp-advanced': 100, messageport: 300, 'channel-send-view': 5000, 'c-ring': 5000, 'c-ring-zc': 5000, 'c-memcpy': 5000, 'c-memcpy-ring': 5000, 'c-alloc-copy': 5000, 'node-memcpy': 5000, 'node-alloc-copy': 1000 },
  };
  // Node variants warm up with as many messages as they measure; C needs none (compiled, rings faulted in).
  const warmFor = (variant, count) => (variant.startsWith('c-') ? 0 : count);
  const rttVariants = { channel: 50000, 'channel-poll': 100000, 'js-floor': 100000, unixsocket: 10000, 'cp-json': 5000, 'cp-advanced': 5000, messageport: 20000, 'c-ring': 200000 };

  const jobs = [];
  for (const [size, vs] of Object.entries(tpVariants)) for (const [v, c] of Object.entries(vs)) jobs.push({ kind: 'tp', size: Number(size), variant: v, count: n(c), warm: warmFor(v, n(c)) });
  for (const [v, c] of Object.entries(rttVariants)) jobs.push({ kind: 'rtt', size: 64, variant: v, count: n(c), warm: warmFor(v, n(c)) });
  const results = new Map(jobs.map((j) => [j, []]));
  const started = Date.now();
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  for (let round = 0; round < runs; round++) {
    // Interleave: every job once per round, in an order rotated each round.
    const order = jobs.slice(round % jobs.length).concat(jobs.slice(0, round % jobs.length));
    for (const j of order) {
      const r = runOne(cBinary, j.variant, j.kind, j.size, j.count, j.warm, cpus);
      results.get(j).push(r);
      process.stderr.write(`round ${round + 1}/${runs} ${j.kind} ${j.size} ${j.variant}: ${JSON.stringify(r)}\n`);
    }
  }

  const out = [];
  out.push(`Run of ${new Date().toISOString()} (${Math.round((Date.now() - started) / 1000)} s): Node ${process.version}, ` +
    `${os.cpus().length} x ${os.cpus()[0]?.model.trim()}, load average at start ${load}, ${runs} interleaved round(s), median shown; ` +
    (cpus ? `the two processes of each pair pinned to CPUs ${cpus.join(' and ')} (MessagePort: not pinned).` : 'not pinned.'));
  out.push('');
  const get = (kind, size, variant, key) => {
    const j = jobs.find((x) => x.kind === kind && x.size === size && x.variant === variant);
    return j ? median(results.get(j).map((r) => r[key])) : NaN;
  };
  out.push('**One-way throughput** (messages/s; bytes/s for 1 MiB)');
  out.push('');
  const tpNames = ['channel', 'channel-batch', 'channel-into', 'channel-zc', 'channel-send-view', 'unixsocket', 'cp-json', 'cp-advanced', 'messageport', 'c-ring', 'c-ring-zc'];
  out.push('| variant | 64 B | 4 KiB | 1 MiB |');
  out.push('|---|---|---|---|');
  for (const v of tpNames) {
    const cells = [64, 4 * KiB, MiB].map((s) => {
      const m = get('tp', s, v, 'msgsPerSec');
      if (!Number.isFinite(m)) return '-';
      return s === MiB ? fmtBytes(get('tp', s, v, 'bytesPerSec')) : `${fmtRate(m)}/s`;
    });
    out.push(`| ${v} | ${cells.join(' | ')} |`);
  }
  for (const v of ['c-memcpy', 'c-memcpy-ring', 'c-alloc-copy', 'node-memcpy', 'node-alloc-copy']) {
    out.push(`| ${v} (1 MiB, one process) | - | - | ${fmtBytes(get('tp', MiB, v, 'bytesPerSec'))} |`);
  }
  out.push('');
  out.push('**Round trip, 64 B ping-pong** (µs)');
  out.push('');
  out.push('| variant | p50 | p99 |');
  out.push('|---|---|---|');
  for (const v of Object.keys(rttVariants)) out.push(`| ${v} | ${get('rtt', 64, v, 'p50us').toFixed(2)} | ${get('rtt', 64, v, 'p99us').toFixed(2)} |`);
  out.push('');
  const ratio = (a, b) => (a / b).toFixed(2);
  const ch64 = get('tp', 64, 'channel', 'msgsPerSec');
  const checks = [
    ['64 B: Channel / child_process.send (advanced)', ratio(ch64, get('tp', 64, 'cp-advanced', 'msgsPerSec')), '>= 20'],
    ['64 B: Channel / child_process.send (json)', ratio(ch64, get('tp', 64, 'cp-json', 'msgsPerSec')), '>= 20'],
    ['64 B: Channel / C ring', ratio(ch64, get('tp', 64, 'c-ring', 'msgsPerSec')), '>= 0.5'],
    ['64 B: Channel (batch) / C ring', ratio(get('tp', 64, 'channel-batch', 'msgsPerSec'), get('tp', 64, 'c-ring', 'msgsPerSec')), '>= 0.5'],
    ['4 KiB: Channel (batch) / C ring', ratio(get('tp', 4 * KiB, 'channel-batch', 'msgsPerSec'), get('tp', 4 * KiB, 'c-ring', 'msgsPerSec')), ''],
    ['64 B: Channel / UnixSocket', ratio(ch64, get('tp', 64, 'unixsocket', 'msgsPerSec')), ''],
    ['4 KiB: Channel / C ring', ratio(get('tp', 4 * KiB, 'channel', 'msgsPerSec'), get('tp', 4 * KiB, 'c-ring', 'msgsPerSec')), ''],
    ['1 MiB: C memcpy / Channel (copy)', ratio(get('tp', MiB, 'c-memcpy', 'bytesPerSec'), get('tp', MiB, 'channel', 'bytesPerSec')), '<= 1.5'],
    ['64 B: Channel (tryReceiveInto) / C ring', ratio(get('tp', 64, 'channel-into', 'msgsPerSec'), get('tp', 64, 'c-ring', 'msgsPerSec')), '>= 0.5'],
    ['1 MiB: C memcpy / Channel (tryReceiveInto)', ratio(get('tp', MiB, 'c-memcpy', 'bytesPerSec'), get('tp', MiB, 'channel-into', 'bytesPerSec')), '<= 1.5'],
    ['1 MiB: C memcpy / Channel (zero copy)', ratio(get('tp', MiB, 'c-memcpy', 'bytesPerSec'), get('tp', MiB, 'channel-zc', 'bytesPerSec')), '<= 1.5'],
    ['1 MiB: C memcpy / Channel (trySend, read in place: the one copy is the send\'s, as in c-ring-zc)', ratio(get('tp', MiB, 'c-memcpy', 'bytesPerSec'), get('tp', MiB, 'channel-send-view', 'bytesPerSec')), '<= 1.5'],
    ['1 MiB: C memcpy into a ring-sized mapping / Channel (zero copy)', ratio(get('tp', MiB, 'c-memcpy-ring', 'bytesPerSec'), get('tp', MiB, 'channel-zc', 'bytesPerSec')), '<= 1.5'],
    ['1 MiB: C memcpy / C ring read in place (what this machine allows between processes)', ratio(get('tp', MiB, 'c-memcpy', 'bytesPerSec'), get('tp', MiB, 'c-ring-zc', 'bytesPerSec')), ''],
    ['1 MiB: Channel (zero copy) / C ring read in place', ratio(get('tp', MiB, 'channel-zc', 'bytesPerSec'), get('tp', MiB, 'c-ring-zc', 'bytesPerSec')), ''],
    ['4 KiB: Channel (zero copy) / C ring read in place', ratio(get('tp', 4 * KiB, 'channel-zc', 'msgsPerSec'), get('tp', 4 * KiB, 'c-ring-zc', 'msgsPerSec')), ''],
    ['1 MiB: C malloc+memcpy / Channel (copy)', ratio(get('tp', MiB, 'c-alloc-copy', 'bytesPerSec'), get('tp', MiB, 'channel', 'bytesPerSec')), ''],
    ['RTT p50: Channel / C ring', ratio(get('rtt', 64, 'channel', 'p50us'), get('rtt', 64, 'c-ring', 'p50us')), '<= 2'],
    ['RTT p50: Channel polling into a reused buffer (the C ring\'s loop) / C ring', ratio(get('rtt', 64, 'channel-poll', 'p50us'), get('rtt', 64, 'c-ring', 'p50us')), '<= 2'],
    ['RTT p50: JS floor (the same loop and copies without Channel) / C ring', ratio(get('rtt', 64, 'js-floor', 'p50us'), get('rtt', 64, 'c-ring', 'p50us')), ''],
    ['RTT p50: Channel polling / JS floor (what Channel adds)', ratio(get('rtt', 64, 'channel-poll', 'p50us'), get('rtt', 64, 'js-floor', 'p50us')), ''],
    ['RTT p50: UnixSocket / Channel', ratio(get('rtt', 64, 'unixsocket', 'p50us'), get('rtt', 64, 'channel', 'p50us')), ''],
  ];
  out.push('**Ratios (same run) and targets**');
  out.push('');
  out.push('| ratio | value | target |');
  out.push('|---|---|---|');
  for (const [label, value, target] of checks) {
    let verdict = '';
    if (target) {
      const [op, t] = target.split(' ');
      const ok = op === '>=' ? Number(value) >= Number(t) : Number(value) <= Number(t);
      verdict = ` ${ok ? 'PASS' : 'MISS'}`;
    }
    out.push(`| ${label} | ${value} | ${target}${verdict} |`);
  }
  const text = out.join('\n');
  console.log(text);
  fs.mkdirSync(path.join(benchDir, 'results'), { recursive: true });
  fs.writeFileSync(path.join(benchDir, 'results', 'channel-latest.md'), text + '\n');
  fs.writeFileSync(path.join(benchDir, 'results', 'channel-latest.json'),
    JSON.stringify(jobs.map((j) => ({ ...j, results: results.get(j) })), null, 1));
  if (argv.includes('--update-docs')) {
    const doc = path.join(root, 'docs', 'performance.md');
    const s = fs.readFileSync(doc, 'utf8');
    const a = s.indexOf('<!-- channel-results:start -->'), b = s.indexOf('<!-- channel-results:end -->');
    if (a < 0 || b < 0) throw new Error('docs/performance.md has no channel-results markers');
    fs.writeFileSync(doc, s.slice(0, a) + '<!-- channel-results:start -->\n' + text + '\n' + s.slice(b));
  }
}

const role = process.argv[2];
if (role === 'child') await childRole(process.argv.slice(3));
else if (role === 'cp-child') await cpChild();
else if (role === 'measure') console.log(JSON.stringify(await measure(process.argv.slice(3))));
else await main();
