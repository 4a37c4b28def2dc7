// The owner pattern: the owner maps a memfd writable, then adds FutureWrite | Shrink | Grow and hands the
// fd to a reader. From then on only the owner's existing mapping can change the bytes: the reader cannot
// write(2), cannot map it writable, cannot resize it, and can map it safely (no SIGBUS) and watch the
// owner's updates live. Use Seal.Write instead once the contents are final.
import { spawn } from 'node:child_process';
import { MemFile, Seal, UnixSocket, futexWaitAsync, futexWake } from 'memfd';

if (process.argv[2] === 'reader') {
  const sock = UnixSocket.fromFd(3);
  const msg = await sock.receive();
  const file = MemFile.fromFd(msg.fds[0], { requireSeals: Seal.FutureWrite | Seal.Shrink | Seal.Grow });
  const attempts = {
    'write(2)': () => file.writeSync('x', 0),
    'writable map': () => file.map({ writable: true }),
    'truncate': () => file.truncate(0),
  };
  for (const [what, attempt] of Object.entries(attempts)) {
    try { attempt(); console.log(`reader: ${what} allowed (unexpected)`); process.exitCode = 1; }
    catch (e) { console.log(`reader: ${what} refused: ${e.code}`); }
  }
  const m = file.map(); // read-only view, shrink-sealed so it is safe to map
  const words = new Int32Array(m.buffer);
  await sock.send('ready');
  let seen = 0;
  while (seen < 3) {
    await futexWaitAsync(words, 0, seen, 5000); // sleeps until the owner bumps the version
    seen = Atomics.load(words, 0);
    console.log(`reader: version ${seen}: ${JSON.stringify(Buffer.from(m.bytes.subarray(4, 40)).toString().replace(/\0+$/, ''))}`);
  }
  m.unmap();
  file.close();
  sock.close();
} else {
  const file = MemFile.create('owned-frame');
  file.truncate(4096);
  const m = file.map({ writable: true });
  file.addSeals(Seal.FutureWrite | Seal.Shrink | Seal.Grow);
  console.log(`owner: seals ${file.getSeals()}; my mapping stays writable: ${m.writable}`);

  const [mine, theirs] = UnixSocket.pair();
  const reader = spawn(process.execPath, [new URL(import.meta.url).pathname, 'reader'], { stdio: ['inherit', 'inherit', 'inherit', theirs.fd] });
  theirs.close();
  await mine.send('frame', [file]);
  file.close(); // the mapping keeps the file alive
  await mine.receive(); // 'ready': the reader has checked the seals and mapped the file

  const words = new Int32Array(m.buffer);
  for (let version = 1; version <= 3; version++) {
    await new Promise((r) => setTimeout(r, 100));
    m.bytes.fill(0, 4, 40);
    Buffer.from(m.buffer).write(`update number ${version} from the owner`, 4);
    Atomics.store(words, 0, version);
    futexWake(words, 0);
  }
  const code = await new Promise((resolve) => reader.on('exit', resolve));
  m.unmap();
  mine.close();
  if (code !== 0) process.exitCode = 1;
}
