/**
 * Unix domain sockets that carry file descriptors (`SCM_RIGHTS`): {@link UnixSocket}, {@link UnixServer}
 * and {@link Message}.
 *
 * Node core can only pass sockets, and only between Node processes; these classes pass any fd (memfds
 * first of all) to any process: Python, systemd, C programs, other Node processes. Everything runs in the
 * event loop of the thread that created the socket (worker threads included): no thread pool, no blocking.
 *
 * ## Ownership of received fds
 * The numbers in `msg.fds` are yours, like the numbers `fs.openSync` returns. With each one, either:
 * - adopt it: `MemFile.fromFd(msg.fds[i])` or `UnixSocket.fromFd(msg.fds[i])` (the object owns it then);
 * - close it yourself: `fs.closeSync(msg.fds[i])` is correct;
 * - or leave it to the message: `msg.close()` (or `using msg = ...`) closes every fd you neither adopted
 *   nor closed, and a message dropped without that is closed by the garbage collector (with a
 *   `MEMFD_CLOSED_BY_GC` warning). So do not keep using a raw `msg.fds[i]` after dropping `msg`.
 * Before closing, the message checks that each number still refers to the file that arrived: an fd you
 * closed by hand is left alone, even after the kernel has given its number to another file. (The identity
 * is recorded when the numbers are handed out: the first read of `msg.fds`.)
 *
 * ## Batches
 * A seqpacket socket reads every queued message in one native call (at most 64, the bytes FIONREAD
 * counted, `maxFds` received fds) and serves receive(), iteration and 'message' from that batch: the
 * read-ahead is one batch, only while someone wants data. The small messages of one batch share one
 * buffer, and one native record owns the fds of a batch (a dropped message's untouched fds are closed by
 * the GC once every message of its batch is gone).
 * `msg.take(i)` makes the message forget an fd without closing it (for example to post it to a Worker).
 *
 * ## Coalesced sends
 * The first send of a synchronous run goes out at once; the sends after it in the same run are staged
 * (bytes copied, MemFiles pinned) and go out with one `sendmmsg` in a microtask at the end of the run.
 * close(), end() and process exit flush the stage first. See docs/fd-passing.md, "Sending".
 * @module
 */
import { EventEmitter } from 'node:events';
import { lstatSync, unlinkSync } from 'node:fs';
import { binding, type NativeBatch, type NativeHandle, type NativeSocket } from './binding.js';
import { SystemError, invalidArgType, invalidArgValue, outOfRange, stateError } from './errors.js';
import { toFd, toInt, toOptions } from './validate.js';
import { MemFile, fileInternals } from './memfile.js';
import { POLL, RECV, SCM, SHUT, SOCK_BUFFER, SOCK_TYPE } from './constants.js';
import { markUncloneable } from './uncloneable.js';
import { WaiterQueue, abortError } from './waiters.js';

/** Socket types: message boundaries kept (`'seqpacket'`, `'dgram'`) or a byte stream (`'stream'`). */
export type SocketType = 'seqpacket' | 'stream' | 'dgram';

/** Most fds one message can carry (the kernel's `SCM_MAX_FD`). */
export const MAX_FDS_PER_MESSAGE = SCM.MAX_FD;

/** An fd to send: a number, or an object with an `fd` property (a {@link MemFile}, a FileHandle...). */
export type FdLike = number | { readonly fd: number };

/** Bytes to send: strings are UTF-8 encoded. */
export type SendData = string | ArrayBufferView | ArrayBuffer;

/** Options common to every way of getting a socket. */
export interface SocketOptions {
  /** Socket type. Default `'seqpacket'`. */
  type?: SocketType;
  /**
   * How many fds a received message may carry (0..253, default 253). It sizes the control buffer: a message
   * with more fds fails with `ERR_MEMFD_FDS_TRUNCATED` (and the fds that did arrive are closed).
   */
  maxFds?: number;
}

/** Options of {@link UnixSocket.connect}. */
export interface ConnectOptions extends SocketOptions {
  /** How long to keep retrying while the listener's backlog is full (EAGAIN), in ms. Default 10000. */
  timeout?: number;
}

/** Options of {@link UnixSocket.fromFd}. */
export interface FromFdSocketOptions {
  /** Expected type; by default the type is read from the socket (`SO_TYPE`). A mismatch throws. */
  type?: SocketType;
  /** See {@link SocketOptions.maxFds}. */
  maxFds?: number;
}

/** Options of {@link UnixSocket.receive}. */
export interface ReceiveOptions {
  /** Aborting rejects the pending receive with an `AbortError` and leaves nothing behind. */
  signal?: AbortSignal;
  /** Fd budget for this message (0..253); default: the socket's `maxFds`. */
  maxFds?: number;
}

/** Options of {@link UnixServer.listen}. */
export interface ListenOptions extends SocketOptions {
  /** `listen(2)` backlog. Default 511 (as Node's net servers). */
  backlog?: number;
}

/** The peer process of a connected socket at the time it connected (`SO_PEERCRED`). */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

const SOCK_TYPES: Record<SocketType, number> = { stream: SOCK_TYPE.STREAM, dgram: SOCK_TYPE.DGRAM, seqpacket: SOCK_TYPE.SEQPACKET };
const TYPE_NAMES: Record<number, SocketType> = { [SOCK_TYPE.STREAM]: 'stream', [SOCK_TYPE.DGRAM]: 'dgram', [SOCK_TYPE.SEQPACKET]: 'seqpacket' };
const UV_READABLE = POLL.READABLE;
const UV_WRITABLE = POLL.WRITABLE;
const RECV_FDS_TRUNCATED = RECV.FDS_TRUNCATED;
const RECV_DATA_TRUNCATED = RECV.DATA_TRUNCATED;
const SHUT_WR = SHUT.WR;
/** Errors that mean the peer is gone: every queued send fails with it. */
const PEER_GONE = new Set(['EPIPE', 'ECONNRESET', 'ENOTCONN', 'ECONNREFUSED']);

const kOnPoll = Symbol('memfd.onPoll');
interface PollTarget { [kOnPoll](events: number): void }

// One dispatcher per thread: native code calls it with `this` = the socket whose fd became ready.
binding.socketSetDispatcher(function (this: object, events: number) {
  (this as PollTarget)[kOnPoll](events);
});

function closedError(what: string): Error {
  return stateError('ERR_MEMFD_SOCKET_CLOSED', `${what}: the socket is closed`);
}

function toType(value: unknown, name = 'options.type'): SocketType {
  if (value === undefined) return 'seqpacket';
  if (value !== 'seqpacket' && value !== 'stream' && value !== 'dgram') {
    throw invalidArgValue(name, value, "must be 'seqpacket', 'stream' or 'dgram'");
  }
  return value;
}

function toMaxFds(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  return toInt(value, name, 0, MAX_FDS_PER_MESSAGE);
}

/**
 * Encodes a socket address: a filesystem path, or an abstract name starting with `'\0'`.
 * sockaddr_un holds 108 bytes: a path needs its NUL terminator, an abstract name does not.
 */
function toAddress(path: unknown, name = 'path'): Buffer {
  if (typeof path !== 'string' && !Buffer.isBuffer(path)) throw invalidArgType(name, 'of type string or a Buffer', path);
  const bytes = typeof path === 'string' ? Buffer.from(path, 'utf8') : Buffer.from(path);
  if (bytes.length === 0) throw invalidArgValue(name, path, 'must not be empty');
  const abstract = bytes[0] === 0;
  if (!abstract && bytes.includes(0)) throw invalidArgValue(name, path, 'must not contain null bytes (except a leading one for abstract names)');
  const max = abstract ? 108 : 107;
  if (bytes.length > max) throw outOfRange(name, `at most ${max} bytes${abstract ? ' for an abstract name' : ' (sockaddr_un)'}`, `${bytes.length} bytes`);
  return bytes;
}

