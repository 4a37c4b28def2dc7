/**
 * The `memfd` command: which processes hold or map which memfds, how big they are, how they are sealed and
 * who shares them (`memfd ls`, `memfd show`, `memfd cat`). Usage, output and JSON schema: docs/cli.md.
 *
 * {@link runCli} is the whole command behind an injectable output, so tests can run it in-process; the
 * `memfd` executable (bin/memfd.mjs) only wires it to the real stdout, stderr and exit code.
 * @module
 */
import { closeSync, constants as fsConstants, readFileSync, readlinkSync, readSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sealsOf } from './seals.js';
import {
  describeProblem, errnoCode, isDenied, isVanished, openPeerFile, parseMaps, parseMemfdPath, readCommand,
  readFdInfo, scanMemfds, statIdentity,
} from './proc-scan.js';
import type { FdInfo, InaccessibleProcess, InodeInfo, MapRange, MemfdRow } from './proc-scan.js';

/** Exit codes of the `memfd` command (documented in docs/cli.md and `memfd --help`). */
export const ExitCode = {
  /** Success (an `ls` that finds nothing is a success too). */
  Ok: 0,
  /** The process, fd or mapping does not exist, or is not a memfd. */
  NotFound: 1,
  /** Bad command line. */
  Usage: 2,
  /** The kernel does not let this user inspect that process. */
  Denied: 3,
  /** Anything else went wrong (an unexpected system error). */
  Failure: 4,
} as const;

/** Where the command writes. `out` returns false once the reader has gone (EPIPE): stop writing, quietly. */
export interface CliIo {
  out(chunk: string | Uint8Array): boolean;
  err(text: string): void;
}

/** A failure with its exit code and a one-line message for stderr. */
class CliError extends Error {
  constructor(readonly exitCode: number, message: string) {
    super(message);
  }
}

const usage = (message: string, command?: string): CliError =>
  new CliError(ExitCode.Usage, `${message} (see 'memfd ${command ? command + ' ' : ''}--help')`);

const HELP: Record<string, string> = {
  main: `Usage: memfd <command> [options]

Shows the memfds (memfd_create files) of running processes: who holds or maps them, their size,
their seals and who shares them.

Commands:
  ls [--pid PID]... [--json]   one row per memfd a process holds (fd) or only maps
  show PID:FD | PID:map:ADDR   everything known about one memfd, with every holder and mapping
  cat PID:FD | PID:map:ADDR    its bytes on stdout

Options:
  -h, --help      this help (also: memfd <command> --help)
  -V, --version   the package version

Exit codes: 0 ok, 1 no such process, fd or mapping (or not a memfd), 2 usage error,
3 permission denied for that process, 4 other system error.
Permissions: without root you see only your own processes; see docs/cli.md.
`,
  ls: `Usage: memfd ls [--pid PID]... [--json]

One row per memfd that a process holds by fd, or only maps (FD "map"), sorted by PID then FD.
  PID, COMMAND   the process
  FD             the fd number, or "map" when the process only maps the file
  SIZE, ALLOC    file size and allocated memory (st_blocks * 512), 1024-based (4.0K, 256M)
  SEALS          seal names (seal|shrink|grow|write|future-write|exec), "none", "-" when the file
                 cannot be sealed (secretmem), "?[N]" when the kernel would not say: see footnote N
  SHARED         processes (that you may inspect) holding or mapping the same file (by inode)
  NAME           the memfd_create name (control characters escaped)

Options:
  --pid PID   only this process (repeatable); sharing is still counted over all processes
  --json      machine-readable output (schema: docs/cli.md)
  -h, --help  this help

Exit codes: 0 ok (also when nothing is found), 1 no such process, 2 usage error,
3 permission denied for a --pid process, 4 other system error.
`,
  show: `Usage: memfd show PID:FD [--json]
       memfd show PID:map:ADDR [--json]

Everything known about one memfd: name, inode, size, allocated bytes, mode, seals (names and bits),
the fd's flags and offset (PID:FD only), which processes hold it by fd and which map it (ranges and
permissions). ADDR is any hex address inside one of the process's mappings of the file (see the
"maps" field of 'memfd ls --json'), with or without 0x.

Options:
  --json      machine-readable output (schema: docs/cli.md)
  -h, --help  this help

Exit codes: 0 ok, 1 no such process, fd or mapping (or not a memfd), 2 usage error,
3 permission denied, 4 other system error.
`,
  cat: `Usage: memfd cat PID:FD
       memfd cat PID:map:ADDR

Writes the memfd's bytes to stdout, read through a fresh read-only open of /proc/PID/fd/FD (or
/proc/PID/map_files/RANGE, root only), so the process's own file offset is untouched. Stops quietly
when the reader goes away (memfd cat 1:3 | head).

Exit codes: 0 ok, 1 no such process, fd or mapping (or not a memfd), 2 usage error,
3 permission denied, 4 other system error.
`,
};

