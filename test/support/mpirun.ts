import { spawn } from 'node:child_process';
import { once } from 'node:events';

/** mpirun as root in the VM: it wants an rsh agent named even for one host, and a writable session dir. */
export const mpirunEnv = { ...process.env, OMPI_MCA_plm_rsh_agent: 'false', OMPI_MCA_orte_tmpdir_base: '/tmp', OMPI_MCA_btl: 'self,tcp', OMPI_MCA_pml: 'ob1' };

/** Runs Open MPI's mpirun with `np` ranks of `command` on this host; its output lines and status. */
export async function mpirun(np: number, command: string[], env: NodeJS.ProcessEnv = mpirunEnv): Promise<{ status: number | null; lines: string[]; stderr: string }> {
  const child = spawn('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', String(np), ...command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [status] = (await once(child, 'close')) as [number | null];
  return { status, lines: out.trim().split('\n').filter(Boolean), stderr };
}