function toData(value: unknown): ArrayBufferView | ArrayBuffer {
  if (value === undefined || value === null) return Buffer.alloc(0);
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value;
  throw invalidArgType('data', 'of type string or an instance of Buffer, TypedArray, DataView or ArrayBuffer', value);
}

/**
 * What socketSend takes for each fd: a raw number, or the native handle of a MemFile (sent as is: the
 * private fd it works on, not a number someone may have closed; pinned instead of duplicated when the
 * send has to wait).
 */
type FdItem = number | NativeHandle;

const NO_FD_ITEMS: readonly FdItem[] = Object.freeze([]);

/** A MemFile's handle (a negative number, native/handle.c) or the library's own copy, not a raw fd. */
function isHandle(item: FdItem): item is NativeHandle {
  return typeof item !== 'number' || item < 0;
}

function toFdList(value: unknown): readonly FdItem[] {
  if (value === undefined || value === null) return NO_FD_ITEMS;
  if (!Array.isArray(value)) throw invalidArgType('fds', 'an array of fds (numbers or objects with an fd)', value);
  if (value.length > MAX_FDS_PER_MESSAGE) {
    throw outOfRange('fds.length', `at most ${MAX_FDS_PER_MESSAGE} (SCM_MAX_FD: the kernel refuses more fds in one message)`, value.length);
  }
  const out = new Array<FdItem>(value.length);
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (typeof item === 'number') {
      out[i] = toFd(item, `fds[${i}]`);
    } else if (item instanceof MemFile) {
      if (item.closed) throw stateError('ERR_MEMFD_CLOSED', `fds[${i}] is a closed MemFile`);
      out[i] = fileInternals(item).handle;
    } else if (item !== null && typeof item === 'object' && 'fd' in item) {
      const fd = (item as { fd: unknown }).fd;
      if (fd === -1) throw stateError('ERR_MEMFD_CLOSED', `fds[${i}] is closed (its fd is -1)`);
      out[i] = toFd(fd, `fds[${i}].fd`);
    } else {
      throw invalidArgType(`fds[${i}]`, 'a number or an object with an fd', item);
    }
  }
  return out;
}

/** Staged sends carry only pinned MemFile handles: a raw number would need a dup (a syscall) to stay valid. */
function stageable(items: readonly FdItem[]): boolean {
  for (let i = 0; i < items.length; i++) if (!isHandle(items[i]!)) return false;
  return true;
}

