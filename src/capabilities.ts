/**
 * What this kernel supports, probed once with real syscalls and cached.
 * @module
 */
import { readFileSync, readdirSync } from 'node:fs';
import { release } from 'node:os';
import { binding } from './binding.js';
import { MFD, SEAL } from './constants.js';
import { isSystemError } from './errors.js';

/** Huge page sizes `memfd_create` can encode (MFD_HUGE_*), with their log2. */
export const HUGE_PAGE_SIZES = {
  '64KB': 16, '512KB': 19, '1MB': 20, '2MB': 21, '8MB': 23, '16MB': 24,
  '32MB': 25, '256MB': 28, '512MB': 29, '1GB': 30, '2GB': 31, '16GB': 34,
} as const;

/** A huge page size name, as in `MFD_HUGE_2MB`. */
export type HugePageSize = keyof typeof HUGE_PAGE_SIZES;

/** One huge page pool, from /sys/kernel/mm/hugepages. */
export interface HugePagePool {
  /** `'2MB'`, `'1GB'`... */
  size: string;
  bytes: number;
  /** Pages reserved for hugetlbfs (`nr_hugepages`). */
  total: number;
  /** Pages not yet in use. */
  free: number;
}

/** What the running kernel supports. Every field was measured, not assumed from the version. */
export interface Capabilities {
  /** `os.release()` */
  kernel: string;
  /** Base page size in bytes. */
  pageSize: number;
  /** `MFD_ALLOW_SEALING` (Linux 3.17). */
  sealing: boolean;
  /** `F_SEAL_FUTURE_WRITE` (Linux 5.1). */
  futureWriteSeal: boolean;
  /** `F_SEAL_EXEC` (Linux 6.3). */
  execSeal: boolean;
  /** `MFD_NOEXEC_SEAL` (Linux 6.3). Without it, memfds are made non-executable with fchmod instead. */
  noexecSeal: boolean;
  /** `MFD_EXEC` is known (Linux 6.3); false on older kernels, where every memfd is executable anyway. */
  execFlag: boolean;
  /** `vm.memfd_noexec` (0, 1 or 2), or null where the sysctl does not exist. */
  memfdNoexec: 0 | 1 | 2 | null;
  /** `MFD_HUGETLB` is accepted (hugetlbfs present). Using it still needs reserved pages: see hugePagePools. */
  hugeTLB: boolean;
  /** `MFD_HUGETLB` together with `MFD_ALLOW_SEALING` (Linux 4.16). */
  hugeTLBSealing: boolean;
  /** `memfd_secret(2)` works (Linux 5.14, enabled by default since 6.5). */
  memfdSecret: boolean;
  /** Huge page pools at the time of the first call (use {@link hugePagePools} for live numbers). */
  hugePagePools: HugePagePool[];
}

let cached: Capabilities | undefined;

function probeCreate(flags: number): boolean {
  try {
    const h = binding.memfdCreate('memfd-probe', flags);
    binding.handleClose(h);
    return true;
  } catch (e) {
    if (isSystemError(e, 'EINVAL') || isSystemError(e, 'ENOSYS') || isSystemError(e, 'ENOENT') || isSystemError(e, 'EPERM') ||
        isSystemError(e, 'EACCES')) {
      return isSystemError(e, 'EACCES'); // EACCES: the flag is known but forbidden by policy
    }
    throw e;
  }
}

function probeSeal(bits: number): boolean {
  const h = binding.memfdCreate('memfd-probe', MFD.CLOEXEC | MFD.ALLOW_SEALING);
  try {
    binding.addSeals(h, bits);
    return true;
  } catch (e) {
    if (isSystemError(e, 'EINVAL')) return false;
    throw e;
  } finally {
    binding.handleClose(h);
  }
}

function readNoexecSysctl(): 0 | 1 | 2 | null {
  try {
    const v = Number(readFileSync('/proc/sys/vm/memfd_noexec', 'utf8').trim());
    return v === 0 || v === 1 || v === 2 ? v : null;
  } catch {
    return null;
  }
}

