/**
 * Chooses and starts the data-plane engine from the config's `engine` and
 * `workers`, and says which one runs and why (console header, `ctl status`,
 * `--check`).
 */
import os from 'node:os';
import type { Config } from '../core/config.js';
import { JsEngine } from './engine.js';
import { loadNative } from './native-binding.js';
import type { Engine, EngineSink } from '../core/dataplane.js';
import { WorkerEngine } from './worker-engine.js';

export interface EngineChoice {
  readonly kind: 'js' | 'workers' | 'native';
  readonly workers: number;
  /** Short, for the console header: `native`, `js`, `js x2`, `js (no native)`. */
  readonly label: string;
  /** One line: what runs and why (`native (auto: addon loaded)`, `js (auto: native not built: no g++)`). */
  readonly why: string;
}

/** Resolve `workers: "auto"` to the number of cores. */
export function workerCount(config: Config): number {
  return config.workers === 'auto' ? Math.max(1, os.availableParallelism()) : config.workers;
}

/** Decide without starting anything (also used by `--check`). Throws when `engine: "native"` cannot be had. */
export function chooseEngine(config: Config): EngineChoice {
  const n = workerCount(config);
  // TCPLB_ENGINE overrides the config (the test suite runs once per engine;
  // an operator can rule the native engine out without editing the file).
  const forced = process.env.TCPLB_ENGINE;
  if (forced !== undefined && forced !== '') {
    if (forced !== 'auto' && forced !== 'js' && forced !== 'native') throw new Error(`TCPLB_ENGINE=${forced}: must be auto, js or native`);
    config = { ...config, engine: forced };
  }
  const js = (why: string, fallback = false): EngineChoice => {
    const base = n > 1 ? `js x${n}` : 'js';
    const label = fallback ? `${base} (no native)` : base;
    return n > 1 ? { kind: 'workers', workers: n, label, why: `js x${n} workers (${why})` } : { kind: 'js', workers: 1, label, why: `js (${why})` };
  };
  const source = forced ? 'TCPLB_ENGINE' : 'engine';
  if (config.engine === 'js') return js(`${source}: js`);
  const native = loadNative();
  if (native.ok) {
    const threads = n > 1 ? `, ${n} relay threads` : '';
    return { kind: 'native', workers: n, label: n > 1 ? `native x${n}` : 'native', why: `native (${config.engine === 'auto' ? 'auto: ' : ''}addon loaded${threads})` };
  }
  if (config.engine === 'native') throw new Error(`${source}: "native" is set but the native engine is not available: ${native.reason}; set engine to "auto" or "js"`);
  return js(`auto: native engine not available: ${native.reason}`, true);
}

export async function createEngine(config: Config, sink: EngineSink, log: (line: string) => void): Promise<{ engine: Engine; choice: EngineChoice }> {
  const choice = chooseEngine(config);
  switch (choice.kind) {
    case 'workers':
      return { engine: await WorkerEngine.start(sink, { workers: choice.workers, log }), choice };
    case 'native': {
      const { NativeEngine } = await import('./native-engine.js');
      return { engine: new NativeEngine(sink, { log, threads: choice.workers }), choice };
    }
    default:
      return { engine: new JsEngine(sink, { log }), choice };
  }
}
