// monitor.tsx - the Monitor page (SPEC §2 M1-M3, issue 18's routes), a
// chunk of its own loaded when the page is first opened (app.tsx), so
// uPlot costs the other pages nothing. Tabs, kept in the URL
// (/telemetry?tab=&trace=) so a link or a reload lands on the same view:
//   metrics   M1: charts from the metric history (GET /api/metrics/query)
//             over the range picked (15 min, 1 h, 24 h at a step of 5 s,
//             15 s, 5 min), reloaded every 10 s while shown: throughput
//             (HTTP requests, gateway calls), latency (HTTP mean and the
//             slowest route's p95, event streams left out; gateway mean),
//             error rate (HTTP 5xx, gateway calls not ok), LLM tokens by
//             type, process CPU and RSS. Only the names the history
//             holds (GET /api/metrics/names) are asked for: it answers 404
//             for a name it has never seen.
//   logs      M2: search (GET /api/logs: text, least level, source, trace;
//             "see more" with the cursor) and a live tail (GET
//             /api/logs/stream, SSE, the same filters, resumed from the
//             last line seen when it drops); a line's trace opens its
//             waterfall.
//   traces    M3: search (GET /api/traces: text, status, service in the
//             range; a least duration filters the pages loaded), and the
//             waterfall of one trace (waterfall.tsx).
//   topology  M3: services, agents, MCP servers, tools and models in the
//             range as an SVG graph, and its edges as a table (topology.tsx).
//   analyzer  the Analyzer's suggestions (GET /api/analyzer/suggestions)
//             with their actions done here: open the logs or the trace,
//             the episode (Projects), the server (Integrations), or raise
//             a server's timeout_ms (an Admin).
import { useEffect, useRef, useState } from 'preact/hooks';
import { t, Key } from '../i18n';
import { api } from '../api';
import { can } from '../perm';
import { navigate } from '../router';
import { Err, NoAccess, Scroll, Tabs, TabPanel, Windowed, when } from '../ui';
import { openSse, SseState } from '../sse';
import { Chart, Line, Unit } from './chart';
import { Waterfall } from './waterfall';
import { Topology } from './topology';
import { ruleTitle, actionText, Action } from './suggestion';
import { Range, RANGES, window_ } from './timerange';

type Tab = 'metrics' | 'logs' | 'traces' | 'topology' | 'analyzer';
const TABS: Tab[] = ['metrics', 'logs', 'traces', 'topology', 'analyzer'];
const TAB_KEY: Record<Tab, Key> = {
  metrics: 'monitor.tab.metrics', logs: 'monitor.tab.logs', traces: 'monitor.tab.traces',
  topology: 'monitor.tab.topology', analyzer: 'monitor.tab.analyzer',
};

/* The URL's view: /telemetry?tab=traces&trace=<id>, &logs_trace=<id>. */
function readUrl() {
  const q = new URLSearchParams(location.search);
  const tab = q.get('tab') as Tab;
  return { tab: TABS.includes(tab) ? tab : 'metrics' as Tab, trace: q.get('trace'), logsTrace: q.get('logs_trace') };
}

export function Monitor() {
  return can('read', 'system') ? <MonitorPage /> : <NoAccess title={t('nav.monitor')} />;
}

