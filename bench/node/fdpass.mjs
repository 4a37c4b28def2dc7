// Node side of the fd-passing case; the same loop as bench/c/fdpass.c.
// Usage: node fdpass.mjs MESSAGES WINDOW [tight]
// A seqpacket UnixSocket pair in one process; every message carries 8 bytes and one memfd. WINDOW sends
// are started, then WINDOW messages received, and every received fd is closed. Prints {"perSecond": R}.
// By default the loop lets the event loop turn once per window, as a receiver driven by the socket's
// readiness does. 'tight' never yields: everything then runs in one microtask checkpoint, and objects
// that V8 keeps alive until the checkpoint ends (WeakRef targets, if any: the library no longer creates one
// per received fd) pile up; the bench shows both.
import { MemFile, UnixSocket } from '../../dist/index.js';

const messages = Number(process.argv[2] ?? 100000);
const window = Number(process.argv[3] ?? 32);
const tight = process.argv[4] === 'tight';
if (typeof UnixSocket?.pair !== 'function') throw new Error('UnixSocket is not built yet');
const [a, b] = UnixSocket.pair({ type: 'seqpacket' });
const file = MemFile.create('bench');
const payload = Buffer.alloc(8);


async function run(count) {
  const t0 = performance.now();
  const sends = new Array(window);
  for (let done = 0; done < count; done += window) {
    for (let i = 0; i < window; i++) sends[i] = a.send(payload, [file]);
    await Promise.all(sends);
    if (!tight) await new Promise(setImmediate);
    for (let i = 0; i < window; i++) {
      const msg = await b.receive();
      msg.close(); // closes the fd it carried
    }
  }
  return count / ((performance.now() - t0) / 1000);
}

await run(Math.ceil(messages / 4 / window) * window); // warmup
const perSecond = await run(messages);
a.close();
b.close();
file.close();
console.log(JSON.stringify({ perSecond: Math.round(perSecond) }));
