#!/usr/bin/env node
// Shared snapshots bench: one data set handed to N client processes, three ways, in one run.
//
//   node bench/snapshot.mjs [--size 1G] [--clients 16] [--methods snapshot,file,ipc] [--json]
//
//   snapshot  SnapshotServer.publish(MemFile) (written through a mapping, sealed in place); each client
//             SnapshotClient.connect()s, maps the version and verifies every byte in place
//   file      the data in a /dev/shm file; each client fs.readFileSync()s it into a Buffer and verifies it
//   ipc       child_process.fork() + send(buffer) with serialization 'advanced', one client after the other
//             (all at once would hold N serialized copies in the parent: 16 GiB more at 1 GiB x 16); it
//             stops when less than 3x the data size of RAM is left (a child holds two copies while receiving)
//
// Clients are started and report "ready" (idle) before the clock starts: process start-up is not the
// method's cost, and neither is preparing the data (filling the memfd, writing the file, filling the
// Buffer). The clock stops when the last client reports that it verified every byte (pattern.mjs, a
// memcmp per block). Then, with every client still holding the data, the PSS of all processes is summed
// (for 'file' plus the /dev/shm file, which no process maps) and compared with the idle PSS and the data
// size. Memory: the copying methods need N x size of RAM (16 GiB at the defaults); the run refuses to
// start a method that would not fit in MemAvailable with 10% to spare (use --size or --clients).
import { spawn, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { fill, pssOf, parseSize, formatSize, PERIOD, REF } from './node/pattern.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const childScript = path.join(benchDir, 'node', 'snapshot-child.mjs');
const METHODS = ['snapshot', 'file', 'ipc'];

function parseArgs(argv) {
  const o = { size: 1 << 30, clients: 16, methods: METHODS, json: false };
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].split('=');
    const value = () => inline ?? argv[++i];
    switch (name) {
      case '--size': o.size = parseSize(value()); break;
      case '--clients': o.clients = Number(value()); break;
      case '--methods': o.methods = value().split(','); break;
      case '--json': o.json = true; break;
      default: throw new Error(`unknown option ${argv[i]} (see the comment at the top of bench/snapshot.mjs)`);
    }
  }
  for (const m of o.methods) if (!METHODS.includes(m)) throw new Error(`unknown method ${m}; methods: ${METHODS.join(',')}`);
  return o;
}

const memAvailable = () => Number(/^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))[1]) * 1024;
const now = () => performance.now() / 1000;

/** A child process speaking JSON lines; next() resolves the next line. */
function startClient(args, options) {
  const child = options.ipc
    ? fork(childScript, args, { stdio: ['pipe', 'pipe', 'inherit', 'ipc'], serialization: 'advanced', execArgv: ['--expose-gc'] })
    : spawn(process.execPath, [childScript, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const queue = [];
  const waiters = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const msg = JSON.parse(line);
    if (waiters.length) waiters.shift()(msg); else queue.push(msg);
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(`exit ${code ?? signal}`)));
  const next = () => (queue.length ? Promise.resolve(queue.shift())
    : Promise.race([new Promise((r) => waiters.push(r)), exited.then((why) => { throw new Error(`client ${child.pid}: ${why}`); })]));
  return { child, next };
}

