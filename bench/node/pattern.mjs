// The data pattern shared by every hand-off method and by bench/c/common.h: byte i is REF[i % PERIOD],
// where REF[j] is the top byte of j * 0x9E3779B1 and PERIOD = 1 MiB + 4099 (odd, not a power of two, so a
// shifted, truncated or stale copy fails). Fill copies the block (Uint8Array#set = memcpy) and verify
// compares against it (Buffer.compare = memcmp): every byte is touched once each way, and the C limit
// does exactly the same with memcpy/memcmp, so the hand-off numbers measure transport, not JS loop speed.
import { readFileSync } from 'node:fs';

export const PERIOD = 1048576 + 4099;
export const REF = Buffer.allocUnsafeSlow(PERIOD);
for (let j = 0; j < PERIOD; j++) REF[j] = Math.imul(j, 0x9e3779b1) >>> 24;

/** Fills a Uint8Array (Buffer, mapping view) with the pattern. */
export function fill(bytes) {
  const size = bytes.byteLength;
  for (let off = 0; off < size; off += PERIOD) {
    const n = Math.min(PERIOD, size - off);
    bytes.set(n === PERIOD ? REF : REF.subarray(0, n), off);
  }
}

/** Number of mismatching blocks (0 = every byte verified). */
export function verify(bytes) {
  const size = bytes.byteLength;
  let bad = 0;
  for (let off = 0; off < size; off += PERIOD) {
    const n = Math.min(PERIOD, size - off);
    if (Buffer.compare(bytes.subarray(off, off + n), n === PERIOD ? REF : REF.subarray(0, n)) !== 0) bad++;
  }
  return bad;
}

/** A field of /proc/PID/smaps_rollup or /proc/PID/status in bytes, or -1. */
export function procBytes(pid, file, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'));
    return m ? Number(m[1]) * 1024 : -1;
  } catch {
    return -1;
  }
}
export const pssOf = (pid = 'self') => procBytes(pid, 'smaps_rollup', 'Pss');
export const hwmOf = (pid = 'self') => procBytes(pid, 'status', 'VmHWM');

export function parseSize(s) {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG]?)i?[bB]?$/.exec(String(s).trim());
  if (!m) throw new Error(`bad size ${s}`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
  return Math.round(Number(m[1]) * mult);
}

export function formatSize(n) {
  if (n >= 1024 ** 3 && n % 1024 ** 3 === 0) return `${n / 1024 ** 3} GiB`;
  if (n >= 1024 ** 2) return `${+(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
