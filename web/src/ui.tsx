// ui.tsx - small pieces the pages share: loading a resource (useLoad), an
// error line, tabs (ARIA tablist, arrow keys), a modal (<dialog>, so focus
// stays inside and Escape closes it), a line diff (LCS over lines, for
// versions) and a JSON value diff (the settings' {from, to}).
import { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { t, Key, lang } from './i18n';
import { api } from './api';

/* GET path (or run fn) now and on reload(); data stays while reloading. */
export function useLoad<T = any>(path: string | null, deps: unknown[] = []) {
  const [data, setData] = useState<T | null>(null);
  const [err, setErr] = useState('');
  const [n, setN] = useState(0);
  useEffect(() => {
    if (!path) { setData(null); return; }
    let live = true;
    api<T>('GET', path).then((d) => { if (live) { setData(d); setErr(''); } }).catch((e) => { if (live) setErr(e.message); });
    return () => { live = false; };
  }, [path, n, ...deps]);
  return { data, err, reload: () => setN((x) => x + 1), setData };
}

export function Err({ msg }: { msg: string }) {
  return msg ? <p class="error" role="alert">{t('common.error', { message: msg })}</p> : null;
}

export function Tabs<K extends string>({ tabs, value, onChange, label, id }: {
  tabs: [K, string][]; value: K; onChange: (k: K) => void; label: string; id: string;
}) {
  const key = (e: KeyboardEvent, i: number) => {
    const d = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
    if (!d) return;
    const n = tabs[(i + d + tabs.length) % tabs.length][0];
    onChange(n);
    (document.getElementById(`${id}-tab-${n}`) as HTMLElement | null)?.focus();
  };
  return (
    <div class="subtabs" role="tablist" aria-label={label}>
      {tabs.map(([k, text], i) => (
        <button type="button" role="tab" id={`${id}-tab-${k}`} key={k} aria-selected={k === value}
          aria-controls={`${id}-panel`} tabIndex={k === value ? 0 : -1} data-tab={k}
          onClick={() => onChange(k)} onKeyDown={(e) => key(e as KeyboardEvent, i)}>{text}</button>
      ))}
    </div>
  );
}

export function TabPanel({ id, value, children }: { id: string; value: string; children: ComponentChildren }) {
  return <div role="tabpanel" id={`${id}-panel`} aria-labelledby={`${id}-tab-${value}`}>{children}</div>;
}

export function Modal({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current!;
    if (!d.open) d.showModal();
    const c = () => onClose();
    d.addEventListener('close', c);
    return () => { d.removeEventListener('close', c); if (d.open) d.close(); };
  }, []);
  return (
    <dialog ref={ref} class="modal panel" aria-labelledby="modal-title" data-testid="modal">
      <h2 id="modal-title">{title}</h2>
      {children}
    </dialog>
  );
}

export type DiffLine = { op: ' ' | '+' | '-'; text: string };

/* Lines of a and b as kept, removed and added (LCS; inputs are versions
 * of a prompt or a blueprint, a few hundred lines at most). */
export function lineDiff(a: string, b: string): DiffLine[] {
  const x = a.split('\n'), y = b.split('\n');
  const n = x.length, m = y.length;
  if (n * m > 4_000_000) return [...x.map((s) => ({ op: '-' as const, text: s })), ...y.map((s) => ({ op: '+' as const, text: s }))];
  const L: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out: DiffLine[] = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push({ op: ' ', text: x[i] }); i++; j++; }
    else if (L[i + 1][j] >= L[i][j + 1]) out.push({ op: '-', text: x[i++] });
    else out.push({ op: '+', text: y[j++] });
  }
  while (i < n) out.push({ op: '-', text: x[i++] });
  while (j < m) out.push({ op: '+', text: y[j++] });
  return out;
}

export function DiffView({ a, b }: { a: string; b: string }) {
  const d = lineDiff(a, b);
  if (!d.some((l) => l.op !== ' ')) return <p class="muted" data-testid="diff">{t('diff.same')}</p>;
  return (
    <pre class="diff" data-testid="diff">
      {d.map((l, i) => <div key={i} class={l.op === '+' ? 'add' : l.op === '-' ? 'del' : ''}>{l.op} {l.text}</div>)}
    </pre>
  );
}

