/**
 * {@link MemFile}: an anonymous memory file from `memfd_create(2)`, with seals.
 * @module
 */
import { constants as bufferConstants } from 'node:buffer';
import { fstatSync, readFileSync, readlinkSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { binding, type NativeHandle } from './binding.js';
import { HUGE_PAGE_SIZES, hugePageShortage, hugePageSizeName, type HugePageSize } from './capabilities.js';
import { FALLOC, FS_MAGIC, MFD, OPEN, STAT } from './constants.js';
import { SystemError, invalidArgType, invalidArgValue, isSystemError, outOfRange, stateError } from './errors.js';
import { FROZEN, Seal, Seals, sealBits, sealsOf, type SealsLike } from './seals.js';
import { O_CLOEXEC, assertShrinkKeepsMappings, mapFile, type MapOptions, type Mapping, type MappableFile } from './mapping.js';
import { assertMemoryFor, explainMemlock } from './memory.js';
import { markUncloneable } from './uncloneable.js';
import { ResourceKind, warnClosedByGc, warnFdNotOurs } from './warnings.js';
import {
  toBool, toBytes, toFd, toInt, toOptions, toPosition, toSize, toWritableBytes, type BinaryLike,
} from './validate.js';

/** Options of {@link MemFile.create}. */
export interface CreateOptions {
  /**
   * Allow seals to be added later (`MFD_ALLOW_SEALING`). Default `true`. With `false` the file starts with
   * `Seal.Seal`, so no seal can ever be added (even where `MFD_NOEXEC_SEAL` would have allowed it).
   */
  allowSealing?: boolean;
  /** Close the fd in programs started with exec (`MFD_CLOEXEC`). Default `true`: fds are passed explicitly. */
  cloexec?: boolean;
  /**
   * Default `false`: the file can never be executed (`MFD_NOEXEC_SEAL` on Linux >= 6.3, which also adds
   * `Seal.Exec`; on older kernels the executable bits are cleared with fchmod). `true` asks for an
   * executable file (`MFD_EXEC`), which `vm.memfd_noexec = 2` forbids.
   */
  exec?: boolean;
  /**
   * Back the file with huge pages (`MFD_HUGETLB`): `true` for the default huge page size, or a size such
   * as `'2MB'` or `'1GB'`. Needs pages reserved in /proc/sys/vm/nr_hugepages; sizes must be multiples of
   * the page size, and the contents are reached by mapping (hugetlbfs has no write(2)).
   */
  hugeTLB?: boolean | HugePageSize;
}

/** Options of {@link MemFile.fromFd}. */
export interface FromFdOptions {
  /** Seals the file must already have, or the call throws `ERR_MEMFD_MISSING_SEALS` (and leaves the fd open). */
  requireSeals?: SealsLike;
}

/** Options of {@link MemFile.from}. */
export interface FromOptions {
  /** Debug name, shown as `/memfd:NAME` in /proc/PID/fd. Default `'memfd'`. */
  name?: string;
  /** Seals to add after writing: `true` (default) for Seal | Shrink | Grow | Write, `false` for none. */
  seal?: boolean | SealsLike;
  /** Creation options other than sealing. */
  cloexec?: boolean;
  exec?: boolean;
}

/** Where a MemFile's fd came from; decides how much it may trust peers (see the safety model). */
export type MemFileOrigin = 'created' | 'adopted' | 'reopened' | 'secret';

/** Positional I/O options, as in Node's `fs.read`/`fs.write`. */
export interface IoOptions {
  /** Where in the buffer to start. Default 0. */
  offset?: number;
  /** How many bytes. Default: the rest of the buffer. */
  length?: number;
  /** File position; `null`/`undefined` use (and advance) the current file position. */
  position?: number | bigint | null;
}

/** `fstat(2)` of a MemFile; sizes and times are numbers (milliseconds for times). */
export class MemFileStats {
  dev: number; ino: number; mode: number; nlink: number; uid: number; gid: number; rdev: number;
  size: number; blksize: number; blocks: number;
  atimeMs: number; mtimeMs: number; ctimeMs: number; birthtimeMs: number;
  /** @internal */
  constructor(v: Float64Array) {
    [this.dev, this.ino, this.mode, this.nlink, this.uid, this.gid, this.rdev, this.size, this.blksize, this.blocks,
      this.atimeMs, this.mtimeMs, this.ctimeMs, this.birthtimeMs] = v as unknown as number[];
  }
  get atime(): Date { return new Date(this.atimeMs); }
  get mtime(): Date { return new Date(this.mtimeMs); }
  get ctime(): Date { return new Date(this.ctimeMs); }
  /** Bytes of memory actually charged (512-byte blocks, as stat reports). */
  get allocatedBytes(): number { return this.blocks * 512; }
  isFile(): boolean { return (this.mode & 0o170000) === 0o100000; }
  isDirectory(): boolean { return false; }
  isSymbolicLink(): boolean { return false; }
}

/** Options of {@link MemFile.createReadStream}. */
export interface ReadStreamOptions {
  /** First byte to read. Default 0. */
  start?: number;
  /** Last byte to read, inclusive (as in fs.createReadStream). Default: until the end of the file. */
  end?: number;
  highWaterMark?: number;
}

/** Options of {@link MemFile.createWriteStream}. */
export interface WriteStreamOptions {
  /** First byte to write. Default: the current file position. */
  start?: number;
  highWaterMark?: number;
}

/** Options of {@link MemFile.allocate}. */
export interface AllocateOptions {
  /** Reserve memory without changing the size (`FALLOC_FL_KEEP_SIZE`). Default false. */
  keepSize?: boolean;
}

const FALLOC_FL_KEEP_SIZE = FALLOC.KEEP_SIZE;
const FALLOC_FL_PUNCH_HOLE = FALLOC.PUNCH_HOLE;
const O_RDONLY = OPEN.RDONLY, O_RDWR = OPEN.RDWR, O_ACCMODE = OPEN.ACCMODE;
const TMPFS_MAGIC = FS_MAGIC.TMPFS;
const HUGETLBFS_MAGIC = FS_MAGIC.HUGETLBFS;
const MAX_NAME_BYTES = 249;
const STAT_FIELDS = STAT.FIELDS;

/** The largest Buffer this Node can make (4 GiB on Node 20, 2^53 - 1 from Node 22). */
const kMaxLength = bufferConstants.MAX_LENGTH;

function fileTooLarge(size: number) {
  const e = outOfRange('file size', `<= ${kMaxLength} bytes (buffer.constants.MAX_LENGTH) to fit in one Buffer; ` +
    'map the file in windows, or read it with positional reads or a stream', size);
  Object.defineProperty(e, 'code', { value: 'ERR_FS_FILE_TOO_LARGE' });
  return e;
}

/** Set to false after the first EINVAL from MFD_NOEXEC_SEAL/MFD_EXEC (kernel older than 6.3). */
let kernelKnowsExecFlags = true;

/** @internal Fields shared with the mapping module. */
export interface MemFileInternals {
  handle: NativeHandle;
  origin: MemFileOrigin;
  hugePageBytes: number;
  /** A reopen (or a dup of one) of a file this process created: as trusted as the original when mapped. */
  ownReopen?: true;
}
// Set by MemFile's static block: reads the private field. (A WeakMap keyed by MemFile cost ~2 µs per
// create() in GC ephemeron work, a third of the whole create+close; a private field costs nothing.)
let internalsOfFile: (file: unknown) => MemFileInternals | undefined;
/** @internal */
export function fileInternals(file: MemFile): MemFileInternals {
  const i = internalsOfFile(file);
  if (!i) throw invalidArgType('file', 'a MemFile', file);
  return i;
}

/**
 * The GC safety net of MemFiles: a MemFile's native handle is a plain number (see native/handle.c), so a
 * forgotten file is closed from here, once (the native side reports MEMFD_CLOSED_BY_GC). Cheaper than a
 * Node-API finalizer per file. close() and releaseFd() drop the entry, so a callback only ever carries the
 * number of a file that still owns it.
 */
const forgottenFiles = new FinalizationRegistry<NativeHandle>((handle) => {
  // Named here, because the fd a notice shows may be the library's private one, which the program never
  // saw. Read through the private fd before the release closes it (a handed-out number may have been
  // closed by hand and reused). The native notice the release posts is the same (code, kind): not shown twice.
  const name = memfdName(binding.handleOwnFd(handle));
  const reported = binding.handleRelease(handle);
  if (reported >= 0) warnClosedByGc(ResourceKind.File, reported, name);
});

/** The `memfd_create` name of our open fd `fd` (from /proc/self/fd), or undefined. */
function memfdName(fd: number): string | undefined {
  if (fd < 0) return undefined;
  try {
    return /^\/memfd:(.*?)(?: \(deleted\))?$/s.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
  } catch {
    return undefined; // no /proc: the fd alone
  }
}

/**
 * Registration is deferred to the end of the current job: a registry entry (a weak cell keyed for
 * unregistration) costs about as much as a syscall, and most files that are closed at all are closed in
 * the job that made them (create, fill, send, close). Until then `unregistered` holds the file strongly,
 * so a file dropped meanwhile is still registered, and collected, later. A file closed first is skipped.
 */
let unregistered: MemFile[] = [];
let registerScheduled = false;
const REGISTER_NOW_AT = 1024; // a long synchronous loop of opens does not pile up entries

function registerPending(): void {
  registerScheduled = false;
  const files = unregistered;
  unregistered = [];
  for (const file of files) registerFile(file);
}
let registerFile: (file: MemFile) => void; // set by MemFile's static block (reads private fields)

function validateName(name: unknown): string {
  if (typeof name !== 'string') throw invalidArgType('name', 'of type string', name);
  if (name.includes('\0')) throw invalidArgValue('name', name, 'must be a string without null bytes');
  // A UTF-16 unit is at most 3 bytes of UTF-8: short names need no count (create() is a hot path).
  const bytes = name.length * 3 <= MAX_NAME_BYTES ? 0 : Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_NAME_BYTES) throw outOfRange('name', `at most ${MAX_NAME_BYTES} bytes in UTF-8`, `${bytes} bytes`);
  return name;
}

