/**
 * Shared snapshots: {@link SnapshotServer} publishes immutable versions of some data (a model, an index, a
 * lookup table) as sealed memfds; every {@link SnapshotClient} (Node, Python, anything that can receive an
 * fd) maps the same physical pages. One copy in RAM however many processes read it, and atomic
 * replacement: a reader holds a whole version until it lets go of it.
 *
 * Built on {@link UnixServer}/{@link UnixSocket} (seqpacket) and {@link MemFile}; the wire protocol is in
 * docs/snapshot.md.
 * @module
 */
import { EventEmitter } from 'node:events';
import { SystemError, invalidArgType, invalidArgValue, stateError } from './errors.js';
import { MemFile } from './memfile.js';
import type { Mapping } from './mapping.js';
import { FROZEN } from './seals.js';
import { UnixServer, UnixSocket, type Message, type PeerCredentials } from './socket.js';
import { toBool, toInt, toOptions } from './validate.js';

// ------------------------------------------------------------------------------------------ wire format
// Every message starts with the same 16 bytes (little-endian): magic, protocol, kind, version.
// A snapshot message continues with size, meta length and a reserved word, then the meta JSON, and
// carries exactly one fd. An acknowledgement is the 16 bytes alone, without fds.

/** 'MFDS' */
const MAGIC = 0x5344464d;
/** Protocol revision; a peer refuses any other. */
export const SNAPSHOT_PROTOCOL = 1;
const KIND_SNAPSHOT = 1;
const KIND_ACK = 2;
const ACK_BYTES = 16;
const SNAPSHOT_HEADER_BYTES = 32;
/**
 * Largest serialized `meta`: a seqpacket message must fit the socket buffer whole (about 208 KiB by
 * default), and meta is for describing the data, not for carrying it.
 */
export const MAX_SNAPSHOT_META_BYTES = 64 * 1024;
const COPY_CHUNK_BYTES = 8 << 20;

function encodeSnapshotMessage(version: number, size: number, metaJson: Buffer): Buffer {
  const b = Buffer.alloc(SNAPSHOT_HEADER_BYTES + metaJson.length);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt16LE(SNAPSHOT_PROTOCOL, 4);
  b.writeUInt16LE(KIND_SNAPSHOT, 6);
  b.writeBigUInt64LE(BigInt(version), 8);
  b.writeBigUInt64LE(BigInt(size), 16);
  b.writeUInt32LE(metaJson.length, 24);
  b.writeUInt32LE(0, 28);
  metaJson.copy(b, SNAPSHOT_HEADER_BYTES);
  return b;
}

function encodeAck(version: number): Buffer {
  const b = Buffer.alloc(ACK_BYTES);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt16LE(SNAPSHOT_PROTOCOL, 4);
  b.writeUInt16LE(KIND_ACK, 6);
  b.writeBigUInt64LE(BigInt(version), 8);
  return b;
}

/** The version a well-formed acknowledgement names, or -1 for anything else. */
function decodeAck(data: Buffer, fdCount: number): number {
  if (fdCount !== 0 || data.length !== ACK_BYTES) return -1;
  if (data.readUInt32LE(0) !== MAGIC || data.readUInt16LE(4) !== SNAPSHOT_PROTOCOL || data.readUInt16LE(6) !== KIND_ACK) return -1;
  const v = data.readBigUInt64LE(8);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(v);
}