/**
 * Runs the `memfd` command with `argv` (without `node` and the script) and returns the exit code.
 * Never throws: every failure is one `memfd: ...` line on `io.err`.
 */
export function runCli(argv: readonly string[], io: CliIo = processIo()): number {
  try {
    return dispatch([...argv], io);
  } catch (e) {
    if (e instanceof CliError) {
      io.err(`memfd: ${e.message}\n`);
      return e.exitCode;
    }
    const code = errnoCode(e);
    io.err(`memfd: ${(e as Error)?.message ?? String(e)}\n`);
    if (isDenied(code)) return ExitCode.Denied;
    if (isVanished(code)) return ExitCode.NotFound;
    return ExitCode.Failure;
  }
}

function dispatch(argv: string[], io: CliIo): number {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    const topic = command === 'help' ? rest[0] : undefined;
    if (topic !== undefined && !(topic in HELP && topic !== 'main')) throw usage(`unknown command '${topic}'`);
    // Without any command the help is the error message: stderr, exit 2.
    if (command === undefined) return io.err(HELP.main!), ExitCode.Usage;
    io.out(HELP[topic ?? 'main']!);
    return ExitCode.Ok;
  }
  if (command === '-V' || command === '--version') {
    io.out(`${packageVersion()}\n`);
    return ExitCode.Ok;
  }
  switch (command) {
    case 'ls': return commandLs(rest, io);
    case 'show': return commandShow(rest, io);
    case 'cat': return commandCat(rest, io);
    default:
      throw usage(command.startsWith('-') ? `unknown option '${command}'` : `unknown command '${command}'`);
  }
}

function packageVersion(): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

type Parsed = { values: { pid?: string[]; json?: boolean; help?: boolean }; positionals: string[] };

function parse(command: string, args: string[], withPid: boolean, withJson: boolean): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  if (withPid) options.pid = { type: 'string', multiple: true };
  if (withJson) options.json = { type: 'boolean' };
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true }) as Parsed;
  } catch (e) {
    // parseArgs messages are multi-line and mention its own API; keep the first sentence.
    const message = String((e as Error).message).split('\n')[0]!.replace(/\. To specify a positional.*$/, '');
    throw usage(message.charAt(0).toLowerCase() + message.slice(1).replace(/\.$/, ''), command);
  }
}

function parsePid(text: string, command: string): number {
  if (!/^[1-9]\d{0,9}$/.test(text) || Number(text) > 0x3fffffff) throw usage(`'${text}' is not a process id`, command);
  return Number(text);
}

