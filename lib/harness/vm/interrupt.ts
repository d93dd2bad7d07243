/** Ctrl-C and SIGTERM during a VM run: stop the VMs and clean up, then end as the signal would have. */

/**
 * Runs `run` with a signal that SIGINT or SIGTERM aborts. Once `run` has settled (its VMs stopped, their
 * job directories removed), the process ends by the same signal, as if it had not been caught.
 */
export async function interruptible<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received) return;
    received = signal;
    process.stderr.write(`[vm] ${signal}: stopping the VM\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await run(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (received) process.kill(process.pid, received);
  }
}
