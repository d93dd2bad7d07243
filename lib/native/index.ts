/**
 * The whole native surface, declared once, by area (one file each, as native/ is split); the addon is
 * loaded here. Everything else in lib/ is plain TypeScript on top of these handles; nothing outside lib/
 * should use them directly.
 */
import { resolve } from 'node:path';

import { RdmaError } from '../core/errors';
import type { NativeVerbsFunctions } from './verbs';
import type { NativeMemoryFunctions } from './memory';
import type { NativeCmFunctions } from './cm';
import type { NativeJobsFunctions } from './jobs';
import type { NativeCollectivesFunctions } from './collectives';
import type { NativeBenchFunctions } from './bench';
import type { NativeTesting } from './testing';

export type * from './resource';
export type * from './verbs';
export type * from './memory';
export type * from './cm';
export type * from './jobs';
export type * from './collectives';
export type * from './bench';
export type * from './testing';

export interface NativeBinding extends NativeVerbsFunctions, NativeMemoryFunctions, NativeCmFunctions, NativeJobsFunctions, NativeCollectivesFunctions, NativeBenchFunctions {
  init(options: { RdmaError: typeof RdmaError }): void;
  testing: NativeTesting;
}

/**
 * node-gyp's build, or the addon RDMA_NODE_ADDON names (a path, relative to the working directory): the
 * cmake-js builds of CMakeLists.txt (build-asan/, build-debug/) are loaded this way by scripts/sanitize.sh
 * and scripts/memcheck.sh. Child processes and workers inherit the variable, so they load the same one.
 */
function load(): NativeBinding {
  const override = process.env.RDMA_NODE_ADDON;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const binding = require(override ? resolve(override) : '../../../build/Release/rdma_native.node') as NativeBinding;
  binding.init({ RdmaError });
  return binding;
}

export const native: NativeBinding = load();
