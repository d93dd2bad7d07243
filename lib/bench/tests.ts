/** The eight perftest tests: what each measures, on which transports, and who does what. */
export type Verb = 'send' | 'write' | 'read' | 'atomic';
export type Kind = 'lat' | 'bw';
export type Connection = 'RC' | 'UC' | 'UD';
export type AtomicType = 'FETCH_AND_ADD' | 'CMP_AND_SWAP';

export const testNames = ['send_lat', 'send_bw', 'write_lat', 'write_bw', 'read_lat', 'read_bw', 'atomic_lat', 'atomic_bw'] as const;
export type TestName = (typeof testNames)[number];

export interface TestInfo {
  name: TestName;
  verb: Verb;
  kind: Kind;
  /** Transports perftest allows for the test (the first is the default). */
  connections: Connection[];
  /** What the server does: run its own loop and report it, or wait and print the client's results. */
  server: 'active' | 'passive';
  /** Latency is a round trip halved (ping-pong) or one operation (read, atomic). */
  rttFactor: 1 | 2;
}

const verbs: Record<Verb, { connections: Connection[]; title: string }> = {
  send: { connections: ['RC', 'UC', 'UD'], title: 'Send' },
  write: { connections: ['RC', 'UC'], title: 'RDMA_Write' },
  read: { connections: ['RC'], title: 'RDMA_Read' },
  atomic: { connections: ['RC'], title: 'Atomic' },
};

export function isTestName(name: string): name is TestName {
  return (testNames as readonly string[]).includes(name);
}

export function testInfo(name: TestName): TestInfo {
  const [verb, kind] = name.split('_') as [Verb, Kind];
  const pingPong = kind === 'lat' && (verb === 'send' || verb === 'write');
  return {
    name,
    verb,
    kind,
    connections: verbs[verb].connections,
    server: pingPong || name === 'send_bw' ? 'active' : 'passive',
    rttFactor: pingPong ? 2 : 1,
  };
}

/** The heading perftest prints: 'RDMA_Write BW Test', 'Atomic FETCH_AND_ADD Latency Test', ... */
export function testTitle(info: TestInfo, atomicType: AtomicType = 'FETCH_AND_ADD'): string {
  const verb = info.verb === 'atomic' ? `Atomic ${atomicType}` : verbs[info.verb].title;
  return `${verb} ${info.kind === 'bw' ? 'BW' : 'Latency'} Test`;
}
