/**
 * A D-Bus client written from scratch over `UnixSocket`: it hands a sealed memfd to a service as an `h`
 * argument of a method call, and adopts the memfd the service sends back in its reply.
 *
 * What it takes (dbus.freedesktop.org/doc/dbus-specification.html):
 * - Authentication (SASL, text lines ending in \r\n): one NUL byte (the credentials byte), then
 *   `AUTH EXTERNAL <uid as ASCII, hex-encoded>`: the bus checks the uid against SO_PEERCRED.
 * - `NEGOTIATE_UNIX_FD` before `BEGIN`: on a connection that has not negotiated fd passing, dbus-daemon
 *   hangs up on the first message that carries an fd, and never sends fds to it. Not every transport can
 *   pass fds (TCP cannot), hence the question.
 * - Messages: a fixed header (endianness 'l', type, flags, version 1, body length, serial), an array of
 *   header fields (byte code, variant), padding to 8, the body. Every value is aligned to its own size
 *   (strings and arrays to 4, structs and 64-bit values to 8) counting from the start of the message.
 * - fds travel as SCM_RIGHTS next to the bytes. The header field UNIX_FDS (9) says how many belong to the
 *   message, and an `h` value in the body is not an fd number: it is an index into those fds, because fd
 *   numbers mean nothing in another process (the receiver gets new numbers).
 *
 * The service (examples/dbus_service.py, python3-dbus) refuses a file that is not sealed against writing and
 * shrinking, and answers with a new sealed memfd holding the text in upper case.
 *
 * Build: `npm run build` (compiles this file to dist-examples/dbus.js). Run:
 *   node dist-examples/dbus.js [--address unix:path=...] [--text TEXT]
 * (the address defaults to DBUS_SESSION_BUS_ADDRESS)
 */
import { pathToFileURL } from 'node:url';
import { MemFile, Seal, UnixSocket, type Message } from 'memfd';

/** Message types. */
export const METHOD_CALL = 1, METHOD_RETURN = 2, ERROR = 3, SIGNAL = 4;
const NO_REPLY_EXPECTED = 0x1;
/** Header field codes. */
const FIELD = { path: 1, interface: 2, member: 3, errorName: 4, replySerial: 5, destination: 6, sender: 7,
  signature: 8, unixFds: 9 } as const;

/** A value of type `v`: its signature travels with it. */
export interface Variant {
  signature: string;
  value: unknown;
}

/** An fd to send as `h`: a number or anything with an `fd` (a MemFile). */
export type FdLike = number | { readonly fd: number };

/** The reply was an ERROR message. */
export class DBusError extends Error {
  constructor(readonly errorName: string, detail: string) {
    super(`${errorName}: ${detail}`);
    this.name = 'DBusError';
  }
}

// ---------------------------------------------------------------------------------------------------------
// Marshalling

/** Index just past the single complete type that starts at `i` of `signature`. */
function typeEnd(signature: string, i: number): number {
  const c = signature[i];
  if (c === undefined) throw new TypeError(`incomplete signature ${signature}`);
  if (c === 'a') return typeEnd(signature, i + 1);
  if (c === '(' || c === '{') {
    const close = c === '(' ? ')' : '}';
    let j = i + 1;
    while (signature[j] !== close) {
      if (j >= signature.length) throw new TypeError(`unbalanced signature ${signature}`);
      j = typeEnd(signature, j);
    }
    return j + 1;
  }
  if (!'ybnqiuxtdsoghv'.includes(c)) throw new TypeError(`unknown type ${c} in signature ${signature}`);
  return i + 1;
}

/** Splits a signature into its single complete types. */
export function splitSignature(signature: string): string[] {
  const types: string[] = [];
  for (let i = 0; i < signature.length;) {
    const end = typeEnd(signature, i);
    types.push(signature.slice(i, end));
    i = end;
  }
  return types;
}

function alignmentOf(type: string): number {
  switch (type[0]) {
    case 'y': case 'g': case 'v': return 1;
    case 'n': case 'q': return 2;
    case 'x': case 't': case 'd': case '(': case '{': return 8;
    default: return 4;
  }
}