/* A value pretty-printed for a version diff: stable key order. */
export function pretty(v: unknown): string {
  const sort = (x: any): any => Array.isArray(x) ? x.map(sort)
    : x && typeof x === 'object' ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sort(x[k])])) : x;
  return typeof v === 'string' ? v : JSON.stringify(sort(v), null, 2) ?? '';
}

export function when(ts: unknown): string {
  if (ts == null || ts === '') return '';
  const d = typeof ts === 'number' ? new Date(ts < 1e12 ? ts * 1000 : ts) : new Date(String(ts));
  return isNaN(d.getTime()) ? String(ts) : d.toLocaleString(lang()); // in the UI's language, not the browser's
}

export function val(f: HTMLFormElement, n: string): string {
  const el = f.elements.namedItem(n) as HTMLInputElement | null;
  return el ? el.value : '';
}

const STATUS: Record<string, Key> = {
  running: 'prj.s.running', queued: 'prj.s.queued', waiting: 'prj.s.waiting', done: 'prj.s.done', failed: 'prj.s.failed',
  cancelled: 'prj.s.cancelled', succeeded: 'prj.s.succeeded', stopped: 'prj.s.stopped', skipped: 'prj.s.skipped',
  starting: 'ag.s.starting', degraded: 'ag.s.degraded', crashed: 'ag.s.crashed', ready: 'ag.s.ready', backoff: 'ag.s.backoff',
};

/* A task's, step's, run's or agent's status in the UI's language (an
 * unknown one as the server says it). */
export function statusText(s: string): string {
  return STATUS[s] ? t(STATUS[s]) : s;
}

/* A page the principal may not read at all (the API would answer 403). */
export function NoAccess({ title }: { title: string }) {
  return (
    <div class="page">
      <h1>{title}</h1>
      <p class="muted" data-testid="no-access">{t('perm.read')}</p>
    </div>
  );
}

/* A scrolling region (a long table): focusable, so a keyboard can scroll it. */
/* Windowed rendering of a long list of rows of one fixed height (px): a
 * scroll box of at most `height` px holding only the rows in view plus
 * OVERSCAN either side, spacers standing for the rest, so 20,000 rows
 * cost what 40 do. `table`: the rows are <tr>s of a table (colSpan cols),
 * else <li>s of an <ol>. */
const OVERSCAN = 10;
export function useWindow(n: number, rowHeight: number, height: number) {
  const [top, setTop] = useState(0);
  const first = Math.max(0, Math.floor(top / rowHeight) - OVERSCAN);
  const last = Math.min(n, Math.ceil((top + height) / rowHeight) + OVERSCAN);
  return { first, last, before: first * rowHeight, after: (n - last) * rowHeight, onScroll: (e: Event) => setTop((e.currentTarget as HTMLElement).scrollTop) };
}

export function Windowed<T>({ items, rowHeight, height, label, testid, render, head, cols = 1, onEnd }: {
  items: T[]; rowHeight: number; height: number; label: string; testid: string; render: (x: T, i: number) => ComponentChildren; head?: ComponentChildren; cols?: number;
  onEnd?: () => void; // the last row is rendered: the caller may load more rows
}) {
  const w = useWindow(items.length, rowHeight, height);
  const atEnd = items.length > 0 && w.last >= items.length;
  useEffect(() => { if (atEnd && onEnd) onEnd(); }, [atEnd, items.length, !!onEnd]);
  const rows = items.slice(w.first, w.last).map((x, i) => render(x, w.first + i));
  return (
    <div class="scroll windowed" style={`max-height: ${height}px`} tabIndex={0} role="region" aria-label={label} onScroll={w.onScroll} data-count={items.length} data-more={onEnd ? 'yes' : 'no'}>
      {head !== undefined ? (
        <table class="small" data-testid={testid}>
          {head}
          <tbody>
            {w.before > 0 && <tr aria-hidden="true" style={`height: ${w.before}px`}><td colSpan={cols} /></tr>}
            {rows}
            {w.after > 0 && <tr aria-hidden="true" style={`height: ${w.after}px`}><td colSpan={cols} /></tr>}
          </tbody>
        </table>
      ) : (
        <ol class="small mono" data-testid={testid} start={w.first + 1} style={`padding-top: ${w.before}px; padding-bottom: ${w.after}px`}>{rows}</ol>
      )}
    </div>
  );
}

export function Scroll({ label, children }: { label: string; children: ComponentChildren }) {
  return <div class="scroll" tabIndex={0} role="region" aria-label={label}>{children}</div>;
}
