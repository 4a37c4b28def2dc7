#!/usr/bin/env node
// The `memfd` executable. The command itself is src/cli.ts (runCli), testable without a child process.
let runCli;
try {
  ({ runCli } = await import('../dist/cli.js'));
} catch (e) {
  // Typically the native addon is missing: its message already says what was tried and what to run.
  process.stderr.write(`memfd: ${e?.message ?? e}\n`);
  process.exit(4);
}
process.exitCode = runCli(process.argv.slice(2));
