/**
 * How much memory a request may charge before the kernel's answer stops being an error.
 *
 * A memfd (tmpfs without a size limit) never answers ENOSPC for lack of RAM: `fallocate` of a terabyte
 * or pre-faulting a huge sparse mapping charges pages until the OOM killer ends the process, or another
 * one. So the requests that charge memory in one call are checked here first, against what the machine
 * and this process's cgroup can still give. Locked memory (RLIMIT_MEMLOCK) is explained here too.
 * Internal to the library.
 * @module
 */
import { readFileSync } from 'node:fs';
import { SystemError } from './errors.js';

const ENOMEM = 12;

function readNumber(path: string): number | undefined {
  try {
    const text = readFileSync(path, 'utf8').trim();
    if (text === 'max') return undefined;
    const n = Number(text);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Bytes this process can still charge: MemAvailable + SwapFree, capped by its cgroup v2 limit. */
export function availableMemory(): number {
  let available = Infinity;
  try {
    const info = readFileSync('/proc/meminfo', 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(info)?.[1] ?? 0) * 1024;
    available = field('MemAvailable') + field('SwapFree');
  } catch { /* no /proc: no check */ }
  try {
    const line = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
    if (line) {
      const dir = `/sys/fs/cgroup${line.slice(3)}`;
      const max = readNumber(`${dir}/memory.max`);
      const current = readNumber(`${dir}/memory.current`);
      if (max !== undefined && current !== undefined) available = Math.min(available, Math.max(0, max - current));
    }
  } catch { /* cgroup v1 or none */ }
  return available;
}

function human(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
  return `${i === 0 ? bytes : bytes.toFixed(1)} ${units[i]}`;
}

/** Throws ENOMEM (before the syscall) when charging `bytes` more would exceed what is available. */
export function assertMemoryFor(bytes: number, syscall: string, what: string): void {
  if (bytes < 64 * 1024 * 1024) return; // small requests are never the problem; skip reading /proc
  const available = availableMemory();
  if (bytes <= available) return;
  throw new SystemError(ENOMEM, syscall,
    `refused before the call: ${what} would charge ${human(bytes)}, and only ${human(available)} is available ` +
    '(MemAvailable + SwapFree, within this cgroup\'s memory.max). Memory files have no size limit of their own, ' +
    'so the kernel would not fail: the OOM killer would end this process or another one');
}

/** `Max locked memory` of this process, for error messages. */
export function memlockLimit(): string {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max locked memory'));
    const soft = line?.slice('Max locked memory'.length).trim().split(/\s+/)[0];
    if (soft === 'unlimited') return 'unlimited';
    if (soft !== undefined && /^\d+$/.test(soft)) {
      const n = Number(soft);
      return n >= 2 ** 20 ? `${n / 2 ** 20} MiB (${n} bytes)` : `${n} bytes`;
    }
  } catch { /* no /proc */ }
  return 'unknown';
}

/** Adds the RLIMIT_MEMLOCK explanation to a refusal of locked memory (mlock, memfd_secret). */
export function explainMemlock(e: unknown): unknown {
  if (e instanceof SystemError && !e.hint && (e.code === 'ENOMEM' || e.code === 'EAGAIN' || e.code === 'EPERM')) {
    return e.withHint(`locked memory is limited by RLIMIT_MEMLOCK, currently ${memlockLimit()} for this process ` +
      '(raise it with `ulimit -l`, LimitMEMLOCK= in systemd, or CAP_IPC_LOCK)');
  }
  return e;
}
