// The command socket's promise to a hand-off client (cli/hand-off.ts): a command the server declines is closed before
// `started`, so the client knows it ran nowhere and sent none of its input; one it runs is counted until it ends.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import type { ServedPool } from '../../src/cli/terminal.js';
import { connectToDaemon, runRemotely } from '../../src/cli/forward.js';
import { listenForCommands } from '../../src/serve/command-socket.js';
import { makeTempDir } from '../support/temp-dir.js';

const SILENT = { info: () => undefined, warn: () => undefined, error: () => undefined };

test('a declined command ran nowhere and its client is told so; an accepted one runs once and is counted', async (t) => {
  const directory = await makeTempDir(t, 'command-socket');
  const socketPath = path.join(directory, 'handoff.sock');
  const ran: string[][] = [];
  const socket = await listenForCommands({
    socketPath,
    served: {} as ServedPool, // never used: the runner below touches no pool
    runCommand: async (argv) => {
      ran.push(argv);
      return 0;
    },
    log: SILENT,
    accept: (hello) => hello.argv[0] === 'put',
  });
  t.after(() => socket.close(0));

  const declined = await runRemotely((await connectToDaemon(socketPath))!, ['status'], { awaitStart: true });
  assert.equal(declined, undefined, 'declined: closed before started');
  assert.deepEqual(ran, []);
  assert.equal(socket.started, 0);

  const exitCode = await runRemotely((await connectToDaemon(socketPath))!, ['put', 'k', '-'], { awaitStart: true });
  assert.equal(exitCode, 0);
  assert.deepEqual(ran, [['put', 'k', '-']]);
  assert.equal(socket.started, 1);
  await socket.idle();
  assert.equal(socket.running, 0);

  await socket.finish();
  assert.equal(await connectToDaemon(socketPath), undefined, 'a finished socket takes no one');
});