function MonitorPage() {
  const init = readUrl();
  const [tab, setTab] = useState<Tab>(init.tab);
  const [trace, setTrace] = useState<string | null>(init.trace);
  const [logsTrace, setLogsTrace] = useState<string | null>(init.logsTrace);
  const [logsQ, setLogsQ] = useState<string>('');
  const [logsLevel, setLogsLevel] = useState<string>('');
  const [range, setRange] = useState<Range>(RANGES.some((x) => x.r === localStorage.getItem('aos.monitor.range')) ? localStorage.getItem('aos.monitor.range') as Range : '1h');
  useEffect(() => {
    const q = new URLSearchParams();
    if (tab !== 'metrics') q.set('tab', tab);
    if (tab === 'traces' && trace) q.set('trace', trace);
    if (tab === 'logs' && logsTrace) q.set('logs_trace', logsTrace);
    const s = q.toString();
    history.replaceState(null, '', '/telemetry' + (s ? '?' + s : ''));
  }, [tab, trace, logsTrace]);
  const pick = (r: Range) => { localStorage.setItem('aos.monitor.range', r); setRange(r); };
  const openTrace = (id: string) => { setTrace(id); setTab('traces'); };
  const openLogs = (f: LogsLink) => { setLogsTrace(f.trace ?? null); setLogsQ(f.q ?? ''); setLogsLevel(f.level ?? ''); setTab('logs'); };
  return (
    <div class="page monitor">
      <div class="row">
        <h1>{t('nav.monitor')}</h1>
        <span class="spacer" />
        {tab !== 'logs' && tab !== 'analyzer' && <RangePicker value={range} onChange={pick} />}
      </div>
      <Tabs id="mon" label={t('nav.monitor')} value={tab} onChange={setTab} tabs={TABS.map((k) => [k, t(TAB_KEY[k])])} />
      <TabPanel id="mon" value={tab}>
        {tab === 'metrics' && <Metrics range={range} />}
        {tab === 'logs' && <Logs key={`${logsTrace}|${logsQ}|${logsLevel}`} trace={logsTrace} q={logsQ} level={logsLevel} onTrace={openTrace} />}
        {tab === 'traces' && (trace
          ? <Waterfall key={trace} trace={trace} onClose={() => setTrace(null)} onLogs={(id) => openLogs({ trace: id })} />
          : <TraceSearch range={range} onOpen={openTrace} />)}
        {tab === 'topology' && <Topology range={range} />}
        {tab === 'analyzer' && <Analyzer onTrace={openTrace} onLogs={openLogs} />}
      </TabPanel>
    </div>
  );
}

function RangePicker({ value, onChange }: { value: Range; onChange: (r: Range) => void }) {
  return (
    <div class="tabs range" role="radiogroup" aria-label={t('monitor.range')} data-testid="range">
      {RANGES.map((x) => (
        <label key={x.r} class={value === x.r ? 'on' : ''}>
          <input type="radio" name="mon-range" value={x.r} checked={value === x.r} onChange={() => onChange(x.r)} />{t(x.key)}
        </label>
      ))}
    </div>
  );
}

/* Reloads fn every ms while the page is visible; at once when deps change. */
function useEvery(fn: () => void, ms: number, deps: unknown[]) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    ref.current();
    const h = setInterval(() => { if (!document.hidden) ref.current(); }, ms);
    return () => clearInterval(h);
  }, deps);
}

/* ---- M1: metrics ------------------------------------------------------------ */

type Series = { labels: Record<string, string>; points: [number, number][] };

/* The names the history holds (a histogram's as <name>, <name>_count
 * and <name>_sum): what a query can be asked for without a 404. */
async function held(): Promise<Set<string>> {
  const r = await api('GET', '/api/metrics/names');
  return new Set<string>((r.names || []).map((n: { name: string }) => n.name));
}

function sum(series: Series[], keep: (l: Record<string, string>) => boolean = () => true): Map<number, number> {
  const m = new Map<number, number>();
  for (const s of series) if (keep(s.labels)) for (const [x, v] of s.points) if (isFinite(v)) m.set(x, (m.get(x) || 0) + v);
  return m;
}
function max(series: Series[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const s of series) for (const [x, v] of s.points) if (isFinite(v)) m.set(x, Math.max(m.get(x) ?? -Infinity, v));
  return m;
}
const pts = (m: Map<number, number>, k = 1): [number, number][] => [...m].sort((a, b) => a[0] - b[0]).map(([x, v]) => [x, v * k]);
/* a / b * k where b > 0 */
function ratio(a: Map<number, number>, b: Map<number, number>, k: number): [number, number][] {
  return [...b].filter(([, v]) => v > 0).sort((x, y) => x[0] - y[0]).map(([x, v]) => [x, ((a.get(x) || 0) / v) * k]);
}

const STREAM_ROUTE = /\/(events|stream)$/;

type Charts = Record<'throughput' | 'latency' | 'errors' | 'tokens' | 'cpu' | 'memory', Line[]>;

