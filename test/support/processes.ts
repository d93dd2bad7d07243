/** Running peers as separate processes: our CLI tools, rdma-core's C programs, endpoint scripts. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const cli = resolve(__dirname, '..', '..', 'lib', 'cli', 'main.js');
export const ours = (tool: string, ...args: string[]): string[] => [process.execPath, cli, tool, ...args];

export interface Run {
  status: number | null;
  output: string;
}

export interface Running {
  done: Promise<Run>;
  kill(signal?: NodeJS.Signals): void;
  output(): string;
}

export function start(command: string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = process.env): Running {
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<Run>((resolve) => child.on('close', (status) => {
    clearTimeout(timer);
    resolve({ status, output });
  }));
  return { done, kill: (signal = 'SIGTERM') => child.kill(signal), output: () => output };
}

/** Whether something listens on TCP `port` (from /proc, so it works for any process). */
function listening(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  return ['/proc/net/tcp', '/proc/net/tcp6'].some((file) => {
    try {
      return readFileSync(file, 'utf8').split('\n').some((line) => line.includes(hex) && / 0A /.test(line));
    } catch {
      return false;
    }
  });
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts `server`, waits until it listens on TCP `port`, runs `client`; both results. */
export async function tcpPair(server: string[], client: string[], port: number): Promise<[Run, Run]> {
  const running = start(server);
  await waitFor(() => listening(port) || running.output().length > 0 && /rror|Couldn't/.test(running.output()), `${server[0]} to listen on ${port}`);
  const clientRun = await start(client).done;
  return [await running.done, clientRun];
}

/**
 * Starts an rdma_cm `server` and runs `client` until it gets through: an rdma_cm listener has no TCP
 * port to watch, so a client that finds no listener yet (REJECTED) is simply run again.
 */
export async function cmPair(server: string[], client: string[]): Promise<[Run, Run]> {
  const running = start(server);
  for (let attempt = 0; ; attempt++) {
    const clientRun = await start(client).done;
    const refused = clientRun.status !== 0 && /REJECTED|ECONNREFUSED|connect error/.test(clientRun.output);
    if (!refused || attempt === 30) return [await running.done, clientRun];
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** "QPN 0x00001a" values of the `label` lines ("local address" or "remote address"). */
export function qpns(output: string, label: string): number[] {
  return [...output.matchAll(new RegExp(`${label}:\\s+LID 0x[0-9a-f]+, QPN 0x([0-9a-f]+)`, 'g'))].map((m) => parseInt(m[1]!, 16));
}

/** The result rows under perftest's column heading. */
export function benchRows(output: string): string[][] {
  const lines = output.split('\n');
  const at = lines.findIndex((l) => l.startsWith(' #bytes'));
  assert.ok(at >= 0, `no result heading in:\n${output}`);
  const out: string[][] = [];
  for (const line of lines.slice(at + 1)) {
    if (line.startsWith('---')) break;
    out.push(line.trim().split(/\s+/));
  }
  return out;
}
