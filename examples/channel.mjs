// Channel recipe (docs/channel.md): a parent and a child exchange messages over shared memory.
// Runs on Node 20 (plain JS, no `using`). The same file is the child when started with `child`.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Channel } from 'memfd';

if (process.argv[2] !== 'child') {
  const ch = Channel.create({ size: 1 << 20 });                 // end A: 1 MiB per direction
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'child'],
    { stdio: ['inherit', 'inherit', 'inherit', ch.fd] });      // the child gets the memfd as fd 3
  await ch.send('hello');                                       // waits for room if the ring is full
  await ch.send(new Float64Array([1, 2, 3]));                   // Buffer, TypedArray, DataView, ArrayBuffer, string

  // Zero copy: build a message in place in the ring.
  const loan = await ch.reserve(4096);
  loan.bytes.fill(42);
  loan.commit();

  for await (const reply of ch) console.log('parent got:', reply.toString()); // ends when the child closes
  ch.close();
  await new Promise((resolve) => child.on('exit', resolve));
} else {
  const ch = Channel.fromFd(3);                                  // end B, claimed once
  const first = await ch.receive();                              // a Buffer, or null at the end of the stream
  await ch.send(`got ${first.length} bytes: ${first}`);
  const numbers = await ch.receive();
  await ch.send(`and ${numbers.length / 8} numbers`);
  const view = await ch.receiveView();                           // read in place, until release()
  await ch.send(`and ${view.length} bytes in place, all 42: ${view.bytes.every((b) => b === 42)}`);
  view.release();                                                // view.bytes is detached from here on
  ch.close();                                                    // the parent's for-await loop ends here
}