let defaultHugePage: number | undefined;
/** The kernel's default huge page size (fixed at boot): read once. */
function defaultHugePageBytes(): number {
  if (defaultHugePage === undefined) {
    defaultHugePage = 2 * 1024 * 1024; // the x86-64 default, if /proc cannot tell
    try {
      const m = /Hugepagesize:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
      if (m) defaultHugePage = Number(m[1]) * 1024;
    } catch { /* keep the default */ }
  }
  return defaultHugePage;
}

const NO_OPTIONS: Readonly<CreateOptions> = Object.freeze({});
const NO_HUGE_PAGES = Object.freeze({ flags: 0, bytes: 0 });

function hugePageFlags(option: unknown): { flags: number; bytes: number } {
  if (option === undefined || option === false) return NO_HUGE_PAGES;
  if (option === true) return { flags: MFD.HUGETLB, bytes: defaultHugePageBytes() };
  if (typeof option !== 'string') throw invalidArgType('options.hugeTLB', 'a boolean or a huge page size string', option);
  const log2 = (HUGE_PAGE_SIZES as Record<string, number>)[option];
  if (log2 === undefined) {
    throw invalidArgValue('options.hugeTLB', option, `must be one of ${Object.keys(HUGE_PAGE_SIZES).join(', ')}`);
  }
  return { flags: (MFD.HUGETLB | (log2 << MFD.HUGE_SHIFT)) >>> 0, bytes: 2 ** log2 };
}

function hugeHint(e: SystemError, pageBytes: number): SystemError {
  const size = hugePageSizeName(pageBytes);
  switch (e.code) {
    case 'EINVAL':
      return e.withHint(`hugeTLB files take sizes and offsets in multiples of the huge page size (${size}), and this page size must be supported by the CPU`);
    case 'ENOMEM': case 'ENOSPC':
      // How many pages the call needed is not known here (allocate() may find some already in the file).
      return e.withHint(hugePageShortage(pageBytes, 0));
    case 'ENOENT': case 'ENOSYS': case 'EPERM': case 'ENODEV':
      return e.withHint(`hugetlbfs is not available for ${size} pages on this kernel`);
    default:
      return e;
  }
}