/** Live view of the huge page pools. */
export function hugePagePools(): HugePagePool[] {
  const pools: HugePagePool[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/sys/kernel/mm/hugepages');
  } catch {
    return pools;
  }
  for (const dir of entries) {
    const m = /^hugepages-(\d+)kB$/.exec(dir);
    if (!m) continue;
    const bytes = Number(m[1]) * 1024;
    pools.push({
      size: hugePageSizeName(bytes), bytes,
      total: readPool(bytes, 'nr_hugepages') || 0, free: readPool(bytes, 'free_hugepages') || 0,
    });
  }
  return pools.sort((a, b) => a.bytes - b.bytes);
}

/** Where the pool of `pageBytes` pages lives in sysfs. */
function poolDir(pageBytes: number): string {
  return `/sys/kernel/mm/hugepages/hugepages-${pageBytes / 1024}kB`;
}

/** A number from the pool's sysfs directory; NaN when there is no such pool (or file). */
function readPool(pageBytes: number, file: string): number {
  try { return Number(readFileSync(`${poolDir(pageBytes)}/${file}`, 'utf8').trim()); } catch { return NaN; }
}

/** `2097152` -> `'2MB'`: the spelling of the hugeTLB option and of {@link HugePagePool.size}. */
export function hugePageSizeName(bytes: number): string {
  const kb = bytes / 1024;
  return kb >= 1024 * 1024 ? `${kb / 1024 / 1024}GB` : kb >= 1024 ? `${kb / 1024}MB` : `${kb}KB`;
}

/**
 * @internal The hint for a hugeTLB allocation or mapping the kernel refused (ENOMEM/ENOSPC), with the
 * pool's numbers: what `bytes` needs (0: not known) against the pages that are free and not already
 * promised to other mappings (`free_hugepages - resv_hugepages`).
 */
export function hugePageShortage(pageBytes: number, bytes: number): string {
  const size = hugePageSizeName(pageBytes), dir = poolDir(pageBytes);
  const total = readPool(pageBytes, 'nr_hugepages');
  if (Number.isNaN(total)) return `this machine has no pool of ${size} huge pages (${dir} does not exist)`;
  const reserve = `(as root): echo N > ${dir}/nr_hugepages`;
  if (total === 0) return `no ${size} huge pages are reserved on this machine; reserve some ${reserve}`;
  const free = readPool(pageBytes, 'free_hugepages') || 0, promised = readPool(pageBytes, 'resv_hugepages') || 0;
  const available = Math.max(0, free - promised);
  // Pages the file already holds are not reserved again, hence "up to".
  const needs = bytes > 0 ? `this needs up to ${Math.ceil(bytes / pageBytes)}, and ` : '';
  return `not enough free ${size} huge pages: ${needs}${available} of the ${total} in the pool are free and not ` +
    `promised to other mappings; reserve more ${reserve}`;
}

/** What this kernel supports (probed once per process, then cached). */
export function capabilities(): Readonly<Capabilities> {
  if (cached) return cached;
  let memfdSecret = false;
  try {
    binding.handleClose(binding.memfdSecret(0));
    memfdSecret = true;
  } catch (e) {
    if (!(e instanceof Error)) throw e;
  }
  cached = Object.freeze({
    kernel: release(),
    pageSize: binding.pageSize(),
    sealing: probeCreate(MFD.CLOEXEC | MFD.ALLOW_SEALING),
    futureWriteSeal: probeSeal(SEAL.FUTURE_WRITE),
    execSeal: probeSeal(SEAL.EXEC),
    noexecSeal: probeCreate(MFD.CLOEXEC | MFD.ALLOW_SEALING | MFD.NOEXEC_SEAL),
    execFlag: probeCreate(MFD.CLOEXEC | MFD.EXEC),
    memfdNoexec: readNoexecSysctl(),
    hugeTLB: probeCreate(MFD.CLOEXEC | MFD.HUGETLB),
    hugeTLBSealing: probeCreate(MFD.CLOEXEC | MFD.HUGETLB | MFD.ALLOW_SEALING),
    memfdSecret,
    hugePagePools: hugePagePools(),
  });
  return cached;
}