async function loadCharts(range: Range): Promise<{ charts: Charts; from: number; to: number }> {
  const { from, to, step } = window_(range);
  const have = await held();
  const q = async (name: string, fn: string, labels?: string): Promise<Series[]> => {
    if (!have.has(name)) return [];
    const r = await api('GET', `/api/metrics/query?name=${name}&fn=${fn}&from=${from}&to=${to}&step=${step}${labels ? `&labels=${encodeURIComponent(labels)}` : ''}`);
    return r.series || [];
  };
  const H = 'http_server_request_duration_seconds', G = 'aos_mcp_call_duration_seconds';
  const [hc, hs, hq, gc, gs, calls, tok, cpu, rss] = await Promise.all([
    q(`${H}_count`, 'rate'), q(`${H}_sum`, 'rate'), q(H, 'value', 'quantile="0.95"'),
    q(`${G}_count`, 'rate'), q(`${G}_sum`, 'rate'), q('aos_mcp_calls_total', 'rate'),
    q('gen_ai_client_token_usage_sum', 'rate'), q('process_cpu_seconds_total', 'rate'), q('process_resident_memory_bytes', 'value'),
  ]);
  const line = (label: string, points: [number, number][]): Line[] => points.length ? [{ label, points }] : [];
  // a stream (SSE) lasts as long as its reader: counted in the rate, left
  // out of the latency, which it would swamp
  const brief = (l: Record<string, string>) => !STREAM_ROUTE.test(l.http_route || '');
  const http = sum(hc), gw = sum(calls);
  const byType = new Map<string, Series[]>();
  for (const s of tok) { const k = s.labels.gen_ai_token_type || ''; byType.set(k, [...(byType.get(k) || []), s]); }
  const TOK: Record<string, Key> = { input: 'monitor.tokens.input', output: 'monitor.tokens.output' };
  return {
    from, to,
    charts: {
      throughput: [...line(t('monitor.m.http'), pts(http)), ...line(t('monitor.m.gateway'), pts(gw))],
      latency: [
        ...line(t('monitor.m.http.mean'), ratio(sum(hs, brief), sum(hc, brief), 1000)),
        ...line(t('monitor.m.http.p95'), pts(max(hq.filter((s) => brief(s.labels))), 1000)),
        ...line(t('monitor.m.gateway.mean'), ratio(sum(gs), sum(gc), 1000)),
      ],
      errors: [
        ...line(t('monitor.m.http.5xx'), ratio(sum(hc, (l) => /^5/.test(l.http_response_status_code || '')), http, 100)),
        ...line(t('monitor.m.gateway.failed'), ratio(sum(calls, (l) => l.outcome !== 'ok'), gw, 100)),
      ],
      tokens: [...byType].flatMap(([k, s]) => line(TOK[k] ? t(TOK[k]) : k, pts(sum(s)))),
      cpu: line(t('monitor.m.cpu'), pts(sum(cpu), 100)),
      memory: line(t('monitor.m.rss'), pts(sum(rss))),
    },
  };
}

const CHARTS: { id: keyof Charts; key: Key; unit: Unit }[] = [
  { id: 'throughput', key: 'monitor.c.throughput', unit: 'rate' },
  { id: 'latency', key: 'monitor.c.latency', unit: 'ms' },
  { id: 'errors', key: 'monitor.c.errors', unit: 'percent' },
  { id: 'tokens', key: 'monitor.c.tokens', unit: 'rate' },
  { id: 'cpu', key: 'monitor.c.cpu', unit: 'percent' },
  { id: 'memory', key: 'monitor.c.memory', unit: 'bytes' },
];

function Metrics({ range }: { range: Range }) {
  const [d, setD] = useState<{ charts: Charts; from: number; to: number } | null>(null);
  const [err, setErr] = useState('');
  const seq = useRef(0);
  const load = () => {
    const n = ++seq.current;
    loadCharts(range).then((x) => { if (n === seq.current) { setD(x); setErr(''); } }).catch((e) => { if (n === seq.current) setErr(e.message); });
  };
  useEvery(load, 10000, [range]);
  return (
    <div class="stack" data-testid="metrics">
      <p class="row small muted"><span>{t('monitor.metrics.hint')}</span><span class="spacer" />
        <button type="button" onClick={load} data-testid="metrics-refresh">{t('common.refresh')}</button></p>
      <Err msg={err} />
      <div class="charts">
        {CHARTS.map((c) => (
          <Chart key={c.id} id={c.id} title={t(c.key)} unit={c.unit} lines={d ? d.charts[c.id] : null} from={d?.from ?? 0} to={d?.to ?? 0} />
        ))}
      </div>
    </div>
  );
}

