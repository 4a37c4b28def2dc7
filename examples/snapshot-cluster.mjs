#!/usr/bin/env node
// node:cluster workers sharing one copy of a large table through SnapshotServer / SnapshotClient,
// then a hot update while they keep running.
//
//   node examples/snapshot-cluster.mjs            (256 MiB; SNAPSHOT_MB=32 for a quick run)
//
// The primary writes the table straight into a memfd (no Buffer copy), publishes it (sealed in place)
// and forks 4 workers. Each worker receives the sealed memfd, maps it and checksums every byte. The primary
// then prints the PSS (proportional set size: shared pages are split between the processes that map
// them) of all 5 processes next to the data size: the table is in RAM once, not five times. Then it
// publishes version 2; every worker switches over and lets version 1 go, and the memory stays the same.
import cluster from 'node:cluster';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MemFile, SnapshotClient, SnapshotServer } from 'memfd';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.SNAPSHOT_MB || 256) * MiB;
const WORKERS = 4;
const ADDRESS = `\0memfd-snapshot-cluster-${cluster.isPrimary ? process.pid : process.ppid}`;

/** Proportional set size of a process, in bytes (/proc/PID/smaps_rollup). */
function pss(pid) {
  const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return Number(m[1]) * 1024;
}
const mib = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;

if (cluster.isPrimary) {
  const server = await SnapshotServer.listen(ADDRESS);
  const workers = Array.from({ length: WORKERS }, () => cluster.fork());
  const reports = new Map(); // version -> [{ pid, sha256 }]
  let onReport = () => {};
  for (const w of workers) {
    w.on('message', (m) => {
      if (!reports.has(m.version)) reports.set(m.version, []);
      reports.get(m.version).push(m);
      onReport();
    });
  }
  const allReported = (version) => new Promise((resolve) => {
    onReport = () => { if ((reports.get(version)?.length ?? 0) === WORKERS) resolve(reports.get(version)); };
    onReport();
  });
  const connected = () => new Promise((resolve) => {
    const check = () => (server.clients === WORKERS ? resolve() : setTimeout(check, 10));
    check();
  });
  const totalPss = () => pss(process.pid) + workers.reduce((sum, w) => sum + pss(w.process.pid), 0);

  /** A table of SIZE bytes written through a mapping, so the primary never holds it in a Buffer. */
  function makeTable(version) {
    const file = MemFile.create(`table-v${version}`);
    file.truncate(SIZE);
    const m = file.map({ writable: true });
    const block = Buffer.alloc(MiB);
    for (let i = 0; i < MiB; i++) block[i] = (i * 131 + version * 7) & 0xff;
    for (let off = 0; off < SIZE; off += MiB) m.bytes.set(block.subarray(0, Math.min(MiB, SIZE - off)), off);
    const sha256 = createHash('sha256').update(m.bytes).digest('hex');
    m.unmap(); // the write seal needs every writable mapping gone
    return { file, sha256 };
  }

  await connected();
  const idle = totalPss();
  console.log(`${WORKERS} workers connected; PSS of all ${WORKERS + 1} processes: ${mib(idle)} (idle runtimes)`);

  for (const version of [1, 2]) {
    const { file, sha256 } = makeTable(version);
    const t0 = performance.now();
    server.publish(file, { meta: { version, sha256, note: version === 1 ? 'initial load' : 'hot update' } });
    file.close(); // the server holds its own fd of the sealed file
    const got = await allReported(version);
    const ms = performance.now() - t0;
    const ok = got.every((r) => r.sha256 === sha256);
    const total = totalPss();
    console.log(`version ${version}: ${WORKERS} workers mapped and verified ${mib(SIZE)} in ${ms.toFixed(0)} ms: ${ok ? 'all checksums match' : 'CHECKSUM MISMATCH'}`);
    console.log(`  data ${mib(SIZE)}; PSS of all ${WORKERS + 1} processes ${mib(total)} = idle ${mib(idle)} + ${mib(total - idle)} ` +
      `(${((total - idle) / SIZE).toFixed(2)}x the data; ${WORKERS} private copies would add ${(WORKERS).toFixed(2)}x)`);
    if (!ok) process.exitCode = 1;
  }
  // Closing the server ends every worker's loop; they exit on their own.
  server.close();
  await Promise.all(workers.map((w) => new Promise((r) => w.process.exitCode !== null ? r() : w.on('exit', r))));
  console.log('server closed; workers exited');
} else {
  const client = await SnapshotClient.connect(ADDRESS);
  let previous = null;
  for await (const snap of client) {
    // A worker would swap its lookup structure over to snap.bytes here, then let the old version go.
    const sha256 = createHash('sha256').update(snap.bytes).digest('hex');
    previous?.close();
    previous = snap;
    process.send({ version: snap.version, pid: process.pid, sha256 });
  }
  previous?.close();
  client.close();
  process.disconnect();
}
