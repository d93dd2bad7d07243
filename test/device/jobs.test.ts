import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { test } from 'node:test';

import { alive, cli, containmentTests, daemonPids, eventually, rankScript, runJob, scratchDir, startJob, waitLines } from '../support/jobs';

// Job containers in the VM, where cgroup2 is mounted and this suite runs as root.
containmentTests('cgroup');

for (const kind of ['cgroup', 'process'] as const) {
  test(`${kind}: the shepherd itself SIGKILLed: ${kind === 'cgroup' ? 'the launcher kills the cgroup, nothing survives' : 'a daemon that left the process group escapes (the promise the process container cannot keep)'}`, async () => {
    const dir = scratchDir();
    const job = startJob(['--container', kind, '-np', '2', rankScript, 'daemon', dir]);
    await waitLines(job, 'ready', 2);
    const shepherd = Number(readdirSync('/proc').find((p) => /^\d+$/.test(p) && isShepherdOf(Number(p), job.child.pid!)));
    assert.ok(shepherd > 0, 'the shepherd runs');
    process.kill(shepherd, 'SIGKILL');
    const { record } = await job.finished;
    assert.equal(record!.endedBy, 'shepherd-killed');
    const ranksGone = await eventually(() => record!.ranks.every((r) => !alive(r.pid)));
    assert.ok(ranksGone, 'the ranks are killed either way (their process group)');
    const escaped = daemonPids(dir).filter(alive);
    if (kind === 'cgroup') assert.deepEqual(escaped, []);
    else {
      assert.equal(escaped.length, 2, 'setsid + double fork escapes a process-group kill');
      for (const pid of escaped) process.kill(pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true });
  });
}

function isShepherdOf(pid: number, launcher: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.includes('(rdma-node-sheph') && Number(stat.slice(stat.lastIndexOf(')') + 4).split(' ')[0]) === launcher;
  } catch {
    return false;
  }
}

test('cgroup: pids.max bounds how many processes the job may have', async () => {
  const { record, lines } = await runJob(['--container', 'cgroup', '--pids-max', '40', '-np', '1', rankScript, 'fork', '60']);
  assert.equal(record.status, 0);
  const [, started, failed] = /^started (\d+) failed (\d+)$/.exec(lines[0] ?? '')!.map(Number);
  assert.ok(failed! > 0 && started! < 40, lines[0]);
});

test('cgroup: a cgroup delegated to an unprivileged user (as systemd Delegate=yes) holds its jobs', async () => {
  const NOBODY = 65_534;
  const delegated = '/sys/fs/cgroup/rdma-node-delegated-test';
  mkdirSync(delegated, { recursive: true });
  for (const file of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads']) chownSync(`${delegated}/${file}`, NOBODY, NOBODY);
  const dir = scratchDir();
  chownSync(dir, NOBODY, NOBODY);
  // A shell enters the delegated cgroup as root, then becomes nobody and launches from inside it.
  const launcher = spawn('sh', ['-c', `echo $$ > ${delegated}/cgroup.procs && exec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups "$@"`, 'sh',
    process.execPath, cli, 'run', '--json', '--container', 'cgroup', '-np', '2', rankScript, 'daemon-exit', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  launcher.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const [status] = (await once(launcher, 'close')) as [number];
  const record = JSON.parse(out.trim().split('\n').at(-1)!) as { status: number; cgroup: string; container: string };
  assert.equal(status, 0, out);
  assert.equal(record.container, 'cgroup');
  assert.ok(record.cgroup.startsWith(`${delegated}/job-`), record.cgroup);
  assert.deepEqual(daemonPids(dir).filter(alive), []);
  rmSync(dir, { recursive: true });
  rmdirSync(delegated);
});
