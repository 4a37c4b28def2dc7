// The smallest proof that an installed memfd works: create, write, seal, map, send the fd over a socket
// pair, adopt it on the other end and read the same pages. Prints which addon file the process mapped.
// Run by test-arm64.mjs (the arm64 prebuild under qemu) and test-install.mjs (a packed tarball installed
// into a scratch project, where this file is copied next to node_modules/).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MemFile, Seal, UnixSocket } from 'memfd';

const file = MemFile.create('smoke');
file.writeSync(Buffer.from('hello from memfd'), 0);
file.truncate(1 << 16);
file.addSeals(Seal.Shrink | Seal.Grow | Seal.Write);
assert.ok(file.getSeals().has(['shrink', 'grow', 'write']), String(file.getSeals()));
assert.throws(() => file.writeSync('x', 0), { code: 'EPERM' });

const mapping = file.map({ writable: false });
assert.equal(Buffer.from(mapping.bytes.subarray(0, 16)).toString(), 'hello from memfd');

const [a, b] = UnixSocket.pair({ type: 'seqpacket' });
await a.send(Buffer.from('take this'), [file]);
const message = await b.receive();
assert.equal(message.data.toString(), 'take this');
const adopted = MemFile.fromFd(message.fds[0], { requireSeals: Seal.Shrink | Seal.Write });
const view = adopted.map({ writable: false });
assert.equal(adopted.size, 1 << 16);
assert.equal(Buffer.from(view.bytes.subarray(0, 16)).toString(), 'hello from memfd');

view.unmap();
mapping.unmap();
adopted.close();
file.close();
a.close();
b.close();

// The addon is a mapped file of this process: the maps say which one was loaded, without internal APIs.
const addon = readFileSync('/proc/self/maps', 'utf8').split('\n').map((l) => l.split(/\s+/)[5]).find((p) => p?.endsWith('.node'));
console.log(`memfd smoke ok: ${process.platform}-${process.arch}, node ${process.version}, addon ${addon}`);
