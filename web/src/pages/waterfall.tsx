// waterfall.tsx - one trace as a waterfall (Monitor, M3): GET
// /api/traces/:traceId read a page of 10,000 spans at a time (up to
// MAX_SPANS), flattened, then nested again by parent_span_id here (a page
// nests only the spans it holds; a span whose parent is not stored is a
// root), children in start order. Each row is the span's name indented by
// its depth and a bar on the trace's time axis; a click (or Enter) shows
// its attributes, events, status, resource and log lines. Rows are
// windowed (only those in view and a few either side are in the DOM), so
// a trace of 10,000 spans costs what one of 40 does; a subtree folds away
// (the arrow button, or Left/Right), Up/Down move between rows. The trace's
// log lines (the route gives each span its own and the rest apart) are
// listed under it, each opening its span.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { t } from '../i18n';
import { api } from '../api';
import { Err, Windowed, useWindow, when, pretty } from '../ui';
import type { LogLine } from './monitor';

const PAGE = 10000, MAX_SPANS = 50000, ROW = 24, HEIGHT = 480, INDENT = 12, DEPTH_SHOWN = 30;

type Span = {
  id: string; parent: string | null; name: string; kind: string; start: bigint; end: bigint; ms: number;
  status: string; statusMsg?: string; attributes: any; events: any[]; resource?: number; logs: LogLine[];
};
type Trace = { spans: Span[]; total: number; resources: Map<number, any>; logs: LogLine[]; truncated: boolean };

