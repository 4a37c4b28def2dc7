// Middle process for channel-process.test.mjs: creates a channel, starts channel-peer.mjs with the fd
// and a role, relays the child's stdout, and waits to be killed.
import { spawn } from 'node:child_process';
import { Channel } from '../dist/index.js';

const ch = Channel.create({ size: 4096 });
const child = spawn(process.execPath, [new URL('./channel-peer.mjs', import.meta.url).pathname, '3', process.argv[2]],
  { stdio: ['ignore', 'inherit', 'inherit', ch.fd] });
process.stdout.write(JSON.stringify({ childPid: child.pid }) + '\n');
setInterval(() => {}, 1000);
