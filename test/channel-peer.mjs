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
} else if (role === 'watch-parent') {
  // Reports when a pending receive ends after the parent (end A) is killed.
  say({ ready: true });
  const m = await ch.receive();
  say({ ended: m === null, at: Date.now() });
  ch.close();
}