function invalidSnapshot(reason: string, cause?: unknown): Error {
  const e = stateError('ERR_MEMFD_SNAPSHOT_INVALID', `the snapshot server sent an invalid message: ${reason}; ` +
    'it was discarded and the connection closed');
  if (cause !== undefined) Object.defineProperty(e, 'cause', { value: cause, configurable: true, writable: true });
  return e;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

// ------------------------------------------------------------------------------------------- snapshots

/** One received version in this process: its fd and (once asked for) its mapping, shared by every handle. */
class SnapshotRecord {
  readonly version: number;
  readonly meta: unknown;
  readonly size: number;
  readonly file: MemFile;
  mapping: Mapping | null = null;
  refs = 0;

  constructor(version: number, meta: unknown, size: number, file: MemFile) {
    this.version = version;
    this.meta = meta;
    this.size = size;
    this.file = file;
  }

  bytes(): Uint8Array {
    if (this.size === 0) return new Uint8Array(0); // mmap cannot map nothing
    // writable: false maps copy-on-write: the library never maps PROT_READ (a stray store would be a SIGSEGV).
    this.mapping ??= this.file.map({ writable: false });
    return this.mapping.bytes;
  }

  release(): void {
    if (--this.refs > 0) return;
    // The last handle of this process: let the pages go now rather than when the collector gets to them.
    this.mapping?.unmap();
    this.mapping = null;
    this.file.close();
  }
}

const constructing = { allowed: false };
/** Set by Snapshot's static block: the client makes handles without a public factory. */
let newSnapshot: (record: SnapshotRecord) => Snapshot;

/**
 * One version of the published data, as a handle this process holds: it stays mapped, readable and
 * unchanged (the file is sealed against writes, shrinking and growing) until the handle is closed,
 * whatever the server publishes next and even after the server is gone.
 *
 * Handles of the same version in one process share one fd and one mapping: {@link Snapshot.retain}
 * makes another handle, and the pages are released when the last handle of the version is closed. A
 * handle that is dropped without close is released by the garbage collector (the MemFile and the Mapping
 * underneath have their own safety nets), but close it: a version pins its memory.
 */
export class Snapshot implements Disposable {
  #record: SnapshotRecord | null;
  readonly #version: number;
  #file: MemFile | null = null;

  /** @internal snapshots come from a {@link SnapshotClient}. */
  constructor(record: SnapshotRecord) {
    if (!constructing.allowed) throw new TypeError('Illegal constructor: snapshots come from a SnapshotClient');
    this.#record = record;
    this.#version = record.version;
    record.refs++;
  }

  static #of(record: SnapshotRecord): Snapshot {
    constructing.allowed = true;
    try {
      return new Snapshot(record);
    } finally {
      constructing.allowed = false;
    }
  }

  static {
    newSnapshot = (record) => Snapshot.#of(record);
  }

  /** The version number the server gave it (1, 2, 3...). Still readable after close. */
  get version(): number {
    return this.#version;
  }

  /** The `meta` the server published with it (parsed JSON, deeply frozen), or null. */
  get meta(): unknown {
    return this.#live('meta').meta;
  }

  /** Size of the data in bytes (the server announced it, and the client checked the file has it). */
  get size(): number {
    return this.#live('size').size;
  }

  /**
   * The data, mapped on first use: a Uint8Array over the pages the server wrote, no copy. "Read-only"
   * means the file cannot change: the view is a copy-on-write mapping, so a stray store changes only this
   * process's copy of that page (seen by every handle of this version in this process), never the file
   * or any other process. After the last handle of the version in this process is closed, views read as
   * empty (the buffer is detached); they never touch released memory.
   */
  get bytes(): Uint8Array {
    return this.#live('bytes').bytes();
  }

  /**
   * The sealed memfd (a duplicate fd owned by this handle and closed with it): to hand the version on
   * to a child process, read it with positional I/O or map a window of it. `dup()` it to keep it longer.
   */
  get file(): MemFile {
    const record = this.#live('file');
    this.#file ??= record.file.dup();
    return this.#file;
  }

  /** True after {@link Snapshot.close}. */
  get closed(): boolean {
    return this.#record === null;
  }

  /** Another handle of the same version, closed independently (for work that outlives this one). */
  retain(): Snapshot {
    return Snapshot.#of(this.#live('retain'));
  }

  /** Lets go of this version (the pages go when every handle of it in this process is closed). Idempotent. */
  close(): void {
    const record = this.#record;
    if (!record) return;
    this.#record = null;
    this.#file?.close();
    this.#file = null;
    record.release();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  get [Symbol.toStringTag](): string {
    return 'Snapshot';
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    const r = this.#record;
    return r ? `Snapshot { version: ${r.version}, size: ${r.size}, meta: ${JSON.stringify(r.meta)} }`
      : `Snapshot { version: ${this.#version}, closed: true }`;
  }

  #live(what: string): SnapshotRecord {
    if (!this.#record) throw stateError('ERR_MEMFD_CLOSED', `Snapshot version ${this.#version} is closed (${what})`);
    return this.#record;
  }
}

// ---------------------------------------------------------------------------------------------- server

/** Options of {@link SnapshotServer.listen} and {@link SnapshotServer.create}. */
export interface SnapshotServerOptions {
  /** `listen(2)` backlog. Default 511. */
  backlog?: number;
  /** Debug name of the memfds made from bytes, shown as `/memfd:NAME-vN` in /proc/PID/fd. Default `'snapshot'`. */
  name?: string;
}

/** Options of {@link SnapshotServer.publish}. */
export interface PublishOptions {
  /** Anything JSON can carry (at most 64 KiB serialized), delivered with the version as {@link Snapshot.meta}. */
  meta?: unknown;
  /**
   * For a MemFile: `true` publishes a sealed copy and leaves your file as it is; by default your file is
   * sealed (Seal | Shrink | Grow | Write) and published as is, and copied only when it cannot be sealed.
   */
  copy?: boolean;
}

/** Data {@link SnapshotServer.publish} accepts: bytes (copied into a new memfd) or a MemFile (no copy). */
export type SnapshotData = ArrayBufferView | ArrayBuffer | SharedArrayBuffer | string | MemFile;

interface Published {
  version: number;
  file: MemFile;
  message: Buffer;
}

interface Peer {
  socket: UnixSocket;
  credentials: PeerCredentials | null;
  /** The version sent and not yet acknowledged (0: none), the only one this client can be holding up. */
  unacked: number;
  /** The newest version sent to it. */
  sent: number;
}

/** A connected client as {@link SnapshotServer.clientList} reports it. */
export interface SnapshotClientInfo extends Partial<PeerCredentials> {
  /** The newest version sent to it (0: none yet). */
  version: number;
  /** True while it has not acknowledged the version it was sent (a slow or stopped client). */
  behind: boolean;
}

/** Typed events of {@link SnapshotServer}: `'client'` (credentials of a new client), `'disconnect'`,
 * `'error'` (errors accepting connections), `'close'`. */
export interface SnapshotServer {
  on(event: 'client' | 'disconnect', listener: (client: Partial<PeerCredentials>) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'client' | 'disconnect', listener: (client: Partial<PeerCredentials>) => void): this;
  once(event: 'close', listener: () => void): this;
  once(event: 'error', listener: (error: Error) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/**
 * Publishes versions of some data to every connected {@link SnapshotClient}.
 *
 * - {@link SnapshotServer.publish} seals the data in a memfd and returns its version at once: it never
 *   waits for a client. A client gets the current version when it connects, and each newer one after it
 *   acknowledged the previous; a client that falls behind (busy, stopped) is sent only the newest version
 *   once it catches up, never a queue of stale ones. So a stuck client pins at most one old version.
 * - The server keeps only the current version's fd: a superseded version is closed here at once (or as
 *   soon as its last pending send went out); its memory is freed when the last process lets go of it.
 * - A client that sends anything but a well-formed acknowledgement of the version it was sent, or that
 *   disconnects, is dropped; nothing a client does can make the server throw or wait.
 */
export class SnapshotServer extends EventEmitter implements AsyncDisposable, Disposable {
  #listener: UnixServer | null;
  #name: string;
  #peers = new Set<Peer>();
  #current: Published | null = null;
  #version = 0;
  #closed = false;

  /** @internal use {@link SnapshotServer.listen} or {@link SnapshotServer.create}. */
  constructor(listener: UnixServer | null, name: string) {
    if (!constructing.allowed) throw new TypeError('Illegal constructor: use SnapshotServer.listen() or SnapshotServer.create()');
    super();
    this.#listener = listener;
    this.#name = name;
    if (listener) {
      listener.on('connection', (socket) => this.#addPeer(socket));
      listener.on('error', (e) => {
        if (this.listenerCount('error') > 0) this.emit('error', e);
      });
    }
  }

  static #make(listener: UnixServer | null, name: string): SnapshotServer {
    constructing.allowed = true;
    try {
      return new SnapshotServer(listener, name);
    } finally {
      constructing.allowed = false;
    }
  }

  /**
   * Listens for clients at a filesystem path or an abstract address (`'\0name'`), as a seqpacket socket.
   * `close()` removes the socket file it created.
   */
  static async listen(path: string, options?: SnapshotServerOptions): Promise<SnapshotServer> {
    const opts = toOptions<SnapshotServerOptions>(options);
    const name = toName(opts.name);
    const backlog = opts.backlog === undefined ? undefined : toInt(opts.backlog, 'options.backlog', 0, 65535);
    // maxFds 0: a client has no reason to send fds; any it sends are closed on arrival and drop it.
    const listener = await UnixServer.listen(path, { type: 'seqpacket', maxFds: 0, ...(backlog === undefined ? {} : { backlog }) });
    return SnapshotServer.#make(listener, name);
  }

  /**
   * A server that does not listen: clients are added with {@link SnapshotServer.addClient} (for example
   * one end of a `UnixSocket.pair()` whose other end a child process adopts with `SnapshotClient.fromFd`).
   */
  static create(options?: SnapshotServerOptions): SnapshotServer {
    const opts = toOptions<SnapshotServerOptions>(options);
    return SnapshotServer.#make(null, toName(opts.name));
  }

  /**
   * Serves a connected seqpacket socket as a client (it is sent the current version at once). The server
   * owns the socket from now on and closes it when the client goes or the server closes.
   */
  addClient(socket: UnixSocket): void {
    if (!(socket instanceof UnixSocket)) throw invalidArgType('socket', 'an instance of UnixSocket', socket);
    if (socket.type !== 'seqpacket') throw invalidArgValue('socket', socket.type, "must be a 'seqpacket' socket (the protocol needs message boundaries)");
    if (socket.closed) throw stateError('ERR_MEMFD_SOCKET_CLOSED', 'addClient: the socket is closed');
    if (this.#closed) throw stateError('ERR_MEMFD_SOCKET_CLOSED', 'addClient: the snapshot server is closed');
    this.#addPeer(socket);
  }

  /** The address it listens at ('' when it does not listen). */
  get address(): string {
    return this.#listener?.address ?? '';
  }

  /** The newest published version (0 before the first publish). */
  get version(): number {
    return this.#version;
  }

  /** How many clients are connected now. Clients that disconnected or were dropped are not counted. */
  get clients(): number {
    return this.#peers.size;
  }

  /** The connected clients: who they are (`SO_PEERCRED`) and how far they got. */
  clientList(): SnapshotClientInfo[] {
    return [...this.#peers].map((p) => ({ ...p.credentials, version: p.sent, behind: p.unacked !== 0 }));
  }

  /** True after {@link SnapshotServer.close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Publishes a new version and returns its number (1, 2, 3...). Never waits for a client.
   *
   * - Bytes (Buffer, TypedArray, DataView, (Shared)ArrayBuffer, string as UTF-8) are copied into a new memfd, which
   *   is sealed (Seal | Shrink | Grow | Write) before any client can see it.
   * - A MemFile is published without a copy: it is sealed in place, so it becomes immutable for every
   *   holder, you included (a frozen file is used as it is). A file that cannot take the seals (created
   *   without sealing, already carrying `Seal.Seal`, or a read-only handle) is copied instead, as with
   *   `{ copy: true }`; a copy reads the file as it is at that moment. A file with writable shared
   *   mappings is refused with `EBUSY` (sealing it would break the writer, copying it would race it): unmap
   *   them, or pass `{ copy: true }`. You keep your MemFile and close it when you like.
   */
  publish(data: SnapshotData, options?: PublishOptions): number {
    const opts = toOptions<PublishOptions>(options);
    const copy = toBool(opts.copy, 'options.copy', false);
    const metaJson = toMetaJson(opts.meta);
    if (!(data instanceof MemFile) && typeof data !== 'string' && !ArrayBuffer.isView(data) && !(data instanceof ArrayBuffer) &&
      !(typeof SharedArrayBuffer !== 'undefined' && data instanceof SharedArrayBuffer)) {
      throw invalidArgType('data', 'of type string or an instance of Buffer, TypedArray, DataView, ArrayBuffer, SharedArrayBuffer or MemFile', data);
    }
    if (data instanceof MemFile && data.closed) throw stateError('ERR_MEMFD_CLOSED', 'publish: the MemFile is closed');
    if (this.#closed) throw stateError('ERR_MEMFD_SOCKET_CLOSED', 'publish: the snapshot server is closed');
    const version = this.#version + 1;
    const file = data instanceof MemFile ? this.#sealedFile(data, copy, version) : MemFile.from(data, { name: `${this.#name}-v${version}` });
    let size: number;
    try {
      size = file.size;
    } catch (e) {
      file.close();
      throw e;
    }
    this.#version = version;
    const previous = this.#current;
    this.#current = { version, file, message: encodeSnapshotMessage(version, size, metaJson) };
    // A send still waiting for socket space keeps its file open (UnixSocket pins it): closing here only
    // drops the server's own hold, so a superseded version lives exactly as long as someone needs it.
    previous?.file.close();
    for (const peer of this.#peers) {
      if (peer.unacked === 0) this.#send(peer);
    }
    return version;
  }

  /**
   * Stops listening, hands the current version to every client that does not have it yet, disconnects
   * every client and closes the current version's fd. Snapshots that clients hold stay valid. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener?.close();
    const current = this.#current;
    for (const peer of this.#peers) {
      // Without waiting for the acknowledgement: the message stays readable in the client's socket after
      // we close our end, so a client that was busy still ends on the newest version. (If the socket is
      // full the send is dropped with the connection: that client keeps the version it has.)
      if (current && peer.sent < current.version) peer.socket.send(current.message, [current.file]).catch(() => {});
      peer.socket.close();
    }
    this.#peers.clear();
    this.#current?.file.close();
    this.#current = null;
    process.nextTick(() => this.emit('close'));
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  get [Symbol.toStringTag](): string {
    return 'SnapshotServer';
  }

  #sealedFile(source: MemFile, copy: boolean, version: number): MemFile {
    if (!copy) {
      if (!source.getSeals().has(FROZEN)) {
        try {
          source.addSeals(FROZEN);
        } catch (e) {
          // EBUSY: writable shared mappings. Sealing would fail for the writer and a copy would race it.
          if (e instanceof SystemError && e.code === 'EBUSY') {
            throw e.withHint('publish() seals the MemFile it is given (seal, shrink, grow, write), which needs every writable ' +
              'shared mapping of it gone: unmap them first, or publish it with { copy: true } if nobody writes to it meanwhile');
          }
          if ((e as { code?: string }).code !== 'EPERM') throw e;
          return copyToSealedFile(source, `${this.#name}-v${version}`);
        }
      }
      // Our own fd: the caller may close theirs as soon as publish returns.
      return source.dup();
    }
    return copyToSealedFile(source, `${this.#name}-v${version}`);
  }

  #addPeer(socket: UnixSocket): void {
    if (this.#closed) {
      socket.close();
      return;
    }
    let credentials: PeerCredentials | null = null;
    try {
      credentials = socket.peerCredentials;
    } catch { /* a socket pair from elsewhere may not tell; the client is served anyway */ }
    const peer: Peer = { socket, credentials, unacked: 0, sent: 0 };
    this.#peers.add(peer);
    if (this.#current) this.#send(peer);
    void this.#serve(peer);
    if (this.listenerCount('client') > 0) this.emit('client', { ...credentials });
  }

  #send(peer: Peer): void {
    const current = this.#current!;
    peer.unacked = current.version;
    peer.sent = current.version;
    peer.socket.send(current.message, [current.file]).catch(() => this.#drop(peer));
  }

  /** Reads a client's acknowledgements until it goes away or says something else. */
  async #serve(peer: Peer): Promise<void> {
    try {
      for (;;) {
        const msg: Message | null = await peer.socket.receive();
        if (msg === null) break;
        const acked = decodeAck(msg.data, msg.fds.length);
        msg.close();
        if (acked <= 0 || acked !== peer.unacked) break; // garbage or out of turn: not a client we understand
        peer.unacked = 0;
        if (this.#current && this.#current.version > peer.sent) this.#send(peer);
      }
    } catch { /* truncated or unreadable message, or closed: drop it */ }
    this.#drop(peer);
  }

  #drop(peer: Peer): void {
    if (!this.#peers.delete(peer)) return;
    peer.socket.close();
    if (this.listenerCount('disconnect') > 0) this.emit('disconnect', { ...peer.credentials });
  }
}

function toName(value: unknown): string {
  if (value === undefined) return 'snapshot';
  if (typeof value !== 'string') throw invalidArgType('options.name', 'of type string', value);
  // Room for the '-v<version>' suffix within memfd_create's 249 bytes.
  if (value.includes('\0') || Buffer.byteLength(value) > 220) throw invalidArgValue('options.name', value, 'must be at most 220 bytes, without null bytes');
  return value;
}

function toMetaJson(meta: unknown): Buffer {
  let json: string | undefined;
  try {
    json = JSON.stringify(meta === undefined ? null : meta);
  } catch (e) {
    throw invalidArgValue('options.meta', meta, `must be serializable as JSON (${(e as Error).message})`);
  }
  if (json === undefined) throw invalidArgValue('options.meta', meta, 'must be serializable as JSON');
  const bytes = Buffer.from(json, 'utf8');
  if (bytes.length > MAX_SNAPSHOT_META_BYTES) {
    throw invalidArgValue('options.meta', meta, `must be at most ${MAX_SNAPSHOT_META_BYTES} bytes as JSON (it is ${bytes.length}); put data in the snapshot itself`);
  }
  return bytes;
}

/** A frozen copy of a file as it is now (positional reads: the source's file position is left alone). */
function copyToSealedFile(source: MemFile, name: string): MemFile {
  const size = source.size;
  const target = MemFile.create(name);
  try {
    if (size > 0) {
      target.allocate(0, size);
      const chunk = Buffer.allocUnsafe(Math.min(size, COPY_CHUNK_BYTES));
      for (let off = 0; off < size;) {
        const n = source.readSync(chunk, { offset: 0, length: Math.min(chunk.length, size - off), position: off });
        if (n === 0) break; // the file shrank under us: the copy ends where the file did
        target.writeSync(chunk, { offset: 0, length: n, position: off });
        off += n;
      }
      const copied = target.size;
      if (copied !== size) target.truncate(copied);
    }
    target.addSeals(FROZEN);
    return target;
  } catch (e) {
    target.close();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------- client

/** Options of {@link SnapshotClient.connect}. */
export interface SnapshotClientOptions {
  /** How long to keep retrying while the server's backlog is full, in ms. Default 10000. */
  timeout?: number;
}

/** Typed events of {@link SnapshotClient}: `'snapshot'` (the new {@link SnapshotClient.current}, borrowed),
 * `'end'` (the server went away), `'error'` (an invalid message from the server). */
export interface SnapshotClient {
  on(event: 'snapshot', listener: (snapshot: Snapshot) => void): this;
  on(event: 'end' | 'close', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'snapshot', listener: (snapshot: Snapshot) => void): this;
  once(event: 'end' | 'close', listener: () => void): this;
  once(event: 'error', listener: (error: Error) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/**
 * Receives the versions a {@link SnapshotServer} publishes.
 *
 * It reads from the server in the background as long as it is open (like a `net.Socket` with a
 * `'data'` listener, it keeps the process alive until {@link SnapshotClient.close}), checks every message
 * (a real memfd, sealed Seal | Shrink | Grow | Write, of the size announced: otherwise the connection is
 * closed with `ERR_MEMFD_SNAPSHOT_INVALID`) and keeps the newest version as {@link SnapshotClient.current}.
 *
 * `for await (const snap of client)` yields the newest version first, then each newer one, skipping
 * versions that were superseded before the loop got to them; it ends when the server goes away or the
 * client is closed, and throws `ERR_MEMFD_SNAPSHOT_INVALID` after a bad message. Every yielded
 * {@link Snapshot} is yours: close it when you have switched to the next one.
 */
export class SnapshotClient extends EventEmitter implements AsyncIterable<Snapshot>, AsyncDisposable, Disposable {
  #socket: UnixSocket;
  #current: Snapshot | null = null;
  #ended = false;
  #closed = false;
  #error: Error | null = null;
  #wakers: (() => void)[] = [];

  /** @internal use {@link SnapshotClient.connect} or {@link SnapshotClient.fromFd}. */
  constructor(socket: UnixSocket) {
    if (!constructing.allowed) throw new TypeError('Illegal constructor: use SnapshotClient.connect() or SnapshotClient.fromFd()');
    super();
    this.#socket = socket;
    void this.#run();
  }

  static #make(socket: UnixSocket): SnapshotClient {
    constructing.allowed = true;
    try {
      return new SnapshotClient(socket);
    } finally {
      constructing.allowed = false;
    }
  }

  /** Connects to a {@link SnapshotServer} at a filesystem path or an abstract address (`'\0name'`). */
  static async connect(path: string, options?: SnapshotClientOptions): Promise<SnapshotClient> {
    const opts = toOptions<SnapshotClientOptions>(options);
    const timeout = opts.timeout === undefined ? undefined : toInt(opts.timeout, 'options.timeout', 0, 2 ** 31 - 1);
    const socket = await UnixSocket.connect(path, { type: 'seqpacket', maxFds: 1, ...(timeout === undefined ? {} : { timeout }) });
    return SnapshotClient.#make(socket);
  }

  /**
   * A client over an inherited connected seqpacket socket (a child's end of a `UnixSocket.pair()` that
   * the parent gave to {@link SnapshotServer.addClient}, or a connection made elsewhere). On success the
   * client owns the fd; on failure it is left open.
   */
  static fromFd(fd: number): SnapshotClient {
    return SnapshotClient.#make(UnixSocket.fromFd(fd, { type: 'seqpacket', maxFds: 1 }));
  }

  /**
   * The newest version received, or null before the first one (and after close). It belongs to the client
   * and is closed when a newer version replaces it: use it synchronously, or `retain()` it for longer work.
   */
  get current(): Snapshot | null {
    return this.#current;
  }

  /** True once the server went away (or the connection was closed after an invalid message). */
  get ended(): boolean {
    return this.#ended;
  }

  /** True after {@link SnapshotClient.close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Yields the newest version first, then each newer one (see the class documentation). */
  async *[Symbol.asyncIterator](): AsyncIterator<Snapshot> {
    let last = 0;
    for (;;) {
      const current = this.#current;
      if (current && current.version > last) {
        last = current.version;
        yield current.retain();
        continue;
      }
      if (this.#error) throw this.#error;
      if (this.#ended || this.#closed) return;
      await new Promise<void>((resolve) => this.#wakers.push(resolve));
    }
  }

  /** Disconnects and closes {@link SnapshotClient.current}. Snapshots you hold stay valid. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
    this.#current?.close();
    this.#current = null;
    this.#wake();
    process.nextTick(() => this.emit('close'));
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  get [Symbol.toStringTag](): string {
    return 'SnapshotClient';
  }

  async #run(): Promise<void> {
    try {
      for (;;) {
        let msg: Message | null;
        try {
          msg = await this.#socket.receive();
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (code === 'ERR_MEMFD_FDS_TRUNCATED' || code === 'ERR_MEMFD_DATA_TRUNCATED') throw invalidSnapshot('more than one fd, or an oversized message', e);
          throw e;
        }
        if (msg === null) break;
        let snapshot: Snapshot;
        try {
          snapshot = this.#accept(msg);
        } finally {
          msg.close();
        }
        if (this.#closed) {
          snapshot.close();
          return;
        }
        this.#socket.send(encodeAck(snapshot.version)).catch(() => { /* the server is gone: the read side ends */ });
        const previous = this.#current;
        this.#current = snapshot;
        previous?.close();
        this.#wake();
        if (this.listenerCount('snapshot') > 0) this.emit('snapshot', snapshot);
      }
    } catch (e) {
      if (this.#closed) return;
      this.#error = e as Error;
      this.#socket.close();
      if (this.listenerCount('error') > 0) this.emit('error', e);
    }
    if (this.#closed) return;
    this.#ended = true;
    this.#wake();
    process.nextTick(() => this.emit('end'));
  }

  /** Checks a message from the server and adopts its memfd, or throws ERR_MEMFD_SNAPSHOT_INVALID. */
  #accept(msg: Message): Snapshot {
    const data = msg.data;
    if (data.length < SNAPSHOT_HEADER_BYTES || data.readUInt32LE(0) !== MAGIC) throw invalidSnapshot('not a snapshot message (bad magic or too short)');
    const protocol = data.readUInt16LE(4);
    if (protocol !== SNAPSHOT_PROTOCOL) throw invalidSnapshot(`protocol ${protocol}, this client speaks ${SNAPSHOT_PROTOCOL}`);
    if (data.readUInt16LE(6) !== KIND_SNAPSHOT) throw invalidSnapshot(`message kind ${data.readUInt16LE(6)}`);
    const version = data.readBigUInt64LE(8);
    const size = data.readBigUInt64LE(16);
    const metaLength = data.readUInt32LE(24);
    if (metaLength !== data.length - SNAPSHOT_HEADER_BYTES) throw invalidSnapshot(`meta length ${metaLength} but ${data.length - SNAPSHOT_HEADER_BYTES} bytes follow the header`);
    const last = BigInt(this.#current?.version ?? 0);
    if (version <= last || version > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidSnapshot(`version ${version} after version ${last}`);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidSnapshot(`size ${size}`);
    let meta: unknown;
    try {
      meta = deepFreeze(JSON.parse(data.toString('utf8', SNAPSHOT_HEADER_BYTES)));
    } catch (e) {
      throw invalidSnapshot('meta is not JSON', e);
    }
    if (msg.fds.length !== 1) throw invalidSnapshot(`${msg.fds.length} fds instead of 1`);
    let file: MemFile;
    try {
      file = MemFile.fromFd(msg.fds[0]!, { requireSeals: FROZEN });
    } catch (e) {
      throw invalidSnapshot((e as Error).message, e);
    }
    try {
      const actual = file.size;
      if (actual !== Number(size)) throw invalidSnapshot(`the memfd holds ${actual} bytes, ${size} were announced`);
      // FROZEN includes Seal.Seal and seals are never removed: the size checked now is final.
      return newSnapshot(new SnapshotRecord(Number(version), meta, actual, file));
    } catch (e) {
      file.close();
      throw e;
    }
  }

  #wake(): void {
    for (const wake of this.#wakers.splice(0)) wake();
  }
}
