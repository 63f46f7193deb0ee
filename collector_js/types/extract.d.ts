/** One recorded raw event (see docs/collector.md, "Raw event schema"). */
export interface RawEvent {
  type: 'keydown' | 'keyup' | 'mousemove' | 'mousedown' | 'mouseup' | 'wheel' | 'scroll'
    | 'touchstart' | 'touchmove' | 'touchend';
  /** Milliseconds on one monotonic clock (event.timeStamp in the browser). */
  t: number;
  x?: number;
  y?: number;
  dx?: number;
  dy?: number;
  button?: number;
  pressure?: number;
  w?: number;
  h?: number;
  /** Touch or pointer id. */
  id?: number;
  /** Touches on the screen at this event. */
  nt?: number;
  /** Backspace/Delete category of a keydown. */
  bs?: boolean;
  /** Internal id pairing a keydown with its keyup; never emitted. */
  code?: string;
}

export type ModalityName = 'keys' | 'mouse' | 'scroll' | 'touch';

export interface ModalityWindow {
  n: number;
  f: Record<string, number>;
}

/** The v1 telemetry document. */
export interface TelemetryDocument {
  sid: string;
  seq: number;
  ts: number;
  dev: 'desktop' | 'touch';
  m: Partial<Record<ModalityName, ModalityWindow>>;
}

export const MODALITIES: ModalityName[];
export const DEFAULT_SID: string;
export function valid(e: unknown): boolean;
export function cleanEvents(events: readonly unknown[]): RawEvent[];
export function robust(values: number[]): number[];
export function roundTo(value: number, decimals: number): number;
export function extractWindow(events: readonly unknown[]): TelemetryDocument['m'];
export function deviceOf(events: readonly unknown[]): 'desktop' | 'touch';
export function windowsFromEvents(
  events: readonly unknown[], windowMs: number, options?: { sid?: string },
): TelemetryDocument[];