async function runMethod(method, o) {
  const { size, clients: count } = o;
  const need = method === 'snapshot' ? size : size * (count + (method === 'ipc' ? 3 : 1));
  if (need * 1.1 > memAvailable()) {
    return { error: `needs ~${formatSize(need)} of RAM, ${formatSize(memAvailable())} available (use --size or --clients)` };
  }
  const pssParentIdle = pssOf();
  let server = null;
  let shmPath = null;
  let buffer = null;
  const prep0 = now();
  let args;
  if (method === 'snapshot') {
    const { MemFile, SnapshotServer } = await import('../dist/index.js');
    server = await SnapshotServer.listen(`\0memfd-bench-snapshot-${process.pid}`);
    args = ['snapshot', server.address.replace('\0', '@')]; // argv cannot carry a NUL
    // Written through a mapping and published sealed in place: the parent never holds a second copy.
    const file = MemFile.create('bench-snapshot');
    file.truncate(size);
    const m = file.map({ writable: true, populate: true });
    fill(m.bytes);
    m.unmap();
    buffer = file;
  } else if (method === 'file') {
    shmPath = `/dev/shm/memfd-bench-snapshot-${process.pid}`;
    // Written block by block: the parent does not keep a copy in a Buffer (it has no use for one).
    const fd = fs.openSync(shmPath, 'w');
    for (let off = 0; off < size; off += PERIOD) fs.writeSync(fd, REF, 0, Math.min(PERIOD, size - off), off);
    fs.closeSync(fd);
    args = ['file', shmPath];
  } else {
    buffer = Buffer.allocUnsafeSlow(size);
    fill(buffer);
    args = ['ipc'];
  }
  const prepSeconds = now() - prep0;
  const clients = Array.from({ length: count }, () => startClient(args, { ipc: method === 'ipc' }));
  try {
    const ready = await Promise.all(clients.map((c) => c.next()));
    if (method !== 'snapshot' && need * 1.1 > memAvailable()) throw new Error(`needs ~${formatSize(need)} of RAM, ${formatSize(memAvailable())} available`);
    const pssIdle = pssParentIdle + ready.reduce((s, r) => s + r.pss, 0);
    const t0 = now();
    let done;
    if (method === 'snapshot') {
      server.publish(buffer);
      buffer.close();
      buffer = null;
      done = Promise.all(clients.map((c) => c.next()));
    } else if (method === 'file') {
      for (const c of clients) c.child.stdin.write('go\n');
      done = Promise.all(clients.map((c) => c.next()));
    } else {
      const results = [];
      for (const [i, c] of clients.entries()) {
        // A child briefly holds the serialized copy and the deserialized one: stop rather than push a
        // shared machine into the OOM killer.
        if (memAvailable() < 3 * size) throw new Error(`stopped before client ${i + 1} of ${count}: ${formatSize(memAvailable())} of RAM left`);
        const received = new Promise((r) => c.child.once('message', r));
        c.child.send(buffer);
        await received;
        results.push(c.next());
      }
      done = Promise.all(results);
    }
    const reports = await done;
    const seconds = now() - t0;
    const pssClients = clients.reduce((s, c) => s + pssOf(c.child.pid), 0);
    const shmBytes = shmPath ? fs.statSync(shmPath).size : 0;
    const pssTotal = pssOf() + pssClients + shmBytes;
    return {
      seconds,
      prepSeconds,
      bad: reports.reduce((s, r) => s + r.bad, 0),
      pssIdle,
      pssTotal,
      shmBytes,
      peakRssMax: Math.max(...reports.map((r) => r.hwm)),
    };
  } catch (e) {
    return { error: e.message };
  } finally {
    for (const c of clients) c.child.kill('SIGKILL');
    await Promise.all(clients.map((c) => new Promise((r) => (c.child.exitCode !== null || c.child.signalCode !== null ? r() : c.child.once('exit', r)))));
    server?.close();
    if (buffer && typeof buffer.close === 'function') buffer.close();
    if (shmPath) fs.rmSync(shmPath, { force: true });
  }
}

const o = parseArgs(process.argv.slice(2));
const results = {};
const LABELS = {
  snapshot: 'SnapshotServer.publish, clients map the sealed memfd',
  file: '/dev/shm file, each client reads it into a Buffer',
  ipc: "fork() + send(), serialization 'advanced', one by one",
};
if (!o.json) {
  console.log(`${formatSize(o.size)} to ${o.clients} client processes (${os.cpus().length} CPUs, ` +
    `${formatSize(os.totalmem())} RAM, Linux ${os.release()}, Node ${process.versions.node})`);
}
for (const m of o.methods) {
  results[m] = await runMethod(m, o);
  if (!o.json) {
    const r = results[m];
    if (r.error) {
      console.log(`  ${m.padEnd(9)} skipped: ${r.error}`);
      continue;
    }
    const extra = r.pssTotal - r.pssIdle;
    console.log(`  ${m.padEnd(9)} ${r.seconds.toFixed(2).padStart(7)} s  PSS of all ${o.clients + 1} processes ` +
      `${formatSize(r.pssTotal)}${r.shmBytes ? ' (incl. the /dev/shm file)' : ''} = idle ${formatSize(r.pssIdle)} + ` +
      `${formatSize(extra)} (${(extra / o.size).toFixed(2)}x the data)  ${r.bad ? `${r.bad} BAD BLOCKS` : 'verified'}  ` +
      `[${LABELS[m]}; preparing the data took ${r.prepSeconds.toFixed(2)} s]`);
  }
}
if (o.json) console.log(JSON.stringify({ size: o.size, clients: o.clients, results }));
