#!/usr/bin/env node
// Measures what pre-faulting buys: time to map a fresh memfd and write one byte per page, with and without
// `populate`, and `advise('populate-write')` on an existing mapping. Usage: node bench/mapping-populate.mjs [MiB]
import { MemFile } from '../dist/index.js';

const mib = Number(process.argv[2] ?? 256);
const size = mib * 2 ** 20;
const PAGE = 4096;
const rounds = 5;

function touchAll(bytes) {
  for (let i = 0; i < bytes.length; i += PAGE) bytes[i] = 1;
}

function run(label, fn) {
  const times = [];
  for (let r = 0; r < rounds; r++) {
    const file = MemFile.create('bench');
    file.truncate(size);
    const t0 = process.hrtime.bigint();
    const ms = fn(file);
    const total = Number(process.hrtime.bigint() - t0) / 1e6;
    times.push([total, ms]);
    file.close();
  }
  times.sort((a, b) => a[0] - b[0]);
  const [total, detail] = times[Math.floor(rounds / 2)];
  console.log(`${label.padEnd(34)} median ${total.toFixed(1).padStart(7)} ms total${detail ? `, ${detail}` : ''}`);
}

function timed(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

console.log(`${mib} MiB fresh memfd, one write per ${PAGE}-byte page, median of ${rounds}`);
run('map, touch (faults on first touch)', (file) => {
  const m = file.map();
  const touch = timed(() => touchAll(m.bytes));
  m.unmap();
  return `touch ${touch.toFixed(1)} ms`;
});
run('map({ populate: true }), touch', (file) => {
  let m;
  const map = timed(() => { m = file.map({ populate: true }); });
  const touch = timed(() => touchAll(m.bytes));
  m.unmap();
  return `map ${map.toFixed(1)} ms, touch ${touch.toFixed(1)} ms`;
});
run("map, advise('populate-write'), touch", (file) => {
  const m = file.map();
  const adv = timed(() => m.advise('populate-write'));
  const touch = timed(() => touchAll(m.bytes));
  m.unmap();
  return `advise ${adv.toFixed(1)} ms, touch ${touch.toFixed(1)} ms`;
});
