/**
 * Finds the memfds of every process from /proc, for the `memfd` command.
 *
 * Sources, and the kernel's rule for each (all checked per process, so one refusal never stops the scan):
 * - `/proc/PID/fd/N` (readlink, stat) and `/proc/PID/maps`: ptrace read access (same user, or root).
 * - Seals: a `pidfd_getfd` copy of the fd (ptrace *attach* access, Linux 5.6), else a read-only open of
 *   `/proc/PID/fd/N` (ptrace read access): both are the file itself, seals belong to the inode.
 * - A file a process only maps (no fd): `/proc/PID/map_files/RANGE`, which the kernel opens only for
 *   CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE. Otherwise size and seals come from another process's fd of the
 *   same inode, or stay unknown.
 * Processes and fds that vanish while we look are dropped: a row always describes a file that existed.
 * @module
 */
import { closeSync, constants, fstatSync, openSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { binding } from './binding.js';
import { SystemError } from './errors.js';

/** One mapping of a memfd, as /proc/PID/maps shows it. */
export interface MapRange {
  /** Hex start address, as in /proc/PID/maps (no `0x`). */
  start: string;
  /** Hex end address (exclusive). */
  end: string;
  /** `rw-s`: read, write, execute, shared or private. */
  perms: string;
  /** Offset into the file, in bytes. */
  offset: number;
}

/** What the kernel said about one inode, wherever we could ask. */
export interface InodeInfo {
  size: number | null;
  allocated: number | null;
  /** Permission bits (`st_mode & 0o7777`). */
  mode: number | null;
  uid: number | null;
  gid: number | null;
  hugetlb: boolean | null;
  /** Seal bits, or null when no source answered (see `problem`) or the file cannot be sealed (secretmem). */
  seals: number | null;
  /** Where the seals came from. */
  sealsVia: 'pidfd_getfd' | 'proc-fd' | 'map_files' | null;
  /** Why something is unknown: an errno code (EPERM, EACCES, ENOSYS, EINVAL) and what it means here. */
  problem: { code: string; reason: string } | null;
}

/** One row: a memfd a process holds by fd, or only maps (fd === null). */
export interface MemfdRow {
  pid: number;
  command: string;
  fd: number | null;
  kind: 'memfd' | 'secretmem';
  /** The memfd_create name (without `memfd:` and ` (deleted)`); '' for secretmem. */
  name: string;
  /** `major:minor` of the (internal) mount, as in /proc/PID/maps. */
  dev: string;
  inode: number;
  /** `${dev}:${inode}`: the identity of the file across processes. */
  key: string;
  /** This process's mappings of the file. */
  maps: MapRange[];
  info: InodeInfo;
  /** Processes (visible to us) that hold or map the same inode, this one included. */
  sharedBy: number;
}

/** A process whose fds or maps we may not read. */
export interface InaccessibleProcess {
  pid: number;
  command: string;
  code: string;
}

/** What {@link scanMemfds} found. */
export interface ScanResult {
  rows: MemfdRow[];
  inaccessible: InaccessibleProcess[];
}

const MEMFD_PREFIX = '/memfd:';
const SECRETMEM_PATH = '/secretmem';
const DELETED_SUFFIX = ' (deleted)';
const HUGETLBFS_MAGIC = 0x958458f6;
// O_NONBLOCK: between our readlink and our open the fd number may have been reused for a FIFO or a device,
// whose open would block or have side effects; O_NOCTTY for the same reason. The inode is checked after.
const PEEK_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

/** The errno code of a failed fs call or native call ('EACCES'), or undefined for anything else. */
export function errnoCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** Errors that mean "this process or this fd is gone", not "you may not look". */
export function isVanished(code: string | undefined): boolean {
  return code === 'ENOENT' || code === 'ESRCH' || code === 'EBADF';
}

/** Error codes that mean the kernel refused us, per process. */
export function isDenied(code: string | undefined): boolean {
  return code === 'EACCES' || code === 'EPERM';
}

/** Major and minor from a glibc-encoded dev_t (what stat returns). */
function devString(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/** Parses what readlink of an fd (or a maps path) says: a memfd, a secretmem file, or neither. */
export function parseMemfdPath(path: string): { kind: 'memfd' | 'secretmem'; name: string } | null {
  if (path.startsWith(MEMFD_PREFIX)) {
    const rest = path.slice(MEMFD_PREFIX.length);
    return { kind: 'memfd', name: rest.endsWith(DELETED_SUFFIX) ? rest.slice(0, -DELETED_SUFFIX.length) : rest };
  }
  if (path === SECRETMEM_PATH + DELETED_SUFFIX || path === SECRETMEM_PATH) return { kind: 'secretmem', name: '' };
  return null;
}

const MAPS_LINE = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+) +(.*)$/;

interface MapsEntry {
  range: MapRange;
  dev: string;
  inode: number;
  kind: 'memfd' | 'secretmem';
  name: string;
}

/** The memfd and secretmem lines of one process's maps. */
export function parseMaps(text: string): MapsEntry[] {
  const out: MapsEntry[] = [];
  for (const line of text.split('\n')) {
    const m = MAPS_LINE.exec(line);
    if (!m) continue;
    // The kernel escapes a newline in a path as \012 in maps only; readlink gives the raw name.
    const parsed = parseMemfdPath(m[8]!.replace(/\\012/g, '\n'));
    if (!parsed) continue;
    out.push({
      range: { start: m[1]!, end: m[2]!, perms: m[3]!, offset: parseInt(m[4]!, 16) },
      dev: `${parseInt(m[5]!, 16)}:${parseInt(m[6]!, 16)}`,
      inode: Number(m[7]),
      ...parsed,
    });
  }
  return out;
}

/** The process's command name (/proc/PID/comm, readable by anyone), or null when it is gone. */
export function readCommand(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').replace(/\n$/, '');
  } catch {
    return null;
  }
}

