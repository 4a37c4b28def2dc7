// Child side of channel-process.test.mjs: claims end B of the channel whose fd is argv[2] and acts out
// argv[3]. Messages on stdout are one JSON object per line.
import { Channel } from '../dist/index.js';

// `--fd-follows FD`: started by examples/channel-python.py, which appends the fd; the role is echo.
const [fdArg, role] = process.argv[2] === '--fd-follows' ? [process.argv[3], 'echo'] : process.argv.slice(2);
const ch = Channel.fromFd(Number(fdArg));
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');

if (role === 'echo') {
  // Echoes every message with 'node:' in front until the other end closes.
  let n = 0;
  for await (const m of ch) {
    await ch.send(Buffer.concat([Buffer.from('node:'), m]));
    n++;
  }
  ch.close();
  say({ echoed: n });
} else if (role === 'die-mid-message') {
  // Sends three messages, then reserves a fourth and writes half of it: killed here.
  for (let i = 0; i < 3; i++) await ch.send(`m${i}`);
  const loan = await ch.reserve(1000);
  loan.bytes.fill(1, 0, 500);
  say({ ready: true });
  setInterval(() => {}, 1000);
} else if (role === 'fill-and-hang') {
  while (ch.trySend(Buffer.alloc(100)));
  say({ ready: true });
  setInterval(() => {}, 1000);
} else if (role === 'batch-slow-reader') {
  // channel-batch.test.mjs: reads in batches of at most 5 with a pause after each (a slow reader), checks
  // the messages of batchMessage(i) (below) in order, then expects 'end' and the end of the stream.
  const expected = (i) => {
    const m = Buffer.alloc((i * 37) % 300);
    for (let j = 0; j < m.length; j++) m[j] = (i + j) & 0xff;
    if (m.length >= 4) m.writeUInt32LE(i, 0);
    return m;
  };
  say({ ready: true });
  let n = 0, bad = 0, last = '', batches = 0, largest = 0;
  for (;;) {
    const batch = await ch.receiveMany(5);
    if (batch === null) break;
    batches++;
    largest = Math.max(largest, batch.count);
    for (const m of batch) {
      last = m.toString();
      if (last !== 'end' && !m.equals(expected(n))) bad++;
      n++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  ch.close();
  say({ received: n, bad, last, batches, largest });
} else if (role === 'hot-read-then-close') {
  // Polls in a tight loop (optimized by the JIT long before the end) for 20000 messages, then closes.
  let n = 0;
  while (n < 20000) {
    if (ch.tryReceive() !== undefined) n++;
    else if (ch.ended) break;
  }
  ch.close();
  say({ received: n });
} else if (role === 'hot-send-then-close') {
  // Sends 20000 messages from a tight loop, then closes: the parent's polling loop must see the end.
  let n = 0;
  while (n < 20000) if (ch.trySend('x')) n++;
  ch.close();
  say({ sent: n });
} else if (role === 'close-later') {
  // Reads nothing; closes its end 300 ms after saying it is ready.
  say({ ready: true });
  await new Promise((r) => setTimeout(r, 300));
  ch.close();
  say({ closed: true });
} else if (role === 'watch-parent') {
  // Reports when a pending receive ends after the parent (end A) is killed.
  say({ ready: true });
  const m = await ch.receive();
  say({ ended: m === null, at: Date.now() });
  ch.close();
}
