// Real servers started by tests (weston, dbus-daemon, a python3 service) run in process groups of their
// own, so that whatever they launch goes down with them, and the test can prove that nothing outlived it.
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Pids of the processes of group `pgid` that still run. Zombies do not count: a helper whose parent
 * exited first is reparented to pid 1 and waits there to be reaped, which is not the test's doing.
 */
export function livingGroupMembers(pgid) {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') pids.push(Number(entry));
  }
  return pids;
}

/**
 * Stops the process group of `child` (spawned with `detached: true`): SIGTERM, SIGKILL after 5 s. Resolves
 * with the group members that still ran 2.5 s after the leader exited (none, when all went well); those
 * are killed too, so that a failing test leaves nothing behind either.
 */
export async function stopGroup(child) {
  if (!child?.pid) return [];
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* the group is gone */ }
    const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await exited;
    clearTimeout(timer);
  }
  for (let i = 0; i < 50 && livingGroupMembers(child.pid).length; i++) await new Promise((r) => setTimeout(r, 50));
  const survivors = livingGroupMembers(child.pid);
  if (survivors.length) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
  return survivors;
}