function sealsOfHandle(handle: NativeHandle): number {
  try { return binding.getSeals(handle); } catch { return 0; }
}

/** Counts writable shared mappings of an inode in /proc/self/maps (for the EBUSY message). */
export function countWritableSharedMappings(ino: number): number {
  let count = 0;
  try {
    for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const f = line.split(/\s+/, 6);
      if (f.length >= 5 && f[1]!.startsWith('rw') && f[1]![3] === 's' && Number(f[4]) === ino) count++;
    }
  } catch { /* /proc not mounted: the count is unknown */ }
  return count;
}

/**
 * An anonymous memory file: a file in RAM with no path, created by `memfd_create(2)`.
 *
 * It behaves like a regular file (read, write, truncate, stat, map) and can be sealed so that nobody,
 * in any process, can change or shrink it. Close it with {@link MemFile.close} or `using`; a MemFile that
 * is garbage-collected without close has its fd closed exactly once. After close every method throws
 * `ERR_MEMFD_CLOSED`, even if the kernel has given the same fd number to another file.
 *
 * A MemFile cannot be posted to a Worker (`DataCloneError` on Node >= 22.10, an empty `{}` before):
 * post `file.dup().releaseFd()` and adopt it there with {@link MemFile.fromFd}.
 */
export class MemFile implements Disposable {
  #handle: NativeHandle;
  /**
   * The private fd the handle works on: for synchronous fast paths only, never shown (native/handle.h).
   * Read from the handle on first use (-1 until then): most files never need it.
   */
  #privateFd = -1;
  /** The number users see, made on first use of `fd`; -1 until then. */
  #shownFd = -1;
  #closed = false;
  #registered = false;
  readonly #name: string;
  readonly #origin: MemFileOrigin;
  readonly #internals: MemFileInternals;
  #mappableCache: MappableFile | undefined;

