// chart.tsx - one time-series chart of the Monitor (uPlot on a canvas):
// lines of [unix seconds, value] points joined on their timestamps (a
// timestamp one line lacks is a gap, not a zero), axes in the theme's
// colours (drawn again when the theme changes), the width of its box
// (a ResizeObserver), and a legend of our own in the UI's language with
// each line's last value - the canvas has no text a screen reader or a
// test could read, so the figure says how many points it drew.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { lang, t } from '../i18n';

export type Line = { label: string; points: [number, number][] };
export type Unit = 'rate' | 'ms' | 'percent' | 'bytes' | 'count';

const COLORS = ['#3b82f6', '#e8590c', '#2f9e44', '#ae3ec9', '#d6336c', '#0c8599'];

export function fmt(v: number | null | undefined, unit: Unit): string {
  if (v == null || !isFinite(v)) return '—';
  const n = (x: number, d = 2) => x.toLocaleString(lang(), { maximumFractionDigits: d });
  switch (unit) {
    case 'rate': return `${n(v, v < 10 ? 2 : 1)}/s`;
    case 'ms': return `${n(v, v < 10 ? 2 : 0)} ms`;
    case 'percent': return `${n(v, 1)} %`;
    case 'bytes': {
      const u = ['B', 'KiB', 'MiB', 'GiB'];
      let i = 0;
      while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
      return `${n(v, 1)} ${u[i]}`;
    }
    default: return n(v, 1);
  }
}

/* [xs, ys...] for uPlot: every line's timestamps, sorted; null where a line has none. */
function align(lines: Line[]): (number | null)[][] {
  const xs = [...new Set(lines.flatMap((l) => l.points.map((p) => p[0])))].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  const ys = lines.map((l) => {
    const y: (number | null)[] = new Array(xs.length).fill(null);
    for (const [x, v] of l.points) y[at.get(x)!] = isFinite(v) ? v : null;
    return y;
  });
  return [xs, ...ys];
}

/* The theme now (data-theme on <html>), following the toggle. */
function useTheme(): string {
  const [th, setTh] = useState(document.documentElement.dataset.theme || 'light');
  useEffect(() => {
    const o = new MutationObserver(() => setTh(document.documentElement.dataset.theme || 'light'));
    o.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
    return () => o.disconnect();
  }, []);
  return th;
}

function timeLabels(splits: number[], span: number): string[] {
  const l = lang();
  return splits.map((s) => {
    const d = new Date(s * 1000);
    return span > 2 * 86400 ? d.toLocaleDateString(l, { month: 'numeric', day: 'numeric' })
      : d.toLocaleTimeString(l, { hour: '2-digit', minute: '2-digit', second: span <= 600 ? '2-digit' : undefined, hour12: false });
  });
}

export function Chart({ id, title, lines, unit, from, to }: {
  id: string; title: string; lines: Line[] | null; unit: Unit; from: number; to: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const range = useRef<[number, number]>([from, to]);
  range.current = [from, to];
  const theme = useTheme();
  const data = lines ? align(lines) : null;
  const shape = lines ? lines.map((l) => l.label).join('\u0001') : '';
  const points = lines ? lines.reduce((n, l) => n + l.points.filter((p) => isFinite(p[1])).length, 0) : 0;

  // (re)made when the lines, the theme or the language change; else new data only
  useEffect(() => {
    const el = box.current;
    if (!el || !lines || !lines.length) return;
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue('--muted').trim() || '#666';
    const grid = css.getPropertyValue('--line').trim() || '#ddd';
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const u = new uPlot({
      width: Math.max(200, el.clientWidth), height: 180,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: () => range.current } },
      series: [{}, ...lines.map((l, i) => ({ label: l.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false }))],
      axes: [
        { ...axis, values: (_u: uPlot, splits: number[]) => timeLabels(splits, range.current[1] - range.current[0]) },
        { ...axis, size: 84, values: (_u: uPlot, splits: number[]) => splits.map((v) => fmt(v, unit)) },
      ],
    }, data as any, el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: 180 }));
    ro.observe(el);
    return () => { ro.disconnect(); u.destroy(); plot.current = null; };
  }, [shape, theme, lang(), unit]);
  useEffect(() => { if (plot.current && data) plot.current.setData(data as any); });

  const last = (l: Line) => {
    for (let i = l.points.length - 1; i >= 0; i--) if (isFinite(l.points[i][1])) return l.points[i][1];
    return null;
  };
  const peak = (l: Line) => l.points.reduce<number | null>((m, p) => isFinite(p[1]) && (m === null || p[1] > m) ? p[1] : m, null);
  return (
    <figure class="chart panel" data-testid={`chart-${id}`} data-points={points} aria-busy={lines === null}>
      <figcaption><h3 id={`chart-${id}-t`}>{title}</h3></figcaption>
      {lines === null ? <p class="muted small">{t('common.loading')}</p>
        : !lines.length || !points ? <p class="muted small" data-testid="chart-empty">{t('monitor.nodata')}</p> : null}
      <div ref={box} class="chart-box" role="img" aria-labelledby={`chart-${id}-t`} hidden={!lines || !lines.length || !points} />
      {lines && lines.length > 0 && (
        <ul class="legend small">
          {lines.map((l, i) => (
            <li key={l.label}><i style={`background: ${COLORS[i % COLORS.length]}`} aria-hidden="true" />{t('monitor.legend', { label: l.label, last: fmt(last(l), unit), peak: fmt(peak(l), unit) })}</li>
          ))}
        </ul>
      )}
    </figure>
  );
}
