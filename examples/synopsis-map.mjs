// examples/synopsis-map.mjs
import { MemFile, UnixSocket } from 'memfd';

const file = MemFile.create('ring');
file.truncate(64 << 20);
const mapping = file.map();                       // ArrayBuffer over the pages: no copy
mapping.bytes.fill(7);                            // a Uint8Array view

const [a, b] = UnixSocket.pair();                 // give b to a child: spawn(..., { stdio: [..., b.fd] })
await a.send(Buffer.from('frame 1'), [file]);     // SCM_RIGHTS: the fd itself travels
const msg = await b.receive();                    // { data, fds } (fds owned by msg until taken)
const peer = MemFile.fromFd(msg.fds[0]);          // checks it is a real memfd
peer.map({ unsafeAllowShrinking: true });         // a peer's file needs Seal.Shrink, or this explicit option
console.log(peer.size, Buffer.from(peer.map({ unsafeAllowShrinking: true }).bytes.subarray(0, 4)).toString('hex'));
