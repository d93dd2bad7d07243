/**
 * A peer process for endpoint tests: `node peer.js <mode> <host> <port> [count]`.
 *   echo    connect, echo every message back, exit when the connection ends
 *   stream  connect, send numbered messages until killed
 *   load    connect, send `count` patterned messages, check each echo, exit 0 only if all came back intact
 */
import { connect } from '../../lib';

const [mode, host, port, count] = process.argv.slice(2);

const pattern = (connection: number, i: number): Buffer => Buffer.from(`${process.pid}:${connection}:${i}:`.padEnd(200, String.fromCharCode(97 + (i % 26))));

async function main(): Promise<number> {
  if (mode === 'load') {
    const connections = 8;
    const results = await Promise.all(Array.from({ length: connections }, async (_, c) => {
      const endpoint = await connect(host!, Number(port));
      try {
        for (let i = 0; i < Number(count); i++) {
          const message = pattern(c, i);
          await endpoint.send(message);
          const echo = await endpoint.receive({ timeoutMs: 60_000 });
          if (!echo.equals(message)) throw new Error(`connection ${c} message ${i} came back altered`);
        }
        return true;
      } finally {
        await endpoint.close();
      }
    }));
    return results.every(Boolean) ? 0 : 1;
  }
  const endpoint = await connect(host!, Number(port));
  if (mode === 'echo') {
    for await (const message of endpoint) await endpoint.send(message);
    return 0;
  }
  for (let i = 0; ; i++) await endpoint.send(Buffer.from(`message ${i}`));
}

main().then((status) => (process.exitCode = status), (error: Error) => {
  console.error(`peer ${mode}: ${error.message}`);
  process.exitCode = 1;
});