/** `memfd ls` */
function commandLs(args: string[], io: CliIo): number {
  const { values, positionals } = parse('ls', args, true, true);
  if (values.help) return io.out(HELP.ls!), ExitCode.Ok;
  if (positionals.length > 0) throw usage(`unexpected argument '${positionals[0]}'`, 'ls');
  const only = values.pid?.flatMap((p) => p.split(',')).map((p) => parsePid(p.trim(), 'ls'));
  for (const pid of only ?? []) {
    if (readCommand(pid) === null) throw new CliError(ExitCode.NotFound, `no such process: ${pid}`);
  }
  const scan = scanMemfds({ excludePid: process.pid, pids: only && new Set(only) });
  const { rows, inaccessible } = scan;
  // A process named by --pid that we may not inspect is an error, not an empty table.
  if (only && inaccessible.length > 0) throw deniedError(inaccessible[0]!.pid, inaccessible[0]!.code);
  io.out(values.json ? JSON.stringify(lsJson(rows, inaccessible), null, 2) + '\n' : lsTable(rows, inaccessible));
  return ExitCode.Ok;
}

function deniedError(pid: number, code: string): CliError {
  const command = readCommand(pid);
  return new CliError(ExitCode.Denied, `process ${pid}${command === null ? '' : ` (${printable(command)})`}: ` +
    `permission denied (${code}): ${runningAsRoot()
      ? 'refused even to root here: the process belongs to a parent user namespace (root in a container is not ' +
        'root over its host), or an LSM policy (Yama, SELinux, AppArmor) forbids it'
      : "inspecting another user's process (or a set-id or non-dumpable one) needs root or CAP_SYS_PTRACE"}`);
}

function runningAsRoot(): boolean {
  return process.geteuid?.() === 0;
}

/** The JSON of one row: field order and names are the documented schema (docs/cli.md). */
function rowJson(r: MemfdRow): Record<string, unknown> {
  return {
    pid: r.pid,
    command: r.command,
    fd: r.fd,
    kind: r.kind,
    name: r.name,
    dev: r.dev,
    inode: r.inode,
    size: r.info.size,
    allocated: r.info.allocated,
    seals: r.info.seals === null ? null : sealsOf(r.info.seals).toJSON(),
    sealBits: r.info.seals,
    sealsVia: r.info.sealsVia,
    unknown: r.info.problem,
    sharedBy: r.sharedBy,
    maps: r.maps,
  };
}

function lsJson(rows: MemfdRow[], inaccessible: InaccessibleProcess[]): unknown {
  return { version: 1, memfds: rows.map(rowJson), inaccessible };
}

/** `4.0K`, `256M`: 1024-based like `ls -h`, rounded up, one decimal below 10. */
export function humanSize(bytes: number): string {
  if (bytes < 1024) return String(bytes);
  const units = ['K', 'M', 'G', 'T', 'P', 'E'];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1024;
    unit++;
  } while (value >= 1024 && unit < units.length - 1);
  if (value < 10) {
    const tenths = Math.ceil(value * 10) / 10;
    if (tenths < 10) return `${tenths.toFixed(1)}${units[unit]}`;
    return `10${units[unit]}`;
  }
  const whole = Math.ceil(value);
  if (whole >= 1024 && unit < units.length - 1) return `1.0${units[unit + 1]}`;
  return `${whole}${units[unit]}`;
}

/**
 * Control characters, bidirectional overrides and backslashes escaped: a name chosen by another process
 * must not forge rows, move the cursor or reorder what the terminal shows.
 */