async function load(id: string, progress: (n: number, total: number) => void): Promise<Trace> {
  const spans: Span[] = [], logs: LogLine[] = [], resources = new Map<number, any>();
  let cursor: string | null = null, total = 0, truncated = false;
  do {
    const r: any = await api('GET', `/api/traces/${id}?limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    total = r.span_count;
    for (const x of r.resources || []) resources.set(x.id, x.attributes);
    if (Array.isArray(r.logs)) logs.push(...r.logs);
    truncated = truncated || !!r.logs_truncated;
    const stack: any[] = [...(r.spans || [])];
    while (stack.length) {
      const s = stack.pop();
      const start = BigInt(s.start_time_unix_nano), end = BigInt(s.end_time_unix_nano);
      spans.push({
        id: s.span_id, parent: s.parent_span_id, name: s.name, kind: s.kind, start, end, ms: s.duration_ms,
        status: s.status?.code || 'UNSET', statusMsg: s.status?.message, attributes: s.attributes || {}, events: s.events || [],
        resource: s.resource_id, logs: s.logs || [],
      });
      for (const c of s.children || []) stack.push(c);
    }
    cursor = r.next_cursor;
    progress(spans.length, total);
  } while (cursor && spans.length < MAX_SPANS);
  return { spans, total, resources, logs, truncated };
}

type Row = { s: Span; depth: number; kids: number };

/* The spans nested: children of each span in start order, and the roots. */
function nest(spans: Span[]) {
  const byId = new Map<string, Span>();
  for (const s of spans) if (!byId.has(s.id)) byId.set(s.id, s);
  const kids = new Map<string, Span[]>();
  const roots: Span[] = [];
  for (const s of spans) {
    if (byId.get(s.id) !== s) continue; // a duplicate id
    if (s.parent && s.parent !== s.id && byId.has(s.parent)) {
      const k = kids.get(s.parent);
      if (k) k.push(s); else kids.set(s.parent, [s]);
    } else roots.push(s);
  }
  const byStart = (a: Span, b: Span) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0);
  roots.sort(byStart);
  for (const k of kids.values()) k.sort(byStart);
  return { byId, kids, roots };
}

/* Depth-first rows, skipping the subtrees folded (no recursion: a trace
 * may be as deep as it is long). A parent cycle cannot loop: each span is
 * visited once. */
function flatten(n: ReturnType<typeof nest>, folded: Set<string>): Row[] {
  const out: Row[] = [];
  const seen = new Set<string>();
  const stack: [Span, number][] = [];
  for (let i = n.roots.length - 1; i >= 0; i--) stack.push([n.roots[i], 0]);
  while (stack.length) {
    const [s, d] = stack.pop()!;
    if (seen.has(s.id)) continue;
    seen.add(s.id);
    const k = n.kids.get(s.id) || [];
    out.push({ s, depth: d, kids: k.length });
    if (!folded.has(s.id)) for (let i = k.length - 1; i >= 0; i--) stack.push([k[i], d + 1]);
  }
  return out;
}

const fmtMs = (ms: number) => ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;

/* An attribute's value as OTLP/JSON or plain JSON gives it. */
function attrText(v: any): string {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const k = Object.keys(v);
    if (k.length === 1 && /Value$/.test(k[0])) return attrText(v[k[0]]);
  }
  return typeof v === 'string' ? v : pretty(v);
}
function attrs(a: any): [string, string][] {
  if (Array.isArray(a)) return a.map((x: any) => [String(x?.key), attrText(x?.value)]);
  return a && typeof a === 'object' ? Object.keys(a).map((k) => [k, attrText(a[k])]) : [];
}

export function Waterfall({ trace, onClose, onLogs }: { trace: string; onClose: () => void; onLogs: (trace: string) => void }) {
  const [tr, setTr] = useState<Trace | null>(null);
  const [err, setErr] = useState('');
  const [prog, setProg] = useState<[number, number]>([0, 0]);
  const [folded, setFolded] = useState<Set<string>>(new Set());
  const [sel, setSel] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    load(trace, (n, total) => { if (live) setProg([n, total]); })
      .then((x) => { if (live) setTr(x); }).catch((e) => { if (live) setErr(e.message); });
    return () => { live = false; };
  }, [trace]);
  const nested = useMemo(() => tr ? nest(tr.spans) : null, [tr]);
  const rows = useMemo(() => nested ? flatten(nested, folded) : [], [nested, folded]);
  const bounds = useMemo(() => {
    if (!tr || !tr.spans.length) return { t0: 0n, total: 1 };
    let t0 = tr.spans[0].start, t1 = tr.spans[0].end;
    for (const s of tr.spans) { if (s.start < t0) t0 = s.start; if (s.end > t1) t1 = s.end; }
    return { t0, total: Math.max(1, Number(t1 - t0) / 1e6) };
  }, [tr]);
  const allLogs = useMemo(() => {
    if (!tr) return [] as (LogLine & { spanName?: string })[];
    const l: (LogLine & { spanName?: string })[] = [];
    for (const s of tr.spans) for (const x of s.logs) l.push({ ...x, span_id: x.span_id || s.id, spanName: s.name });
    l.push(...tr.logs);
    return l.sort((a, b) => a.id - b.id);
  }, [tr]);

  if (!tr) {
    return (
      <section class="panel" aria-busy="true" data-testid="waterfall-loading">
        <Err msg={err} />
        {!err && <p>{prog[1] ? t('monitor.wf.loading', { n: prog[0], total: prog[1] }) : t('common.loading')}</p>}
        <button type="button" onClick={onClose}>{t('monitor.wf.back')}</button>
      </section>
    );
  }
  const selected = sel ? nested!.byId.get(sel) || null : null;
  const errors = tr.spans.filter((s) => s.status === 'ERROR').length;
  const toggle = (id: string) => { const f = new Set(folded); if (f.has(id)) f.delete(id); else f.add(id); setFolded(f); };
  return (
    <div class="run-grid">
      <section class="panel waterfall" aria-labelledby="wf-h" data-testid="waterfall" data-spans={tr.spans.length}>
        <header class="row">
          <h2 id="wf-h">{t('monitor.wf.title')}</h2>
          <span class="mono small">{trace}</span>
          <span class="spacer" />
          <button type="button" onClick={() => onLogs(trace)} data-testid="wf-logs">{t('monitor.wf.logs')}</button>
          <button type="button" onClick={onClose} data-testid="wf-back">{t('monitor.wf.back')}</button>
        </header>
        <p class="small">{t('monitor.wf.summary', { n: tr.spans.length, total: tr.total, ms: fmtMs(bounds.total), errors })}
          {tr.spans.length < tr.total && <span class="warn"> {t('monitor.wf.partial', { n: tr.spans.length })}</span>}</p>
        <Rows rows={rows} t0={bounds.t0} total={bounds.total} folded={folded} sel={sel} onSel={setSel} onToggle={toggle} />
        <h3>{t('monitor.wf.loglines', { n: allLogs.length })}</h3>
        {tr.truncated && <p class="small warn">{t('monitor.wf.logstrunc')}</p>}
        {!allLogs.length ? <p class="muted small">{t('common.none')}</p> : (
          <Windowed items={allLogs} rowHeight={ROW} height={300} label={t('monitor.wf.loglines', { n: allLogs.length })} testid="wf-loglines" cols={4}
            head={<thead><tr><th>{t('aud.time')}</th><th>{t('prj.level')}</th><th>{t('monitor.wf.span')}</th><th>{t('prj.message')}</th></tr></thead>}
            render={(l: LogLine & { spanName?: string }) => (
              <tr key={l.id} class={`log-${l.level} row1`}>
                <td class="small">{when(l.ts)}</td><td>{l.level}</td>
                <td>{l.span_id && nested!.byId.has(l.span_id) ? <button type="button" class="link" onClick={() => setSel(l.span_id!)}>{l.spanName || l.span_id}</button> : ''}</td>
                <td class="mono" title={l.message}>{l.message}</td>
              </tr>
            )} />
        )}
      </section>
      {selected && <Details s={selected} resource={selected.resource != null ? tr.resources.get(selected.resource) : undefined} onClose={() => setSel(null)} />}
    </div>
  );
}

function Rows({ rows, t0, total, folded, sel, onSel, onToggle }: {
  rows: Row[]; t0: bigint; total: number; folded: Set<string>; sel: string | null; onSel: (id: string) => void; onToggle: (id: string) => void;
}) {
  const box = useRef<HTMLDivElement>(null);
  const w = useWindow(rows.length, ROW, HEIGHT);
  const focus = useRef<string | null>(null);
  const cur = Math.max(0, rows.findIndex((r) => r.s.id === sel));
  useEffect(() => {
    if (!focus.current) return;
    const el = box.current?.querySelector<HTMLElement>(`[data-span="${focus.current}"] .wf-name`);
    if (el) { el.focus(); focus.current = null; }
  });
  const go = (i: number) => {
    if (i < 0 || i >= rows.length) return;
    const b = box.current!;
    if (i * ROW < b.scrollTop) b.scrollTop = i * ROW;
    else if ((i + 1) * ROW > b.scrollTop + b.clientHeight - ROW) b.scrollTop = (i + 2) * ROW - b.clientHeight;
    focus.current = rows[i].s.id;
    onSel(rows[i].s.id);
  };
  const key = (e: KeyboardEvent, i: number) => {
    const r = rows[i];
    if (e.key === 'ArrowDown') go(i + 1);
    else if (e.key === 'ArrowUp') go(i - 1);
    else if (e.key === 'Home') go(0);
    else if (e.key === 'End') go(rows.length - 1);
    else if (e.key === 'ArrowRight' && r.kids && folded.has(r.s.id)) onToggle(r.s.id);
    else if (e.key === 'ArrowLeft' && r.kids && !folded.has(r.s.id)) onToggle(r.s.id);
    else return;
    e.preventDefault();
  };
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return (
    <div class="wf">
      <div class="wf-axis small muted" aria-hidden="true">
        <span />
        <span class="wf-ticks">{ticks.map((f) => <i key={f} style={`left: ${f * 100}%`}>{f ? fmtMs(total * f) : '0'}</i>)}</span>
      </div>
      <div ref={box} class="wf-scroll" style={`max-height: ${HEIGHT}px`} onScroll={w.onScroll} data-testid="wf-rows" data-count={rows.length}>
        <ol class="wf-list" aria-label={t('monitor.wf.title')} style={`padding-top: ${w.before}px; padding-bottom: ${w.after}px`}>
          {rows.slice(w.first, w.last).map((r, k) => {
            const i = w.first + k, s = r.s;
            const left = (Number(s.start - t0) / 1e6 / total) * 100;
            const width = Math.max(0.2, (s.ms / total) * 100);
            const open = !folded.has(s.id);
            return (
              <li key={s.id} class={`wf-row ${sel === s.id ? 'selected' : ''} ${s.status === 'ERROR' ? 'wf-error' : ''}`}
                data-span={s.id} data-parent={s.parent || ''} data-depth={r.depth} data-name={s.name}>
                <span class="wf-label" style={`padding-left: ${Math.min(r.depth, DEPTH_SHOWN) * INDENT}px`}>
                  {r.kids > 0 ? <button type="button" class="wf-fold" tabIndex={-1} aria-label={t(open ? 'monitor.wf.fold' : 'monitor.wf.unfold', { name: s.name })}
                    onClick={() => onToggle(s.id)}>{open ? '▾' : '▸'}</button> : <span class="wf-fold" />}
                  <button type="button" class="wf-name" tabIndex={i === cur ? 0 : -1} aria-expanded={r.kids ? open : undefined}
                    aria-current={sel === s.id ? true : undefined} onClick={() => onSel(s.id)} onKeyDown={(e) => key(e as KeyboardEvent, i)}
                    title={`${s.name} · ${fmtMs(s.ms)}`}>{s.name}{s.logs.length > 0 && <span class="badge" aria-label={t('monitor.wf.haslogs', { n: s.logs.length })}>≡{s.logs.length}</span>}</button>
                </span>
                <span class="wf-track" aria-hidden="true"><i style={`left: ${Math.min(left, 99.8)}%; width: ${width}%`} /></span>
                <span class="wf-dur small">{fmtMs(s.ms)}</span>
              </li>
            );
          })}
        </ol>
      </div>
    </div>
  );
}

function Details({ s, resource, onClose }: { s: Span; resource: any; onClose: () => void }) {
  const a = attrs(s.attributes), r = attrs(resource);
  return (
    <section class="panel wf-details" aria-labelledby="wfd-h" data-testid="span-details">
      <header class="row"><h2 id="wfd-h">{s.name}</h2><span class="spacer" /><button type="button" onClick={onClose}>{t('common.close')}</button></header>
      <dl class="small kv">
        <dt>{t('monitor.wf.spanid')}</dt><dd class="mono">{s.id}</dd>
        {s.parent && <><dt>{t('monitor.wf.parent')}</dt><dd class="mono">{s.parent}</dd></>}
        <dt>{t('monitor.wf.kind')}</dt><dd class="mono">{s.kind}</dd>
        <dt>{t('ag.status')}</dt><dd class={s.status === 'ERROR' ? 'error' : ''} data-testid="span-status">{s.status}{s.statusMsg ? `: ${s.statusMsg}` : ''}</dd>
        <dt>{t('monitor.traces.duration')}</dt><dd>{fmtMs(s.ms)}</dd>
      </dl>
      <h3>{t('monitor.wf.attributes')}</h3>
      {!a.length ? <p class="muted small">{t('common.none')}</p> : (
        <table class="small kv-table" data-testid="span-attrs"><tbody>{a.map(([k, v]) => <tr key={k}><th class="mono">{k}</th><td class="mono">{v}</td></tr>)}</tbody></table>
      )}
      {s.events.length > 0 && <>
        <h3>{t('monitor.wf.events')}</h3>
        <ul class="small">{s.events.map((e: any, i: number) => <li key={i}><span class="mono">{e.name}</span> {attrs(e.attributes).map(([k, v]) => `${k}=${v}`).join(' ')}</li>)}</ul>
      </>}
      {s.logs.length > 0 && <>
        <h3>{t('monitor.wf.loglines', { n: s.logs.length })}</h3>
        <ul class="small mono" data-testid="span-logs">{s.logs.map((l) => <li key={l.id} class={`log-${l.level}`}>{when(l.ts)} {l.level} {l.message}</li>)}</ul>
      </>}
      {r.length > 0 && <>
        <h3>{t('monitor.wf.resource')}</h3>
        <table class="small kv-table"><tbody>{r.map(([k, v]) => <tr key={k}><th class="mono">{k}</th><td class="mono">{v}</td></tr>)}</tbody></table>
      </>}
    </section>
  );
}
