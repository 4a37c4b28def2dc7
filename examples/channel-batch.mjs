// Channel batch recipe (docs/channel.md): many small messages per call in both directions of the API.
// Runs on Node 20 (plain JS, no `using`). The same file is the child when started with `child`.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Channel } from 'memfd';

if (process.argv[2] !== 'child') {
  const ch = Channel.create({ size: 1 << 16 });                 // 64 KiB per direction
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'child'],
    { stdio: ['inherit', 'inherit', 'inherit', ch.fd] });
  const events = Array.from({ length: 10000 }, (_, i) => JSON.stringify({ i, price: i % 100 }));
  const sent = ch.trySendMany(events);                           // as many as fit now, in order: one publish
  await ch.sendMany(events.slice(sent));                         // the rest, waiting for room (backpressure)
  ch.close();                                                    // the child's receiveMany() ends with null
  await new Promise((resolve) => child.on('exit', resolve));
} else {
  const ch = Channel.fromFd(3);
  let count = 0, total = 0, batches = 0;
  for (let batch; (batch = await ch.receiveMany()) !== null;) { // a run of messages, one copy out of the ring
    batches++;
    for (const message of batch) total += JSON.parse(message.toString()).price; // a Buffer per message
    // Or without an object per message: batch.bytes from batch.offsetOf(i), batch.lengthOf(i) bytes long.
    const last = batch.count - 1;
    JSON.parse(batch.bytes.toString('utf8', batch.offsetOf(last), batch.offsetOf(last) + batch.lengthOf(last)));
    count += batch.count;
    batch.release();                                             // optional: the next batch reuses its memory
  }
  console.log(`child: ${count} messages, total ${total}, fewer batches than messages: ${batches < count}`);
  ch.close();
}
