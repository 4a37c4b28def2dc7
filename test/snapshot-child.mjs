// A SnapshotClient in a child process, driven by the snapshot tests (not a test file itself).
//
//   node test/snapshot-child.mjs ADDRESS|fd:N [--hold-first]
//
// ADDRESS: a socket path, or @name for the abstract '\0name'; fd:N adopts an inherited socket.
// Prints one JSON line per snapshot it receives: { version, size, meta, sha256, ino, pid }.
// Closes each snapshot once it has the next one, except the first with --hold-first, which it keeps
// until it reads 'release' on stdin (even after the server is gone). 'exit' on stdin closes the client; the end of the server ends it too.
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { SnapshotClient } from '../dist/index.js';

const [target, ...flags] = process.argv.slice(2);
const holdFirst = flags.includes('--hold-first');
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const client = target.startsWith('fd:')
  ? SnapshotClient.fromFd(Number(target.slice(3)))
  : await SnapshotClient.connect(target.replace(/^@/, '\0'));

let held = null;
let exitRequested;
const exitCommand = new Promise((resolve) => { exitRequested = resolve; });
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'release') {
    held?.close();
    held = null;
    say({ released: true });
  } else if (line === 'exit') {
    client.close();
    exitRequested();
  }
}).on('close', () => { client.close(); exitRequested(); });

let previous = null;
try {
  for await (const snap of client) {
    const sha256 = createHash('sha256').update(snap.bytes).digest('hex');
    say({ version: snap.version, size: snap.size, meta: snap.meta, sha256, ino: snap.file.stat().ino, pid: process.pid });
    if (holdFirst && held === null && previous === null) held = snap;
    else {
      previous?.close();
      previous = snap;
    }
  }
  say({ end: true, current: client.current?.version ?? null });
} catch (e) {
  say({ error: e.code, message: e.message });
}
previous?.close();
// A held snapshot outlives the server: keep it until told to go.
if (held) await exitCommand;
held?.close();
client.close();
process.exit(0);