/* ---- M2: logs --------------------------------------------------------------- */

export type LogLine = { id: number; ts: string; level: string; message: string; source?: string; topic?: string; trace_id?: string; span_id?: string; attributes?: any };
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
const TAIL_MAX = 1000;
const LOG_ROW = 24;

type Filter = { q: string; level: string; source: string; trace: string };

function filterQuery(f: Filter): string {
  const p = new URLSearchParams();
  if (f.q.trim()) p.set('q', f.q.trim());
  if (f.level) p.set('level', f.level);
  if (f.source.trim()) p.set('source', f.source.trim());
  if (f.trace.trim()) p.set('trace_id', f.trace.trim());
  return p.toString();
}

type LogsLink = { trace?: string; q?: string; level?: string };

function Logs({ trace, q, level, onTrace }: { trace: string | null; q: string; level: string; onTrace: (id: string) => void }) {
  const [f, setF] = useState<Filter>({ q, level: LEVELS.includes(level) ? level : '', source: '', trace: trace || '' });
  const [applied, setApplied] = useState<Filter>(f);
  const [tail, setTail] = useState(false);
  const submit = (e: Event) => { e.preventDefault(); setApplied({ ...f }); };
  const set = (k: keyof Filter) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  return (
    <div class="stack">
      <form class="panel row filters log-filters" onSubmit={submit} data-testid="log-form" role="search">
        <label>{t('monitor.logs.q')}<input name="q" value={f.q} onInput={set('q')} data-testid="log-q" /></label>
        <label>{t('monitor.logs.level')}
          <select name="level" value={f.level} onChange={set('level')} data-testid="log-level">
            <option value="">{t('monitor.logs.anylevel')}</option>
            {LEVELS.map((l) => <option key={l} value={l}>{l}</option>)}
          </select>
        </label>
        <label>{t('prj.source')}<input name="source" value={f.source} onInput={set('source')} data-testid="log-source" /></label>
        <label>{t('monitor.logs.trace')}<input name="trace" value={f.trace} onInput={set('trace')} class="mono" data-testid="log-trace" /></label>
        <button type="submit" class="primary" data-testid="log-search">{t('monitor.logs.search')}</button>
        <button type="button" aria-pressed={tail} onClick={() => { setApplied({ ...f }); setTail(!tail); }} data-testid="tail-toggle">{t('monitor.logs.tail')}</button>
      </form>
      {tail ? <Tail f={applied} onTrace={onTrace} /> : <LogSearch f={applied} onTrace={onTrace} />}
    </div>
  );
}

function LogRow({ l, onTrace }: { l: LogLine; onTrace: (id: string) => void }) {
  return (
    <tr key={l.id} class={`log-${l.level} row1`} data-id={l.id}>
      <td class="small">{when(l.ts)}</td><td>{l.level}</td><td class="mono">{l.source || ''}</td>
      <td class="mono" title={l.message}>{l.message}</td>
      <td>{l.trace_id && <button type="button" class="link mono" onClick={() => onTrace(l.trace_id!)} data-testid="log-trace-link"
        title={t('monitor.logs.opentrace', { trace: l.trace_id })}>{l.trace_id.slice(0, 8)}</button>}</td>
    </tr>
  );
}

const logHead = () => (
  <thead><tr><th>{t('aud.time')}</th><th>{t('prj.level')}</th><th>{t('prj.source')}</th><th>{t('prj.message')}</th><th>{t('card.trace')}</th></tr></thead>
);

