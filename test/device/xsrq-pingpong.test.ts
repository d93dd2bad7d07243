/**
 * xsrq_pingpong on rxe, which has no XRC: our twin and rdma-core's ibv_xsrq_pingpong fail alike, as server
 * and as client: "Couldn't Open the XRC Domain 95" (EOPNOTSUPP from ibv_open_xrcd) alone on stderr, nothing
 * on stdout, exit status 1, before any TCP (a client connects to nothing), the domain file made as the C
 * program makes it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { statSync } from 'node:fs';
import { createServer } from 'node:net';
import { test } from 'node:test';

import { ours } from '../support/processes';

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

async function runSeparately(command: string[]): Promise<Result> {
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [status] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { status, stdout, stderr };
}

let port = 18700;

for (const [name, command] of [['ours', ours('xsrq_pingpong')], ["rdma-core's", ['ibv_xsrq_pingpong']]] as const) {
  for (const role of ['server', 'client'] as const) {
    test(`xsrq_pingpong (${name}) as ${role} on rxe: the XRC domain fails with EOPNOTSUPP before any TCP`, async () => {
      // A listener in this process: a client that got as far as TCP would show up here.
      const p = ++port;
      const listener = createServer((socket) => socket.destroy());
      let connections = 0;
      listener.on('connection', () => connections++);
      listener.listen(p, '127.0.0.1');
      await once(listener, 'listening');
      try {
        // The server on a free port of its own (this one is taken by the listener).
        const args = role === 'client' ? ['-p', String(p), '127.0.0.1'] : ['-p', String(p + 100)];
        const result = await runSeparately([...command, ...args]);
        assert.deepEqual(result, { status: 1, stdout: '', stderr: "Couldn't Open the XRC Domain 95\n" });
        assert.equal(connections, 0, 'no TCP connection was made');
      } finally {
        listener.close();
      }
      assert.equal(statSync('/tmp/xrc_domain').mode & 0o777, 0o440, 'the domain file, O_RDONLY|O_CREAT 0440');
    });
  }
}
