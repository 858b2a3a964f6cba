// Run as a process of its own by support/net-lab.test.ts, to end the way a test process can end without close():
// it makes a one-node lab in the temp dir argv[2], starts a sleeper in n1, prints one JSON line (the lab's identity
// and the sleeper's pid), then with argv[3] = "throw" fails with an uncaught error, with "wait" waits to be killed.
import { createNetLab } from './net-lab.js';

const [tempDir, mode] = process.argv.slice(2);
if (tempDir === undefined || (mode !== 'throw' && mode !== 'wait')) throw new Error('usage: net-lab-fixture.js TEMP_DIR throw|wait');
const lab = await createNetLab({ nodes: ['n1'], tempDir });
const sleeper = lab.spawn('n1', 'sleep', ['600']);
await lab.kill('client', 'SIGKILL'); // nothing runs there: returns at once
process.stdout.write(`${JSON.stringify({ identity: lab.identity(), sleeperPid: sleeper.pid })}\n`);
if (mode === 'throw') throw new Error('the test failed midway');
setInterval(() => undefined, 60_000);