function byteView(data: ArrayBufferView | ArrayBuffer): Uint8Array {
  return data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * One received message: bytes plus the fds that came with them.
 *
 * The fds are yours: adopt them (`MemFile.fromFd`), close them (`fs.closeSync`), or leave them to
 * `msg.close()` / the garbage collector, which close only the ones still untouched (see the module
 * documentation). `fds` lists the numbers as they arrived.
 */
export class Message implements Disposable {
  /**
   * The payload (for stream sockets: what one `recvmsg` delivered). Messages received in one batch are
   * views into one shared buffer (see docs/performance.md): copy `data` if you keep a small slice of it
   * for long and want the rest collected.
   */
  readonly data: Buffer;
  /** The numbers, frozen; not yet handed out while #exposed is false. */
  #fds: readonly number[];
  #exposed: boolean;
  /** The record that owns the fds of the receive batch this message came in (null: none, or closed). */
  #batch: NativeBatch | null;
  /** Index of fds[0] in the batch. */
  #first: number;

  /** @internal */
  constructor(data: Buffer, fds: readonly number[], batch: NativeBatch | null, first: number) {
    this.data = data;
    // No registry of received numbers: MemFile.fromFd / UnixSocket.fromFd find the record that owns a
    // received fd in the native owned-fd table and take the fd over from it (same thread only).
    this.#fds = fds;
    this.#batch = fds.length > 0 ? batch : null;
    this.#exposed = this.#batch === null;
    this.#first = first;
    markUncloneable(this);
  }

  /**
   * The fd numbers that arrived, in order (close-on-exec set). Reading it hands the numbers out: from then
   * on the message checks, before closing one, that it still refers to the file that arrived (one fstat
   * per fd when first read; a message whose fds are never read skips it).
   */
  get fds(): readonly number[] {
    if (!this.#exposed) {
      this.#exposed = true;
      if (this.#batch !== null) binding.batchExpose(this.#batch, this.#first, this.#fds.length);
    }
    return this.#fds;
  }

  /**
   * Makes the message forget the fd at `index` (default 0) and returns its number: `msg.close()` and the
   * garbage collector will not close it, so you must (or pass it to something that does, such as a
   * Worker). Throws `ERR_MEMFD_FD_TAKEN` if it was already taken, adopted or closed through the message.
   */
  take(index = 0): number {
    const n = this.#fds.length;
    toInt(index, 'index', 0, Math.max(0, n - 1));
    if (index >= n) throw outOfRange('index', `< ${n} (the message has ${n} fds)`, index);
    // -1 once the fd was taken, closed through the message, or adopted (MemFile.fromFd...): the native
    // hand-over emptied its record.
    const fd = this.#batch === null ? -1 : binding.batchTake(this.#batch, this.#first + index);
    if (fd < 0) throw stateError('ERR_MEMFD_FD_TAKEN', `fd ${this.#fds[index]} of this message was already taken or closed`);
    return fd;
  }

  /** Takes every fd not yet taken (see {@link Message.take}); returns their numbers. */
  takeFds(): number[] {
    const out: number[] = [];
    const batch = this.#batch;
    if (batch === null) return out;
    for (let i = 0; i < this.#fds.length; i++) {
      const fd = binding.batchTake(batch, this.#first + i);
      if (fd >= 0) out.push(fd);
    }
    return out;
  }

  /** Closes every fd not taken, adopted or closed by hand. Harmless to call twice. */
  close(): void {
    const batch = this.#batch;
    if (batch === null) return;
    this.#batch = null;
    binding.batchClose(batch, this.#first, this.#fds.length);
  }

  /** @internal how many fds arrived (without handing them out). */
  get fdCount(): number {
    return this.#fds.length;
  }

  /** Same as {@link Message.close}: `using msg = await socket.receive()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  get [Symbol.toStringTag](): string {
    return 'Message';
  }
}

const NO_FDS: readonly number[] = Object.freeze([]);

/** A failure read in order with the messages of a batch (a truncated message), delivered in its turn. */
class QueuedFailure {
  constructor(readonly error: Error, readonly maxFds: number) {}
}

/** Messages at most read per native call (one readiness event): the read-ahead bound of a socket. */
const BATCH_MESSAGES = 64;

interface QueuedSend {
  data: Uint8Array;
  offset: number;
  /**
   * What keeps the fds alive while queued: pinned MemFile handles (unpinned once sent or failed) and our
   * own duplicates of raw fd numbers (closed once sent or failed); null once sent.
   */
  fds: NativeHandle[] | null;
  pinned: boolean[];
  /**
   * The MemFiles whose handles are pinned: a MemFile's GC safety net fires when the MemFile object dies,
   * so the queue keeps the object (not only its handle number) alive until the send went out.
   */
  owners: readonly unknown[] | null;
  resolve(): void;
  reject(e: unknown): void;
}

/*
 * Send coalescing (docs/fd-passing.md, "Sending"; docs/performance.md, "Message rate"). The first send of a
 * synchronous run goes out at once, as an isolated send always did; the ones after it in the same run are
 * copied into a per-socket stage and go out together with one sendmmsg(2) from a microtask at the end of
 * the run (or earlier: close(), end(), a send that cannot be staged, a full stage, process exit).
 */
/** Largest message that is staged (copied). A copy of 16 KiB costs ~0.15 µs cache-hot and ~3 µs cold
 * here, against ~1.2-1.5 µs for the syscall it saves: larger messages would cost more than they save. */
const STAGE_MAX_MESSAGE = 16 * 1024;
/** A stage is flushed before it would hold more bytes than this (bounds the per-socket staging buffer). */
const STAGE_MAX_BYTES = 64 * 1024;
/** Messages per stage: native/socket.c sends at most this many per sendmmsg (SEND_BATCH_MAX). */
const STAGE_MAX_MESSAGES = 64;
/** A staging buffer larger than this is dropped after its flush (idle sockets keep a small one). */
const STAGE_KEEP_BYTES = 16 * 1024;

const kFlushStage = Symbol('memfd.flushStage');
interface StageOwner { [kFlushStage](): void }
/** Sockets with a staged batch, flushed by one 'exit' listener (registered on first use, per thread). */
const stagedSockets = new Set<StageOwner>();
let exitHooked = false;
/** Set by the 'exit' flush: sends made by 'exit' listeners that run after it go out at once. */
let exiting = false;
function flushAtExit(): void {
  exiting = true;
  for (const s of [...stagedSockets]) s[kFlushStage]();
}

// One executor for every staged send's promise: no closure per send.
let capturedResolve: () => void = () => {};
let capturedReject: (e: unknown) => void = () => {};
function capture(resolve: () => void, reject: (e: unknown) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

const constructing = { allowed: false };

/** Typed events of {@link UnixSocket}: `'message'` (a {@link Message}; take or close its fds), `'end'`
 * (the peer is gone), `'error'`, `'close'` (after {@link UnixSocket.close}). */
export interface UnixSocket {
  on(event: 'message', listener: (message: Message) => void): this;
  on(event: 'end' | 'close', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'message', listener: (message: Message) => void): this;
  once(event: 'end' | 'close', listener: () => void): this;
  once(event: 'error', listener: (error: Error) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  off(event: 'message', listener: (message: Message) => void): this;
  off(event: string | symbol, listener: (...args: any[]) => void): this;
}

/**
 * A connected Unix domain socket that sends and receives bytes and fds.
 *
 * - `send()` resolves once the kernel accepted the message; when the socket buffer is full it queues
 *   (in order) and waits for writability: `await` it for backpressure.
 * - `receive()`, `for await (const msg of socket)` and `'message'` events read messages. Data is only
 *   read while someone asks for it: until then messages wait in the kernel's socket buffer (which is
 *   the bound on buffering, and makes a fast sender wait for a slow reader).
 * - At the end of the stream (peer closed or died) pending and later `receive()` calls resolve `null`,
 *   iteration ends and `'end'` is emitted. After `close()` they reject with `ERR_MEMFD_SOCKET_CLOSED`.
 * - A socket that is neither closed nor busy (no pending receive, no queued send, no `'message'`
 *   listener) is closed when garbage-collected; a busy one keeps the process alive, as a net.Socket does.
 *
 * Events: `'message'` (Message), `'end'`, `'close'`, `'error'` (only for errors that no pending call can
 * take, such as a truncated message while reading for `'message'` listeners).
 */
export class UnixSocket extends EventEmitter implements AsyncDisposable, AsyncIterable<Message> {
  #native: NativeSocket;
  #type: SocketType;
  /** The number users see, made on first use of `fd` (native/socket.c); -1 until then. */
  #shownFd = -1;
  #maxFds: number;
  #closed = false;
  #ended = false;
  #events = 0;
  #reading = false;
  #flushing = false;
  #connecting: { resolve(): void; reject(e: unknown): void } | null = null;
  /** Pending receive() calls, each with its fd budget. */
  #waiters = new WaiterQueue<Message | null, number>(() => this.#updatePoll());
  /**
   * Messages (and failures) read in the last batch and not yet delivered, from #inboxHead on. Read ahead is
   * at most one batch, and only while someone wants data: a new batch is read only once this is empty.
   */
  #inbox: (Message | QueuedFailure)[] = [];
  #inboxHead = 0;
  #queue: QueuedSend[] = [];
  /** A send went out synchronously in the current run and #endBurst is queued as a microtask. */
  #burst = false;
  /** The stage: copies of the sends made after the first one of the current run, not yet sent. */
  #stageBytes: Uint8Array | null = null;
  #stageUsed = 0;
  /** Per staged message: offset, length, index of its first handle, fd count (native/socket.c). */
  #stageMeta: Int32Array | null = null;
  #stageCount = 0;
  /** Pinned MemFile handles of the staged messages, in order, and the MemFiles they belong to. */
  #stageHandles: NativeHandle[] = [];
  #stageOwners: unknown[] = [];
  #stageResolve: (() => void)[] = [];
  #stageReject: ((e: unknown) => void)[] = [];
  #endBurst = (): void => {
    this.#burst = false;
    if (this.#stageCount > 0) this.#flushStage();
  };
  #boundPath: { path: string; dev: number; ino: number } | null = null;

  /** @internal use {@link UnixSocket.pair}, {@link UnixSocket.connect} or {@link UnixSocket.fromFd}. */
  constructor(native: NativeSocket, type: SocketType, maxFds: number) {
    if (!constructing.allowed) throw new TypeError('Illegal constructor: use UnixSocket.pair(), connect(), bindTo() or fromFd()');
    super();
    this.#native = native;
    this.#type = type;
    this.#maxFds = maxFds;
    binding.socketAttach(native, this);
    // Reading for 'message' listeners starts when the first one is added and stops with the last one.
    this.on('newListener', (event) => { if (event === 'message') process.nextTick(() => this.#read()); });
    this.on('removeListener', (event) => { if (event === 'message') this.#updatePoll(); });
    markUncloneable(this);
  }

  /** @internal */
  static wrap(native: NativeSocket, type: SocketType, maxFds: number): UnixSocket {
    constructing.allowed = true;
    try {
      return new UnixSocket(native, type, maxFds);
    } finally {
      constructing.allowed = false;
    }
  }

  /** Two connected sockets (`socketpair(2)`), e.g. one for a child process (pass `b.fd` in its stdio). */
  static pair(options?: SocketOptions): [UnixSocket, UnixSocket] {
    const opts = toOptions<SocketOptions>(options);
    const type = toType(opts.type);
    const maxFds = toMaxFds(opts.maxFds, 'options.maxFds', MAX_FDS_PER_MESSAGE);
    const [a, b] = binding.socketPair(SOCK_TYPES[type]);
    return [UnixSocket.wrap(a, type, maxFds), UnixSocket.wrap(b, type, maxFds)];
  }

  /**
   * Connects to a listening socket (or, for `'dgram'`, sets the default destination) at a filesystem
   * path or an abstract address (`'\0name'`). Retries while the listener's backlog is full.
   */
  static async connect(path: string, options?: ConnectOptions): Promise<UnixSocket> {
    const address = toAddress(path);
    const opts = toOptions<ConnectOptions>(options);
    const type = toType(opts.type);
    const maxFds = toMaxFds(opts.maxFds, 'options.maxFds', MAX_FDS_PER_MESSAGE);
    const timeout = opts.timeout === undefined ? 10_000 : toInt(opts.timeout, 'options.timeout', 0, 2 ** 31 - 1);
    const deadline = Date.now() + timeout;
    let delay = 1;
    for (;;) {
      let native: NativeSocket, inProgress: boolean;
      try {
        [native, inProgress] = binding.socketConnect(SOCK_TYPES[type], address);
      } catch (e) {
        // A Unix connect answers EAGAIN when the backlog is full; nothing is in progress: try again.
        if (e instanceof SystemError && e.code === 'EAGAIN' && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 50);
          continue;
        }
        throw explainConnect(e, path);
      }
      const socket = UnixSocket.wrap(native, type, maxFds);
      if (inProgress) {
        try {
          await socket.#waitConnected();
        } catch (e) {
          socket.close();
          throw explainConnect(e, path);
        }
      }
      return socket;
    }
  }

  /**
   * A datagram socket bound to `path` (filesystem or `'\0abstract'`), to receive datagrams sent to that
   * address. `close()` removes the filesystem path again.
   */
  static bindTo(path: string, options?: SocketOptions): UnixSocket {
    const address = toAddress(path);
    const opts = toOptions<SocketOptions>(options);
    const type = toType(opts.type ?? 'dgram');
    if (type !== 'dgram') throw invalidArgValue('options.type', type, "must be 'dgram' (use UnixServer.listen for connections)");
    const maxFds = toMaxFds(opts.maxFds, 'options.maxFds', MAX_FDS_PER_MESSAGE);
    const native = binding.socketListen(SOCK_TYPES.dgram, address, 0);
    const socket = UnixSocket.wrap(native, type, maxFds);
    socket.#boundPath = recordPath(path);
    return socket;
  }

  /**
   * Adopts an open Unix socket fd (inherited from a parent, received in a message...). On success the
   * socket owns the fd; on failure (not a socket, not AF_UNIX, a listening socket, a type mismatch) it
   * throws and the fd is left open, still yours.
   */
  static fromFd(fd: number, options?: FromFdSocketOptions): UnixSocket {
    toFd(fd);
    const opts = toOptions<FromFdSocketOptions>(options);
    const expected = opts.type === undefined ? undefined : toType(opts.type);
    const maxFds = toMaxFds(opts.maxFds, 'options.maxFds', MAX_FDS_PER_MESSAGE);
    const [typeNum, listening] = inspect(fd);
    const type = TYPE_NAMES[typeNum];
    if (type === undefined) throw stateError('ERR_MEMFD_UNSUPPORTED_SOCKET', `fd ${fd} is a Unix socket of unsupported type ${typeNum}; the fd was left open`);
    if (listening) throw stateError('ERR_MEMFD_LISTENING_SOCKET', `fd ${fd} is a listening socket: use UnixServer.fromFd(); the fd was left open`);
    if (expected !== undefined && expected !== type) {
      throw stateError('ERR_MEMFD_SOCKET_TYPE', `fd ${fd} is a ${type} socket, not ${expected}; the fd was left open`);
    }
    // A received fd is owned by its message: the native side hands ownership over only on success.
    const native = binding.socketAdopt(fd, typeNum);
    return UnixSocket.wrap(native, type, maxFds);
  }

  /** The socket type. */
  get type(): SocketType {
    return this.#type;
  }

  /**
   * The fd number to give to others (a child's stdio, `UnixSocket.fromFd` elsewhere), or -1 once closed.
   * It is a duplicate made on first use and closed with the socket; the socket itself polls a private fd,
   * so closing this number by hand cannot disturb the socket or the event loop (see {@link MemFile.fd}).
   */
  get fd(): number {
    if (this.#closed) return -1;
    if (this.#shownFd < 0) this.#shownFd = binding.socketFd(this.#native);
    return this.#shownFd;
  }

  /** True after {@link UnixSocket.close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /** True once the peer has ended the stream (receives resolve null). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Sends not yet accepted by the kernel: staged until the end of the current run, or waiting in the
   * queue for the socket to become writable. */
  get pendingSends(): number {
    return this.#queue.length + this.#stageCount;
  }

  /**
   * The process at the other end as it was when the connection was made (`SO_PEERCRED`): for a pair,
   * the process that created it. Trust decisions ("who sent me this fd?") start here.
   */
  get peerCredentials(): PeerCredentials {
    if (this.#closed) throw closedError('peerCredentials');
    const [pid, uid, gid] = binding.socketPeerCred(this.#native);
    return { pid, uid, gid };
  }

  /** Sets `SO_SNDBUF` (the kernel doubles and clamps it); returns the effective size. */
  setSendBufferSize(bytes: number): number {
    if (this.#closed) throw closedError('setSendBufferSize');
    return binding.socketSetBufferSize(this.#native, SOCK_BUFFER.SEND, toInt(bytes, 'bytes', 1, 2 ** 31 - 1));
  }

  /** Sets `SO_RCVBUF` (the kernel doubles and clamps it); returns the effective size. */
  setReceiveBufferSize(bytes: number): number {
    if (this.#closed) throw closedError('setReceiveBufferSize');
    return binding.socketSetBufferSize(this.#native, SOCK_BUFFER.RECEIVE, toInt(bytes, 'bytes', 1, 2 ** 31 - 1));
  }

  /**
   * Sends `data` (may be empty for seqpacket/dgram) with up to 253 fds attached. Resolves when the kernel
   * accepted it; the fds are duplicated by the kernel, so you may close yours as soon as `send` returns.
   * Sends go out in call order; a send that has to wait keeps its files alive (a MemFile's close is
   * deferred until it went out; a raw fd number is duplicated, which costs one fd per waiting message).
   *
   * The first send of a synchronous run goes out at once; later sends of the same run (up to 16 KiB, no
   * raw fd numbers) are copied and go out together with one `sendmmsg` at the end of the run, each promise
   * resolving when the kernel accepted its message (docs/fd-passing.md, "Sending").
   *
   * Rejects with `EPIPE`/`ECONNRESET` when the peer is gone (never a SIGPIPE), `ERR_MEMFD_SOCKET_CLOSED`
   * after close, and argument errors (e.g. a RangeError for more than 253 fds) before any syscall.
   * On a stream socket a partial write keeps the rest queued; the fds travel with the first byte.
   */
  send(data?: SendData | null, fds?: readonly FdLike[] | null): Promise<void> {
    let bytes: Uint8Array, items: readonly FdItem[];
    try {
      bytes = data instanceof Uint8Array ? data : byteView(toData(data));
      items = toFdList(fds);
      if (this.#closed) throw closedError('send');
      if (this.#type === 'stream' && items.length > 0 && bytes.length === 0) {
        throw invalidArgValue('data', '', 'must hold at least one byte on a stream socket that sends fds (the kernel drops fds sent with no data)');
      }
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.#queue.length === 0 && this.#connecting === null) {
      if (this.#burst && !exiting) {
        // Not the first send of this synchronous run: stage it (copied, MemFiles pinned) for the one
        // sendmmsg at the end of the run. What cannot be staged (raw fd numbers would need a dup to stay
        // valid; large messages cost more to copy than the syscall saved) first flushes the stage, so
        // order is kept, then goes out at once.
        if (bytes.length <= STAGE_MAX_MESSAGE && stageable(items)) return this.#stage(bytes, items, fds);
        if (this.#stageCount > 0) this.#flushStage();
      } else {
        this.#burst = true;
        queueMicrotask(this.#endBurst);
      }
    }
    let offset = 0;
    if (this.#queue.length === 0 && this.#connecting === null) {
      let n: number;
      try {
        n = binding.socketSend(this.#native, bytes, 0, bytes.length, items.length ? items : null);
      } catch (e) {
        return Promise.reject(this.#sendError(e));
      }
      if (n >= bytes.length) return Promise.resolve();
      if (n >= 0) {
        // Partial stream write: the fds went with the bytes the kernel took; queue only the rest.
        offset = n;
        items = NO_FD_ITEMS;
      }
    }
    return this.#enqueue(bytes, offset, items, fds);
  }

  /**
   * Queues a send that has to wait for writability. Keeps the files alive on our side: the caller may
   * close its fds (and the kernel reuse the numbers) before we get to send. MemFile handles are pinned
   * (their close is deferred); raw numbers are duplicated. The bytes are copied: the caller may reuse its
   * buffer as soon as send() returns.
   */
  #enqueue(bytes: Uint8Array, offset: number, items: readonly FdItem[], fds: unknown): Promise<void> {
    const handles: NativeHandle[] = [];
    const pinned: boolean[] = [];
    try {
      for (const item of items) {
        if (isHandle(item)) {
          binding.handlePin(item);
          handles.push(item);
          pinned.push(true);
        } else {
          handles.push(binding.dupFd(item));
          pinned.push(false);
        }
      }
    } catch (e) {
      releaseFds(handles, pinned);
      return Promise.reject(e);
    }
    const copy = Uint8Array.prototype.slice.call(bytes, offset);
    return new Promise<void>((resolve, reject) => {
      const owners = pinned.includes(true) && Array.isArray(fds) ? fds.filter((f) => f instanceof MemFile) : null;
      this.#queue.push({ data: copy, offset: 0, fds: handles.length ? handles : null, pinned, owners, resolve, reject });
      this.#updatePoll();
    });
  }

  /**
   * Copies a send into the stage (its MemFile handles pinned, the MemFiles themselves kept alive: their
   * GC safety net must not close a file a staged message will send); it goes out with the next flush.
   */
  #stage(bytes: Uint8Array, items: readonly FdItem[], fds: unknown): Promise<void> {
    const length = bytes.length;
    if (this.#stageCount === STAGE_MAX_MESSAGES || this.#stageUsed + length > STAGE_MAX_BYTES) {
      this.#flushStage();
      if (this.#queue.length > 0) return this.#enqueue(bytes, 0, items, fds); // the socket buffer is full
    }
    const handles = this.#stageHandles;
    const firstHandle = handles.length;
    try {
      for (let i = 0; i < items.length; i++) {
        binding.handlePin(items[i] as NativeHandle);
        handles.push(items[i] as NativeHandle);
        // toFdList maps fds[i] to items[i]: every staged item is a MemFile's handle.
        this.#stageOwners.push((fds as readonly unknown[])[i]);
      }
    } catch (e) {
      for (let i = firstHandle; i < handles.length; i++) binding.handleUnpin(handles[i]!);
      handles.length = firstHandle;
      this.#stageOwners.length = firstHandle;
      return Promise.reject(e);
    }
    let buf = this.#stageBytes;
    const used = this.#stageUsed;
    if (buf === null || used + length > buf.length) {
      let size = buf === null ? 1024 : buf.length * 2;
      while (size < used + length) size *= 2;
      const grown = new Uint8Array(size);
      if (buf !== null && used > 0) grown.set(buf.subarray(0, used));
      this.#stageBytes = buf = grown;
    }
    // A byte loop beats TypedArray#set for the smallest messages (no call into the runtime).
    if (length <= 16) for (let i = 0; i < length; i++) buf[used + i] = bytes[i]!;
    else buf.set(bytes, used);
    let meta = this.#stageMeta;
    if (meta === null) this.#stageMeta = meta = new Int32Array(STAGE_MAX_MESSAGES * 4);
    const m = this.#stageCount * 4;
    meta[m] = used;
    meta[m + 1] = length;
    meta[m + 2] = firstHandle;
    meta[m + 3] = items.length;
    this.#stageUsed = used + length;
    const promise = new Promise<void>(capture);
    this.#stageResolve.push(capturedResolve);
    this.#stageReject.push(capturedReject);
    if (this.#stageCount++ === 0) {
      stagedSockets.add(this);
      if (!exitHooked) {
        exitHooked = true;
        // process.exit() right after some sends: the microtask would never run.
        process.on('exit', flushAtExit);
      }
    }
    return promise;
  }

  /** @internal flushes the stage (process exit) */
  [kFlushStage](): void {
    this.#flushStage();
  }

  /**
   * Sends the stage with one sendmmsg (more calls only after a short count): accepted messages resolve,
   * a failed one rejects alone (the peer being gone rejects every pending send), and what meets EAGAIN
   * moves, in order, to the wait queue.
   */
  #flushStage(): void {
    const n = this.#stageCount;
    if (n === 0) return;
    const bytes = this.#stageBytes!, meta = this.#stageMeta!, handles = this.#stageHandles, owners = this.#stageOwners;
    const resolves = this.#stageResolve, rejects = this.#stageReject;
    // Detach the stage first: nothing below may see it half-sent.
    this.#stageCount = 0;
    this.#stageUsed = 0;
    this.#stageHandles = [];
    this.#stageOwners = [];
    this.#stageResolve = [];
    this.#stageReject = [];
    stagedSockets.delete(this);
    const unpin = (i: number): void => {
      for (let k = meta[i * 4 + 2]!, end = k + meta[i * 4 + 3]!; k < end; k++) binding.handleUnpin(handles[k]!);
    };
    let first = 0;
    while (first < n) {
      if (this.#closed) {
        const err = closedError('closed while waiting');
        for (let i = first; i < n; i++) { unpin(i); rejects[i]!(err); }
        break;
      }
      let k: number;
      try {
        k = binding.socketSendBatch(this.#native, bytes, meta, handles.length > 0 ? handles : null, first, n - first);
      } catch (e) {
        const err = this.#sendError(e);
        if (e instanceof SystemError && PEER_GONE.has(e.code)) {
          for (let i = first; i < n; i++) { unpin(i); rejects[i]!(err); }
          for (const q of this.#queue.splice(0)) {
            releaseFds(q.fds, q.pinned);
            q.reject(err);
          }
          break;
        }
        unpin(first);
        rejects[first]!(err);
        first++;
        continue;
      }
      if (k < 0) {
        // EAGAIN: the rest waits for writability, after anything already queued, in order.
        for (let i = first; i < n; i++) {
          const offset = meta[i * 4]!, length = meta[i * 4 + 1]!, h = meta[i * 4 + 2]!, nfds = meta[i * 4 + 3]!;
          const fds = nfds > 0 ? handles.slice(h, h + nfds) : null;
          this.#queue.push({
            data: bytes.slice(offset, offset + length), offset: 0, fds,
            pinned: fds ? fds.map(() => true) : [], owners: fds ? owners.slice(h, h + nfds) : null,
            resolve: resolves[i]!, reject: rejects[i]!,
          });
        }
        this.#updatePoll();
        break;
      }
      for (let i = first, end = first + k; i < end; i++) resolves[i]!();
      first += k;
    }
    if (bytes.length > STAGE_KEEP_BYTES) this.#stageBytes = null;
  }

  /**
   * Receives the next message. Resolves `null` at the end of the stream; rejects with
   * `ERR_MEMFD_SOCKET_CLOSED` after close, `AbortError` when `signal` aborts, `ERR_MEMFD_FDS_TRUNCATED`
   * when a message carried more fds than `maxFds` (those that arrived were closed; the next receive gets
   * the next message) and `ERR_MEMFD_DATA_TRUNCATED` when a datagram did not fit.
   */
  receive(options?: ReceiveOptions): Promise<Message | null> {
    let signal: AbortSignal | undefined, maxFds: number;
    try {
      const opts = toOptions<ReceiveOptions>(options);
      signal = opts.signal;
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgType('options.signal', 'an AbortSignal', signal);
      maxFds = toMaxFds(opts.maxFds, 'options.maxFds', this.#maxFds);
      if (signal?.aborted) throw abortError(signal);
      if (this.#closed) throw closedError('receive');
    } catch (e) {
      return Promise.reject(e);
    }
    // Served from the last batch without a native call (nobody is queued ahead of us).
    if (this.#waiters.length === 0 && this.#inboxHead < this.#inbox.length) {
      const item = this.#shiftInbox(maxFds);
      return item instanceof Message ? Promise.resolve(item) : Promise.reject(item);
    }
    if (this.#ended) return Promise.resolve(null);
    const message = this.#waiters.wait(maxFds, signal);
    this.#read();
    return message;
  }

  /**
   * Iterates over messages until the end of the stream or close(). Messages already read (one batch) are
   * handed out without a native call: one settled promise per message, as `for await` requires.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    const done: IteratorResult<Message> = { value: undefined, done: true };
    let finished = false;
    const settle = (msg: Message | null): IteratorResult<Message> => {
      if (msg === null) {
        finished = true;
        return done;
      }
      return { value: msg, done: false };
    };
    const iterator: AsyncIterableIterator<Message> = {
      next: (): Promise<IteratorResult<Message>> => {
        if (finished || this.#closed) {
          finished = true;
          return Promise.resolve(done);
        }
        if (this.#waiters.length === 0 && this.#inboxHead < this.#inbox.length) {
          const item = this.#shiftInbox(this.#maxFds);
          return item instanceof Message ? Promise.resolve({ value: item, done: false }) : Promise.reject(item);
        }
        return this.receive().then(settle, (e: unknown) => {
          if ((e as { code?: string }).code === 'ERR_MEMFD_SOCKET_CLOSED') return settle(null);
          throw e;
        });
      },
      return: (): Promise<IteratorResult<Message>> => {
        finished = true;
        return Promise.resolve(done);
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /**
   * Ends our direction (`shutdown(SHUT_WR)`) once every queued send went out: the peer reads the end of
   * the stream; we can still receive.
   */
  async end(): Promise<void> {
    if (this.#closed) return;
    this.#flushStage();
    await this.#drain();
    if (!this.#closed) binding.socketShutdown(this.#native, SHUT_WR);
  }

  /**
   * Closes the socket at once: pending receives and queued sends reject with `ERR_MEMFD_SOCKET_CLOSED`,
   * a bound path is removed. The fd itself is closed on the next event-loop turn, after libuv stopped
   * watching it. Harmless when already closed.
   */
  close(): void {
    if (this.#closed) return;
    // Sends staged in this run go out first (send(a); send(b); close() delivers both, as it always did);
    // what meets a full buffer is queued and rejected below, as a queued send always was.
    this.#flushStage();
    this.#closed = true;
    binding.socketClose(this.#native);
    const err = closedError('closed while waiting');
    this.#waiters.rejectAll(err);
    for (const q of this.#queue.splice(0)) {
      releaseFds(q.fds, q.pinned);
      q.reject(err);
    }
    // Messages read ahead that nobody got: their fds are ours to close.
    for (let i = this.#inboxHead; i < this.#inbox.length; i++) {
      const item = this.#inbox[i];
      if (item instanceof Message) item.close();
    }
    this.#inbox = [];
    this.#inboxHead = 0;
    this.#connecting?.reject(err);
    this.#connecting = null;
    if (this.#boundPath) unlinkRecorded(this.#boundPath);
    this.#boundPath = null;
    process.nextTick(() => this.emit('close'));
  }

  /** Waits for queued sends to go out (they may fail), then closes. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#flushStage();
    try { await this.#drain(); } catch { /* the sends report their own errors */ }
    this.close();
  }

  get [Symbol.toStringTag](): string {
    return 'UnixSocket';
  }

  async #drain(): Promise<void> {
    const last = this.#queue[this.#queue.length - 1];
    if (!last) return;
    await new Promise<void>((resolve) => {
      const { resolve: res, reject: rej } = last;
      last.resolve = () => { res(); resolve(); };
      last.reject = (e) => { rej(e); resolve(); };
    });
  }

  #waitConnected(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#connecting = { resolve, reject };
      this.#updatePoll();
    });
  }

  #wantsData(): boolean {
    return this.#waiters.length > 0 || this.listenerCount('message') > 0;
  }

  #updatePoll(): void {
    if (this.#closed) return;
    const events = (this.#wantsData() && !this.#ended ? UV_READABLE : 0) |
      (this.#queue.length > 0 || this.#connecting ? UV_WRITABLE : 0);
    if (events !== this.#events) {
      this.#events = events;
      binding.socketPoll(this.#native, events);
    }
  }

  /** @internal called from the poll callback */
  [kOnPoll](events: number): void {
    if (this.#closed) return;
    // A poll error: let the syscalls report what happened.
    if (events < 0) events = UV_READABLE | UV_WRITABLE;
    if (this.#connecting && events & UV_WRITABLE) {
      const c = this.#connecting;
      this.#connecting = null;
      let err = 0;
      try { err = binding.socketError(this.#native); } catch (e) { c.reject(e); return; }
      if (err) c.reject(new SystemError(err, 'connect'));
      else c.resolve();
    }
    if (events & UV_WRITABLE) this.#flush();
    if (events & UV_READABLE) this.#read();
    this.#updatePoll();
  }

  #sendError(e: unknown): unknown {
    if (e instanceof SystemError && e.code === 'EMSGSIZE') {
      return e.withHint('the message is larger than the socket can carry in one datagram (SO_SNDBUF); send a memfd instead');
    }
    if (e instanceof SystemError && e.code === 'ETOOMANYREFS') {
      return e.withHint('too many fds are in flight on Unix sockets for this user (limit: RLIMIT_NOFILE)');
    }
    return e;
  }

  #flush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const q = this.#queue[0]!;
        let n: number;
        try {
          n = binding.socketSend(this.#native, q.data, q.offset, q.data.length - q.offset, q.fds);
        } catch (e) {
          const err = this.#sendError(e);
          const failed = e instanceof SystemError && PEER_GONE.has(e.code) ? this.#queue.splice(0) : this.#queue.splice(0, 1);
          for (const f of failed) {
            releaseFds(f.fds, f.pinned);
            f.reject(err);
          }
          continue;
        }
        if (n < 0) break; // EAGAIN: wait for writability
        if (q.fds) {
          releaseFds(q.fds, q.pinned);
          q.fds = null;
          q.owners = null;
        }
        q.offset += n;
        if (q.offset >= q.data.length) {
          this.#queue.shift();
          q.resolve();
        }
      }
    } finally {
      this.#flushing = false;
      this.#updatePoll();
    }
  }

  #read(): void {
    if (this.#reading) return; // a 'message' listener called receive(): the running loop serves it
    this.#reading = true;
    let resetSeen = false;
    let batches = 0;
    try {
      while (!this.#closed && this.#wantsData()) {
        if (this.#inboxHead < this.#inbox.length) {
          const item = this.#shiftInbox(this.#waiters.peek() ?? this.#maxFds);
          if (item instanceof Message) this.#deliver(item);
          else this.#deliverError(item);
          continue;
        }
        if (this.#ended) break;
        // One batch per call: the poll is level-triggered, so what is still queued (or arrives) wakes us
        // again. Trying again at once would cost a FIONREAD and a peek that mostly say EAGAIN.
        if (batches > 0) break;
        batches++;
        const maxFds = this.#waiters.peek() ?? this.#maxFds;
        let r: ReturnType<typeof binding.socketRecvBatch>;
        try {
          // A receive with its own fd budget reads exactly one message under it.
          r = binding.socketRecvBatch(this.#native, maxFds, maxFds === this.#maxFds ? BATCH_MESSAGES : 1);
        } catch (e) {
          if (e instanceof SystemError && e.code === 'ECONNRESET' && !resetSeen) {
            // The peer closed with our messages to it unread. The kernel reports that once (the error is
            // consumed by this recvmsg) and then still delivers every message the peer had sent us, then
            // end of stream: keep reading, or those messages would be lost.
            resetSeen = true;
            batches = 0;
            continue;
          }
          if (e instanceof SystemError && PEER_GONE.has(e.code)) {
            this.#end();
          } else {
            this.#deliverError(e);
          }
          break;
        }
        resetSeen = false;
        if (r === null) break; // EAGAIN
        if (r === 0) {
          this.#end();
          break;
        }
        this.#fill(r[0], r[1], r[2], maxFds);
      }
    } finally {
      this.#reading = false;
      this.#updatePoll();
    }
  }

  /** Turns one native batch into queued Messages (views into its one buffer) and failures, in order. */
  #fill(data: Buffer, meta: Int32Array, batch: NativeBatch | null, maxFds: number): void {
    const count = meta[0]!;
    const inbox = this.#inbox.length === this.#inboxHead ? (this.#inbox = []) : this.#inbox;
    if (inbox.length === 0) this.#inboxHead = 0;
    let fdAt = 1 + count * 5;
    let first = 0;
    for (let i = 0, m = 1; i < count; i++, m += 5) {
      const offset = meta[m]!, length = meta[m + 1]!, flags = meta[m + 2]!, arrived = meta[m + 3]!, nfds = meta[m + 4]!;
      if (flags & (RECV_FDS_TRUNCATED | RECV_DATA_TRUNCATED)) {
        // The native side closed the fds that did arrive (none delivered).
        inbox.push(new QueuedFailure(flags & RECV_FDS_TRUNCATED
          ? stateError('ERR_MEMFD_FDS_TRUNCATED', arrived < maxFds
            // The kernel also truncates when it cannot install an fd: the process is out of fd numbers.
            ? `the kernel could not hand over every fd of a message: ${arrived} arrived before this process ` +
              `reached its open-file limit (ulimit -n: ${openFileLimit()}); they were closed. Close fds you do not ` +
              'need (msg.close(), file.close()) rather than leaving them to the garbage collector'
            : `a message carried more fds than the receiver's budget (maxFds ${maxFds}); ` +
              'the kernel dropped the rest, and the ones that arrived were closed')
          : stateError('ERR_MEMFD_DATA_TRUNCATED', `a datagram was larger than the receive buffer (${length} bytes kept); its fds were closed`),
        maxFds));
        continue;
      }
      let fds = NO_FDS;
      if (nfds > 0) {
        const list = new Array<number>(nfds);
        for (let k = 0; k < nfds; k++) list[k] = meta[fdAt + k]!;
        fds = Object.freeze(list);
        fdAt += nfds;
      }
      // Buffer.from(arrayBuffer, offset, length) is a view, cheaper than subarray() (no species lookup).
      const bytes = count === 1 && offset === 0 && length === data.length ? data : Buffer.from(data.buffer, data.byteOffset + offset, length);
      inbox.push(new Message(bytes, fds, batch, first));
      first += nfds;
    }
  }

  /**
   * The next item read ahead. A message with more fds than the budget of the receive it goes to is
   * refused as the kernel would have refused it (its fds are closed, ERR_MEMFD_FDS_TRUNCATED).
   */
  #shiftInbox(maxFds: number): Message | Error {
    const item = this.#inbox[this.#inboxHead]!;
    this.#inbox[this.#inboxHead++] = undefined as unknown as Message;
    if (this.#inboxHead === this.#inbox.length) {
      this.#inbox = [];
      this.#inboxHead = 0;
    }
    if (item instanceof QueuedFailure) return item.error;
    if (item.fdCount > maxFds) {
      item.close();
      return stateError('ERR_MEMFD_FDS_TRUNCATED', `a message carried more fds than the receiver's budget (maxFds ${maxFds}); ` +
        'the ones that arrived were closed');
    }
    return item;
  }

  #deliver(msg: Message): void {
    if (this.#waiters.resolveNext(msg)) return;
    if (this.listenerCount('message') > 0) this.emit('message', msg);
    else msg.close(); // unreachable: we only read while someone wants data
  }

  #deliverError(e: unknown): void {
    if (this.#waiters.rejectNext(e)) return;
    if (this.listenerCount('error') > 0) this.emit('error', e);
    else process.emitWarning(e as Error);
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#waiters.resolveAll(null);
    process.nextTick(() => this.emit('end'));
  }
}

function openFileLimit(): string {
  try {
    const [soft] = binding.fdLimit();
    return soft === Infinity ? 'unlimited' : String(soft);
  } catch {
    return 'unknown';
  }
}

/** Lets go of what kept a queued message's fds alive. */
function releaseFds(handles: NativeHandle[] | null, pinned: boolean[]): void {
  if (!handles) return;
  handles.forEach((h, i) => {
    if (pinned[i]) binding.handleUnpin(h);
    else binding.handleClose(h);
  });
}

function inspect(fd: number): [number, boolean] {
  try {
    return binding.socketInspect(fd);
  } catch (e) {
    if (e instanceof SystemError && e.code === 'ENOTSOCK') throw e.withHint(`fd ${fd} is not a socket; the fd was left open`);
    if (e instanceof SystemError && e.code === 'EAFNOSUPPORT') throw e.withHint(`fd ${fd} is not a Unix domain socket; the fd was left open`);
    if (e instanceof SystemError && e.code === 'EBADF') throw e.withHint(`fd ${fd} is not open`);
    throw e;
  }
}

function explainConnect(e: unknown, path: string): unknown {
  if (!(e instanceof SystemError)) return e;
  const abstract = path.startsWith('\0');
  const shown = abstract ? `abstract address ${JSON.stringify(path.slice(1))}` : JSON.stringify(path);
  switch (e.code) {
    case 'ENOENT': return e.withHint(`nothing listens at ${shown}`);
    case 'ECONNREFUSED':
      // An abstract address vanishes with its last socket, so there is no stale file to suspect.
      return e.withHint(abstract ? `no process listens at ${shown}`
        : `no process accepts connections at ${shown} (a stale socket file?)`);
    case 'EPROTOTYPE': return e.withHint(`the socket at ${shown} has a different type`);
    case 'EAGAIN': return e.withHint(`the listener at ${shown} did not accept in time (backlog full)`);
    default: return e;
  }
}

function recordPath(path: string): { path: string; dev: number; ino: number } | null {
  if (path.startsWith('\0')) return null;
  try {
    const st = lstatSync(path);
    return { path, dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

/** Removes a socket file we created, unless someone replaced it since. */
function unlinkRecorded(rec: { path: string; dev: number; ino: number }): void {
  try {
    const st = lstatSync(rec.path);
    if (st.dev === rec.dev && st.ino === rec.ino && st.isSocket()) unlinkSync(rec.path);
  } catch { /* already gone */ }
}

/** Typed events of {@link UnixServer}: `'connection'` (an accepted {@link UnixSocket}), `'error'`, `'close'`. */
export interface UnixServer {
  on(event: 'connection', listener: (socket: UnixSocket) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'connection', listener: (socket: UnixSocket) => void): this;
  once(event: 'close', listener: () => void): this;
  once(event: 'error', listener: (error: Error) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/**
 * A listening Unix socket: accepts connections as {@link UnixSocket}s.
 *
 * `accept()`, `for await (const socket of server)` and `'connection'` events take connections (accepting
 * only while someone asks). `close()` stops listening and removes the socket file it created.
 * Events: `'connection'` (UnixSocket), `'close'`, `'error'`.
 */
export class UnixServer extends EventEmitter implements AsyncDisposable, AsyncIterable<UnixSocket> {
  #native: NativeSocket;
  #type: SocketType;
  #maxFds: number;
  /** The number users see, made on first use of `fd` (native/socket.c); -1 until then. */
  #shownFd = -1;
  #address: string;
  #closed = false;
  #events = 0;
  #accepting = false;
  /** Pending accept() calls. */
  #waiters = new WaiterQueue<UnixSocket>(() => this.#updatePoll());
  #path: { path: string; dev: number; ino: number } | null;

  /** @internal use {@link UnixServer.listen} or {@link UnixServer.fromFd}. */
  constructor(native: NativeSocket, type: SocketType, maxFds: number, address: string, owned: boolean) {
    if (!constructing.allowed) throw new TypeError('Illegal constructor: use UnixServer.listen() or UnixServer.fromFd()');
    super();
    this.#native = native;
    this.#type = type;
    this.#maxFds = maxFds;
    this.#address = address;
    this.#path = owned ? recordPath(address) : null;
    binding.socketAttach(native, this);
    this.on('newListener', (event) => { if (event === 'connection') process.nextTick(() => this.#accept()); });
    this.on('removeListener', (event) => { if (event === 'connection') this.#updatePoll(); });
    markUncloneable(this);
  }

  static #wrap(native: NativeSocket, type: SocketType, maxFds: number, address: string, owned: boolean): UnixServer {
    constructing.allowed = true;
    try {
      return new UnixServer(native, type, maxFds, address, owned);
    } finally {
      constructing.allowed = false;
    }
  }

  /**
   * Listens at a filesystem path or an abstract address (`'\0name'`). Type `'seqpacket'` (default) or
   * `'stream'`; datagram sockets do not connect: use {@link UnixSocket.bindTo}. A stale socket file is not
   * removed for you (EADDRINUSE): remove it if you know no one listens there.
   */
  static async listen(path: string, options?: ListenOptions): Promise<UnixServer> {
    const address = toAddress(path);
    const opts = toOptions<ListenOptions>(options);
    const type = toType(opts.type);
    if (type === 'dgram') throw invalidArgValue('options.type', type, "must be 'seqpacket' or 'stream' (datagram sockets do not listen; use UnixSocket.bindTo)");
    const maxFds = toMaxFds(opts.maxFds, 'options.maxFds', MAX_FDS_PER_MESSAGE);
    const backlog = opts.backlog === undefined ? 511 : toInt(opts.backlog, 'options.backlog', 0, 65535);
    let native: NativeSocket;
    try {
      native = binding.socketListen(SOCK_TYPES[type], address, backlog);
    } catch (e) {
      if (e instanceof SystemError && e.code === 'EADDRINUSE') {
        throw e.withHint(`${path.startsWith('\0') ? 'the abstract address' : 'the path'} ${JSON.stringify(path)} is taken ` +
          '(a stale socket file from a previous run? remove it first if nobody listens)');
      }
      throw e;
    }
    return UnixServer.#wrap(native, type, maxFds, path, true);
  }

  /** Adopts an inherited listening socket (e.g. systemd socket activation: fd 3). The fd is left open on failure. */
  static fromFd(fd: number, options?: SocketOptions): UnixServer {
    toFd(fd);
    const opts = toOptions<SocketOptions>(options);
    const maxFds = toMaxFds(opts.maxFds, 'options.maxFds', MAX_FDS_PER_MESSAGE);
    const [typeNum, listening] = inspect(fd);
    const type = TYPE_NAMES[typeNum];
    if (!listening || type === undefined || type === 'dgram') {
      throw stateError('ERR_MEMFD_NOT_LISTENING', `fd ${fd} is not a listening stream or seqpacket Unix socket; the fd was left open`);
    }
    if (opts.type !== undefined && toType(opts.type) !== type) {
      throw stateError('ERR_MEMFD_SOCKET_TYPE', `fd ${fd} is a ${type} socket, not ${opts.type}; the fd was left open`);
    }
    const native = binding.socketAdopt(fd, typeNum);
    return UnixServer.#wrap(native, type, maxFds, '', false);
  }

  /** The address given to listen() ('' for an adopted fd). */
  get address(): string {
    return this.#address;
  }

  /** The type of the connections it accepts. */
  get type(): SocketType {
    return this.#type;
  }

  /** The listening fd to give to others, or -1 once closed: a duplicate, as for {@link UnixSocket.fd}. */
  get fd(): number {
    if (this.#closed) return -1;
    if (this.#shownFd < 0) this.#shownFd = binding.socketFd(this.#native);
    return this.#shownFd;
  }

  /** True after {@link UnixServer.close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The next connection. Rejects with `ERR_MEMFD_SOCKET_CLOSED` after close, `AbortError` on abort. */
  accept(options?: { signal?: AbortSignal }): Promise<UnixSocket> {
    let signal: AbortSignal | undefined;
    try {
      signal = toOptions<{ signal?: AbortSignal }>(options).signal;
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgType('options.signal', 'an AbortSignal', signal);
      if (signal?.aborted) throw abortError(signal);
      if (this.#closed) throw closedError('accept');
    } catch (e) {
      return Promise.reject(e);
    }
    const socket = this.#waiters.wait(undefined, signal);
    this.#accept();
    return socket;
  }

  /** Iterates over accepted connections until close(). */
  async *[Symbol.asyncIterator](): AsyncIterator<UnixSocket> {
    for (;;) {
      try {
        yield await this.accept();
      } catch (e) {
        if ((e as { code?: string }).code === 'ERR_MEMFD_SOCKET_CLOSED') return;
        throw e;
      }
    }
  }

  /** Stops listening, rejects pending accepts and removes the socket file this server created. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    binding.socketClose(this.#native);
    this.#waiters.rejectAll(closedError('server closed while waiting'));
    if (this.#path) unlinkRecorded(this.#path);
    this.#path = null;
    process.nextTick(() => this.emit('close'));
  }

  /** Same as {@link UnixServer.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  get [Symbol.toStringTag](): string {
    return 'UnixServer';
  }

  #wants(): boolean {
    return this.#waiters.length > 0 || this.listenerCount('connection') > 0;
  }

  #updatePoll(): void {
    if (this.#closed) return;
    const events = this.#wants() ? UV_READABLE : 0;
    if (events !== this.#events) {
      this.#events = events;
      binding.socketPoll(this.#native, events);
    }
  }

  /** @internal */
  [kOnPoll](_events: number): void {
    this.#accept();
  }

  #accept(): void {
    if (this.#accepting) return;
    this.#accepting = true;
    try {
      while (!this.#closed && this.#wants()) {
        let native: NativeSocket | null;
        try {
          native = binding.socketAccept(this.#native);
        } catch (e) {
          if (this.#waiters.rejectNext(e)) break;
          if (this.listenerCount('error') > 0) this.emit('error', e);
          else process.emitWarning(e as Error);
          break;
        }
        if (native === null) break;
        const socket = UnixSocket.wrap(native, this.#type, this.#maxFds);
        if (!this.#waiters.resolveNext(socket)) this.emit('connection', socket);
      }
    } finally {
      this.#accepting = false;
      this.#updatePoll();
    }
  }
}
