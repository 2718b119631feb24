// projects.tsx - the Projects page (docs/ORCHESTRATOR.md):
//   P1 the task list: GET /api/jobs?status=&before= (newest first, a page
//      of 50 and "see more"), filtered by status on the server and by
//      project in the page; reloaded when a value event arrives (and every
//      15 s while visible);
//      cancel a task that has not finished.
//   P2 a run: GET /api/episodes/:trace - its goal, plan and steps (each
//      step's attempts, input, output, error, duration), approvals,
//      artifacts (previewed by the Chat Hub's workspace), trace, logs
//      (the log service's lines of the trace) and events, both windowed
//      (only the rows in view are in the DOM) and paged (the next 1,000
//      fetched with after= / logs_after= as the window reaches the end);
//      reloaded on value events and polled while not finished.
//   P3 the SOP blueprints' visual editor (sop.tsx), the page's second tab
//      (/projects?tab=sop[&bp=ID]).
//   P4 (from the existing routes) replay: the recorded frames of
//      /replay, stepped through one by one, nothing called again; and a
//      re-run from a chosen step (POST /rerun {from_step, inputs}): the
//      inputs form starts with the run's inputs, and the members given
//      replace the original's (the API merges them and checks the plan's
//      ${inputs...} against the result).
import { useEffect, useRef, useState } from 'preact/hooks';
import { useOnFeed } from '../feed';
import { t } from '../i18n';
import { api } from '../api';
import { can } from '../perm';
import { Err, when, pretty, statusText, NoAccess, Scroll, Windowed, Tabs, TabPanel, Modal } from '../ui';
import { Blueprints } from './sop';
import { Workspace, Preview } from './workspace';

const REFRESH_MS = 15000;
// a run's logs and events are windowed (ui.tsx): rows of one height (.row1)
const LOG_ROW = 24, EVENT_ROW = 20;

const STATUSES = ['running', 'queued', 'waiting', 'done', 'failed', 'cancelled'] as const;

const FINISHED = new Set(['done', 'failed', 'cancelled']);

type Job = { id: number; trace_id: string; spec: any; status: string; project_id: string | null; created_at: string; started_at: string | null; finished_at: string | null; error: any; cost_cny: number; latency_ms: number | null };

export function Projects() {
  return can('read', 'system') ? <ProjectsPage /> : <NoAccess title={t('nav.projects')} />;
}

function ProjectsPage() {
  const q = new URLSearchParams(location.search);
  const [trace, setTrace] = useState<string | null>(q.get('trace'));
  const [tab, setTab] = useState<'tasks' | 'sop'>(q.get('tab') === 'sop' ? 'sop' : 'tasks');
  const open = (tr: string | null) => {
    history.replaceState(null, '', tr ? `/projects?trace=${tr}` : '/projects');
    setTrace(tr);
    setTab('tasks');
  };
  const pick = (k: 'tasks' | 'sop') => {
    history.replaceState(null, '', k === 'sop' ? '/projects?tab=sop' : trace ? `/projects?trace=${trace}` : '/projects');
    setTab(k);
  };
  return (
    <div class="page projects">
      <h1>{t('nav.projects')}</h1>
      <Tabs id="prj" label={t('nav.projects')} value={tab} onChange={pick} tabs={[['tasks', t('prj.tasks')], ['sop', t('sop.title')]]} />
      <TabPanel id="prj" value={tab}>
        {tab === 'tasks' ? <>
          <TaskList selected={trace} onOpen={open} />
          {trace && <Run key={trace} trace={trace} onOpen={open} />}
        </> : <Blueprints onOpenRun={open} />}
      </TabPanel>
    </div>
  );
}

