// Client side of the snapshot bench (see ../snapshot.mjs). Usage: node snapshot-child.mjs METHOD ARG
//   snapshot ADDRESS   SnapshotClient.connect(ADDRESS, with @ for a leading NUL); maps the first version and verifies it in place
//   file PATH          on 'go' (a line on stdin) reads PATH into a Buffer and verifies it
//   ipc                child_process.fork IPC (serialization 'advanced'): verifies the Buffer it is sent
// Prints {"ready", "pss"} once set up and idle, then {"bad", "pss", "hwm"} once every byte has been
// verified; then holds the data until it is killed.
import fs from 'node:fs';
import { verify, pssOf, hwmOf } from './pattern.mjs';

const [method, arg] = process.argv.slice(2);
const say = (o) => fs.writeSync(1, JSON.stringify(o) + '\n');
let held; // keep the data reachable until the end

function report(bytes) {
  const bad = verify(bytes);
  say({ bad, pss: pssOf(), hwm: hwmOf() });
  setInterval(() => {}, 1 << 30); // stay alive, holding the data, until the parent kills us
}

switch (method) {
  case 'snapshot': {
    const { SnapshotClient } = await import('../../dist/index.js');
    const client = await SnapshotClient.connect(arg.replace(/^@/, '\0'));
    say({ ready: true, pss: pssOf() });
    for await (const snap of client) {
      held = snap;
      report(snap.bytes);
      break;
    }
    break;
  }
  case 'file': {
    say({ ready: true, pss: pssOf() });
    process.stdin.once('data', () => {
      process.stdin.pause();
      held = fs.readFileSync(arg);
      report(held);
    });
    break;
  }
  case 'ipc': {
    say({ ready: true, pss: pssOf() });
    process.once('message', (bytes) => {
      held = bytes;
      process.send('received'); // the parent sends to the next child only now (memory: see ../snapshot.mjs)
      // Outside the channel's dispatch, where the serialized copy it accumulated is garbage: collect it,
      // so that the PSS reading counts one copy per child, not two.
      setImmediate(() => {
        globalThis.gc?.();
        report(held);
      });
    });
    break;
  }
  default:
    throw new Error(`unknown method ${method}`);
}
