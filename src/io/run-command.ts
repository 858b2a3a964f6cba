// Runs an external tool (util-linux's wipefs and blkid) and returns what it printed. Probing through util-linux means
// libblkid's signature database decides what "holds data" means, not a magic table of our own.
import { execFile } from 'node:child_process';

export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Never rejects for a non-zero exit; rejects only when the tool cannot be started at all (e.g. not installed). */
export function runCommand(file: string, args: ReadonlyArray<string>, timeoutMs = 30_000): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } }, (error, stdout, stderr) => {
      if (error && typeof (error as NodeJS.ErrnoException).code === 'string') {
        reject(error);
        return;
      }
      const exitCode = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ exitCode, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}
