/**
 * A Wayland client written from scratch over `UnixSocket`: it draws one frame into a memfd-backed
 * `wl_shm` pool, shows it in an xdg toplevel and waits until the compositor has presented it.
 *
 * The wire format (wayland.freedesktop.org/docs/html/ch04.html): every message is a header of two
 * native-endian (here little-endian) 32-bit words, the object id and `size << 16 | opcode`, followed by
 * the arguments, each padded to 4 bytes: int, uint, fixed (24.8), object id, new_id, string (length
 * including the NUL, bytes, NUL, padding), array (length, bytes, padding). An fd argument takes no bytes
 * at all: it travels as SCM_RIGHTS ancillary data, and the receiver takes fds from a queue in message order.
 *
 * The pool's memory is a memfd created, truncated, mapped and filled here, then sealed against shrinking
 * and growing, and only then handed to the compositor. Not sealed against writing: the compositor maps a
 * wl_shm pool MAP_SHARED with PROT_READ|PROT_WRITE, which the kernel refuses (EPERM) on a write-sealed
 * file, so the compositor would fail the pool. That is why `MemFile.from()`, which seals writes too, is the
 * wrong tool here. The shrink seal is what the compositor cares about: without it a client could shrink
 * the file under the compositor's mapping and kill it with SIGBUS (libwayland-server wraps every access
 * to a pool in a SIGBUS handler, and skips that for a file sealed against shrinking).
 *
 * Build: `npm run build` (compiles this file to dist-examples/wayland.js). Run inside a Wayland session:
 *   node dist-examples/wayland.js [--title TEXT] [--width N --height N] [--fullscreen] [--hold]
 * `--hold` keeps the window up until stdin ends or the window is closed (the test takes a screenshot meanwhile).
 * `MEMFD_WAYLAND_DEBUG=1` prints every event it receives.
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MemFile, Seal, UnixSocket, type Message } from 'memfd';

/** Event signatures per interface, in opcode order, for the versions this client binds. */
export type EventSpec = readonly [name: string, signature: string];

/**
 * Every event of every interface this client uses. An event from an interface or opcode missing here is
 * an error, not something to skip: without its signature we could not tell whether it carries fds, and a
 * skipped fd would hand every later fd to the wrong message. Add an interface before binding it.
 */
export const interfaces: Record<string, readonly EventSpec[]> = {
  wl_display: [['error', 'ous'], ['delete_id', 'u']],
  wl_registry: [['global', 'usu'], ['global_remove', 'u']],
  wl_callback: [['done', 'u']],
  wl_compositor: [],
  wl_shm: [['format', 'u']],
  wl_shm_pool: [],
  wl_buffer: [['release', '']],
  wl_surface: [['enter', 'o'], ['leave', 'o']],
  xdg_wm_base: [['ping', 'u']],
  xdg_surface: [['configure', 'u']],
  xdg_toplevel: [['configure', 'iia'], ['close', '']],
};

/** wl_shm formats (wl_shm.format enum): little-endian 32-bit pixels, B G R A/X in memory. */
export const WL_SHM_FORMAT_ARGB8888 = 0;
export const WL_SHM_FORMAT_XRGB8888 = 1;

/** Error names of wl_display.error codes, per interface (the codes are per interface). */
const ERROR_NAMES: Record<string, readonly string[]> = {
  wl_display: ['invalid_object', 'invalid_method', 'no_memory', 'implementation'],
  wl_shm: ['invalid_format', 'invalid_stride', 'invalid_fd'],
  wl_surface: ['invalid_scale', 'invalid_transform', 'invalid_size', 'invalid_offset', 'defunct_role_object'],
  xdg_wm_base: ['role', 'defunct_surfaces', 'not_the_topmost_popup', 'invalid_popup_parent',
    'invalid_surface_state', 'invalid_positioner', 'unresponsive'],
  xdg_surface: ['not_constructed', 'already_constructed', 'unconfigured_buffer', 'invalid_serial', 'invalid_size',
    'defunct_role_object'],
};