function LogSearch({ f, onTrace }: { f: Filter; onTrace: (id: string) => void }) {
  const [lines, setLines] = useState<LogLine[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [err, setErr] = useState('');
  const base = `/api/logs?limit=100&${filterQuery(f)}`;
  const load = async (cursor?: string) => {
    setErr('');
    try {
      const r = await api('GET', base + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''));
      setLines((old) => cursor && old ? [...old, ...r.items] : r.items);
      setNext(r.more ? r.next_cursor : null);
    } catch (e: any) { setErr(e.message); if (!cursor) setLines([]); }
  };
  useEffect(() => { setLines(null); load(); }, [base]);
  return (
    <section class="panel" aria-labelledby="logs-h">
      <header class="row"><h2 id="logs-h">{t('monitor.logs.results')}</h2><span class="spacer" />
        <button type="button" onClick={() => load()}>{t('common.refresh')}</button></header>
      <Err msg={err} />
      {lines === null ? <p>{t('common.loading')}</p> : !lines.length ? <p class="muted" data-testid="logs-none">{t('monitor.logs.none')}</p> : (
        <Windowed items={lines} rowHeight={LOG_ROW} height={480} label={t('monitor.logs.results')} testid="log-results" cols={5}
          head={logHead()} render={(l: LogLine) => <LogRow key={l.id} l={l} onTrace={onTrace} />} />
      )}
      {next && <button type="button" onClick={() => load(next)} data-testid="logs-more">{t('chat.seemore')}</button>}
    </section>
  );
}

function Tail({ f, onTrace }: { f: Filter; onTrace: (id: string) => void }) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [state, setState] = useState<SseState>('connecting');
  const last = useRef(0);
  useEffect(() => {
    let stop = () => {};
    let timer: ReturnType<typeof setTimeout> | undefined;
    let gone = false;
    const open = () => {
      const q = filterQuery(f);
      const after = last.current ? `after_id=${last.current}` : '';
      const path = `/api/logs/stream${q || after ? '?' : ''}${[q, after].filter(Boolean).join('&')}`;
      stop = openSse(path, (fr) => {
        if (fr.event !== 'log') return;
        let e: LogLine;
        try { e = JSON.parse(fr.data); } catch { return; }
        if (e.id <= last.current) return;
        last.current = e.id;
        setLines((old) => [e, ...old].slice(0, TAIL_MAX));
      }, (s) => {
        setState(s);
        if (s === 'closed' && !gone) timer = setTimeout(open, 1000); // from the last line seen
      });
    };
    open();
    return () => { gone = true; clearTimeout(timer); stop(); };
  }, [filterQuery(f)]);
  const STATE: Record<SseState, Key> = { connecting: 'conn.connecting', live: 'conn.live', closed: 'conn.reconnecting' };
  return (
    <section class="panel" aria-labelledby="tail-h">
      <header class="row"><h2 id="tail-h">{t('monitor.logs.tail')}</h2>
        <span class={`conn conn-${state === 'live' ? 'live' : 'connecting'}`} role="status" data-testid="tail-state" data-state={state}>
          <span class="dot" aria-hidden="true" />{t(STATE[state])}</span>
        <span class="spacer" /><span class="small muted">{t('monitor.logs.tailhint', { n: TAIL_MAX })}</span>
        <button type="button" onClick={() => setLines([])}>{t('monitor.logs.clear')}</button>
      </header>
      {!lines.length ? <p class="muted" data-testid="tail-empty">{t('monitor.logs.waiting')}</p> : (
        <Windowed items={lines} rowHeight={LOG_ROW} height={480} label={t('monitor.logs.tail')} testid="tail-lines" cols={5}
          head={logHead()} render={(l: LogLine) => <LogRow key={l.id} l={l} onTrace={onTrace} />} />
      )}
    </section>
  );
}

/* ---- M3: trace search ---------------------------------------------------------- */

type TraceRow = { trace_id: string; span_id: string; name: string; service?: string; kind?: string; start_time: string; duration_ms: number; status: string; span_count: number; error_count: number };