/** Little-endian writer; offsets count from the start of what it writes (a header, or a body at offset 8k). */
class Writer {
  #buf = Buffer.alloc(256);
  length = 0;
  /** fds referred to by `h` values, in index order. */
  readonly fds: FdLike[] = [];

  #room(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    const bigger = Buffer.alloc(Math.max(this.#buf.length * 2, this.length + n));
    this.#buf.copy(bigger, 0, 0, this.length);
    this.#buf = bigger;
  }

  align(n: number): void {
    const padded = (this.length + n - 1) & ~(n - 1);
    this.#room(padded - this.length);
    this.#buf.fill(0, this.length, padded);
    this.length = padded;
  }

  u8(v: number): void { this.#room(1); this.#buf.writeUInt8(v, this.length); this.length += 1; }
  u32(v: number): void { this.#room(4); this.#buf.writeUInt32LE(v >>> 0, this.length); this.length += 4; }
  setU32(at: number, v: number): void { this.#buf.writeUInt32LE(v, at); }

  write(type: string, value: unknown): void {
    this.align(alignmentOf(type));
    const b = (n: number) => { this.#room(n); const at = this.length; this.length += n; return at; };
    switch (type[0]) {
      case 'y': this.u8(value as number); break;
      case 'b': this.u32(value ? 1 : 0); break;
      case 'n': this.#buf.writeInt16LE(value as number, b(2)); break;
      case 'q': this.#buf.writeUInt16LE(value as number, b(2)); break;
      case 'i': this.#buf.writeInt32LE(value as number, b(4)); break;
      case 'u': this.u32(value as number); break;
      case 'x': this.#buf.writeBigInt64LE(BigInt(value as number | bigint), b(8)); break;
      case 't': this.#buf.writeBigUInt64LE(BigInt(value as number | bigint), b(8)); break;
      case 'd': this.#buf.writeDoubleLE(value as number, b(8)); break;
      case 'h': this.u32(this.fds.push(value as FdLike) - 1); break;
      case 's': case 'o': case 'g': {
        const bytes = Buffer.from(value as string, 'utf8');
        if (type === 'g') this.u8(bytes.length); else this.u32(bytes.length);
        this.#room(bytes.length + 1);
        bytes.copy(this.#buf, this.length);
        this.#buf[this.length + bytes.length] = 0;
        this.length += bytes.length + 1;
        break;
      }
      case 'v': {
        const { signature, value: inner } = value as Variant;
        this.write('g', signature);
        this.write(signature, inner);
        break;
      }
      case 'a': {
        const element = type.slice(1);
        const lengthAt = b(4);
        // The length excludes the padding to the first element, which is there even for an empty array.
        this.align(alignmentOf(element));
        const start = this.length;
        const items = value instanceof Map ? [...value.entries()] : value as unknown[];
        for (const item of items) this.write(element, item);
        this.setU32(lengthAt, this.length - start);
        break;
      }
      case '(': case '{': {
        const members = splitSignature(type.slice(1, -1));
        const values = value as unknown[];
        members.forEach((member, i) => this.write(member, values[i]));
        break;
      }
      default: throw new TypeError(`cannot write type ${type}`);
    }
  }

  result(): Buffer {
    return Buffer.from(this.#buf.subarray(0, this.length));
  }
}

/** Reader for either endianness; `h` values become fd numbers of the message (owned by it until adopted). */
class Reader {
  at: number;
  constructor(readonly buf: Buffer, readonly little: boolean, readonly fds: readonly number[], start = 0) {
    this.at = start;
  }

  align(n: number): void {
    this.at = (this.at + n - 1) & ~(n - 1);
  }

  #take(n: number): number {
    if (this.at + n > this.buf.length) throw new RangeError('D-Bus value runs past the end of its message');
    const at = this.at;
    this.at += n;
    return at;
  }

  u32(): number { const at = this.#take(4); return this.little ? this.buf.readUInt32LE(at) : this.buf.readUInt32BE(at); }

  read(type: string): unknown {
    this.align(alignmentOf(type));
    const L = this.little, buf = this.buf;
    switch (type[0]) {
      case 'y': return buf[this.#take(1)];
      case 'b': return this.u32() !== 0;
      case 'n': { const at = this.#take(2); return L ? buf.readInt16LE(at) : buf.readInt16BE(at); }
      case 'q': { const at = this.#take(2); return L ? buf.readUInt16LE(at) : buf.readUInt16BE(at); }
      case 'i': { const at = this.#take(4); return L ? buf.readInt32LE(at) : buf.readInt32BE(at); }
      case 'u': return this.u32();
      case 'x': { const at = this.#take(8); return L ? buf.readBigInt64LE(at) : buf.readBigInt64BE(at); }
      case 't': { const at = this.#take(8); return L ? buf.readBigUInt64LE(at) : buf.readBigUInt64BE(at); }
      case 'd': { const at = this.#take(8); return L ? buf.readDoubleLE(at) : buf.readDoubleBE(at); }
      case 'h': {
        const index = this.u32();
        if (index >= this.fds.length) throw new RangeError(`h value ${index}, but the message carries ${this.fds.length} fds`);
        return this.fds[index];
      }
      case 's': case 'o': case 'g': {
        const length = type === 'g' ? buf[this.#take(1)]! : this.u32();
        const at = this.#take(length + 1);
        return buf.toString('utf8', at, at + length);
      }
      case 'v': {
        const signature = this.read('g') as string;
        return { signature, value: this.read(signature) } satisfies Variant;
      }
      case 'a': {
        const element = type.slice(1);
        const length = this.u32();
        this.align(alignmentOf(element));
        const end = this.at + length;
        const items: unknown[] = [];
        while (this.at < end) items.push(this.read(element));
        return element[0] === '{' ? new Map(items as [unknown, unknown][]) : items;
      }
      case '(': case '{': return splitSignature(type.slice(1, -1)).map((member) => this.read(member));
      default: throw new TypeError(`cannot read type ${type}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Connection

/** A decoded message. `fds` are owned by the connection's received messages until adopted (MemFile.fromFd). */
export interface DBusMessage {
  type: number;
  flags: number;
  serial: number;
  path?: string;
  interface?: string;
  member?: string;
  errorName?: string;
  replySerial?: number;
  destination?: string;
  sender?: string;
  signature: string;
  body: unknown[];
  fds: number[];
}

export interface CallOptions {
  destination: string;
  path: string;
  interface?: string;
  member: string;
  signature?: string;
  body?: unknown[];
  timeoutMs?: number;
}

/**
 * Received fds waiting for the message they belong to (see examples/wayland.ts: same stream rule). They stay
 * owned by their Message until adopted, and unadopted ones are closed with the connection: this example's
 * connections make a few calls. A long-lived client would give each DBusMessage a way to close its fds.
 */
class ReceivedFds {
  #queue: { message: Message; index: number }[] = [];
  #messages = new Set<Message>();

  add(message: Message): void {
    this.#messages.add(message);
    for (let index = 0; index < message.fds.length; index++) this.#queue.push({ message, index });
  }

  take(count: number): number[] {
    if (count > this.#queue.length) throw new Error(`a D-Bus message announces ${count} fds, ${this.#queue.length} arrived`);
    return this.#queue.splice(0, count).map(({ message, index }) => message.fds[index]!);
  }

  close(): void {
    for (const message of this.#messages) message.close();
    this.#messages.clear();
    this.#queue = [];
  }
}

/** Parses a D-Bus address (`unix:path=...` or `unix:abstract=...`; the first usable of a `;` list). */
export function socketPathOf(address: string): string {
  for (const entry of address.split(';')) {
    const colon = entry.indexOf(':');
    if (entry.slice(0, colon) !== 'unix') continue;
    const keys = new Map(entry.slice(colon + 1).split(',').map((kv) => {
      const eq = kv.indexOf('=');
      return [kv.slice(0, eq), decodeURIComponent(kv.slice(eq + 1))] as const;
    }));
    if (keys.has('path')) return keys.get('path')!;
    if (keys.has('abstract')) return `\0${keys.get('abstract')}`;
  }
  throw new Error(`no unix:path= or unix:abstract= transport in D-Bus address ${JSON.stringify(address)}`);
}

export class DBusConnection {
  /** Our unique name on the bus, from Hello. */
  uniqueName = '';
  #socket: UnixSocket;
  #serial = 0;
  #pending: Buffer = Buffer.alloc(0);
  #fds = new ReceivedFds();
  #replies = new Map<number, { resolve(m: DBusMessage): void; reject(e: Error): void }>();
  #failure: Error | null = null;
  #closed = false;
  #readLoopDone: Promise<void> = Promise.resolve();

  private constructor(socket: UnixSocket) {
    this.#socket = socket;
  }

  /**
   * Connects, authenticates, negotiates fd passing and says Hello. `negotiateUnixFds: false` skips the
   * negotiation, to see what the bus does with fds it did not agree to (it hangs up).
   */
  static async connect(address = process.env.DBUS_SESSION_BUS_ADDRESS,
    options: { negotiateUnixFds?: boolean } = {}): Promise<DBusConnection> {
    if (!address) throw new Error('no D-Bus address given and DBUS_SESSION_BUS_ADDRESS is not set');
    const socket = await UnixSocket.connect(socketPathOf(address), { type: 'stream' });
    const connection = new DBusConnection(socket);
    try {
      await connection.#authenticate(options.negotiateUnixFds ?? true);
      connection.#readLoopDone = connection.#readLoop();
      const reply = await connection.call({
        destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'Hello',
      });
      connection.uniqueName = reply.body[0] as string;
      return connection;
    } catch (e) {
      connection.close();
      throw e;
    }
  }

  async #authenticate(negotiateUnixFds: boolean): Promise<void> {
    const uid = Buffer.from(String(process.getuid!())).toString('hex');
    await this.#socket.send(`\0AUTH EXTERNAL ${uid}\r\n`);
    const ok = await this.#line();
    if (!ok.startsWith('OK ')) throw new Error(`D-Bus authentication refused: ${ok}`);
    if (negotiateUnixFds) {
      await this.#socket.send('NEGOTIATE_UNIX_FD\r\n');
      const agreed = await this.#line();
      if (agreed !== 'AGREE_UNIX_FD') throw new Error(`the bus cannot pass fds on this connection: ${agreed}`);
    }
    await this.#socket.send('BEGIN\r\n');
  }

  /** One SASL line; bytes after it stay in the buffer for the message reader. */
  async #line(): Promise<string> {
    for (;;) {
      const end = this.#pending.indexOf('\r\n');
      if (end >= 0) {
        const line = this.#pending.toString('latin1', 0, end);
        this.#pending = this.#pending.subarray(end + 2);
        return line;
      }
      if (this.#pending.length > 16384) throw new Error('D-Bus authentication: line too long');
      const message = await this.#socket.receive();
      if (!message) throw new Error('the bus closed the connection during authentication');
      message.close(); // the bus sends no fds while authenticating
      this.#pending = Buffer.concat([this.#pending, message.data]);
    }
  }

  /** Sends a message; resolves with its serial once the kernel took it. */
  async send(type: number, fields: Omit<Partial<DBusMessage>, 'type' | 'body' | 'fds'>, body: unknown[] = []): Promise<number> {
    const encoded = this.#encode(type, fields, body);
    await this.#write(encoded);
    return encoded.serial;
  }

  /** Calls a method; resolves with the METHOD_RETURN, rejects with a {@link DBusError} for an ERROR reply. */
  async call(options: CallOptions): Promise<DBusMessage> {
    const { timeoutMs = 25_000, body = [], ...fields } = options;
    const encoded = this.#encode(METHOD_CALL, fields, body);
    const reply = new Promise<DBusMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#replies.delete(encoded.serial);
        reject(new Error(`no reply to ${options.member} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#replies.set(encoded.serial, {
        resolve: (m) => { clearTimeout(timer); resolve(m); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
    });
    try {
      await this.#write(encoded);
    } catch (e) {
      this.#replies.get(encoded.serial)?.reject(e as Error);
      this.#replies.delete(encoded.serial);
    }
    return reply;
  }

  #encode(type: number, fields: Omit<Partial<DBusMessage>, 'type' | 'body' | 'fds'>, body: unknown[]):
    { serial: number; bytes: Buffer; fds: FdLike[] } {
    if (this.#failure) throw this.#failure;
    const signature = fields.signature ?? '';
    const bodyWriter = new Writer();
    const types = splitSignature(signature);
    if (types.length !== body.length) throw new TypeError(`signature ${signature} needs ${types.length} values, got ${body.length}`);
    types.forEach((t, i) => bodyWriter.write(t, body[i]));
    const bodyBytes = bodyWriter.result();

    const headerFields: [number, Variant][] = [];
    const field = (code: number, signature: string, value: unknown) => {
      if (value !== undefined) headerFields.push([code, { signature, value }]);
    };
    field(FIELD.path, 'o', fields.path);
    field(FIELD.interface, 's', fields.interface);
    field(FIELD.member, 's', fields.member);
    field(FIELD.errorName, 's', fields.errorName);
    field(FIELD.replySerial, 'u', fields.replySerial);
    field(FIELD.destination, 's', fields.destination);
    if (signature) field(FIELD.signature, 'g', signature);
    if (bodyWriter.fds.length) field(FIELD.unixFds, 'u', bodyWriter.fds.length);

    const serial = ++this.#serial;
    const header = new Writer();
    header.u8('l'.charCodeAt(0));
    header.u8(type);
    header.u8(fields.flags ?? 0);
    header.u8(1);
    header.u32(bodyBytes.length);
    header.u32(serial);
    header.write('a(yv)', headerFields);
    header.align(8);
    return { serial, bytes: Buffer.concat([header.result(), bodyBytes]), fds: bodyWriter.fds };
  }

  async #write({ bytes, fds }: { bytes: Buffer; fds: FdLike[] }): Promise<void> {
    await this.#socket.send(bytes, fds).catch(async (e: unknown) => {
      // The bus drops a connection that breaks the rules; tell why if the reason is still in our buffer.
      await this.#readLoopDone;
      throw this.#failure ?? e;
    });
  }

  /** Closes the socket and every received fd nobody adopted. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
    this.#fds.close();
    this.#fail(new Error('connection closed'));
  }

  #fail(error: Error): void {
    if (!this.#failure) this.#failure = error;
    for (const pending of this.#replies.values()) pending.reject(this.#failure);
    this.#replies.clear();
  }

  async #readLoop(): Promise<void> {
    try {
      this.#dispatchComplete();
      for await (const message of this.#socket) {
        if (message.fds.length) this.#fds.add(message);
        this.#pending = this.#pending.length ? Buffer.concat([this.#pending, message.data]) : message.data;
        this.#dispatchComplete();
      }
      this.#fail(new Error('the bus closed the connection'));
    } catch (e) {
      this.#fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** Decodes every complete message in the buffer (stream framing: a message may arrive in pieces). */
  #dispatchComplete(): void {
    for (;;) {
      const data = this.#pending;
      if (data.length < 16) return;
      const little = data[0] === 0x6c; // 'l'
      if (!little && data[0] !== 0x42) throw new Error(`bad D-Bus endianness byte ${data[0]}`);
      const u32 = (at: number) => (little ? data.readUInt32LE(at) : data.readUInt32BE(at));
      const bodyLength = u32(4), fieldsLength = u32(12);
      const bodyStart = (16 + fieldsLength + 7) & ~7;
      const total = bodyStart + bodyLength;
      if (total > 128 << 20) throw new Error(`D-Bus message of ${total} bytes exceeds the 128 MiB limit`);
      if (data.length < total) return;
      const bytes = data.subarray(0, total);
      this.#pending = data.subarray(total);
      this.#dispatch(bytes, little, bodyStart);
    }
  }

  #dispatch(bytes: Buffer, little: boolean, bodyStart: number): void {
    const header = new Reader(bytes, little, [], 12);
    const fields = new Map(header.read('a(yv)') as [number, Variant][]);
    const get = <T>(code: number) => fields.get(code)?.value as T | undefined;
    const fds = this.#fds.take(get<number>(FIELD.unixFds) ?? 0);
    const signature = get<string>(FIELD.signature) ?? '';
    const body = new Reader(bytes, little, fds, bodyStart);
    const message: DBusMessage = {
      type: bytes[1]!, flags: bytes[2]!, serial: little ? bytes.readUInt32LE(8) : bytes.readUInt32BE(8),
      path: get(FIELD.path), interface: get(FIELD.interface), member: get(FIELD.member),
      errorName: get(FIELD.errorName), replySerial: get(FIELD.replySerial), destination: get(FIELD.destination),
      sender: get(FIELD.sender), signature, fds,
      body: splitSignature(signature).map((t) => body.read(t)),
    };
    if (message.type === METHOD_RETURN || message.type === ERROR) {
      const pending = this.#replies.get(message.replySerial ?? 0);
      if (!pending) return;
      this.#replies.delete(message.replySerial!);
      if (message.type === METHOD_RETURN) pending.resolve(message);
      else pending.reject(new DBusError(message.errorName ?? 'unknown error', String(message.body[0] ?? '')));
    } else if (message.type === METHOD_CALL && !(message.flags & NO_REPLY_EXPECTED)) {
      // We export no objects; a caller still deserves an answer rather than a timeout.
      void this.send(ERROR, {
        errorName: 'org.freedesktop.DBus.Error.UnknownMethod', replySerial: message.serial,
        destination: message.sender, signature: 's',
      }, [`${this.uniqueName} exports no ${message.interface}.${message.member}`]).catch(() => {});
    }
    // Signals (NameAcquired...) are of no interest to this example.
  }
}

// ---------------------------------------------------------------------------------------------------------
// The example: a sealed memfd there, a sealed memfd back

export const SERVICE = 'org.memfd.Example';
export const SERVICE_PATH = '/org/memfd/Example';

export interface ShoutResult {
  uniqueName: string;
  /** What the service wrote into the memfd it sent back. */
  reply: string;
  /** Seals of the memfd we received. */
  replySeals: string;
  /** What the service said about the memfd we sent. */
  serviceSaw: string;
}

/**
 * Calls `Shout(h) -> (h, s)`: the service reads our sealed memfd and answers with a new sealed memfd
 * holding the text in upper case, plus a line about what it saw.
 */
export async function shout(connection: DBusConnection, file: MemFile): Promise<ShoutResult> {
  const reply = await connection.call({
    destination: SERVICE, path: SERVICE_PATH, interface: SERVICE, member: 'Shout', signature: 'h', body: [file],
  });
  if (reply.signature !== 'hs') throw new Error(`Shout replied with signature ${reply.signature}, expected hs`);
  const [fd, serviceSaw] = reply.body as [number, string];
  // Trust the reply only as far as its seals go: frozen means it cannot change under us.
  const answer = MemFile.fromFd(fd, { requireSeals: Seal.Write | Seal.Shrink | Seal.Grow });
  try {
    return {
      uniqueName: connection.uniqueName,
      reply: answer.readAllSync().toString('utf8'),
      replySeals: String(answer.getSeals()),
      serviceSaw,
    };
  } finally {
    answer.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const connection = await DBusConnection.connect(arg('--address'));
  try {
    // Frozen (Seal | Shrink | Grow | Write): the service may read and trust it without a copy.
    const file = MemFile.from(arg('--text') ?? 'hello from node over d-bus', { name: 'dbus-request' });
    try {
      console.log(JSON.stringify(await shout(connection, file)));
    } finally {
      file.close();
    }
  } finally {
    connection.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
