#!/usr/bin/env node
// examples/snapshot.mjs: a SnapshotServer in this process, a SnapshotClient in a child process.
//
//   node examples/snapshot.mjs
//
// The server publishes a lookup table, the child starts using it, the server publishes a new version and
// the child switches over without ever seeing a half-written table.
import { fork } from 'node:child_process';
import { SnapshotServer, SnapshotClient } from 'memfd';

const address = `\0snapshot-example-${process.argv[2] === 'client' ? process.ppid : process.pid}`;

if (process.argv[2] !== 'client') {
  // ---- server ----
  const server = await SnapshotServer.listen(address);
  try {
    server.publish(JSON.stringify({ fr: 'Paris', de: 'Berlin' }), { meta: { format: 'json' } });
    const child = fork(new URL(import.meta.url).pathname, ['client']);
    await new Promise((resolve) => child.once('message', resolve));          // the child has version 1
    server.publish(JSON.stringify({ fr: 'Paris', de: 'Berlin', it: 'Rome' }), { meta: { format: 'json' } });
    await new Promise((resolve) => child.once('message', resolve));          // ... and version 2
  } finally {
    server.close();                                                          // the child's loop ends
  }
} else {
  // ---- client ----
  const client = await SnapshotClient.connect(address);
  let table = null;      // the Snapshot in use
  try {
    for await (const snap of client) {                                      // newest first, then each new one
      const previous = table;
      table = snap;
      previous?.close();                                                     // let the old version go
      const capitals = JSON.parse(new TextDecoder().decode(table.bytes));   // bytes: the mapped, sealed data
      console.log(`version ${table.version} (${table.size} bytes, ${table.meta.format}):`, Object.values(capitals).join(', '));
      process.send('switched');
    }
    console.log('server gone; still holding version', table?.version);
  } finally {
    table?.close();
    client.close();
    process.disconnect();
  }
}
