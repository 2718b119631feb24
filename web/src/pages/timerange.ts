// timerange.ts - the Monitor's time ranges (15 min, 1 h, 24 h) and the step
// of the metric history each maps to: about 200-300 points a series, from
// the history's 1 s ring (15 min, 1 h) or its 1 min ring (24 h).
import type { Key } from '../i18n';

export type Range = '15m' | '1h' | '24h';
export const RANGES: { r: Range; secs: number; step: number; key: Key }[] = [
  { r: '15m', secs: 900, step: 5, key: 'monitor.range.15m' },
  { r: '1h', secs: 3600, step: 15, key: 'monitor.range.1h' },
  { r: '24h', secs: 86400, step: 300, key: 'monitor.range.24h' },
];

/* The range ending now: unix seconds from, to and the step. */
export function window_(r: Range) {
  const x = RANGES.find((y) => y.r === r) || RANGES[1];
  const to = Math.floor(Date.now() / 1000);
  return { from: to - x.secs, to, step: x.step };
}
