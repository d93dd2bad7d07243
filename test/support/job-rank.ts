/**
 * A rank for the job tests, run by `rdma-node run` (argv: a mode and its arguments; its rank from the
 * environment).
 *   daemon <dir>          start a daemon that leaves the process group (setsid) and double-forks, write its
 *                         pid to <dir>/daemon-<rank>, print "ready", then sleep (or exit with `exit` after)
 *   daemon-exit <dir>     the same, then exit 0
 *   sleep                 print "ready", sleep until killed
 *   fail <rank> <code>    that rank exits with <code> after 300 ms, the others sleep
 *   self-kill <rank>      that rank SIGKILLs itself after 300 ms, the others sleep
 *   allocate <MiB>        touch that much memory, hold it 300 ms, exit
 *   burn <ms>             spin until that much CPU time is used, exit
 *   signals               print "ready", then the name of each SIGUSR1/SIGUSR2 received
 *   fork <count>          start <count> `sleep` processes: print how many could be started
 *   join [skip-rank]      joinJob(), allgather "rank R", barrier, print what arrived (skip-rank never joins)
 *   stdin                 print the first line of stdin (rank 0) or "no stdin"
 *   rdma [device]         joinJob(), connect(), send 64 KiB of a pattern of its own to every rank and
 *                         check every byte of what each sent: {"rank","hostname","launcher","peers","bad","statuses"}
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { Access, WrOpcode, joinJob } from '../../lib';


const rank = Number(process.env.RDMA_NODE_RANK ?? process.env.OMPI_COMM_WORLD_RANK ?? process.env.SLURM_PROCID);
const forever = (): void => void setInterval(() => undefined, 1 << 30);

/** A daemon as one starts itself: a new session (out of our process group) and a double fork. */
function startDaemon(dir: string): void {
  const file = join(dir, `daemon-${rank}`);
  spawnSync('sh', ['-c', `setsid sh -c 'sleep 1000 & echo $! > ${file}' < /dev/null > /dev/null 2>&1`], { stdio: 'ignore' });
}

async function main([mode, ...args]: string[]): Promise<void> {
  switch (mode) {
    case 'daemon':
    case 'daemon-exit':
      startDaemon(args[0]!);
      console.log('ready');
      if (mode === 'daemon') forever();
      return;
    case 'sleep':
      console.log('ready');
      forever();
      return;
    case 'fail':
      if (rank === Number(args[0])) setTimeout(() => process.exit(Number(args[1])), 300);
      else forever();
      return;
    case 'self-kill':
      if (rank === Number(args[0])) setTimeout(() => process.kill(process.pid, 'SIGKILL'), 300);
      else forever();
      return;
    case 'allocate': {
      const bytes = Buffer.alloc(Number(args[0]) << 20, 1);
      setTimeout(() => console.log(`held ${bytes.length}`), 300);
      return;
    }
    case 'burn': {
      // Until this process has used that much CPU time (and as much wall time has passed): on a busy
      // machine a spin of so many wall-clock milliseconds gets less CPU than that.
      const ms = Number(args[0]);
      const until = Date.now() + ms;
      let spins = 0;
      const cpuUs = (): number => {
        const { user, system } = process.cpuUsage();
        return user + system;
      };
      while (Date.now() < until || cpuUs() < ms * 1000) spins++;
      console.log(`burnt ${spins > 0}`);
      return;
    }
    case 'signals':
      for (const signal of ['SIGUSR1', 'SIGUSR2'] as const) process.on(signal, () => console.log(signal));
      console.log('ready');
      forever();
      return;
    case 'fork': {
      const count = Number(args[0]);
      let started = 0;
      let failed = 0;
      for (let i = 0; i < count; i++) {
        const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
        child.on('spawn', () => started++);
        child.on('error', () => failed++);
      }
      const report = setInterval(() => {
        if (started + failed < count) return;
        clearInterval(report);
        console.log(`started ${started} failed ${failed}`);
        process.exit(0);
      }, 50);
      return;
    }
    case 'join': {
      if (args[0] !== undefined && rank === Number(args[0])) return forever();
      try {
        const job = await joinJob();
        const all = await job.allgather(Buffer.from(`rank ${job.rank}`));
        await job.barrier();
        console.log(JSON.stringify({ launcher: job.launcher, rank: job.rank, size: job.size, localRank: job.localRank, all: all.map(String) }));
        job.close();
      } catch (error) {
        console.log(JSON.stringify({ error: (error as Error).message }));
        process.exitCode = 1;
      }
      return;
    }
    case 'stdin': {
      if (rank !== 0) return console.log('no stdin');
      const lines = createInterface({ input: process.stdin });
      for await (const line of lines) {
        console.log(`stdin: ${line}`);
        break;
      }
      return;
    }
    case 'rdma': {
      const job = await joinJob();
      const links = await job.connect({ device: args[0] });
      const chunk = 65_536;
      const pattern = (from: number, to: number, i: number): number => (from * 31 + to * 7 + i) & 0xff;
      const inbox = links.pd.registerMemory(Buffer.alloc(chunk * job.size), Access.LOCAL_WRITE);
      const outbox = links.pd.registerMemory(Buffer.alloc(chunk * job.size));
      const peers = links.qps.flatMap((qp, peer) => (qp ? [{ qp, peer }] : []));
      for (const { qp, peer } of peers) {
        qp.postRecv({ wrId: peer, sgList: [{ mr: inbox, offset: peer * chunk, length: chunk }] });
        for (let i = 0; i < chunk; i++) outbox.bytes[peer * chunk + i] = pattern(job.rank, peer, i);
      }
      await job.barrier(); // every receive posted before anyone sends
      for (const { qp, peer } of peers) qp.postSend({ wrId: 1000 + peer, opcode: WrOpcode.SEND, sgList: [{ mr: outbox, offset: peer * chunk, length: chunk }] });
      const completions = await links.cq.take(2 * peers.length, { timeoutMs: 60_000 });
      let bad = 0;
      for (const { peer } of peers) {
        for (let i = 0; i < chunk; i++) if (inbox.bytes[peer * chunk + i] !== pattern(peer, job.rank, i)) bad++;
      }
      const statuses = [...new Set(completions.map((c) => c.statusName))];
      await job.barrier(); // nobody tears down while a peer still receives
      console.log(JSON.stringify({ rank: job.rank, hostname: job.hostname, launcher: job.launcher, peers: peers.length, bad, statuses }));
      links.close();
      job.close();
      return;
    }
    default:
      writeFileSync(2, `unknown mode ${mode}\n`);
      process.exit(2);
  }
}

void main(process.argv.slice(2));
