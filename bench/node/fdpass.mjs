// Node side of the fd-passing case; the same loop as bench/c/fdpass.c and bench/py/fdpass.py.
// Usage: node fdpass.mjs MESSAGES WINDOW [API [FDS [tight [LIBRARY_DIR]]]]
//   API: receive (await socket.receive()), iter (for await ... of socket, via its iterator), event ('message'),
//        or floor-receive, floor-iter, floor-event: the same loop against stand-in sockets that do no I/O, what
//        the loop's own promises, awaits and calls cost: a floor for any socket library with this API
//   FDS: fd (one memfd per message, every received fd closed through msg.close()) or nofd (8 bytes only)
// A seqpacket UnixSocket pair in one process; every message carries 8 bytes. WINDOW sends are started, then
// WINDOW messages received. Prints {"perSecond": R}. By default the loop lets the event loop turn once per
// window, as a receiver driven by the socket's readiness does. 'tight' never yields: everything then runs
// in one microtask checkpoint.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const messages = Number(process.argv[2] ?? 100000);
const window = Number(process.argv[3] ?? 32);
const apiArg = process.argv[4] ?? 'receive';
const standIn = apiArg.startsWith('floor-');
const api = standIn ? apiArg.slice('floor-'.length) : apiArg;
if (!['receive', 'iter', 'event'].includes(api)) throw new Error(`unknown API ${apiArg}`);
const withFd = (process.argv[5] ?? 'fd') === 'fd';
const tight = process.argv[6] === 'tight';
const libDir = process.argv[7] ?? new URL('../../dist', import.meta.url).pathname;
const { MemFile, UnixSocket } = await import(pathToFileURL(path.join(libDir, 'index.js')).href);
if (typeof UnixSocket?.pair !== 'function') throw new Error('UnixSocket is not built yet');
const [a, b] = standIn ? standIns() : UnixSocket.pair({ type: 'seqpacket' });
const file = MemFile.create('bench');
const payload = Buffer.alloc(8);
const fds = withFd ? [file] : null;

// Sockets that do nothing: send() returns one shared settled promise (and hands a 'message' listener one
// shared message at once), receive() and the iterator settled promises of that message, whose close() does
// nothing. A real socket does all of this and more, so what the loop costs with them is the JavaScript share
// no real socket can get under.
function standIns() {
  const sent = Promise.resolve();
  const message = { close() {} };
  const step = { value: message, done: false };
  let listener = null;
  const noop = {
    send() {
      if (listener !== null) listener(message);
      return sent;
    },
    receive: () => Promise.resolve(message),
    on(name, fn) { listener = fn; },
    [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve(step) }),
    close() {},
  };
  return [noop, noop];
}

// 'event': a listener that counts (messages may arrive before the loop waits for them), and a promise per
// window that resolves once everything sent so far arrived.
let received = 0;
let target = 0;
let wake = null;
if (api === 'event') {
  b.on('message', (msg) => {
    msg.close();
    if (++received === target && wake) wake();
  });
}
const it = api === 'iter' ? b[Symbol.asyncIterator]() : null;

async function run(count) {
  const t0 = performance.now();
  const sends = new Array(window);
  for (let done = 0; done < count; done += window) {
    for (let i = 0; i < window; i++) sends[i] = a.send(payload, fds);
    await Promise.all(sends);
    if (!tight) await new Promise(setImmediate);
    if (api === 'event') {
      target += window;
      if (received < target) await new Promise((r) => { wake = r; });
      wake = null;
    } else if (api === 'iter') {
      // The body of `for await (const msg of b) { msg.close(); if (++n === window) break; }` without
      // ending the iteration at each break.
      for (let i = 0; i < window; i++) (await it.next()).value.close();
    } else {
      for (let i = 0; i < window; i++) {
        const msg = await b.receive();
        msg.close(); // closes the fd it carried
      }
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