export function printable(text: string): string {
  return text.replace(/[\\\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\\') return '\\\\';
    if (c === '\n') return '\\n';
    if (c === '\t') return '\\t';
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}

/** Columns padded to their widest cell; numbers right-aligned like `ps`; the last column is not padded. */
export function alignTable(header: string[], rows: string[][], rightAligned: ReadonlySet<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => {
    if (rightAligned.has(i)) return c.padStart(widths[i]!);
    return i === cells.length - 1 ? c : c.padEnd(widths[i]!);
  }).join('  ').trimEnd() + '\n';
  return line(header) + rows.map(line).join('');
}

function sealsCell(info: InodeInfo, kind: MemfdRow['kind'], footnote: (text: string) => number): string {
  if (info.seals !== null) return sealsOf(info.seals).toString();
  if (kind === 'secretmem' && info.size !== null) return '-';
  const what = kind === 'secretmem' ? 'size' : info.size === null ? 'size and seals' : 'seals';
  const why = info.problem ? `${info.problem.code}: ${info.problem.reason}` : 'no source answered';
  const mark = `?[${footnote(`${what} unknown: ${why}`)}]`;
  return kind === 'secretmem' ? `-${mark}` : mark;
}

function lsTable(rows: MemfdRow[], inaccessible: InaccessibleProcess[]): string {
  const notes: string[] = [];
  const footnote = (text: string): number => {
    const i = notes.indexOf(text);
    if (i >= 0) return i + 1;
    notes.push(text);
    return notes.length;
  };
  const body = rows.map((r) => [
    String(r.pid),
    printable(r.command),
    r.fd === null ? 'map' : String(r.fd),
    r.info.size === null ? '?' : humanSize(r.info.size),
    r.info.allocated === null ? '?' : humanSize(r.info.allocated),
    sealsCell(r.info, r.kind, footnote),
    String(r.sharedBy),
    r.kind === 'secretmem' ? '[secretmem]' : printable(r.name),
  ]);
  let text = alignTable(['PID', 'COMMAND', 'FD', 'SIZE', 'ALLOC', 'SEALS', 'SHARED', 'NAME'], body, new Set([0, 2, 3, 4, 6]));
  const trailer = notes.map((n, i) => `[${i + 1}] ${n}`);
  if (inaccessible.length > 0) {
    const shown = inaccessible.slice(0, 8).map((p) => `${p.pid} (${printable(p.command)})`).join(', ');
    const more = inaccessible.length > 8 ? ` and ${inaccessible.length - 8} more` : '';
    trailer.push(`${inaccessible.length} process${inaccessible.length === 1 ? '' : 'es'} could not be inspected ` +
      `(${inaccessible[0]!.code}: ${runningAsRoot() ? 'refused even to root: a parent user namespace or an LSM policy' : 'not permitted to this user'}): ` +
      `${shown}${more}. SHARED counts only what could be inspected.`);
  }
  if (trailer.length > 0) text += '\n' + trailer.join('\n') + '\n';
  return text;
}

/** A `PID:FD` or `PID:map:ADDR` argument. */
export type Target = { pid: number; fd: number } | { pid: number; fd: null; address: bigint };

/** Parses `PID:FD` / `PID:map:ADDR`; throws a usage error otherwise. */
export function parseTarget(text: string | undefined, command: string): Target {
  if (text === undefined) throw usage('missing PID:FD', command);
  let m = /^(\d+):(\d+)$/.exec(text);
  if (m) {
    const fd = Number(m[2]);
    if (fd > 0x7fffffff) throw usage(`'${m[2]}' is not an fd number`, command);
    return { pid: parsePid(m[1]!, command), fd };
  }
  m = /^(\d+):map:(?:0x)?([0-9a-f]{1,16})$/i.exec(text);
  if (m) return { pid: parsePid(m[1]!, command), fd: null, address: BigInt('0x' + m[2]!) };
  throw usage(`'${text}' is not PID:FD or PID:map:ADDR`, command);
}

interface Located {
  target: Target;
  command: string;
  /** /proc path that names the file itself (fd link or map_files entry). */
  path: string;
  kind: MemfdRow['kind'];
  name: string;
  dev: string;
  inode: number;
}

/** Finds the file a target names, with one-line errors for every way it can fail. */
function locate(target: Target): Located {
  const { pid } = target;
  const command = readCommand(pid);
  if (command === null) throw new CliError(ExitCode.NotFound, `no such process: ${pid}`);
  if (target.fd !== null) {
    const path = `/proc/${pid}/fd/${target.fd}`;
    let link: string;
    try {
      link = readlinkSync(path);
    } catch (e) {
      const code = errnoCode(e);
      if (isDenied(code)) throw deniedError(pid, code!);
      if (readCommand(pid) === null) throw new CliError(ExitCode.NotFound, `no such process: ${pid}`);
      throw new CliError(ExitCode.NotFound, `process ${pid} (${printable(command)}) has no fd ${target.fd}`);
    }
    const parsed = parseMemfdPath(link);
    if (!parsed) throw new CliError(ExitCode.NotFound, `${pid}:${target.fd} is not a memfd (it is ${printable(link)})`);
    const stat = statOf(path, pid);
    return { target, command, path, ...parsed, ...stat };
  }
  let maps: string;
  try {
    maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch (e) {
    const code = errnoCode(e);
    if (isDenied(code)) throw deniedError(pid, code!);
    throw new CliError(ExitCode.NotFound, `no such process: ${pid}`);
  }
  const hit = parseMaps(maps).find((m) => BigInt('0x' + m.range.start) <= target.address && target.address < BigInt('0x' + m.range.end));
  if (!hit) {
    throw new CliError(ExitCode.NotFound,
      `process ${pid} (${printable(command)}) maps no memfd at 0x${target.address.toString(16)}`);
  }
  return {
    target, command, path: `/proc/${pid}/map_files/${hit.range.start}-${hit.range.end}`, kind: hit.kind,
    name: hit.name, dev: hit.dev, inode: hit.inode,
  };
}

function statOf(path: string, pid: number): { dev: string; inode: number } {
  try {
    return statIdentity(path);
  } catch (e) {
    const code = errnoCode(e);
    if (isDenied(code)) throw deniedError(pid, code!);
    throw new CliError(ExitCode.NotFound, `${path}: vanished`);
  }
}

const O_CLOEXEC = 0o2000000;
// O_LARGEFILE is missing from fs.constants and differs by architecture (arm64 moved it); 64-bit kernels set
// it on every open, so fdinfo always shows it.
const O_LARGEFILE = process.arch === 'arm64' ? 0o400000 : 0o100000;

/** `O_RDWR|O_LARGEFILE|O_CLOEXEC` for the flags of /proc/PID/fdinfo. */
export function openFlagNames(flags: number): string[] {
  const c = fsConstants;
  const names = [['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_ACCMODE'][flags & 3]!];
  const known: Array<[string, number | undefined]> = [
    ['O_APPEND', c.O_APPEND], ['O_NONBLOCK', c.O_NONBLOCK], ['O_SYNC', c.O_SYNC], ['O_DSYNC', c.O_DSYNC],
    ['O_DIRECT', c.O_DIRECT], ['O_LARGEFILE', O_LARGEFILE], ['O_NOATIME', c.O_NOATIME], ['O_CLOEXEC', O_CLOEXEC],
  ];
  let rest = flags & ~3;
  for (const [name, bit] of known) {
    if (bit && (rest & bit) === bit) {
      names.push(name);
      rest &= ~bit;
    }
  }
  if (rest) names.push(`0${rest.toString(8)}`);
  return names;
}

interface Holder { pid: number; command: string; fds: number[] }
interface Mapper { pid: number; command: string; maps: MapRange[] }

function holdersAndMappers(rows: MemfdRow[]): { holders: Holder[]; mappers: Mapper[] } {
  const holders: Holder[] = [];
  const mappers: Mapper[] = [];
  for (const r of rows) {
    if (r.fd !== null) {
      const h = holders.find((x) => x.pid === r.pid);
      if (h) h.fds.push(r.fd);
      else holders.push({ pid: r.pid, command: r.command, fds: [r.fd] });
    }
    // Every fd row of a process carries that process's mappings of the inode: list them once.
    if (r.maps.length > 0 && !mappers.some((m) => m.pid === r.pid)) mappers.push({ pid: r.pid, command: r.command, maps: r.maps });
  }
  return { holders, mappers };
}

function targetText(t: Target): string {
  return t.fd !== null ? `${t.pid}:${t.fd}` : `${t.pid}:map:${t.address.toString(16)}`;
}

function oneTarget(command: string, positionals: string[]): Target {
  if (positionals.length > 1) throw usage(`unexpected argument '${positionals[1]}'`, command);
  return parseTarget(positionals[0], command);
}

/** `memfd show` */
function commandShow(args: string[], io: CliIo): number {
  const { values, positionals } = parse('show', args, false, true);
  if (values.help) return io.out(HELP.show!), ExitCode.Ok;
  const target = oneTarget('show', positionals);
  const found = locate(target);
  const scan = scanMemfds({ excludePid: process.pid, file: found });
  const same = scan.rows;
  const self = same.find((r) => r.pid === target.pid && (target.fd === null || r.fd === target.fd));
  if (!self) throw new CliError(ExitCode.NotFound, `${targetText(target)} vanished while it was being inspected`);
  let fdinfo: FdInfo | null = null;
  if (target.fd !== null) {
    try {
      fdinfo = readFdInfo(target.pid, target.fd);
    } catch (e) {
      const code = errnoCode(e);
      if (isDenied(code)) throw deniedError(target.pid, code!);
      throw new CliError(ExitCode.NotFound, `${targetText(target)} vanished while it was being inspected`);
    }
  }
  const { holders, mappers } = holdersAndMappers(same);
  const inaccessible = scan.inaccessible.length;
  if (values.json) {
    const info = self.info;
    io.out(JSON.stringify({
      version: 1,
      pid: self.pid,
      command: self.command,
      fd: self.fd,
      kind: self.kind,
      name: self.name,
      dev: self.dev,
      inode: self.inode,
      size: info.size,
      allocated: info.allocated,
      mode: info.mode,
      uid: info.uid,
      gid: info.gid,
      hugetlb: info.hugetlb,
      seals: info.seals === null ? null : sealsOf(info.seals).toJSON(),
      sealBits: info.seals,
      sealsVia: info.sealsVia,
      unknown: info.problem,
      fdinfo: fdinfo && { ...fdinfo, flagNames: openFlagNames(fdinfo.flags) },
      sharedBy: self.sharedBy,
      holders,
      mappers,
      inaccessibleProcesses: inaccessible,
    }, null, 2) + '\n');
    return ExitCode.Ok;
  }
  io.out(showText(self, fdinfo, holders, mappers, inaccessible));
  return ExitCode.Ok;
}

function sizeText(n: number | null): string {
  return n === null ? '?' : n < 1024 ? `${n} bytes` : `${n} bytes (${humanSize(n)})`;
}

function showText(self: MemfdRow, fdinfo: FdInfo | null, holders: Holder[], mappers: Mapper[], inaccessible: number): string {
  const info = self.info;
  const where = self.fd === null ? `${self.pid}:map` : `${self.pid}:${self.fd}`;
  let seals: string;
  if (info.seals !== null) {
    seals = `${sealsOf(info.seals).toString()} (0x${info.seals.toString(16)}), read via ${info.sealsVia}`;
  } else if (self.kind === 'secretmem') {
    seals = '- (secretmem files cannot be sealed)';
  } else {
    seals = `? (${info.problem ? `${info.problem.code}: ${info.problem.reason}` : 'unknown'})`;
  }
  const fields: Array<[string, string]> = [
    ['memfd', `${where} (${printable(self.command)})`],
    ['name', self.kind === 'secretmem' ? '[secretmem]' : printable(self.name)],
    ['kind', self.kind + (info.hugetlb ? ' (hugetlb)' : '')],
    ['inode', `${self.inode} on dev ${self.dev}`],
    ['size', sizeText(info.size)],
    ['allocated', sizeText(info.allocated)],
    ['mode', info.mode === null ? '?' : `0${info.mode.toString(8).padStart(3, '0')}, uid ${info.uid}, gid ${info.gid}`],
    ['seals', seals],
  ];
  if (fdinfo) {
    fields.push(['fd', `pos ${fdinfo.pos}, flags 0${fdinfo.flags.toString(8)} (${openFlagNames(fdinfo.flags).join('|')}), mnt_id ${fdinfo.mntId}`]);
  }
  fields.push(['shared by', `${self.sharedBy} process${self.sharedBy === 1 ? '' : 'es'}` +
    (inaccessible > 0 ? ` (of those this user may inspect; ${inaccessible} could not be)` : '')]);
  const width = Math.max(...fields.map(([k]) => k.length));
  let text = fields.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join('');
  if (holders.length > 0) {
    text += '\nheld by:\n' + indent(alignTable(['PID', 'COMMAND', 'FD'],
      holders.map((h) => [String(h.pid), printable(h.command), h.fds.join(',')]), new Set([0])));
  }
  if (mappers.length > 0) {
    const lines = mappers.flatMap((m) => m.maps.map((r) =>
      [String(m.pid), printable(m.command), `${r.start}-${r.end}`, r.perms, String(r.offset)]));
    text += '\nmapped by:\n' + indent(alignTable(['PID', 'COMMAND', 'ADDRESS', 'PERMS', 'OFFSET'], lines, new Set([0, 4])));
  }
  return text;
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gm, '  ');
}

const CAT_CHUNK = 1 << 20;

/** `memfd cat` */
function commandCat(args: string[], io: CliIo): number {
  const { values, positionals } = parse('cat', args, false, false);
  if (values.help) return io.out(HELP.cat!), ExitCode.Ok;
  const target = oneTarget('cat', positionals);
  const found = locate(target);
  if (found.kind === 'secretmem') {
    throw new CliError(ExitCode.NotFound,
      `${targetText(target)} is a secretmem file: the kernel refuses read(2) on it, only its holder's mappings reach the memory`);
  }
  let fd: number;
  try {
    fd = openPeerFile(found.path, found);
  } catch (e) {
    const code = errnoCode(e);
    if (isDenied(code)) {
      if (target.fd === null) {
        throw new CliError(ExitCode.Denied, `${targetText(target)}: permission denied (${code}): ${describeProblem(code!, true)}`);
      }
      throw deniedError(target.pid, code!);
    }
    if (isVanished(code) || code === 'ESTALE') {
      throw new CliError(ExitCode.NotFound, `${targetText(target)} vanished while it was being opened`);
    }
    throw e;
  }
  try {
    const buffer = Buffer.allocUnsafe(CAT_CHUNK);
    // Positional reads of our own open file description: the process's file offset never moves.
    for (let position = 0; ;) {
      const n = readSync(fd, buffer, 0, buffer.length, position);
      if (n === 0) break;
      if (!io.out(buffer.subarray(0, n))) break;
      position += n;
    }
  } finally {
    closeSync(fd);
  }
  return ExitCode.Ok;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * The real stdout and stderr, written synchronously so the exit code is set only after the output is out.
 * A reader that went away (EPIPE, as in `memfd cat 1:3 | head`) ends the output quietly.
 */
export function processIo(): CliIo {
  let readerGone = false;
  return {
    out(chunk) {
      if (readerGone) return false;
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      for (let offset = 0; offset < bytes.length;) {
        try {
          offset += writeSync(1, bytes, offset, bytes.length - offset);
        } catch (e) {
          const code = errnoCode(e);
          if (code === 'EPIPE') {
            readerGone = true;
            return false;
          }
          // stdout may be a non-blocking pipe shared with a parent: wait for room instead of failing.
          if (code === 'EAGAIN') Atomics.wait(sleepCell, 0, 0, 1);
          else throw e;
        }
      }
      return true;
    },
    err(text) {
      try {
        writeSync(2, text);
      } catch { /* stderr is gone too: nothing left to tell */ }
    },
  };
}
