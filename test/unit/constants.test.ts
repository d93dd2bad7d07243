import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

import * as constants from '../../lib/verbs/constants';
import { WC_WORDS, WcWord } from '../../lib/verbs/completion';
import { MwType } from '../../lib/verbs/mw';
import { Loop } from '../../lib/bench/loops';
import { OpKind } from '../../lib/collectives/plan';
import { dataTypes, reduceOps } from '../../lib/collectives/types';

const root = resolve(__dirname, '..', '..', '..');

// Every constant lib/ hands the addon or compares with what it returns, with the C name it must equal:
// the table's C prefix plus the TS key (or a name of its own). A C program built against the installed
// headers prints each C value; any difference is a copy gone stale.
type Table = Record<string, string | number>;
/** The collectives' name → {code} tables as the C enums spell them: int32 → Int32, band → And. */
function codes(table: Record<string, { code: number }>, renames: Record<string, string> = {}): Table {
  return Object.fromEntries(Object.entries(table).map(([name, { code }]) => {
    const key = name[0]!.toUpperCase() + name.slice(1);
    return [renames[key] ?? key, code];
  }));
}
const tables: [name: string, table: Table, prefix: string, renames?: Record<string, string>][] = [
  ['Access', constants.Access, 'IBV_ACCESS_'],
  ['SendFlags', constants.SendFlags, 'IBV_SEND_'],
  ['WrOpcode', constants.WrOpcode, 'IBV_WR_'],
  ['WcOpcode', constants.WcOpcode, 'IBV_WC_'],
  ['WcFlags', constants.WcFlags, 'IBV_WC_'],
  ['WcStatus', constants.WcStatus, 'IBV_WC_'],
  ['QpState', constants.QpState, 'IBV_QPS_'],
  ['QpType', constants.QpType, 'IBV_QPT_'],
  ['Mtu', constants.Mtu, 'IBV_'],
  ['PortState', constants.PortState, 'IBV_PORT_'],
  ['NodeType', constants.NodeType, 'IBV_NODE_'],
  ['TransportType', constants.TransportType, 'IBV_TRANSPORT_'],
  ['GidType', constants.GidType, 'IBV_GID_TYPE_'],
  ['LinkLayer', constants.LinkLayer, 'IBV_LINK_LAYER_'],
  ['AtomicCap', constants.AtomicCap, 'IBV_ATOMIC_'],
  ['AsyncEventType', constants.AsyncEventType, 'IBV_EVENT_'],
  ['OdpCaps', constants.OdpCaps, 'IBV_ODP_'],
  ['OdpTransportCaps', constants.OdpTransportCaps, 'IBV_ODP_SUPPORT_'],
  ['MwType', MwType, 'IBV_MW_TYPE_', { TYPE_1: 'IBV_MW_TYPE_1', TYPE_2: 'IBV_MW_TYPE_2' }],
  ['PortSpace', constants.PortSpace, 'RDMA_PS_'],
  ['CmEventType', constants.CmEventType, 'RDMA_CM_EVENT_'],
  ['WcWord', WcWord, 'rdma::kWc', { WcFlags: 'rdma::kWcFlags' }],
  ['Loop', Loop, 'static_cast<uint32_t>(rdma::bench::Loop::k', {}],
  ['OpKind', OpKind, 'static_cast<uint32_t>(rdma::collectives::OpKind::k', {}],
  ['DataType', codes(dataTypes), 'static_cast<uint32_t>(rdma::collectives::DataType::k', {}],
  ['ReduceOp', codes(reduceOps, { Band: 'And', Bor: 'Or', Bxor: 'Xor' }), 'static_cast<uint32_t>(rdma::collectives::ReduceOp::k', {}],
];
const singles: Record<string, [number, string]> = {
  UD_GRH_BYTES: [constants.UD_GRH_BYTES, 'sizeof(struct ibv_grh)'],
  WC_WORDS: [WC_WORDS, 'rdma::kWcWords'],
};

/** TS name → [value, C expression], for numeric enums' forward keys and const objects' keys. */
function expectations(): Map<string, [number, string]> {
  const out = new Map<string, [number, string]>(Object.entries(singles));
  for (const [name, table, prefix, renames = {}] of tables) {
    for (const [key, value] of Object.entries(table)) {
      if (typeof value !== 'number') continue; // a numeric enum's reverse mapping
      const c = renames[key] ?? (prefix.endsWith('::k') ? `${prefix}${key})` : `${prefix}${key}`);
      out.set(`${name}.${key}`, [value, c]);
    }
  }
  return out;
}

test('every constant matches the C headers it was copied from', (t) => {
  const expected = expectations();
  const dir = mkdtempSync(join(tmpdir(), 'rdma-node-constants-'));
  try {
    const source = [
      '#include <infiniband/verbs.h>',
      '#include <rdma/rdma_cma.h>',
      '#include <cstdio>',
      '#include "bench/bench.h"',
      '#include "collectives/engine.h"',
      '#include "verbs/completion_layout.h"',
      'int main() {',
      ...[...expected].map(([name, [, c]]) => `  std::printf("%s %lld\\n", "${name}", static_cast<long long>(${c}));`),
      '}',
    ].join('\n');
    writeFileSync(join(dir, 'constants.cc'), source);
    const binary = join(dir, 'constants');
    const build = spawnSync(process.env.CXX ?? 'c++', ['-std=c++17', '-Inative', '-o', binary, join(dir, 'constants.cc')], { cwd: root, encoding: 'utf8' });
    assert.equal(build.status, 0, build.stderr);
    const actual = new Map(spawnSync(binary, { encoding: 'utf8' }).stdout.trim().split('\n').map((line) => {
      const [name, value] = line.split(' ');
      return [name!, Number(value)];
    }));
    const wrong = [...expected].filter(([name, [value]]) => actual.get(name) !== value).map(([name, [value, c]]) => `${name} = ${value}, ${c} = ${actual.get(name)}`);
    assert.deepEqual(wrong, []);
    t.diagnostic(`${expected.size} constants compared`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