  static {
    registerFile = (file) => {
      if (file.#closed || file.#registered) return;
      file.#registered = true;
      forgottenFiles.register(file, file.#handle, file);
    };
    internalsOfFile = (file) => (file !== null && typeof file === 'object' && #internals in file ? file.#internals : undefined);
  }

  /** @internal use {@link MemFile.create}, {@link MemFile.from} or {@link MemFile.fromFd}. */
  constructor(handle: NativeHandle, name: string, origin: MemFileOrigin, hugePageBytes = 0) {
    if (!internalsToken.allowed) throw new TypeError('Illegal constructor: use MemFile.create(), MemFile.from() or MemFile.fromFd()');
    this.#handle = handle;
    this.#name = name;
    this.#origin = origin;
    this.#internals = { handle, origin, hugePageBytes };
    if (unregistered.push(this) >= REGISTER_NOW_AT) registerPending();
    else if (!registerScheduled) {
      registerScheduled = true;
      queueMicrotask(registerPending);
    }
    markUncloneable(this);
  }

  /**
   * Creates a memory file. `name` is for debugging only (it shows as `/memfd:NAME (deleted)` in
   * /proc/PID/fd); at most 249 bytes of UTF-8, no NUL.
   *
   * Defaults: sealing allowed, close-on-exec, not executable (and sealed so: `Seal.Exec` on Linux >= 6.3).
   */
  static create(name: string = 'memfd', options?: CreateOptions): MemFile {
    validateName(name);
    const opts = options === undefined ? NO_OPTIONS : toOptions<CreateOptions>(options);
    const allowSealing = toBool(opts.allowSealing, 'options.allowSealing', true);
    const cloexec = toBool(opts.cloexec, 'options.cloexec', true);
    const exec = toBool(opts.exec, 'options.exec', false);
    const huge = hugePageFlags(opts.hugeTLB);

    let flags = huge.flags | (cloexec ? MFD.CLOEXEC : 0) | (allowSealing ? MFD.ALLOW_SEALING : 0);
    const execFlag = exec ? MFD.EXEC : MFD.NOEXEC_SEAL;
    let handle: NativeHandle;
    let usedExecFlag = kernelKnowsExecFlags;
    try {
      try {
        handle = binding.memfdCreate(name, (flags | (usedExecFlag ? execFlag : 0)) >>> 0);
      } catch (e) {
        // Kernels before 6.3 reject MFD_EXEC/MFD_NOEXEC_SEAL with EINVAL: retry without, as systemd does.
        if (!usedExecFlag || !isSystemError(e, 'EINVAL')) throw e;
        handle = binding.memfdCreate(name, flags >>> 0);
        usedExecFlag = false;
        kernelKnowsExecFlags = false;
      }
    } catch (e) {
      if (!(e instanceof SystemError)) throw e;
      if (e.code === 'EACCES' && exec) {
        throw e.withHint('vm.memfd_noexec = 2 on this system forbids executable memfds (exec: true); ' +
          'only non-executable memfds can be created here');
      }
      if (e.code === 'EACCES') {
        throw e.withHint('vm.memfd_noexec = 2 requires MFD_NOEXEC_SEAL, which this kernel rejected');
      }
      if (huge.flags) throw hugeHint(e, huge.bytes);
      if (e.code === 'EMFILE') throw e.withHint('this process has too many open files (ulimit -n); close some MemFiles');
      throw e;
    }
    try {
      if (!exec && !usedExecFlag) {
        // No MFD_NOEXEC_SEAL on this kernel: clear the executable bits so that execve refuses the file.
        binding.fchmod(handle, 0o666);
      }
      if (!allowSealing && !exec && usedExecFlag) {
        // MFD_NOEXEC_SEAL implies MFD_ALLOW_SEALING; honour allowSealing: false by sealing the seals.
        binding.addSeals(handle, Seal.Seal);
      }
    } catch (e) {
      binding.handleClose(handle);
      throw e;
    }
    return construct(handle, name, 'created', huge.bytes);
  }

  /**
   * Creates a memfd, writes `data` and seals it (by default Seal | Shrink | Grow | Write), all in one
   * call: the usual way to make an immutable buffer to hand to another process.
   */
  static from(data: BinaryLike, options?: FromOptions): MemFile {
    const opts = toOptions<FromOptions>(options);
    const bytes = toBytes(data, 'data');
    const sealOpt = opts.seal ?? true;
    const seals = sealOpt === true ? FROZEN : sealOpt === false ? 0 : sealBits(sealOpt, 'options.seal');
    const createOpts: CreateOptions = { allowSealing: true };
    if (opts.cloexec !== undefined) createOpts.cloexec = opts.cloexec;
    if (opts.exec !== undefined) createOpts.exec = opts.exec;
    const file = MemFile.create(opts.name ?? 'memfd', createOpts);
    try {
      const length = bytes.byteLength;
      if (length > 0) {
        // Reserve the memory first: one allocation instead of growth on every page, and ENOMEM up front.
        assertMemoryFor(length, 'fallocate', `MemFile.from() of ${length} bytes`);
        binding.allocate(file.#handle, 0, length, 0);
        const written = binding.writeSync(file.#handle, bytes, 0, length, 0);
        if (written !== length) throw new SystemError(28, 'pwrite');
      }
      if (seals) file.addSeals(seals);
      return file;
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /**
   * Adopts an fd that refers to a memfd (inherited, received over a socket...). On success the MemFile
   * owns the fd and closes it; on failure the fd is left open and untouched, and still belongs to the caller.
   *
   * The check is truthful: a tmpfs or hugetlbfs file from /dev/shm also answers F_GET_SEALS, so the
   * filesystem magic and the `/memfd:` name are checked too.
   */
  static fromFd(fd: number, options?: FromFdOptions): MemFile {
    toFd(fd);
    const opts = toOptions<FromFdOptions>(options);
    const required = opts.requireSeals === undefined ? 0 : sealBits(opts.requireSeals, 'options.requireSeals');
    const info = inspectFd(fd);
    if (info.error) throw info.error;
    if (!info.isMemFd) {
      throw stateError('ERR_MEMFD_NOT_A_MEMFD', `fd ${fd} is not a memfd (${info.describe}); the fd was left open`);
    }
    if (required & ~info.seals) {
      const missing = new Seals(required & ~info.seals);
      throw stateError('ERR_MEMFD_MISSING_SEALS',
        `memfd on fd ${fd} lacks required seals: ${missing} (it has ${new Seals(info.seals)}); the fd was left open`);
    }
    // hugetlbfs reports its page size as st_blksize. Read before adopting: a failure must leave the fd the
    // caller's, with no handle owning it.
    const hugePageBytes = info.hugetlb ? fstatSync(fd).blksize : 0;
    // A fd received in a socket Message of this thread is owned by that message: handleAdopt takes it over
    // natively (the message's handle is emptied) instead of creating a second owner (a double close).
    const handle = binding.handleAdopt(fd);
    return construct(handle, info.name, 'adopted', hugePageBytes);
  }

  /**
   * True only for a real memfd: tmpfs/hugetlbfs magic and a `/memfd:` name. A /dev/shm file, a regular
   * file, a pipe or a closed fd gives false. Never takes ownership.
   */
  static isMemFd(fd: number): boolean {
    toFd(fd);
    return inspectFd(fd).isMemFd;
  }

  /**
   * The file descriptor number to give to others (spawn stdio, another library), or -1 after close.
   *
   * It is a duplicate that the MemFile makes on first use and closes with the file, while the MemFile
   * itself works on a private fd. So a program that closes this number by hand (fs.closeSync) cannot make
   * the MemFile read, write or close whatever file the kernel gives that number to next: the MemFile
   * goes on working, and at close() leaves the reused number alone with a `MEMFD_FD_NOT_OURS` warning.
   * To own a number yourself, use {@link MemFile.releaseFd}. For an adopted fd (fromFd) this is the number
   * that was adopted.
   */
  get fd(): number {
    if (this.#closed) return -1;
    if (this.#shownFd < 0) this.#shownFd = binding.handleFd(this.#handle);
    return this.#shownFd;
  }

  /** The debug name given at creation (or read from /proc for an adopted fd). */
  get name(): string {
    return this.#name;
  }

  /**
   * How this MemFile got its fd: 'created' (or 'secret') by this process, 'adopted' with
   * {@link MemFile.fromFd}, or 'reopened' with {@link MemFile.reopen} (of a file created here or adopted).
   */
  get origin(): MemFileOrigin {
    return this.#origin;
  }

  /** True after {@link MemFile.close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Current size in bytes (fstat). */
  get size(): number {
    this.#check('size');
    return binding.size(this.#handle);
  }

  /**
   * `/proc/self/fd/N`: a path other programs in this process (or children that inherit the fd) can open.
   * Opening it gives a new, independent open file description of the same file.
   */
  get path(): string {
    this.#check('path');
    return `/proc/self/fd/${this.fd}`;
  }

  /** Writes all of `data` (strings as UTF-8) at `position`, or at the current position. Returns bytes written. */
  writeSync(data: BinaryLike, position?: number | bigint | null): number;
  writeSync(data: ArrayBufferView | ArrayBuffer, options: IoOptions): number;
  writeSync(data: BinaryLike, positionOrOptions?: number | bigint | null | IoOptions): number {
    this.#check('writeSync');
    const [bytes, offset, length, position] = ioArgs(data, positionOrOptions, false);
    try {
      return binding.writeSync(this.#handle, bytes, offset, length, position);
    } catch (e) {
      throw this.#explain(e);
    }
  }

  /** Reads into `buffer` until it is full or the file ends. Returns bytes read (0 at end of file). */
  readSync(buffer: ArrayBufferView | ArrayBuffer, position?: number | bigint | null): number;
  readSync(buffer: ArrayBufferView | ArrayBuffer, options: IoOptions): number;
  readSync(buffer: ArrayBufferView | ArrayBuffer, positionOrOptions?: number | bigint | null | IoOptions): number {
    this.#check('readSync');
    const [bytes, offset, length, position] = ioArgs(buffer, positionOrOptions, true);
    try {
      return binding.readSync(this.#handle, bytes, offset, length, position);
    } catch (e) {
      throw this.#explain(e);
    }
  }

  /** Like {@link MemFile.writeSync} on the thread pool. The data is copied first, so it may change after the call. */
  write(data: BinaryLike, position?: number | bigint | null): Promise<number>;
  write(data: ArrayBufferView | ArrayBuffer, options: IoOptions): Promise<number>;
  async write(data: BinaryLike, positionOrOptions?: number | bigint | null | IoOptions): Promise<number> {
    this.#check('write');
    const [bytes, offset, length, position] = ioArgs(data, positionOrOptions, false);
    try {
      return await binding.writeAsync(this.#handle, bytes, offset, length, position);
    } catch (e) {
      throw this.#explain(e);
    }
  }

  /** Like {@link MemFile.readSync} on the thread pool. */
  read(buffer: ArrayBufferView | ArrayBuffer, position?: number | bigint | null): Promise<number>;
  read(buffer: ArrayBufferView | ArrayBuffer, options: IoOptions): Promise<number>;
  async read(buffer: ArrayBufferView | ArrayBuffer, positionOrOptions?: number | bigint | null | IoOptions): Promise<number> {
    this.#check('read');
    const [bytes, offset, length, position] = ioArgs(buffer, positionOrOptions, true);
    let chunk: Buffer;
    try {
      chunk = await binding.readAsync(this.#handle, length, position);
    } catch (e) {
      throw this.#explain(e);
    }
    // The thread filled memory of its own; copy into the caller's buffer now, on this thread, where a
    // detached buffer is simply empty rather than freed memory.
    // A buffer detached meanwhile (transferred, or its Mapping unmapped) has byteLength 0: nothing to fill.
    const room = Math.max(0, Math.min(length, bytes.byteLength - offset));
    if (room === 0) return 0;
    const target = ArrayBuffer.isView(bytes)
      ? new Uint8Array(bytes.buffer, bytes.byteOffset + offset, room)
      : new Uint8Array(bytes, offset, room);
    const n = Math.min(chunk.length, room);
    target.set(n === chunk.length ? chunk : chunk.subarray(0, n));
    return n;
  }

  /** The whole content as a Buffer, read from position 0 (the current position is not used or moved). */
  readAllSync(): Buffer {
    this.#check('readAllSync');
    try {
      const size = binding.size(this.#handle);
      if (size > kMaxLength) throw fileTooLarge(size);
      let buffer = Buffer.allocUnsafe(size);
      let total = binding.readSync(this.#handle, buffer, 0, size, 0);
      // The file may grow while we read it (another process holds it): keep going until end of file.
      while (total === buffer.length) {
        const room = kMaxLength - total;
        const more = Buffer.allocUnsafe(Math.min(Math.max(64 * 1024, total), Math.max(room, 1)));
        const n = binding.readSync(this.#handle, more, 0, more.length, total);
        if (n === 0) break;
        if (n > room) throw fileTooLarge(total + n);
        buffer = Buffer.concat([buffer.subarray(0, total), more.subarray(0, n)]);
        total += n;
      }
      return total === buffer.length ? buffer : buffer.subarray(0, total);
    } catch (e) {
      throw this.#explain(e);
    }
  }

  /** Async {@link MemFile.readAllSync}: the bytes are read on the thread pool straight into the result. */
  async readAll(): Promise<Buffer> {
    this.#check('readAll');
    try {
      const size = binding.size(this.#handle);
      if (size > kMaxLength) throw fileTooLarge(size);
      const first = await binding.readAsync(this.#handle, size, 0);
      if (first.length < size) return first;
      const parts = [first];
      let total = first.length;
      for (;;) {
        const room = kMaxLength - total;
        const more = await binding.readAsync(this.#handle, Math.min(Math.max(64 * 1024, total), Math.max(room, 1)), total);
        if (more.length === 0) break;
        if (more.length > room) throw fileTooLarge(total + more.length);
        parts.push(more);
        total += more.length;
      }
      return parts.length === 1 ? first : Buffer.concat(parts, total);
    } catch (e) {
      throw this.#explain(e);
    }
  }

  /**
   * Sets the size (`ftruncate`): grows with zeros or shrinks. Refused by Seal.Grow / Seal.Shrink, and
   * (`ERR_MEMFD_MAPPED`) when a live mapping in this process reaches past the new end: touching it
   * afterwards would kill the process with SIGBUS.
   */
  truncate(size: number | bigint = 0): void {
    this.#check('truncate');
    const n = toSize(size, 'size');
    assertShrinkKeepsMappings(this.#mappable(), n);
    try {
      binding.truncate(this.#handle, n);
    } catch (e) {
      throw this.#explain(e);
    }
  }

  /**
   * Reserves memory for `[offset, offset + length)` (`fallocate`), growing the file unless `keepSize`.
   * Allocating up front turns a later ENOSPC/SIGBUS into an error here.
   */
  allocate(offset: number | bigint, length: number | bigint, options?: AllocateOptions): void {
    this.#check('allocate');
    const off = toSize(offset, 'offset');
    const len = toSize(length, 'length');
    if (len === 0) throw outOfRange('length', '> 0', 0);
    const keepSize = toBool(toOptions<AllocateOptions>(options).keepSize, 'options.keepSize', false);
    if (len >= 64 * 1024 * 1024 && !this.#isReadOnly()) {
      // Pages already charged cost nothing again; st_blocks tells how many the file holds. Where the
      // kernel refuses anyway (read-only fd above, grow seal here), its answer comes first.
      const v = new Float64Array(STAT_FIELDS);
      binding.fstat(this.#handle, v);
      const growSealed = (sealsOfHandle(this.#handle) & Seal.Grow) !== 0 && off + len > v[7]!;
      if (!growSealed) assertMemoryFor(len - v[9]! * 512, 'fallocate', `allocate(${off}, ${len})`);
    }
    try {
      binding.allocate(this.#handle, off, len, keepSize ? FALLOC_FL_KEEP_SIZE : 0);
    } catch (e) {
      throw this.#explain(e);
    }
  }

  /** Frees the memory of `[offset, offset + length)`; reads give zeros, the size is unchanged. Refused by Seal.Write. */
  punchHole(offset: number | bigint, length: number | bigint): void {
    this.#check('punchHole');
    const off = toSize(offset, 'offset');
    const len = toSize(length, 'length');
    if (len === 0) throw outOfRange('length', '> 0', 0);
    try {
      binding.allocate(this.#handle, off, len, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
    } catch (e) {
      throw this.#explain(e);
    }
  }

  /**
   * Maps the file into memory (`mmap`): see {@link Mapping}. Default: a shared mapping of the whole file,
   * writable when this handle can write and the file is not write-sealed.
   */
  map(options?: MapOptions): Mapping {
    this.#check('map');
    return mapFile(this.#mappable(), options);
  }

  /**
   * A file of `size` bytes from `memfd_secret(2)` (Linux 5.14+): memory removed from the kernel's direct
   * map, only reachable through a mapping (read/write syscalls are refused by the kernel). Its mappings
   * are locked memory, limited by RLIMIT_MEMLOCK. Throws ENOSYS, with an explanation, where the kernel
   * lacks it or has it disabled; `capabilities().memfdSecret` tells in advance.
   */
  static createSecret(size: number | bigint): MemFile {
    const n = toSize(size, 'size');
    let handle: NativeHandle;
    try {
      handle = binding.memfdSecret(O_CLOEXEC);
    } catch (e) {
      if (e instanceof SystemError && e.code === 'ENOSYS') {
        throw e.withHint('this kernel has no memfd_secret(2): it needs Linux 5.14 or later on a supported architecture, ' +
          'and secretmem must be enabled (secretmem.enable=1 on the kernel command line before 6.5)');
      }
      if (e instanceof SystemError && e.code === 'EMFILE') throw e.withHint('this process has too many open files (ulimit -n)');
      if (e instanceof SystemError && (e.code === 'ENOMEM' || e.code === 'EAGAIN')) throw explainMemlock(e);
      throw e;
    }
    try {
      if (n > 0) binding.truncate(handle, n);
    } catch (e) {
      binding.handleClose(handle);
      throw e;
    }
    return construct(handle, 'secretmem', 'secret', 0);
  }

  /** `fstat(2)`. */
  stat(): MemFileStats {
    this.#check('stat');
    const v = new Float64Array(STAT_FIELDS);
    binding.fstat(this.#handle, v);
    return new MemFileStats(v);
  }

  /** Changes the mode bits (`fchmod`); refused once Seal.Exec is set. */
  chmod(mode: number): void {
    this.#check('chmod');
    toInt(mode, 'mode', 0, 0o7777);
    try {
      binding.fchmod(this.#handle, mode);
    } catch (e) {
      throw this.#explain(e);
    }
  }

  /** The seals currently on the file (shared by every fd of it, in every process). */
  getSeals(): Seals {
    this.#check('getSeals');
    // By fd number, not handle: #check just proved the handle open, and nothing can close it before this
    // synchronous call returns (see getSealsFd in native/memfd.c). Saves the handle unwrap, ~10% of the call.
    return sealsOf(binding.getSealsFd(this.#ownFd()));
  }

  /**
   * Adds seals (bits like `Seal.Write | Seal.Shrink`, or names like `['write', 'shrink']`). Seals can only
   * be added, never removed; adding one that is present is a no-op. Returns nothing, like `fcntl`: the
   * seals now in force are one more syscall away ({@link getSeals}), which this hot path does not make.
   */
  addSeals(seals: SealsLike): void {
    this.#check('addSeals');
    const bits = sealBits(seals);
    try {
      binding.addSeals(this.#handle, bits);
    } catch (e) {
      throw this.#explainSeal(e, bits);
    }
  }

  /**
   * Freezes the file for good: Seal | Shrink | Grow | Write. Fails with EBUSY while writable mappings exist.
   * Calling it on a file that is already frozen returns its seals.
   */
  seal(): Seals {
    this.#check('seal');
    // Already frozen: nothing to do (the kernel would answer EPERM, because Seal.Seal is set).
    const current = this.getSeals();
    if (current.has(FROZEN)) return current;
    this.addSeals(FROZEN);
    return this.getSeals();
  }

  /** A second MemFile over a duplicate fd (same open file description, same position). */
  dup(options?: { cloexec?: boolean }): MemFile {
    this.#check('dup');
    const cloexec = toBool(toOptions<{ cloexec?: boolean }>(options).cloexec, 'options.cloexec', true);
    const { hugePageBytes, ownReopen } = fileInternals(this);
    const copy = construct(binding.dup(this.#handle, cloexec), this.#name, this.#origin, hugePageBytes);
    if (ownReopen) fileInternals(copy).ownReopen = true;
    return copy;
  }

  /**
   * Opens the file again through /proc/self/fd: a new open file description with its own position and
   * access mode. `{ readOnly: true }` gives a handle that cannot write, add seals or map writable, even
   * where the file itself is not sealed: hand that to code you do not trust.
   *
   * A reopen of a file this process created maps like the original, without `Seal.Shrink`: the holders
   * of the file are the same (see {@link MapOptions.unsafeAllowShrinking}). A reopen of an adopted file
   * stays a file from elsewhere.
   */
  reopen(options?: { readOnly?: boolean }): MemFile {
    this.#check('reopen');
    const readOnly = toBool(toOptions<{ readOnly?: boolean }>(options).readOnly, 'options.readOnly', false);
    const { hugePageBytes } = fileInternals(this);
    let reopened: MemFile;
    try {
      reopened = construct(binding.reopen(this.#handle, readOnly ? O_RDONLY : O_RDWR), this.#name, 'reopened', hugePageBytes);
    } catch (e) {
      throw this.#explain(e);
    }
    if (this.#createdHere()) fileInternals(reopened).ownReopen = true;
    return reopened;
  }

  /** This process created the file (this handle may be a dup or reopen of it). */
  #createdHere(): boolean {
    const { origin, ownReopen } = this.#internals;
    return origin === 'created' || origin === 'secret' || ownReopen === true;
  }

  /** True when this handle was opened for reading only (writes and seals fail with EBADF/EPERM). */
  get readOnly(): boolean {
    this.#check('readOnly');
    return (binding.fdFlags(this.#ownFd())[1] & O_ACCMODE) === O_RDONLY;
  }

  /** Streams the content from `start` (default 0) to `end` (inclusive), as fs.createReadStream does. */
  createReadStream(options?: ReadStreamOptions): Readable {
    this.#check('createReadStream');
    const opts = toOptions<ReadStreamOptions>(options);
    let position = opts.start === undefined ? 0 : toSize(opts.start, 'options.start');
    const end = opts.end === undefined ? Infinity : toSize(opts.end, 'options.end');
    if (end < position) throw outOfRange('options.start', `<= "end" (here: ${end})`, position);
    const highWaterMark = opts.highWaterMark === undefined ? 64 * 1024 : toInt(opts.highWaterMark, 'options.highWaterMark', 1, 2 ** 30);
    const file = this;
    return new Readable({
      highWaterMark,
      read(size) {
        const want = Math.min(Math.max(size, highWaterMark), end - position + 1);
        if (want <= 0) { this.push(null); return; }
        if (file.closed) { this.destroy(stateError('ERR_MEMFD_CLOSED', 'MemFile was closed while a read stream was open')); return; }
        binding.readAsync(file.#handle, want, position).then((chunk) => {
          if (chunk.length === 0) { this.push(null); return; }
          position += chunk.length;
          this.push(chunk);
        }, (e: unknown) => this.destroy(e as Error));
      },
    });
  }

  /** A Writable that writes at `start` (or the current position) and onwards. Does not close the MemFile. */
  createWriteStream(options?: WriteStreamOptions): Writable {
    this.#check('createWriteStream');
    const opts = toOptions<WriteStreamOptions>(options);
    let position = opts.start === undefined ? -1 : toSize(opts.start, 'options.start');
    const highWaterMark = opts.highWaterMark === undefined ? 64 * 1024 : toInt(opts.highWaterMark, 'options.highWaterMark', 1, 2 ** 30);
    const file = this;
    return new Writable({
      highWaterMark,
      write(chunk: Buffer, _encoding, callback) {
        if (file.closed) { callback(stateError('ERR_MEMFD_CLOSED', 'MemFile was closed while a write stream was open')); return; }
        binding.writeAsync(file.#handle, chunk, 0, chunk.length, position).then((n) => {
          if (position >= 0) position += n;
          callback();
        }, (e: unknown) => callback(file.#explain(e) as Error));
      },
    });
  }

  /**
   * Gives up ownership of the fd without closing it, and returns its number: the caller owns it now (close
   * it with `fs.closeSync`, pass it on, or adopt it again with {@link MemFile.fromFd}, for example in a
   * Worker). The MemFile is closed afterwards; mappings made from it stay valid. Refused with
   * `ERR_MEMFD_BUSY` while an async operation still uses the fd.
   *
   * @example
   * worker.postMessage(file.dup().releaseFd());            // main thread
   * const mine = MemFile.fromFd(fd, { requireSeals: Seal.Shrink }); // in the worker
   */
  releaseFd(): number {
    this.#check('releaseFd');
    let fd: number;
    try {
      fd = binding.handleDetach(this.#handle);
    } catch {
      throw stateError('ERR_MEMFD_BUSY', `MemFile ${JSON.stringify(this.#name)} has async operations in flight; await them before releaseFd()`);
    }
    this.#closed = true;
    this.#forgetSafetyNet();
    return fd;
  }

  /**
   * Closes the fd. Harmless when already closed. Mappings made from this file stay valid (the kernel keeps
   * the file alive while it is mapped). Async operations still running finish on the old fd first.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#forgetSafetyNet();
    const notOurs = binding.handleClose(this.#handle);
    if (notOurs >= 0) warnFdNotOurs(ResourceKind.File, notOurs);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  get [Symbol.toStringTag](): string {
    return 'MemFile';
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    if (this.#closed) return `MemFile { name: ${JSON.stringify(this.#name)}, closed: true }`;
    let detail = '';
    try { detail = `, size: ${binding.size(this.#handle)}, seals: ${new Seals(binding.getSeals(this.#handle))}`; } catch { /* ignore */ }
    const fd = this.#shownFd >= 0 ? `fd: ${this.#shownFd}, ` : '';
    return `MemFile { ${fd}name: ${JSON.stringify(this.#name)}${detail} }`;
  }

  #mappable(): MappableFile {
    // Made once, on first use (after dup()/reopen() have set ownReopen): truncate() is a hot path, and a
    // fresh object spread per call cost more than the syscall.
    return (this.#mappableCache ??= {
      handle: this.#handle, name: this.#name, origin: this.#origin, hugePageBytes: this.#internals.hugePageBytes,
      createdHere: this.#createdHere(),
    });
  }

  /**
   * The file no longer owns its handle (closed, or released): its registry entry goes, so that no callback
   * ever passes a number whose slot may by then belong to another file (the generation check behind it
   * is a second line of defence, not the only one).
   */
  #forgetSafetyNet(): void {
    if (this.#registered) forgottenFiles.unregister(this);
    else if (unregistered[unregistered.length - 1] === this) unregistered.pop();
  }

  #ownFd(): number {
    if (this.#privateFd < 0) this.#privateFd = binding.handleOwnFd(this.#handle);
    return this.#privateFd;
  }

  #check(method: string): void {
    if (this.#closed) {
      throw stateError('ERR_MEMFD_CLOSED', `MemFile ${JSON.stringify(this.#name)} was closed before ${method}()`);
    }
  }

  /** Adds a hint to errnos whose meaning depends on the file's seals or access mode. */
  #explain(e: unknown): unknown {
    if (!(e instanceof SystemError) || e.hint) return e;
    if (this.#origin === 'secret' && (e.code === 'EINVAL' || e.code === 'ESPIPE') && /read|write/.test(e.syscall)) {
      return e.withHint('memfd_secret memory is only reachable through map(): the kernel refuses read(2) and write(2) on it');
    }
    const { hugePageBytes } = fileInternals(this);
    if (hugePageBytes && (e.code === 'EINVAL' || e.code === 'ENOMEM' || e.code === 'ENOSPC')) {
      if (e.code === 'EINVAL' && /write|read/.test(e.syscall)) {
        return e.withHint('hugetlbfs files have no read(2)/write(2); map them with file.map() instead');
      }
      return hugeHint(e, hugePageBytes);
    }
    if (e.code === 'EBADF' && /write|allocate|truncate/.test(e.syscall)) {
      return e.withHint('this MemFile was opened read-only (reopen({ readOnly: true }) or a read-only fd)');
    }
    if (e.code === 'EINVAL' && e.syscall === 'ftruncate' && this.#isReadOnly()) {
      return e.withHint('this MemFile was opened read-only (reopen({ readOnly: true }) or a read-only fd)');
    }
    if (e.code === 'EPERM') {
      const seals = sealsOfHandle(this.#handle);
      const present = (bit: number) => (seals & bit) !== 0;
      switch (e.syscall) {
        case 'write': case 'pwrite':
          if (present(Seal.Write) || present(Seal.FutureWrite)) {
            return e.withHint(`the file is sealed against writing (${new Seals(seals & (Seal.Write | Seal.FutureWrite))})`);
          }
          if (present(Seal.Grow)) return e.withHint('writing past the end would grow the file, and it has the grow seal');
          break;
        case 'ftruncate':
          if (present(Seal.Shrink) || present(Seal.Grow)) {
            return e.withHint(`the size is sealed (${new Seals(seals & (Seal.Shrink | Seal.Grow))}): shrink forbids smaller, grow forbids larger`);
          }
          break;
        case 'fallocate':
          if (present(Seal.Write) || present(Seal.FutureWrite)) return e.withHint('punching holes changes the contents, and the file is sealed against writing');
          if (present(Seal.Grow)) return e.withHint('allocating past the end would grow the file, and it has the grow seal');
          break;
        case 'fchmod':
          if (present(Seal.Exec)) return e.withHint('the exec seal fixes the mode bits for good');
          break;
      }
    }
    return e;
  }

  #isReadOnly(): boolean {
    try { return (binding.fdFlags(this.#ownFd())[1] & O_ACCMODE) === O_RDONLY; } catch { return false; }
  }

  #explainSeal(e: unknown, bits: number): unknown {
    if (!(e instanceof SystemError)) return e;
    switch (e.code) {
      case 'EPERM': {
        if (this.#isReadOnly()) return e.withHint('seals can only be added through a writable fd; this handle is read-only');
        const seals = sealsOfHandle(this.#handle);
        if (seals & Seal.Seal) {
          return e.withHint('no seal can be added: the file carries Seal.Seal, which forbids further seals; it was ' +
            'created with allowSealing: false, received that way, or already sealed for good');
        }
        return e;
      }
      case 'EBUSY': {
        let count = 0;
        try { count = countWritableSharedMappings(this.stat().ino); } catch { /* unknown */ }
        const live = count === 1 ? '1 writable shared mapping of this file exists' : `${count} writable shared mappings of this file exist`;
        return e.withHint(`the write seal needs every writable shared mapping gone, and ${live} in this process ` +
          '(or pages are pinned, or another process maps it); unmap them first, or use Seal.FutureWrite, which leaves existing mappings writable');
      }
      case 'EINVAL':
        if (bits & (Seal.FutureWrite | Seal.Exec)) {
          return e.withHint('this kernel does not know one of these seals (future-write needs Linux 5.1, exec needs 6.3)');
        }
        return e.withHint('not a sealable file (only memfd, tmpfs and hugetlbfs files take seals)');
      default:
        return e;
    }
  }
}


// Only the factories construct MemFiles; this token stops `new MemFile()` from user code.
const internalsToken = { allowed: false };
function construct(handle: NativeHandle, name: string, origin: MemFileOrigin, hugePageBytes = 0): MemFile {
  internalsToken.allowed = true;
  try {
    return new MemFile(handle, name, origin, hugePageBytes);
  } finally {
    internalsToken.allowed = false;
  }
}
/** @internal */
export { construct as constructMemFile };

/** What an fd number refers to, without taking it. */
export interface FdInspection {
  isMemFd: boolean;
  hugetlb: boolean;
  name: string;
  seals: number;
  readOnly: boolean;
  describe: string;
  error?: SystemError;
}

/** @internal */
export function inspectFd(fd: number): FdInspection {
  const [magic, link, seals, mode, accessMode] = binding.identify(fd);
  if (magic < 0) {
    return { isMemFd: false, hugetlb: false, name: '', seals: 0, readOnly: false, describe: 'not open',
      error: new SystemError(-magic, 'fstatfs', `fd ${fd} is not open`) };
  }
  const isTmpfsLike = magic === TMPFS_MAGIC || magic === HUGETLBFS_MAGIC;
  const isMemfdName = link !== null && link.startsWith('/memfd:');
  const isMemFd = isTmpfsLike && isMemfdName && seals >= 0 && mode >= 0 && (mode & 0o170000) === 0o100000;
  let describe: string;
  if (isMemFd) describe = 'memfd';
  else if (link === null) describe = 'unknown file';
  else if (isTmpfsLike) describe = `a tmpfs/hugetlbfs file that is not a memfd: ${link}`;
  else describe = link;
  const name = isMemfdName ? link!.slice('/memfd:'.length).replace(/ \(deleted\)$/, '') : '';
  return { isMemFd, hugetlb: magic === HUGETLBFS_MAGIC, name, seals: seals >= 0 ? seals : 0, readOnly: accessMode === O_RDONLY, describe };
}

function ioArgs(data: unknown, positionOrOptions: unknown, forRead: boolean):
    [ArrayBufferView | ArrayBuffer | SharedArrayBuffer, number, number, number] {
  const bytes = forRead ? toWritableBytes(data, 'buffer') : toBytes(data, 'data');
  const total = bytes.byteLength;
  if (positionOrOptions !== null && typeof positionOrOptions === 'object') {
    const o = positionOrOptions as IoOptions;
    const offset = o.offset === undefined ? 0 : toSize(o.offset, 'options.offset');
    if (offset > total) throw outOfRange('options.offset', `<= ${total}`, offset);
    const length = o.length === undefined ? total - offset : toSize(o.length, 'options.length');
    if (length > total - offset) throw outOfRange('options.length', `<= ${total - offset}`, length);
    return [bytes, offset, length, toPosition(o.position, 'options.position')];
  }
  return [bytes, 0, total, toPosition(positionOrOptions)];
}