function TraceSearch({ range, onOpen }: { range: Range; onOpen: (id: string) => void }) {
  const [form, setForm] = useState({ q: '', status: '', service: '', min: '' });
  const [f, setF] = useState(form);
  const [rows, setRows] = useState<TraceRow[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [err, setErr] = useState('');
  const [win, setWin] = useState(() => window_(range));
  useEffect(() => setWin(window_(range)), [range, f]);
  const p = new URLSearchParams({ from: String(win.from), to: String(win.to + 60), limit: '50' });
  if (f.q.trim()) p.set('q', f.q.trim());
  if (f.status) p.set('status', f.status);
  if (f.service.trim()) p.set('service', f.service.trim());
  const base = `/api/traces?${p}`;
  const load = async (cursor?: string) => {
    setErr('');
    try {
      const r = await api('GET', base + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''));
      setRows((old) => cursor && old ? [...old, ...r.traces] : r.traces);
      setNext(r.next_cursor || null);
    } catch (e: any) { setErr(e.message); if (!cursor) setRows([]); }
  };
  useEffect(() => { setRows(null); load(); }, [base]);
  const min = Number(form.min) || 0;
  const shown = (rows || []).filter((r) => r.duration_ms >= min);
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });
  return (
    <section class="panel" aria-labelledby="traces-h">
      <h2 id="traces-h">{t('monitor.traces.title')}</h2>
      <form class="row filters" role="search" onSubmit={(e) => { e.preventDefault(); setF({ ...form }); }} data-testid="trace-form">
        <label>{t('monitor.traces.q')}<input value={form.q} onInput={set('q')} data-testid="trace-q" /></label>
        <label>{t('ag.status')}
          <select value={form.status} onChange={set('status')} data-testid="trace-status">
            <option value="">{t('prj.all')}</option><option value="ok">{t('monitor.status.ok')}</option><option value="error">{t('monitor.status.error')}</option>
          </select>
        </label>
        <label>{t('monitor.traces.service')}<input value={form.service} onInput={set('service')} data-testid="trace-service" /></label>
        <label>{t('monitor.traces.min')}<input type="number" min="0" value={form.min} onInput={set('min')} data-testid="trace-min" /></label>
        <button type="submit" class="primary" data-testid="trace-search">{t('monitor.logs.search')}</button>
      </form>
      <Err msg={err} />
      {rows === null ? <p>{t('common.loading')}</p> : !shown.length ? <p class="muted" data-testid="traces-none">{t('monitor.traces.none')}</p> : (
        <Scroll label={t('monitor.traces.title')}>
          <table data-testid="traces">
            <thead><tr><th>{t('monitor.traces.name')}</th><th>{t('monitor.traces.service')}</th><th>{t('sb.started')}</th><th>{t('monitor.traces.duration')}</th><th>{t('monitor.traces.spans')}</th><th>{t('ag.status')}</th></tr></thead>
            <tbody>
              {shown.map((r) => (
                <tr key={r.trace_id + r.span_id} data-trace={r.trace_id} data-status={r.status}>
                  <td><button type="button" class="link" onClick={() => onOpen(r.trace_id)}>{r.name}</button></td>
                  <td class="mono small">{r.service || ''}</td>
                  <td class="small">{when(r.start_time)}</td>
                  <td>{r.duration_ms.toFixed(r.duration_ms < 10 ? 2 : 0)} ms</td>
                  <td>{r.span_count}{r.error_count > 0 && <span class="error"> ({t('monitor.traces.errors', { n: r.error_count })})</span>}</td>
                  <td><span class={r.error_count ? 'error' : 'ok'}>{t(r.error_count ? 'monitor.status.error' : 'monitor.status.ok')}</span></td>
                </tr>
              ))}
            </tbody>
          </table>
        </Scroll>
      )}
      {next && <button type="button" onClick={() => load(next)} data-testid="traces-more">{t('chat.seemore')}</button>}
    </section>
  );
}

/* ---- the Analyzer ---------------------------------------------------------------- */

type Suggestion = { id: string; rule: string; title: string; detail: string; count: number; first_seen: string; last_seen: string; server?: string; tool?: string; error?: string; message?: string; agent?: string; traces?: string[]; actions: Action[]; llm?: { text: string; model: string } };

