/**
 * Structured logging to systemd-journald through its native protocol, with entries of any size.
 *
 * journald's native socket (/run/systemd/journal/socket, SOCK_DGRAM) takes one entry per datagram. An
 * entry larger than a datagram can carry is sent the way journald specifies: the entry is written to a
 * memfd, sealed (Seal | Shrink | Grow | Write, so journald can map it without fear of a shrinking file),
 * and the fd travels with SCM_RIGHTS in an otherwise empty datagram.
 *
 * Entry format ("native journal export"): for each field either `KEY=value\n`, or, when the value holds
 * a newline or binary data, `KEY\n` + the value's length as a little-endian 64-bit integer + the value +
 * `\n`. Keys are uppercase letters, digits and underscores, not starting with an underscore.
 *
 * Build: `npm run build` (compiles this file to dist-examples/journald.js). Run:
 *   node dist-examples/journald.js [--tag TAG] [--size BYTES] [--message TEXT]
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { MemFile, UnixSocket } from 'memfd';

/** Where journald listens for native protocol datagrams. */
export const JOURNAL_SOCKET = '/run/systemd/journal/socket';

/** Entries up to this size go in the datagram itself; larger ones go in a sealed memfd. */
const INLINE_LIMIT = 16 * 1024;

const KEY = /^[A-Z0-9][A-Z0-9_]*$/;

/** Encodes fields in journald's native format. */
export function encodeJournalEntry(fields: Record<string, string | Uint8Array>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (!KEY.test(key)) throw new RangeError(`invalid journal field name ${JSON.stringify(key)}`);
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    if (typeof value === 'string' && !value.includes('\n')) {
      parts.push(Buffer.from(`${key}=`), bytes, Buffer.from('\n'));
    } else {
      const length = Buffer.alloc(8);
      length.writeBigUInt64LE(BigInt(bytes.length));
      parts.push(Buffer.from(`${key}\n`), length, bytes, Buffer.from('\n'));
    }
  }
  return Buffer.concat(parts);
}

export interface JournalOptions {
  /** The journal socket. Default {@link JOURNAL_SOCKET}. */
  path?: string;
  /** Always send through a memfd, even when the entry would fit in a datagram. */
  forceMemfd?: boolean;
}

/** Sends one entry; resolves once journald's socket accepted it. Returns how it was sent. */
export async function sendToJournal(fields: Record<string, string | Uint8Array>,
  options: JournalOptions = {}): Promise<'datagram' | 'memfd'> {
  const entry = encodeJournalEntry(fields);
  const socket = await UnixSocket.connect(options.path ?? JOURNAL_SOCKET, { type: 'dgram' });
  try {
    if (!options.forceMemfd && entry.length <= INLINE_LIMIT) {
      await socket.send(entry);
      return 'datagram';
    }
    // MemFile.from writes the entry and seals it for good (Seal | Shrink | Grow | Write), which journald
    // requires before it trusts a memfd.
    const file = MemFile.from(entry, { name: 'journal-entry' });
    try {
      await socket.send(undefined, [file]);
    } finally {
      file.close(); // the kernel keeps its own reference until journald has read the entry
    }
    return 'memfd';
  } finally {
    socket.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string, fallback: string) => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
  };
  const tag = arg('--tag', 'memfd-example');
  const size = Number(arg('--size', String(300 * 1024)));
  const id = arg('--id', randomUUID());
  let message = arg('--message', '');
  if (!message) {
    const line = 'memfd sends large journal entries through a sealed memory file.\n';
    message = line.repeat(Math.ceil(size / line.length)).slice(0, size);
  }
  const how = await sendToJournal({
    MESSAGE: message,
    SYSLOG_IDENTIFIER: tag,
    PRIORITY: '6',
    MEMFD_EXAMPLE_ID: id,
    MEMFD_EXAMPLE_BYTES: String(Buffer.byteLength(message)),
  });
  console.log(JSON.stringify({ sent: how, tag, id, bytes: Buffer.byteLength(message) }));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
