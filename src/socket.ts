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
 * closed by hand is left alone, even after the kernel has given its number to another file.
 * `msg.take(i)` makes the message forget an fd without closing it (for example to post it to a Worker).
 * @module
 */
import { EventEmitter } from 'node:events';
import { lstatSync, unlinkSync } from 'node:fs';
import { binding, type NativeHandle, type NativeSocket } from './binding.js';
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

interface FdItem {
  /** A raw number to send (-1 for a MemFile, which is sent by handle). */
  fd: number;
  /** The native handle of a MemFile: sent as is, and pinned instead of duplicated when the send has to wait. */
  handle?: NativeHandle;
}

function toFdList(value: unknown): FdItem[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalidArgType('fds', 'an array of fds (numbers or objects with an fd)', value);
  if (value.length > MAX_FDS_PER_MESSAGE) {
    throw outOfRange('fds.length', `at most ${MAX_FDS_PER_MESSAGE} (SCM_MAX_FD: the kernel refuses more fds in one message)`, value.length);
  }
  return value.map((item: unknown, i): FdItem => {
    if (typeof item === 'number') return { fd: toFd(item, `fds[${i}]`) };
    // A MemFile goes by its handle: the private fd it works on, not a number someone may have closed.
    if (item instanceof MemFile) {
      if (item.closed) throw stateError('ERR_MEMFD_CLOSED', `fds[${i}] is a closed MemFile`);
      return { fd: -1, handle: fileInternals(item).handle };
    }
    if (item !== null && typeof item === 'object' && 'fd' in item) {
      const fd = (item as { fd: unknown }).fd;
      if (fd === -1) throw stateError('ERR_MEMFD_CLOSED', `fds[${i}] is closed (its fd is -1)`);
      return { fd: toFd(fd, `fds[${i}].fd`) };
    }
    throw invalidArgType(`fds[${i}]`, 'a number or an object with an fd', item);
  });
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
  /** The payload (for stream sockets: what one `recvmsg` delivered). */
  readonly data: Buffer;
  /** The fd numbers that arrived, in order (close-on-exec set). */
  readonly fds: readonly number[];
  #handles: (NativeHandle | null)[];

  /** @internal */
  constructor(data: Buffer, handles: NativeHandle[]) {
    this.data = data;
    this.#handles = handles;
    // No registry of received numbers: MemFile.fromFd / UnixSocket.fromFd find the handle that owns a
    // received fd in the native owned-fd table and take the fd over from it (same thread only).
    this.fds = Object.freeze(handles.map((h) => binding.handleFd(h)));
    markUncloneable(this);
  }

  /**
   * Makes the message forget the fd at `index` (default 0) and returns its number: `msg.close()` and the
   * garbage collector will not close it, so you must (or pass it to something that does, such as a
   * Worker). Throws `ERR_MEMFD_FD_TAKEN` if it was already taken, adopted or closed through the message.
   */
  take(index = 0): number {
    toInt(index, 'index', 0, Math.max(0, this.fds.length - 1));
    const h = this.#handles[index];
    if (h === undefined) throw outOfRange('index', `< ${this.fds.length} (the message has ${this.fds.length} fds)`, index);
    // handleFd is -1 once the fd was adopted (MemFile.fromFd...): the native hand-over emptied the handle.
    if (h === null || binding.handleFd(h) < 0) {
      throw stateError('ERR_MEMFD_FD_TAKEN', `fd ${this.fds[index]} of this message was already taken or closed`);
    }
    this.#handles[index] = null;
    return binding.handleDetach(h);
  }

  /** Takes every fd not yet taken (see {@link Message.take}); returns their numbers. */
  takeFds(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.#handles.length; i++) {
      const h = this.#handles[i];
      if (h && binding.handleFd(h) >= 0) out.push(this.take(i));
    }
    return out;
  }

  /** Closes every fd not taken, adopted or closed by hand. Harmless to call twice. */
  close(): void {
    for (let i = 0; i < this.#handles.length; i++) {
      const h = this.#handles[i];
      if (!h) continue;
      this.#handles[i] = null;
      binding.handleClose(h);
    }
  }

  /** Same as {@link Message.close}: `using msg = await socket.receive()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  get [Symbol.toStringTag](): string {
    return 'Message';
  }
}

interface QueuedSend {
  data: Uint8Array;
  offset: number;
  /**
   * What keeps the fds alive while queued: pinned MemFile handles (unpinned once sent or failed) and our
   * own duplicates of raw fd numbers (closed once sent or failed); null once sent.
   */
  fds: NativeHandle[] | null;
  pinned: boolean[];
  resolve(): void;
  reject(e: unknown): void;
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
  #queue: QueuedSend[] = [];
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

  /** Sends waiting in the queue for the socket to become writable. */
  get pendingSends(): number {
    return this.#queue.length;
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
   * Rejects with `EPIPE`/`ECONNRESET` when the peer is gone (never a SIGPIPE), `ERR_MEMFD_SOCKET_CLOSED`
   * after close, and argument errors (e.g. a RangeError for more than 253 fds) before any syscall.
   * On a stream socket a partial write keeps the rest queued; the fds travel with the first byte.
   */
  send(data?: SendData | null, fds?: readonly FdLike[] | null): Promise<void> {
    let bytes: Uint8Array, items: FdItem[];
    try {
      bytes = byteView(toData(data));
      items = toFdList(fds);
      if (this.#closed) throw closedError('send');
      if (this.#type === 'stream' && items.length > 0 && bytes.length === 0) {
        throw invalidArgValue('data', '', 'must hold at least one byte on a stream socket that sends fds (the kernel drops fds sent with no data)');
      }
    } catch (e) {
      return Promise.reject(e);
    }
    let offset = 0;
    if (this.#queue.length === 0 && this.#connecting === null) {
      let n: number;
      try {
        n = binding.socketSend(this.#native, bytes, 0, bytes.length, items.length ? items.map((i) => i.handle ?? i.fd) : null);
      } catch (e) {
        return Promise.reject(this.#sendError(e));
      }
      if (n >= bytes.length) return Promise.resolve();
      if (n >= 0) {
        // Partial stream write: the fds went with the bytes the kernel took; queue only the rest.
        offset = n;
        items = [];
      }
    }
    // The send has to wait. Keep the files alive on our side: the caller may close its fds (and the kernel
    // reuse the numbers) before we get to send. MemFile handles are pinned (their close is deferred);
    // raw numbers are duplicated.
    const handles: NativeHandle[] = [];
    const pinned: boolean[] = [];
    try {
      for (const item of items) {
        if (item.handle) {
          binding.handlePin(item.handle);
          handles.push(item.handle);
          pinned.push(true);
        } else {
          handles.push(binding.dupFd(item.fd));
          pinned.push(false);
        }
      }
    } catch (e) {
      releaseFds(handles, pinned);
      return Promise.reject(e);
    }
    // Copy the bytes too: the caller may reuse its buffer as soon as send() returns.
    const copy = Uint8Array.prototype.slice.call(bytes, offset);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ data: copy, offset: 0, fds: handles.length ? handles : null, pinned, resolve, reject });
      this.#updatePoll();
    });
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
    if (this.#ended) return Promise.resolve(null);
    const message = this.#waiters.wait(maxFds, signal);
    this.#read();
    return message;
  }

  /** Iterates over messages until the end of the stream or close(). */
  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    for (;;) {
      let msg: Message | null;
      try {
        msg = await this.receive();
      } catch (e) {
        if ((e as { code?: string }).code === 'ERR_MEMFD_SOCKET_CLOSED') return;
        throw e;
      }
      if (msg === null) return;
      yield msg;
    }
  }

  /**
   * Ends our direction (`shutdown(SHUT_WR)`) once every queued send went out: the peer reads the end of
   * the stream; we can still receive.
   */
  async end(): Promise<void> {
    if (this.#closed) return;
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
    this.#closed = true;
    binding.socketClose(this.#native);
    const err = closedError('closed while waiting');
    this.#waiters.rejectAll(err);
    for (const q of this.#queue.splice(0)) {
      releaseFds(q.fds, q.pinned);
      q.reject(err);
    }
    this.#connecting?.reject(err);
    this.#connecting = null;
    if (this.#boundPath) unlinkRecorded(this.#boundPath);
    this.#boundPath = null;
    process.nextTick(() => this.emit('close'));
  }

  /** Waits for queued sends to go out (they may fail), then closes. */
  async [Symbol.asyncDispose](): Promise<void> {
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
    try {
      while (!this.#closed && !this.#ended && this.#wantsData()) {
        const maxFds = this.#waiters.peek() ?? this.#maxFds;
        let r: ReturnType<typeof binding.socketRecv>;
        try {
          r = binding.socketRecv(this.#native, maxFds);
        } catch (e) {
          if (e instanceof SystemError && e.code === 'ECONNRESET' && !resetSeen) {
            // The peer closed with our messages to it unread. The kernel reports that once (the error is
            // consumed by this recvmsg) and then still delivers every message the peer had sent us, then
            // end of stream: keep reading, or those messages would be lost.
            resetSeen = true;
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
        const [data, handles, flags, arrived] = r;
        if (flags & (RECV_FDS_TRUNCATED | RECV_DATA_TRUNCATED)) {
          for (const h of handles) binding.handleClose(h);
          this.#deliverError(flags & RECV_FDS_TRUNCATED
            ? stateError('ERR_MEMFD_FDS_TRUNCATED', arrived < maxFds
              // The kernel also truncates when it cannot install an fd: the process is out of fd numbers.
              ? `the kernel could not hand over every fd of a message: ${arrived} arrived before this process ` +
                `reached its open-file limit (ulimit -n: ${openFileLimit()}); they were closed. Close fds you do not ` +
                'need (msg.close(), file.close()) rather than leaving them to the garbage collector'
              : `a message carried more fds than the receiver's budget (maxFds ${maxFds}); ` +
                'the kernel dropped the rest, and the ones that arrived were closed')
            : stateError('ERR_MEMFD_DATA_TRUNCATED', `a datagram was larger than the receive buffer (${data.length} bytes kept); its fds were closed`));
          continue;
        }
        this.#deliver(new Message(data, handles));
      }
    } finally {
      this.#reading = false;
      this.#updatePoll();
    }
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
  const shown = path.startsWith('\0') ? `abstract address ${JSON.stringify(path.slice(1))}` : JSON.stringify(path);
  switch (e.code) {
    case 'ENOENT': return e.withHint(`nothing listens at ${shown}`);
    case 'ECONNREFUSED': return e.withHint(`no process accepts connections at ${shown} (a stale socket file?)`);
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
