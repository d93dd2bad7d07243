/**
 * Bootstrap through PMIx (native/jobs/pmix.h), as Open MPI and UCX do it: each exchange puts this rank's
 * bytes under a fresh key, commits, fences with data collection, and gets every rank's. The fence waits in
 * PMIx's own thread; the event loop keeps running.
 */
import { RdmaError, errnoName } from '../core/errors';
import { native, type NativePmixClient } from '../native';
import type { Exchange } from './join';
import { BootstrapError } from './rendezvous';

export class PmixExchange implements Exchange {
  readonly info: NativePmixClient['info'];
  #client: NativePmixClient;
  #round = 0;
  #pending = new Set<(error: Error) => void>();
  #queue: Promise<unknown> = Promise.resolve();
  readonly #timeoutMs: number;

  constructor(timeoutMs: number) {
    this.#client = native.pmixInit();
    this.info = this.#client.info;
    this.#timeoutMs = timeoutMs;
  }

  #fence(collect: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (error: Error): void => {
        clearTimeout(timer);
        this.#pending.delete(fail);
        reject(error);
      };
      const timer = setTimeout(() => fail(new BootstrapError(`PMIx fence: not every rank arrived within ${this.#timeoutMs} ms`)), this.#timeoutMs);
      this.#pending.add(fail);
      this.#client.fence(collect, (errno, detail) => {
        if (errno !== 0) return fail(new RdmaError(`PMIx_Fence_nb failed: ${detail}`, errnoName(errno), errno, 'PMIx_Fence_nb'));
        clearTimeout(timer);
        this.#pending.delete(fail);
        resolve();
      });
    });
  }

  allgather(bytes: Uint8Array): Promise<Buffer[]> {
    const run = this.#queue.then(async () => {
      const key = `rdma-node.ag.${++this.#round}`;
      this.#client.put(key, bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);
      this.#client.commit();
      await this.#fence(true);
      return Array.from({ length: this.info.size }, (_, rank) => {
        const got = this.#client.get(rank, key);
        if (got === undefined) throw new BootstrapError(`PMIx: rank ${rank} put nothing under ${key}`);
        return got;
      });
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  close(): void {
    for (const fail of [...this.#pending]) fail(new BootstrapError('the job was closed'));
    this.#client.close();
  }
}