function TaskList({ selected, onOpen }: { selected: string | null; onOpen: (t: string | null) => void }) {
  const [status, setStatus] = useState<string>('all');
  const [project, setProject] = useState('');
  const [pages, setPages] = useState<{ jobs: Job[]; next_before: number | null }[]>([]);
  const [err, setErr] = useState('');
  const base = `/api/jobs?limit=50${status !== 'all' ? `&status=${status}` : ''}`;
  const load = () => api('GET', base).then((r) => { setPages((p) => [r, ...p.slice(1)]); setErr(''); }).catch((e) => setErr(e.message));
  useOnFeed(() => { if (!document.hidden) load(); });
  useEffect(() => {
    setPages([]);
    load();
    const h = setInterval(() => { if (!document.hidden) load(); }, REFRESH_MS);
    return () => clearInterval(h);
  }, [status]);
  const more = async () => {
    const last = pages[pages.length - 1];
    if (!last?.next_before) return;
    try { const r = await api('GET', `${base}&before=${last.next_before}`); setPages([...pages, r]); } catch (e: any) { setErr(e.message); }
  };
  const cancel = async (j: Job) => {
    setErr('');
    try { await api('POST', `/api/jobs/${j.id}/cancel`); load(); } catch (e: any) { setErr(e.message); }
  };
  const seen = new Set<number>();
  const jobs = pages.flatMap((p) => p.jobs).filter((j) => !seen.has(j.id) && seen.add(j.id))
    .filter((j) => !project || (j.project_id || '').includes(project));
  const last = pages[pages.length - 1];
  return (
    <section class="panel">
      <header class="row">
        <h2>{t('prj.tasks')}</h2><span class="spacer" />
        <span class="muted small">{t('mcp.live', { s: REFRESH_MS / 1000 })}</span>
        <button type="button" onClick={load}>{t('common.refresh')}</button>
      </header>
      <div class="row filters">
        <div class="tabs" role="radiogroup" aria-label={t('ag.status')} data-testid="status-filter">
          {['all', ...STATUSES].map((s) => (
            <label key={s} class={status === s ? 'on' : ''}><input type="radio" name="status" value={s} checked={status === s} onChange={() => setStatus(s)} />{s === 'all' ? t('prj.all') : statusText(s)}</label>
          ))}
        </div>
        <label class="row">{t('mem.project')}<input value={project} onInput={(e) => setProject((e.target as HTMLInputElement).value.trim())} style="width: 10rem" data-testid="project-filter" /></label>
      </div>
      <Err msg={err} />
      {!pages.length ? <p>{t('common.loading')}</p> : jobs.length === 0 ? <p class="muted">{t('common.none')}</p> : (
        <Scroll label={t('prj.tasks')}>
          <table data-testid="jobs">
            <thead><tr><th>#</th><th>{t('prj.goal')}</th><th>{t('ag.status')}</th><th>{t('mem.project')}</th><th>{t('sb.started')}</th><th>{t('mcp.latency')}</th><th>{t('prj.cost')}</th><th /></tr></thead>
            <tbody>
              {jobs.map((j) => (
                <tr key={j.id} data-trace={j.trace_id} data-status={j.status} class={selected === j.trace_id ? 'selected' : ''}>
                  <td>{j.id}</td>
                  <td><button type="button" class="link" onClick={() => onOpen(j.trace_id)} aria-current={selected === j.trace_id}>{j.spec?.goal || j.trace_id.slice(0, 8)}</button></td>
                  <td><span class={`status status-${j.status}`}>{statusText(j.status)}</span></td>
                  <td class="mono small">{j.project_id || ''}</td>
                  <td class="small">{when(j.started_at || j.created_at)}</td>
                  <td>{j.latency_ms != null ? `${j.latency_ms} ms` : ''}</td>
                  <td>{j.cost_cny ? `¥${j.cost_cny.toFixed(4)}` : ''}</td>
                  <td>{!FINISHED.has(j.status) && can('operate') && <button type="button" class="danger" onClick={() => cancel(j)} data-testid="job-cancel">{t('common.cancel')}</button>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Scroll>
      )}
      {last?.next_before && <button type="button" onClick={more} data-testid="jobs-more">{t('chat.seemore')}</button>}
    </section>
  );
}

/* A tool result's text, else the value as JSON. */
function show(v: any): string {
  if (v == null) return '';
  if (Array.isArray(v?.content) && v.content.every((c: any) => c.type === 'text')) return v.content.map((c: any) => c.text).join('\n');
  return pretty(v);
}

/* A run's events or log lines, a page (PAGE rows) at a time: the first
 * page comes with the episode, the next ones (after= / logs_after=) as
 * the window reaches its end. A reload of the episode (the run is live)
 * replaces the rows only while they are the first page; past it, the
 * rows loaded stay and the next page is asked from the last one. */
const PAGE = 1000;
type Paged = { rows: any[]; next: number | null };
const NO_ROWS: Paged = { rows: [], next: null };

function firstPage(p: Paged, rows: any[], next: number | null, live: boolean): Paged {
  if (p.rows.length <= rows.length) return { rows, next };
  return { rows: p.rows, next: p.next ?? (live ? p.rows[p.rows.length - 1].id : null) };
}

function usePages(trace: string, kind: 'events' | 'logs', setErr: (m: string) => void) {
  const [p, setP] = useState<Paged>(NO_ROWS);
  const busy = useRef(false);
  const more = () => {
    const from = p.next;
    if (from == null || busy.current) return;
    busy.current = true;
    const q = `${kind === 'events' ? 'after' : 'logs_after'}=${from}`;
    api('GET', `/api/episodes/${trace}?limit=${PAGE}&${q}`).then((r) => {
      setP((cur) => {
        const last = cur.rows.length ? cur.rows[cur.rows.length - 1].id : 0;
        const add = (r[kind] || []).filter((x: any) => x.id > last);
        return { rows: cur.rows.concat(add), next: r[`${kind}_next_after`] };
      });
    }).catch((e) => setErr(e.message)).finally(() => { busy.current = false; });
  };
  return { p, setP, more };
}

function Run({ trace, onOpen }: { trace: string; onOpen: (t: string | null) => void }) {
  const [ep, setEp] = useState<any>(null);
  const [err, setErr] = useState('');
  const [preview, setPreview] = useState<Preview | null>(null);
  const [replay, setReplay] = useState(false);
  const evs = usePages(trace, 'events', setErr);
  const logs = usePages(trace, 'logs', setErr);
  const load = () => api('GET', `/api/episodes/${trace}?limit=${PAGE}`).then((r) => {
    const live = !FINISHED.has(r.status);
    evs.setP((p) => firstPage(p, r.events || [], r.events_next_after, live));
    logs.setP((p) => firstPage(p, r.logs || [], r.logs_next_after, live));
    setEp(r);
    setErr('');
  }).catch((e) => setErr(e.message));
  useEffect(() => { load(); }, [trace]);
  const live = ep && !FINISHED.has(ep.status);
  useOnFeed(() => { if (live && !document.hidden) load(); });
  useEffect(() => {
    if (!live) return;
    const h = setInterval(() => { if (!document.hidden) load(); }, 1500);
    return () => clearInterval(h);
  }, [live]);
  if (!ep) return <section class="panel"><Err msg={err} />{!err && <p>{t('common.loading')}</p>}</section>;
  const steps: any[] = ep.steps || [];
  const [rerunFrom, setRerunFrom] = useState<string | null>(null);
  const op = can('operate');
  // the events loaded, "+" while more are to load
  const evCount = `${evs.p.rows.length}${evs.p.next != null ? '+' : ''}`;
  return (
    <div class="run-grid">
      <section class="panel" data-testid="run" aria-live="polite">
        <header class="row">
          <h2>{ep.spec?.goal || trace.slice(0, 8)}</h2>
          <span class={`status status-${ep.status}`} data-testid="run-status">{statusText(ep.status)}</span>
          <span class="spacer" />
          <button type="button" onClick={() => setReplay(!replay)} aria-pressed={replay} data-testid="replay-toggle">{t('prj.replay')}</button>
          <button type="button" onClick={() => onOpen(null)}>{t('common.close')}</button>
        </header>
        <p class="small muted mono">{trace}{ep.rerun_of && <> · {t('prj.rerunof', { trace: String(ep.rerun_of).slice(0, 8), step: ep.from_step || '' })}</>}</p>
        <p class="small">{t('card.receipt.cost', { cost: Number(ep.cost_cny || 0).toFixed(4) })} · {t('card.receipt.latency', { ms: ep.latency_ms ?? '—' })}
          {' · '}<button type="button" class="link" onClick={() => setPreview({ kind: 'trace', trace })} data-testid="run-trace">{t('card.trace')}</button></p>
        {ep.error && <p class="error">{typeof ep.error === 'string' ? ep.error : pretty(ep.error)}</p>}
        <Err msg={err} />
        <h3>{t('prj.steps')}</h3>
        <ol class="steps" data-testid="steps">
          {steps.map((s) => {
            const a = s.attempts?.[s.attempts.length - 1] || {};
            return (
              <li key={s.id} data-step={s.id} data-status={s.status}>
                <div class="row">
                  <strong class="mono">{s.id}</strong>
                  <span class="badge">{s.kind}</span>
                  <span class={`status status-${s.status}`}>{statusText(s.status)}</span>
                  {s.attempts?.length > 1 && <span class="small muted">{t('prj.attempts', { n: s.attempts.length })}</span>}
                  {a.duration_ms != null && <span class="small muted">{a.duration_ms} ms</span>}
                  <span class="spacer" />
                  {op && s.kind !== 'plan' && FINISHED.has(ep.status) && <button type="button" onClick={() => setRerunFrom(s.id)} data-testid={`rerun-${s.id}`}>{t('prj.rerun')}</button>}
                </div>
                <details>
                  <summary>{t('prj.io')}</summary>
                  <h4>{t('prj.input')}</h4><pre>{show(a.input)}</pre>
                  <h4>{t('mcp.try.result')}</h4><pre data-testid="step-output">{show(a.output)}</pre>
                  {a.error && <pre class="error">{show(a.error)}</pre>}
                </details>
              </li>
            );
          })}
        </ol>
        {(ep.approvals || []).length > 0 && <>
          <h3>{t('card.approval')}</h3>
          <ul class="small">{ep.approvals.map((x: any, i: number) => <li key={i}>{x.step_id || x.step}: {x.decision || x.status} {x.comment && `(${x.comment})`}</li>)}</ul>
        </>}
        <h3>{t('card.receipt.artifacts')}</h3>
        {(ep.artifacts || []).length === 0 ? <p class="muted small">{t('card.receipt.noartifacts')}</p> : (
          <ul class="artifacts" data-testid="run-artifacts">
            {ep.artifacts.map((x: any) => (
              <li key={x.name}><button type="button" class="link" onClick={() => setPreview({ kind: 'artifact', trace, name: x.name, url: x.url })} data-testid="artifact">{x.name}</button> <span class="small muted">{x.size} B</span></li>
            ))}
          </ul>
        )}
        <h3>{t('prj.logs')}</h3>
        {logs.p.rows.length === 0 ? <p class="muted small">{t('common.none')}</p> : (
          <Windowed items={logs.p.rows} rowHeight={LOG_ROW} height={360} label={t('prj.logs')} testid="run-logs" cols={4}
            onEnd={logs.p.next != null ? logs.more : undefined}
            head={<thead><tr><th>{t('aud.time')}</th><th>{t('prj.level')}</th><th>{t('prj.source')}</th><th>{t('prj.message')}</th></tr></thead>}
            render={(l: any) => (
              <tr key={l.id} class={`log-${l.level} row1`}><td>{when(l.ts)}</td><td>{l.level}</td><td class="mono">{l.source || ''}</td><td class="mono" title={l.message}>{l.message}</td></tr>
            )} />
        )}
        <h3>{t('prj.events', { n: evCount })}</h3>
        <Windowed items={evs.p.rows} rowHeight={EVENT_ROW} height={300} label={t('prj.events', { n: evCount })} testid="run-events"
          onEnd={evs.p.next != null ? evs.more : undefined}
          render={(e: any) => <li key={e.id} class="row1" data-event={e.id}>{when(e.created_at)} {e.type}</li>} />
        {replay && <Replay trace={trace} />}
        {rerunFrom && <Rerun trace={trace} step={rerunFrom} inputs={ep.spec?.inputs || {}} onClose={() => setRerunFrom(null)} onOpen={onOpen} />}
      </section>
      {preview && <Workspace preview={preview} onClose={() => setPreview(null)} />}
    </div>
  );
}

function Replay({ trace }: { trace: string }) {
  const [r, setR] = useState<any>(null);
  const [err, setErr] = useState('');
  const [i, setI] = useState(0);
  useEffect(() => { api('GET', `/api/episodes/${trace}/replay`).then(setR).catch((e) => setErr(e.message)); }, [trace]);
  if (!r) return <Err msg={err} />;
  const frames: any[] = r.frames || [];
  if (!frames.length) return <p class="muted">{t('common.none')}</p>;
  const f = frames[Math.min(i, frames.length - 1)];
  return (
    <div class="replay panel" data-testid="replay">
      <h3>{t('prj.replay')}</h3>
      <div class="row">
        <button type="button" onClick={() => setI(Math.max(0, i - 1))} disabled={i === 0} data-testid="replay-prev">{t('prj.prev')}</button>
        <span data-testid="replay-pos">{t('prj.frame', { i: i + 1, n: frames.length })}</span>
        <button type="button" onClick={() => setI(Math.min(frames.length - 1, i + 1))} disabled={i >= frames.length - 1} data-testid="replay-next">{t('prj.next')}</button>
        <input type="range" min={0} max={frames.length - 1} value={i} aria-label={t('prj.frame', { i: i + 1, n: frames.length })} onInput={(e) => setI(Number((e.target as HTMLInputElement).value))} />
      </div>
      <p class="row"><strong class="mono" data-testid="replay-step">{f.step}</strong><span class="badge">{f.kind}</span><span class={`status status-${f.status}`}>{statusText(f.status)}</span><span class="small muted">{when(f.started_at)}</span></p>
      <h4>{t('prj.input')}</h4><pre>{show(f.input)}</pre>
      <h4>{t('mcp.try.result')}</h4><pre data-testid="replay-output">{show(f.output)}</pre>
      {f.error && <pre class="error">{show(f.error)}</pre>}
    </div>
  );
}

/* P4: a re-run from a chosen step, with the run's inputs to change: a
 * text member as text, any other as JSON; members left as they were are
 * not sent (the API keeps the original's), new ones may be added.
 * inputs.memory is the memory service's (a spec may not set it). */
function Rerun({ trace, step, inputs, onClose, onOpen }: { trace: string; step: string; inputs: Record<string, any>; onClose: () => void; onOpen: (t: string) => void }) {
  const show = (v: any) => (typeof v === 'string' ? v : JSON.stringify(v));
  const keys = Object.keys(inputs).filter((k) => k !== 'memory');
  const [vals, setVals] = useState<Record<string, string>>(Object.fromEntries(keys.map((k) => [k, show(inputs[k])])));
  const [added, setAdded] = useState('');
  const [err, setErr] = useState('');
  const go = async (e: Event) => {
    e.preventDefault();
    setErr('');
    const changed: Record<string, any> = {};
    for (const [k, s] of Object.entries(vals)) {
      if (k in inputs && s === show(inputs[k])) continue;
      // an original text member stays text; any other is JSON (a new
      // member that is not JSON is text)
      let v: any = s;
      if (!(k in inputs) || typeof inputs[k] !== 'string') {
        try { v = JSON.parse(s); } catch (x: any) {
          if (k in inputs) { setErr(t('mcp.try.badjson', { message: `${k}: ${x.message}` })); return; }
        }
      }
      changed[k] = v;
    }
    try {
      const r = await api('POST', `/api/episodes/${trace}/rerun`, Object.keys(changed).length ? { from_step: step, inputs: changed } : { from_step: step });
      onClose();
      onOpen(r.trace_id);
    } catch (x: any) { setErr(x.message); }
  };
  return (
    <Modal title={t('prj.rerun.title', { step })} onClose={onClose}>
      <form onSubmit={go} class="stack" data-testid="rerun-form">
        <p class="small muted">{t('prj.rerun.help')}</p>
        {Object.keys(vals).length === 0 && <p class="muted small">{t('prj.rerun.noinputs')}</p>}
        {Object.entries(vals).map(([k, s]) => (
          <label key={k}><span class="mono">{k}</span><input class="mono" name={k} value={s} data-input={k}
            onInput={(e) => setVals({ ...vals, [k]: (e.target as HTMLInputElement).value })} /></label>
        ))}
        <div class="row">
          <label>{t('prj.rerun.add')}<input class="mono" value={added} pattern="[A-Za-z_][A-Za-z0-9_\-]*" onInput={(e) => setAdded((e.target as HTMLInputElement).value.trim())} data-testid="rerun-addname" /></label>
          <button type="button" disabled={!added || added in vals || added === 'memory'} onClick={() => { setVals({ ...vals, [added]: '' }); setAdded(''); }} data-testid="rerun-addinput">{t('sf.add')}</button>
        </div>
        <Err msg={err} />
        <div class="row">
          <button type="submit" class="primary" data-testid="rerun-submit">{t('prj.rerun')}</button>
          <button type="button" onClick={onClose}>{t('common.cancel')}</button>
        </div>
      </form>
    </Modal>
  );
}