function Analyzer({ onTrace, onLogs }: { onTrace: (id: string) => void; onLogs: (f: LogsLink) => void }) {
  const [list, setList] = useState<Suggestion[] | null>(null);
  const [err, setErr] = useState('');
  const [raise, setRaise] = useState<{ server: string; field: string } | null>(null);
  const [done, setDone] = useState('');
  const load = () => api('GET', '/api/analyzer/suggestions?limit=100').then((r) => { setList(r.suggestions); setErr(''); }).catch((e) => setErr(e.message));
  useEvery(load, 15000, []);
  const act = (a: Action) => {
    const [path, qs] = a.path.split('?');
    const q = new URLSearchParams(qs || '');
    let m;
    if (a.method === 'GET' && path === '/api/logs') onLogs({ trace: q.get('trace_id') || undefined, q: q.get('q') || undefined, level: q.get('level') || undefined });
    else if (a.method === 'GET' && (m = /^\/api\/traces\/([0-9a-f]{32})$/.exec(path))) onTrace(m[1]);
    else if (a.method === 'GET' && (m = /^\/api\/episodes\/([0-9a-f]{32})$/.exec(path))) navigate(`/projects?trace=${m[1]}`);
    else if (a.method === 'GET' && /^\/mcp\/registry\//.test(path)) navigate('/integrations');
    else if (a.method === 'PATCH' && a.field && (m = /^\/mcp\/registry\/([^/]+)$/.exec(path))) { setDone(''); setRaise({ server: decodeURIComponent(m[1]), field: a.field }); }
  };
  const save = async (e: Event) => {
    e.preventDefault();
    const v = Number(((e.target as HTMLFormElement).elements.namedItem('v') as HTMLInputElement).value);
    setErr('');
    try {
      await api('PATCH', `/mcp/registry/${encodeURIComponent(raise!.server)}`, { [raise!.field]: v });
      setDone(t('monitor.act.saved', { server: raise!.server, field: raise!.field, v }));
      setRaise(null);
    } catch (x: any) { setErr(x.message); }
  };
  return (
    <section class="panel" aria-labelledby="an-h">
      <header class="row"><h2 id="an-h">{t('monitor.analyzer.title')}</h2><span class="spacer" />
        <button type="button" onClick={load}>{t('common.refresh')}</button></header>
      <p class="small muted">{t('monitor.analyzer.hint')}</p>
      <Err msg={err} />
      {done && <p class="ok" role="status">{done}</p>}
      {list === null ? (!err && <p>{t('common.loading')}</p>) : !list.length ? <p class="muted" data-testid="suggestions-none">{t('monitor.analyzer.none')}</p> : (
        <ul class="list suggestions" data-testid="suggestions">
          {list.map((s) => (
            <li key={s.id} data-rule={s.rule}>
              <h3>{ruleTitle(s, s.server, s.tool, s.agent)}</h3>
              <p class="small muted">{t('monitor.analyzer.seen', { n: s.count, first: when(s.first_seen), last: when(s.last_seen) })}
                {s.agent && <> · {t('monitor.analyzer.agent', { agent: s.agent })}</>}</p>
              {s.message && <pre class="small">{s.message}</pre>}
              {s.llm && (
                <blockquote class="small" data-testid="suggestion-llm">
                  <span class="muted">{t('analyzer.model', { model: s.llm.model })}</span>
                  <p>{s.llm.text}</p>
                </blockquote>
              )}
              <div class="row">
                {s.actions.map((a, i) => {
                  const admin = a.method !== 'GET';
                  return (
                    <button type="button" key={i} onClick={() => act(a)} disabled={admin && !can('admin')} title={admin && !can('admin') ? t('monitor.perm.admin') : undefined}
                      data-testid="suggestion-action" data-path={a.path}>{actionText(a)}</button>
                  );
                })}
              </div>
              {raise && s.server === raise.server && s.actions.some((a) => a.field === raise.field) && (
                <form class="row inline-form" onSubmit={save} data-testid="raise-form">
                  <label>{t('monitor.act.value', { field: raise.field, server: raise.server })}<input name="v" type="number" min="1" required /></label>
                  <button type="submit" class="primary">{t('common.save')}</button>
                  <button type="button" onClick={() => setRaise(null)}>{t('common.cancel')}</button>
                </form>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}