/** The compositor reported a protocol error (wl_display.error): the connection is dead afterwards. */
export class WaylandProtocolError extends Error {
  constructor(readonly interfaceName: string, readonly objectId: number, readonly code: number,
    readonly codeName: string | undefined, detail: string) {
    super(`Wayland protocol error on ${interfaceName}@${objectId}: ${codeName ?? `code ${code}`}: ${detail}`);
    this.name = 'WaylandProtocolError';
  }
}

/** A value for an argument: numbers for i/u/f/o/n, a string (or null) for s, bytes for a, an fd for h. */
type ArgValue = number | string | null | Uint8Array | WlObject | { readonly fd: number };

/** One protocol object (a "proxy"): send requests with {@link WlObject.request}, listen for its events. */
export class WlObject extends EventEmitter {
  constructor(readonly connection: WaylandConnection, readonly id: number, readonly interfaceName: string,
    readonly version: number) {
    super();
  }

  /** Sends request `opcode` with arguments encoded by `signature` (letters as in {@link EventSpec}). */
  request(opcode: number, signature: string, ...args: ArgValue[]): Promise<void> {
    return this.connection.send(this, opcode, signature, args);
  }

  override toString(): string {
    return `${this.interfaceName}@${this.id}`;
  }
}

/** A global the compositor announced through wl_registry.global. */
export interface Global {
  name: number;
  interfaceName: string;
  version: number;
}

/**
 * fds that arrived but have not been claimed by a decoded message yet. The kernel delivers them with the
 * first byte of the write that carried them, which is never later than the bytes of their message, but a
 * message may still be incomplete when its fds are here: so they wait in arrival order. Each entry keeps
 * its Message alive, because the Message owns the fd until someone adopts it (MemFile.fromFd).
 */
class ReceivedFds {
  #queue: { message: Message; index: number }[] = [];
  #messages = new Set<Message>();

  add(message: Message): void {
    this.#messages.add(message);
    for (let index = 0; index < message.fds.length; index++) this.#queue.push({ message, index });
  }

  next(): number {
    const entry = this.#queue.shift();
    if (!entry) throw new Error('Wayland message refers to an fd that did not arrive');
    return entry.message.fds[entry.index]!;
  }

