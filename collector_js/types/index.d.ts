import type { ModalityName, TelemetryDocument } from './extract.js';

export type { ModalityName, ModalityWindow, RawEvent, TelemetryDocument } from './extract.js';
export { extractWindow, windowsFromEvents } from './extract.js';

export interface CollectorOptions {
  /** Which modalities to capture (default all four). */
  modalities?: ModalityName[];
  /** Sliding window length in ms (default 30000). */
  windowMs?: number;
  /** Ring buffer capacity per modality (default 1000 events). */
  maxEvents?: number;
  /**
   * URLs that get the telemetry header: absolute URL prefixes, same-origin path
   * prefixes (starting with "/") or RegExps tested on the absolute URL (no /g flag).
   * Default: every same-origin URL.
   */
  instrument?: Array<string | RegExp>;
  /** Keep cookie `__bsh` fresh for plain navigations (default true). */
  cookie?: boolean;
  /** Header name (default `x-bioshard-telemetry`). */
  headerName?: string;
}

export interface Collector {
  /** Removes every listener, restores fetch and XMLHttpRequest, expires the cookie. */
  stop(): void;
  /** The current window document (debugging; does not consume a seq). */
  current(): TelemetryDocument;
}

export const HEADER: string;
export const COOKIE: string;
/** name -> [lo, hi, decimals] per modality, mirroring sidecar/features.py. */
export const FEATURES: Record<ModalityName, { min: number; f: Record<string, [number, number, number]> }>;
export function start(options?: CollectorOptions): Collector;
export function encodeJson(doc: TelemetryDocument): string;
export function encodeDeflate(doc: TelemetryDocument): Promise<string>;
