/**
 * A peer process for endpoint tests: `node peer.js stream <host> <port>` connects and sends numbered
 * messages until it is killed.
 */
import { connect } from '../../lib';

const [mode, host, port] = process.argv.slice(2);

async function main(): Promise<void> {
  if (mode !== 'stream') throw new Error(`unknown mode ${mode} (stream)`);
  const endpoint = await connect(host!, Number(port));
  for (let i = 0; ; i++) await endpoint.send(Buffer.from(`message ${i}`));
}

main().catch((error: Error) => {
  console.error(`peer ${mode}: ${error.message}`);
  process.exitCode = 1;
});
