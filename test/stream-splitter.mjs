// A relay between a client and a real stream server (weston, dbus-daemon) that hands the server's bytes to
// the client in small pieces, with each batch of fds on the first piece of the bytes they came with. Stream
// protocols must reassemble messages from any split and hold fds until their message is complete; a real
// server on a local socket rarely splits, so this makes every read partial. Nothing is altered or invented.
import { UnixServer, UnixSocket } from '../dist/index.js';

const PIECES = [1, 3, 2, 8, 5, 13, 4, 64];

/**
 * Listens on `path` and relays every connection to `upstream`. Resolves with `{ pieces, fdsRelayed, close }`:
 * how many pieces went to clients and how many fds travelled towards them.
 */
export async function startSplitter(path, upstream) {
  const server = await UnixServer.listen(path, { type: 'stream' });
  const sockets = new Set();
  const stats = { pieces: 0, fdsRelayed: 0 };

  async function pump(from, to, split) {
    let turn = 0;
    try {
      for await (const message of from) {
        try {
          if (!split) {
            await to.send(message.data, message.fds);
            continue;
          }
          for (let at = 0; at < message.data.length; turn++) {
            const piece = message.data.subarray(at, at + PIECES[turn % PIECES.length]);
            await to.send(piece, at === 0 ? message.fds : []);
            if (at === 0) stats.fdsRelayed += message.fds.length;
            at += piece.length;
            stats.pieces++;
            // A pause between pieces, so that the client (idle in epoll) reads them one by one rather than
            // finding several merged in its socket buffer.
            await new Promise((r) => setTimeout(r, 2));
          }
        } finally {
          message.close(); // the kernel gave the receiver its own copies
        }
      }
      await to.end();
    } catch {
      to.close();
    }
  }

  (async () => {
    try {
      for await (const client of server) {
        let remote;
        try {
          remote = await UnixSocket.connect(upstream, { type: 'stream' });
        } catch {
          client.close();
          continue;
        }
        sockets.add(client).add(remote);
        void pump(client, remote, false);
        void pump(remote, client, true);
      }
    } catch { /* closed */ }
  })();

  return {
    stats,
    close() {
      server.close();
      for (const s of sockets) s.close();
    },
  };
}