const PF_KTHREAD = 0x00200000;

/**
 * True for kernel threads: they hold no files, and listing their (unreadable) fd tables as "could not be
 * inspected" would only bury the processes that matter. /proc/PID/stat is readable by everyone.
 */
export function isKernelThread(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[6]) & PF_KTHREAD) !== 0;
  } catch {
    return false;
  }
}

/** Every numeric /proc entry: thread-group leaders, i.e. processes. */
export function listPids(): number[] {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).sort((a, b) => a - b);
}

interface FdStat {
  size: number;
  allocated: number;
  mode: number;
  uid: number;
  gid: number;
  dev: string;
  inode: number;
}

function fromStats(st: BigIntStats): FdStat {
  return {
    size: Number(st.size), allocated: Number(st.blocks) * 512, mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid), gid: Number(st.gid), dev: devString(st.dev), inode: Number(st.ino),
  };
}

/** Device and inode of the file a path names (stat follows /proc's magic links); throws the fs error. */
export function statIdentity(path: string): { dev: string; inode: number } {
  const st = statSync(path, { bigint: true });
  return { dev: devString(st.dev), inode: Number(st.ino) };
}

interface RawRow {
  pid: number;
  command: string;
  fd: number | null;
  kind: 'memfd' | 'secretmem';
  name: string;
  dev: string;
  inode: number;
  maps: MapRange[];
  stat: FdStat | null;
}

type ProcessScan = { rows: RawRow[] } | { denied: string } | null;

