// examples/synopsis-map.mjs
import { MemFile, Seal, UnixSocket } from 'memfd';

const file = MemFile.create('ring');
file.truncate(64 << 20);
const mapping = file.map();                       // ArrayBuffer over the pages: no copy
mapping.bytes.fill(7);                            // a Uint8Array view
file.addSeals(Seal.Shrink | Seal.Grow);           // peers may map it now: it can never shrink under them

const [a, b] = UnixSocket.pair();                 // give b to a child: spawn(..., { stdio: [..., b.fd] })
await a.send(Buffer.from('frame 1'), [file]);     // SCM_RIGHTS: the fd itself travels
const msg = await b.receive();                    // { data, fds }: fds are yours (adopt, close, or msg.close())
const peer = MemFile.fromFd(msg.fds[0], { requireSeals: Seal.Shrink }); // a real memfd, and it cannot shrink
const view = peer.map();                          // the same physical pages as `mapping`
console.log(peer.size, view.bytes[0]);            // 67108864 7

view.unmap(); peer.close(); mapping.unmap(); file.close(); a.close(); b.close(); // or the GC does it, and warns
