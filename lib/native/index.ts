/**
 * The whole native surface, declared once, by area (one file each, as native/ is split); the addon is
 * loaded here. Everything else in lib/ is plain TypeScript on top of these handles; nothing outside lib/
 * should use them directly.
 */
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

function load(): NativeBinding {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const binding = require('../../../build/Release/rdma_native.node') as NativeBinding;
  binding.init({ RdmaError });
  return binding;
}

export const native: NativeBinding = load();