  /** Closes the fds handed out by next() that nobody adopted (messages none of whose fds still wait). */
  closeClaimed(): void {
    const waiting = new Set(this.#queue.map((e) => e.message));
    for (const message of this.#messages) {
      if (waiting.has(message)) continue;
      message.close();
      this.#messages.delete(message);
    }
  }

  /** Closes every fd nobody adopted. */
  close(): void {
    for (const message of this.#messages) message.close();
    this.#messages.clear();
    this.#queue = [];
  }
}

/** MEMFD_WAYLAND_DEBUG=1 prints every event received (as WAYLAND_DEBUG does for libwayland clients). */
const debug = Boolean(process.env.MEMFD_WAYLAND_DEBUG);

function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** A connection to a compositor: object ids, request encoding, event decoding and dispatch. */
export class WaylandConnection {
  readonly display: WlObject;
  #socket: UnixSocket;
  #objects = new Map<number, WlObject>();
  #nextId = 2;
  #pending: Buffer = Buffer.alloc(0);
  #fds = new ReceivedFds();
  #failure: Error | null = null;
  #failureListeners = new Set<(e: Error) => void>();
  #closed = false;
  #readLoopDone: Promise<void>;

  private constructor(socket: UnixSocket) {
    this.#socket = socket;
    this.display = new WlObject(this, 1, 'wl_display', 1);
    this.#objects.set(1, this.display);
    this.display.on('error', (object: number, code: number, message: string) => {
      const target = this.#objects.get(object);
      const name = target?.interfaceName ?? 'unknown interface';
      this.#fail(new WaylandProtocolError(name, object, code, ERROR_NAMES[name]?.[code], message));
    });
    // The compositor is done with an id (a callback that fired, a destroyed object): forget the proxy.
    this.display.on('delete_id', (id: number) => { this.#objects.delete(id); });
    this.#readLoopDone = this.#readLoop();
  }

  /**
   * Connects to `path`, or to the compositor of the environment: `WAYLAND_SOCKET` (an inherited fd), else
   * `WAYLAND_DISPLAY` (absolute, or relative to `XDG_RUNTIME_DIR`; default `wayland-0`).
   */
  static async connect(path?: string): Promise<WaylandConnection> {
    if (path === undefined && process.env.WAYLAND_SOCKET) {
      return new WaylandConnection(UnixSocket.fromFd(Number(process.env.WAYLAND_SOCKET), { type: 'stream' }));
    }
    if (path === undefined) {
      const display = process.env.WAYLAND_DISPLAY || 'wayland-0';
      if (display.startsWith('/')) {
        path = display;
      } else {
        const runtimeDir = process.env.XDG_RUNTIME_DIR;
        if (!runtimeDir) throw new Error('XDG_RUNTIME_DIR is not set: cannot find the Wayland socket');
        path = join(runtimeDir, display);
      }
    }
    return new WaylandConnection(await UnixSocket.connect(path, { type: 'stream' }));
  }

  /** Creates the proxy for a new object; the caller sends the request that creates it. */
  newObject(interfaceName: string, version: number): WlObject {
    if (!(interfaceName in interfaces)) throw new Error(`no event table for interface ${interfaceName}`);
    const object = new WlObject(this, this.#nextId++, interfaceName, version);
    this.#objects.set(object.id, object);
    return object;
  }

  /** Encodes and sends one request; fd arguments go along as SCM_RIGHTS with its bytes. */
  async send(object: WlObject, opcode: number, signature: string, args: ArgValue[]): Promise<void> {
    if (this.#failure) throw this.#failure;
    if (signature.length !== args.length) throw new TypeError(`signature ${signature} needs ${signature.length} arguments`);
    const parts: Buffer[] = [];
    const fds: { readonly fd: number }[] = [];
    const word = (value: number, signed: boolean) => {
      const b = Buffer.alloc(4);
      if (signed) b.writeInt32LE(value); else b.writeUInt32LE(value >>> 0);
      parts.push(b);
    };
    for (let i = 0; i < signature.length; i++) {
      const type = signature[i], value = args[i];
      switch (type) {
        case 'i': word(value as number, true); break;
        case 'u': word(value as number, false); break;
        case 'f': word(Math.round((value as number) * 256), true); break;
        case 'o': case 'n': word(value === null ? 0 : value instanceof WlObject ? value.id : value as number, false); break;
        case 's': {
          if (value === null) { word(0, false); break; }
          const bytes = Buffer.from(value as string, 'utf8');
          word(bytes.length + 1, false);
          const padded = Buffer.alloc(pad4(bytes.length + 1));
          bytes.copy(padded);
          parts.push(padded);
          break;
        }
        case 'a': {
          const bytes = value as Uint8Array;
          word(bytes.length, false);
          const padded = Buffer.alloc(pad4(bytes.length));
          padded.set(bytes);
          parts.push(padded);
          break;
        }
        case 'h': fds.push(typeof value === 'number' ? { fd: value } : value as { fd: number }); break;
        default: throw new TypeError(`unknown argument type ${type} in signature ${signature}`);
      }
    }
    const size = 8 + parts.reduce((n, p) => n + p.length, 0);
    if (size > 4096) throw new RangeError(`${object}.${opcode}: ${size} bytes exceed the 4096-byte message limit`);
    const header = Buffer.alloc(8);
    header.writeUInt32LE(object.id, 0);
    header.writeUInt32LE(((size << 16) | opcode) >>> 0, 4);
    try {
      await this.#socket.send(Buffer.concat([header, ...parts]), fds);
    } catch (e) {
      // A compositor that posts a protocol error disconnects right after, so a request racing with the error
      // fails with EPIPE. The error event is still in our receive buffer: read up to the end and report that.
      await this.#readLoopDone;
      throw this.#failure ?? e;
    }
  }

  /** Resolves once the compositor has handled every request sent so far (wl_display.sync). */
  async roundtrip(timeoutMs = 10_000): Promise<void> {
    const callback = this.newObject('wl_callback', 1);
    await this.display.request(0, 'n', callback);
    await this.waitFor(callback, 'done', timeoutMs);
  }

  /** Creates the registry and collects the globals announced up to a roundtrip. */
  async globals(): Promise<{ registry: WlObject; globals: Map<string, Global> }> {
    const registry = this.newObject('wl_registry', 1);
    const globals = new Map<string, Global>();
    registry.on('global', (name: number, interfaceName: string, version: number) => {
      globals.set(interfaceName, { name, interfaceName, version });
    });
    await this.display.request(1, 'n', registry);
    await this.roundtrip();
    return { registry, globals };
  }

  /** Binds a global at `version` (at most what the compositor offers): wl_registry.bind. */
  async bind(registry: WlObject, global: Global | undefined, version: number): Promise<WlObject> {
    if (!global) throw new Error('the compositor does not offer this global');
    const object = this.newObject(global.interfaceName, Math.min(version, global.version));
    // bind's new_id has no interface in the protocol XML, so the wire carries interface and version.
    await registry.request(0, 'usun', global.name, global.interfaceName, object.version, object);
    return object;
  }

  /** Resolves with the arguments of the next `event` on `object`; rejects on a protocol error or timeout. */
  waitFor(object: WlObject, event: string, timeoutMs = 10_000): Promise<unknown[]> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const onEvent = (...args: unknown[]) => { done(); resolve(args); };
      const onFailure = (e: Error) => { done(); reject(e); };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${object}.${event} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        object.off(event, onEvent);
        this.#failureListeners.delete(onFailure);
      };
      object.once(event, onEvent);
      this.#failureListeners.add(onFailure);
    });
  }

  /** Closes the socket and every received fd nobody adopted. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
    this.#fds.close();
  }

  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    for (const listener of [...this.#failureListeners]) listener(error);
  }

  async #readLoop(): Promise<void> {
    try {
      for await (const message of this.#socket) {
        if (message.fds.length) this.#fds.add(message);
        this.#pending = this.#pending.length ? Buffer.concat([this.#pending, message.data]) : message.data;
        this.#dispatchComplete();
      }
      if (!this.#closed) this.#fail(new Error('the compositor closed the connection'));
    } catch (e) {
      this.#fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** Dispatches every complete message in the buffer; a partial one waits for more bytes (stream framing). */
  #dispatchComplete(): void {
    let at = 0;
    const data = this.#pending;
    while (data.length - at >= 8) {
      const id = data.readUInt32LE(at);
      const sizeOpcode = data.readUInt32LE(at + 4);
      const size = sizeOpcode >>> 16, opcode = sizeOpcode & 0xffff;
      if (size < 8 || size % 4) throw new Error(`malformed Wayland message: size ${size}`);
      if (data.length - at < size) break;
      this.#dispatch(id, opcode, data.subarray(at + 8, at + size));
      at += size;
    }
    // An fd argument is the listener's to adopt (MemFile.fromFd) while it handles the event; any it left
    // is closed now rather than piling up for the life of the connection.
    this.#fds.closeClaimed();
    this.#pending = at === data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(at));
  }

  #dispatch(id: number, opcode: number, body: Buffer): void {
    const object = this.#objects.get(id);
    // Events for an object we destroyed but the compositor has not yet seen destroyed are legal (they
    // race with our destroy request); they can carry no fds for the objects this client creates.
    if (!object) return;
    const spec = interfaces[object.interfaceName]?.[opcode];
    if (!spec) throw new Error(`${object} sent unknown event opcode ${opcode}`);
    const [name, signature] = spec;
    const args: unknown[] = [];
    let at = 0;
    const word = () => { const v = body.readUInt32LE(at); at += 4; return v; };
    for (const type of signature) {
      switch (type) {
        case 'i': args.push(body.readInt32LE(at)); at += 4; break;
        case 'f': args.push(body.readInt32LE(at) / 256); at += 4; break;
        case 'u': case 'o': case 'n': args.push(word()); break;
        case 's': {
          const length = word();
          args.push(length === 0 ? null : body.toString('utf8', at, at + length - 1));
          at += pad4(length);
          break;
        }
        case 'a': {
          const length = word();
          args.push(Buffer.from(body.subarray(at, at + length)));
          at += pad4(length);
          break;
        }
        case 'h': args.push(this.#fds.next()); break;
        default: throw new Error(`bad signature ${signature}`);
      }
    }
    if (debug) console.error(`<- ${object}.${name}`, ...args);
    object.emit(name, ...args);
  }
}

/** The colour this example paints at (x, y) of a width x height frame: a gradient, so position matters. */
export function patternPixel(x: number, y: number, width: number, height: number): { r: number; g: number; b: number } {
  return {
    r: Math.floor((x * 255) / Math.max(1, width - 1)),
    g: Math.floor((y * 255) / Math.max(1, height - 1)),
    b: 0x60,
  };
}

/** Fills an XRGB8888 frame (bytes B, G, R, X per pixel: wl_shm formats are little-endian). */
export function drawPattern(bytes: Uint8Array, width: number, height: number, stride: number): void {
  for (let y = 0; y < height; y++) {
    let at = y * stride;
    for (let x = 0; x < width; x++, at += 4) {
      const { r, g, b } = patternPixel(x, y, width, height);
      bytes[at] = b;
      bytes[at + 1] = g;
      bytes[at + 2] = r;
      bytes[at + 3] = 0xff;
    }
  }
}

export interface ShowFrameOptions {
  /** Socket path; default from the environment (see {@link WaylandConnection.connect}). */
  path?: string;
  title?: string;
  /** Size used when the compositor leaves it to us (a configure of 0 x 0). */
  width?: number;
  height?: number;
  timeoutMs?: number;
  /** Ask for fullscreen: the compositor then sizes the window to the output and places it at 0,0. */
  fullscreen?: boolean;
}

export interface ShownFrame {
  connection: WaylandConnection;
  width: number;
  height: number;
  /** The pool memfd's seals as the compositor got them. */
  seals: string;
  /** Milliseconds from wl_callback.done: the compositor's presentation timestamp. */
  frameTime: number;
  /** Resolves when the user asks to close the window (xdg_toplevel.close). */
  closeRequested: Promise<void>;
}

/**
 * Shows one frame in a toplevel and resolves once the compositor has presented it. The window stays up
 * until `connection.close()`.
 */
export async function showFrame(options: ShowFrameOptions = {}): Promise<ShownFrame> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const connection = await WaylandConnection.connect(options.path);
  try {
    const { registry, globals } = await connection.globals();
    const compositor = await connection.bind(registry, globals.get('wl_compositor'), 4);
    const shm = await connection.bind(registry, globals.get('wl_shm'), 1);
    const wmBase = await connection.bind(registry, globals.get('xdg_wm_base'), 1);
    // A client that does not answer pings is declared unresponsive: answer every one, for as long as we live.
    // A pong that cannot be sent means the connection is gone, which the pending wait reports.
    wmBase.on('ping', (serial: number) => { void wmBase.request(3, 'u', serial).catch(() => {}); });

    const surface = connection.newObject('wl_surface', compositor.version);
    await compositor.request(0, 'n', surface);
    const xdgSurface = connection.newObject('xdg_surface', wmBase.version);
    await wmBase.request(2, 'no', xdgSurface, surface);
    const toplevel = connection.newObject('xdg_toplevel', wmBase.version);
    await xdgSurface.request(1, 'n', toplevel);
    await toplevel.request(2, 's', options.title ?? 'memfd: a frame from a memfd');
    await toplevel.request(3, 's', 'memfd-example');
    if (options.fullscreen) await toplevel.request(11, 'o', null); // set_fullscreen on an output of its choice

    // The first commit has no buffer: it asks the compositor for a size and states (xdg-shell rule: a
    // buffer attached before the first configure is acknowledged is a protocol error).
    let width = options.width ?? 480, height = options.height ?? 320;
    const closeRequested = new Promise<void>((resolve) => toplevel.once('close', () => resolve()));
    toplevel.on('configure', (w: number, h: number) => {
      if (w > 0 && h > 0) { width = w; height = h; }
    });
    const configured = connection.waitFor(xdgSurface, 'configure', timeoutMs);
    await surface.request(6, '');
    const [serial] = await configured;
    await xdgSurface.request(4, 'u', serial as number);

    const stride = width * 4, size = stride * height;
    const file = MemFile.create('wayland-shm');
    const pool = connection.newObject('wl_shm_pool', 1);
    let seals: string;
    try {
      file.truncate(size);
      const mapping = file.map({ writable: true });
      drawPattern(mapping.bytes, width, height, stride);
      mapping.unmap(); // the pages stay in the file, which the compositor maps for itself
      // Shrink and grow only (see the top of this file): the compositor maps the pool writable.
      file.addSeals(Seal.Shrink | Seal.Grow);
      seals = String(file.getSeals());
      await shm.request(0, 'nhi', pool, file, size);
    } finally {
      file.close(); // the compositor holds its own reference to the file now
    }
    const buffer = connection.newObject('wl_buffer', 1);
    // ARGB8888 and XRGB8888 are the two formats every compositor must support: no need to wait for wl_shm.format.
    await pool.request(0, 'niiiiu', buffer, 0, width, height, stride, WL_SHM_FORMAT_XRGB8888);
    await pool.request(1, ''); // the buffer keeps the pool's memory; the pool object is not needed

    await surface.request(1, 'oii', buffer, 0, 0);
    if (surface.version >= 4) await surface.request(9, 'iiii', 0, 0, width, height); // damage_buffer
    else await surface.request(2, 'iiii', 0, 0, width, height); // damage, in surface coordinates (scale 1)
    const frame = connection.newObject('wl_callback', 1);
    await surface.request(3, 'n', frame);
    const presented = connection.waitFor(frame, 'done', timeoutMs);
    await surface.request(6, '');
    const [frameTime] = await presented;
    return { connection, width, height, seals, frameTime: frameTime as number, closeRequested };
  } catch (e) {
    connection.close();
    throw e;
  }
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const options: ShowFrameOptions = {};
  if (arg('--title')) options.title = arg('--title')!;
  if (arg('--width')) options.width = Number(arg('--width'));
  if (arg('--height')) options.height = Number(arg('--height'));
  if (argv.includes('--fullscreen')) options.fullscreen = true;
  const { connection, closeRequested, ...report } = await showFrame(options);
  console.log(JSON.stringify({ shown: true, ...report }));
  if (argv.includes('--hold')) {
    // Keep the window (and the ping answers) alive until whoever started us closes our stdin, or the
    // user closes the window.
    await Promise.race([closeRequested, new Promise<void>((resolve) => {
      process.stdin.resume();
      process.stdin.once('end', resolve);
      process.stdin.once('close', resolve);
    })]);
    process.stdin.pause();
  }
  connection.close();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