/** The memfds of one process; null when it vanished, `denied` when the kernel refused. */
function scanProcess(pid: number, command: string): ProcessScan {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch (e) {
    const code = errnoCode(e);
    if (isDenied(code)) return { denied: code! };
    return null;
  }
  const rows: RawRow[] = [];
  for (const entry of fds) {
    const fd = Number(entry);
    const path = `/proc/${pid}/fd/${fd}`;
    let link: string;
    try {
      link = readlinkSync(path);
    } catch (e) {
      if (isDenied(errnoCode(e))) return { denied: errnoCode(e)! };
      continue; // closed since readdir
    }
    const parsed = parseMemfdPath(link);
    if (!parsed) continue;
    let stat: FdStat;
    try {
      stat = fromStats(statSync(path, { bigint: true }));
    } catch (e) {
      if (isDenied(errnoCode(e))) return { denied: errnoCode(e)! };
      continue;
    }
    rows.push({ pid, command, fd, ...parsed, dev: stat.dev, inode: stat.inode, maps: [], stat });
  }
  let mapsText: string;
  try {
    mapsText = readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch (e) {
    const code = errnoCode(e);
    if (isDenied(code)) return { denied: code! };
    return null;
  }
  const mapOnly = new Map<string, RawRow>();
  for (const entry of parseMaps(mapsText)) {
    const key = `${entry.dev}:${entry.inode}`;
    const holders = rows.filter((r) => r.fd !== null && `${r.dev}:${r.inode}` === key);
    if (holders.length > 0) {
      for (const r of holders) r.maps.push(entry.range);
      continue;
    }
    let row = mapOnly.get(key);
    if (!row) {
      row = { pid, command, fd: null, kind: entry.kind, name: entry.name, dev: entry.dev, inode: entry.inode, maps: [], stat: null };
      mapOnly.set(key, row);
    }
    row.maps.push(entry.range);
  }
  rows.push(...mapOnly.values());
  return { rows };
}

const REASONS = {
  fdDenied: 'pidfd_getfd and /proc/PID/fd need ptrace access to the process: the same user (and not set-id), ' +
    'or root / CAP_SYS_PTRACE',
  mapDenied: 'the process only maps this file and holds no fd: reading it through /proc/PID/map_files needs ' +
    'CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE, and no process we may inspect holds an fd of it',
  noPidfd: 'pidfd_getfd needs Linux 5.6, and /proc/PID/fd could not be opened either',
  notSealable: 'secretmem files cannot be sealed',
  secretMapOnly: 'the process only maps this secretmem file: the kernel lets nobody else open it, size and ' +
    'allocation are known only through an fd',
} as const;

/** What an errno code means for a row that holds the file by fd, or only maps it. */
export function describeProblem(code: string, mapOnly: boolean): string {
  if (code === 'EINVAL') return REASONS.notSealable;
  if (isDenied(code)) return mapOnly ? REASONS.mapDenied : REASONS.fdDenied;
  if (code === 'ENOSYS' && !mapOnly) return REASONS.noPidfd;
  return `the kernel answered ${code}`;
}

/** Seals from F_GET_SEALS bits, or the reason there are none (secretmem answers EINVAL). */
function setSeals(info: InodeInfo, sealsOrNegErrno: number, via: NonNullable<InodeInfo['sealsVia']>, mapOnly: boolean): void {
  if (sealsOrNegErrno >= 0) {
    Object.assign(info, { seals: sealsOrNegErrno, sealsVia: via, problem: null });
    return;
  }
  const code = new SystemError(-sealsOrNegErrno, 'fcntl').code;
  info.problem = { code, reason: describeProblem(code, mapOnly) };
}

function emptyInfo(): InodeInfo {
  return { size: null, allocated: null, mode: null, uid: null, gid: null, hugetlb: null, seals: null, sealsVia: null, problem: null };
}

type ProbeResult = { ok: true } | { ok: false; code: string; vanished: boolean };

/** Reads seals (and stat) through a pidfd_getfd copy of the row's fd. */
function probeByPidfd(row: RawRow, info: InodeInfo): ProbeResult {
  let r: ReturnType<typeof binding.peerFdInfo>;
  try {
    r = binding.peerFdInfo(row.pid, row.fd!);
  } catch (e) {
    const code = errnoCode(e) ?? 'EIO';
    return { ok: false, code, vanished: isVanished(code) };
  }
  const [seals, dev, ino, mode, size, blocks, uid, gid, magic] = r;
  // The fd number may have been closed and reused since we read its link: then it is another file.
  if (devString(BigInt(dev)) !== row.dev || ino !== row.inode) return { ok: false, code: 'ESTALE', vanished: true };
  Object.assign(info, { size, allocated: blocks * 512, mode: mode & 0o7777, uid, gid });
  if (magic >= 0) info.hugetlb = magic === HUGETLBFS_MAGIC;
  setSeals(info, seals, 'pidfd_getfd', false);
  return { ok: true };
}

/** Reads seals through our own read-only open of a /proc path that names the file (fd or map_files). */
function probeByOpen(path: string, row: RawRow, info: InodeInfo, via: 'proc-fd' | 'map_files'): ProbeResult {
  let fd: number;
  try {
    fd = openSync(path, PEEK_FLAGS);
  } catch (e) {
    const code = errnoCode(e) ?? 'EIO';
    return { ok: false, code, vanished: isVanished(code) };
  }
  try {
    const st = fromStats(fstatSync(fd, { bigint: true }));
    if (st.dev !== row.dev || st.inode !== row.inode) return { ok: false, code: 'ESTALE', vanished: true };
    const [magic, , seals] = binding.identify(fd);
    Object.assign(info, { size: st.size, allocated: st.allocated, mode: st.mode, uid: st.uid, gid: st.gid });
    if (magic >= 0) info.hugetlb = magic === HUGETLBFS_MAGIC;
    setSeals(info, seals, via, row.fd === null);
    return { ok: true };
  } finally {
    closeSync(fd);
  }
}

/**
 * Asks the kernel about one inode through each row that names it, until one source answers. Rows whose fd
 * turned out to be gone are marked vanished. Seals and size belong to the inode, so one answer serves all.
 */
function probeInode(rows: RawRow[], vanished: Set<RawRow>): InodeInfo {
  const info = emptyInfo();
  const stat = rows.find((r) => r.stat !== null)?.stat;
  if (stat) Object.assign(info, { size: stat.size, allocated: stat.allocated, mode: stat.mode, uid: stat.uid, gid: stat.gid });
  let firstRefusal: string | null = null;
  const attempts: Array<[RawRow, () => ProbeResult]> = [];
  for (const row of rows) {
    if (row.fd !== null) attempts.push([row, () => probeByPidfd(row, info)]);
  }
  for (const row of rows) {
    if (row.fd !== null) attempts.push([row, () => probeByOpen(`/proc/${row.pid}/fd/${row.fd}`, row, info, 'proc-fd')]);
  }
  for (const row of rows) {
    if (row.fd === null) {
      const m = row.maps[0]!;
      attempts.push([row, () => probeByOpen(`/proc/${row.pid}/map_files/${m.start}-${m.end}`, row, info, 'map_files')]);
    }
  }
  for (const [row, attempt] of attempts) {
    if (vanished.has(row)) continue;
    const result = attempt();
    if (result.ok) return info;
    if (result.vanished) {
      vanished.add(row);
      continue;
    }
    // The first refusal explains the row best: pidfd_getfd's EPERM rather than a later fallback's EACCES.
    firstRefusal ??= result.code;
  }
  if (firstRefusal) {
    // Only map-only rows left to ask: their reason is about map_files, not ptrace.
    const mapOnly = rows.every((r) => r.fd === null || vanished.has(r));
    const reason = mapOnly && rows[0]!.kind === 'secretmem' ? REASONS.secretMapOnly : describeProblem(firstRefusal, mapOnly);
    info.problem = { code: firstRefusal, reason };
  }
  return info;
}

/** Filters of {@link scanMemfds}. */
export interface ScanOptions {
  /** Leave out this process (the command's own). */
  excludePid?: number;
  /** Only rows (and inaccessible processes) of these processes. */
  pids?: ReadonlySet<number>;
  /** Only rows of this file. */
  file?: { dev: string; inode: number };
}

/**
 * Scans every process, then asks the kernel about each wanted memfd inode once. Rows are sorted by pid, then
 * fd, map-only rows last within a process.
 */
export function scanMemfds(options: ScanOptions = {}): ScanResult {
  const raw: RawRow[] = [];
  const inaccessible: InaccessibleProcess[] = [];
  for (const pid of listPids()) {
    if (pid === options.excludePid || isKernelThread(pid)) continue;
    const command = readCommand(pid);
    if (command === null) continue;
    const scan = scanProcess(pid, command);
    if (scan === null) continue;
    if ('denied' in scan) inaccessible.push({ pid, command, code: scan.denied });
    else raw.push(...scan.rows);
  }
  const byInode = new Map<string, RawRow[]>();
  for (const row of raw) {
    const key = `${row.dev}:${row.inode}`;
    const list = byInode.get(key);
    if (list) list.push(row);
    else byInode.set(key, [row]);
  }
  // Every process is scanned whatever the filters, so that sharing counts all of them; only the files of
  // wanted rows are probed (pidfd_getfd is not free, and asks nothing of processes nobody asked about).
  const { pids, file } = options;
  const want = (r: RawRow): boolean =>
    (!pids || pids.has(r.pid)) && (!file || (r.dev === file.dev && r.inode === file.inode));
  const vanished = new Set<RawRow>();
  const infos = new Map<string, InodeInfo>();
  for (const [key, rows] of byInode) {
    if (rows.some(want)) infos.set(key, probeInode(rows, vanished));
  }

  const live = raw.filter((r) => !vanished.has(r));
  const sharers = new Map<string, Set<number>>();
  for (const row of live) {
    const key = `${row.dev}:${row.inode}`;
    let set = sharers.get(key);
    if (!set) sharers.set(key, (set = new Set()));
    set.add(row.pid);
  }
  const rows = live.filter(want).map((r): MemfdRow => {
    const key = `${r.dev}:${r.inode}`;
    return {
      pid: r.pid, command: r.command, fd: r.fd, kind: r.kind, name: r.name, dev: r.dev, inode: r.inode, key,
      maps: r.maps, info: infos.get(key)!, sharedBy: sharers.get(key)!.size,
    };
  });
  rows.sort((a, b) => a.pid - b.pid || (a.fd ?? Infinity) - (b.fd ?? Infinity) || a.inode - b.inode);
  return { rows, inaccessible: pids ? inaccessible.filter((p) => pids.has(p.pid)) : inaccessible };
}

/** Position, flags and mount id of one fd (/proc/PID/fdinfo/N). */
export interface FdInfo {
  pos: number;
  /** Open flags (octal in the file), e.g. 0o2100002 = O_RDWR|O_LARGEFILE|O_CLOEXEC. */
  flags: number;
  mntId: number;
}

/** Reads /proc/PID/fdinfo/FD; throws the fs error (ENOENT when gone, EACCES when refused). */
export function readFdInfo(pid: number, fd: number): FdInfo {
  const text = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
  const field = (name: string, radix: number): number => {
    const m = new RegExp(`^${name}:\\s+(\\S+)`, 'm').exec(text);
    return m ? parseInt(m[1]!, radix) : NaN;
  };
  return { pos: field('pos', 10), flags: field('flags', 8), mntId: field('mnt_id', 10) };
}

/** Opens a /proc path that names another process's file, read-only, for reading its bytes. */
export function openPeerFile(path: string, expect: { dev: string; inode: number }): number {
  const fd = openSync(path, PEEK_FLAGS);
  try {
    const st = fromStats(fstatSync(fd, { bigint: true }));
    if (st.dev !== expect.dev || st.inode !== expect.inode) {
      throw Object.assign(new Error('the file changed while it was being opened'), { code: 'ESTALE' });
    }
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}
