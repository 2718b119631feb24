// agents.tsx - the Agents page (the agents routes of docs/rbac-routes.json,
// the sandbox of docs/SANDBOX.md):
//   Agents   A1 the list (type, status, live and latest version, replicas)
//            and creating one from a template (GET /agents/templates);
//            A3 the configuration editor: prompt, SOP, concurrency, the
//            tool mapping picked from the registry's tools (MCP tools/list
//            on /mcp: server__tool, or a whole server as server__*), the
//            environment's names (values are write-only); each save is a
//            new version (PATCH). A4 every version with its diff, the
//            line diff of any two, release (a newer one) or roll back (an
//            older one, the diff from the live version shown before it is
//            confirmed), clone, delete. A2 start, stop, scale, register in
//            the MCP gateway; the status, load, replicas (pid, state,
//            version, calls in flight, draining, restarts), statistics
//            and last errors re-read on each value event (agent.status on
//            every status change, recovery.*, anomaly.detected), every
//            second only while replicas are replaced under a running
//            status (a release, a scale, a rotated secret: no status
//            change, so no event) and every 5 s while it runs (its load
//            and statistics change with each call); unregister from the
//            gateway; the run history (GET /agents/:id/runs); environment
//            variables as values or {secret}/{var} references picked from
//            /config/runtime and the project's variables. A5 the live log tail (GET
//            /agents/:id/logs?tail=N over SSE, sse.ts): the last N lines
//            (the replay), then live ones; paused and resumed.
//   Sandbox  scripts (files, entry, caps, schedule) created, edited and
//            deleted; a manual run; the run history with stdout/stderr,
//            exit status and resource use; cancel a running run.
import { useEffect, useRef, useState } from 'preact/hooks';
import { t, Key } from '../i18n';
import { api } from '../api';
import { can } from '../perm';
import { useLoad, Err, Tabs, TabPanel, Modal, DiffView, pretty, when, val, statusText, NoAccess, Scroll } from '../ui';
import { listToolsAt } from './integrations';
import { useOnFeed } from '../feed';
import { followSse, FollowState } from '../sse';

type Tab = 'agents' | 'sandbox';

export function Agents() {
  return can('read', 'system') ? <AgentsPage /> : <NoAccess title={t('nav.agents')} />;
}

function AgentsPage() {
  const [tab, setTab] = useState<Tab>('agents');
  return (
    <div class="page agents">
      <h1>{t('nav.agents')}</h1>
      <Tabs id="ag" label={t('nav.agents')} value={tab} onChange={setTab}
        tabs={[['agents', t('ag.tab.agents')], ['sandbox', t('ag.tab.sandbox')]]} />
      <TabPanel id="ag" value={tab}>
        {tab === 'agents' ? <AgentList /> : <Sandbox />}
      </TabPanel>
    </div>
  );
}

type Replica = { replica: number; pid: number; state: string; version: number; in_flight: number; draining: boolean; restarts: number };
type Agent = { id: string; name: string; type: string; version: number; latest_version?: number; replicas: number; status: string; route_prefix: string | null;
  config: { prompt?: string; sop?: string; tools?: string[]; concurrency?: number; env_names?: string[]; url?: string;
    env_refs?: Record<string, { secret?: string; var?: string }>; project_id?: string }; created_at: string;
  // the running agent (absent while stopped)
  load?: number; live_replicas?: Replica[]; errors?: { at: string; replica: number; message: string }[]; registered?: boolean;
  run_id?: string; running_version?: number; stats?: { calls: number; failures: number; crashes: number; restarts: number } };

/* Replicas are being replaced while the status stays running (a release,
 * a scale, a rotated secret): no agent.status event says when that ends,
 * so the page re-reads the agent every second meanwhile. A start, a crash
 * and a recovery change the status: their events re-read it. */
function rolling(a: Agent): boolean {
  if (!a.run_id || a.status !== 'running') return false;
  const reps = a.live_replicas || [];
  return reps.length !== a.replicas || reps.some((r) => r.state !== 'ready' || r.draining || r.version !== a.version);
}

function AgentList() {
  const list = useLoad<{ agents: Agent[] }>('/agents');
  // the statuses in the list follow the agents' agent.status events
  useOnFeed(() => { if (!document.hidden) list.reload(); });
  const [open, setOpen] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const admin = can('admin', 'system');
  return (
    <div class="stack">
      <section class="panel">
        <header class="row"><h2>{t('ag.list')}</h2><span class="spacer" />
          {admin && <button type="button" class="primary" onClick={() => setCreating(true)} data-testid="agent-new">{t('ag.new')}</button>}</header>
        <Err msg={list.err} />
        {!list.data ? <p>{t('common.loading')}</p> : list.data.agents.length === 0 ? <p class="muted">{t('common.none')}</p> : (
          <Scroll label={t('ag.list')}>
            <table data-testid="agents">
              <thead><tr><th>{t('sec.name')}</th><th>{t('ag.type')}</th><th>{t('ag.status')}</th><th>{t('ag.version')}</th><th>{t('ag.replicas')}</th><th>{t('mcp.tools')}</th><th>{t('sec.created')}</th></tr></thead>
              <tbody>
                {list.data.agents.map((a) => (
                  <tr key={a.id} data-agent={a.name}>
                    <td><button type="button" class="link" aria-expanded={open === a.name} onClick={() => setOpen(open === a.name ? null : a.name)}>{a.name}</button></td>
                    <td>{a.type === 'remote' ? t('ag.remote') : t('ag.local')}</td>
                    <td><span class={`status status-${a.status}`}>{statusText(a.status)}</span></td>
                    <td>v{a.version}{a.latest_version && a.latest_version !== a.version ? ` (${t('ag.latest', { v: a.latest_version })})` : ''}</td>
                    <td>{a.replicas}</td>
                    <td class="mono small">{(a.config.tools || []).join(' ')}</td>
                    <td class="small">{when(a.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
      </section>
      {open && <AgentView key={open} name={open} onChanged={list.reload} onGone={() => { setOpen(null); list.reload(); }} onOpen={setOpen} />}
      {creating && <CreateAgent onClose={() => setCreating(false)} onMade={(n) => { setCreating(false); list.reload(); setOpen(n); }} />}
    </div>
  );
}

function CreateAgent({ onClose, onMade }: { onClose: () => void; onMade: (name: string) => void }) {
  const tpl = useLoad<{ templates: any[] }>('/agents/templates');
  const [type, setType] = useState('local');
  const [pick, setPick] = useState('');
  const [err, setErr] = useState('');
  const chosen = tpl.data?.templates.find((x) => x.name === pick);
  const make = async (e: Event) => {
    e.preventDefault();
    setErr('');
    const f = e.currentTarget as HTMLFormElement;
    const body: any = { name: val(f, 'name').trim() };
    if (pick) body.template = pick;
    else body.type = type;
    if (!pick && type === 'remote') body.config = { url: val(f, 'url').trim() };
    const n = Number(val(f, 'replicas'));
    if (n > 1 && (pick ? chosen?.type : type) !== 'remote') body.replicas = n;
    try { const r = await api('POST', '/agents', body); onMade(r.name); } catch (x: any) { setErr(x.message); }
  };
  return (
    <Modal title={t('ag.new')} onClose={onClose}>
      <form onSubmit={make} data-testid="agent-form">
        <label>{t('sec.name')}<input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}" data-testid="agent-name" /></label>
        <label>{t('ag.template')}<select name="template" value={pick} data-testid="agent-template" onChange={(e) => setPick((e.target as HTMLSelectElement).value)}>
          <option value="">{t('ag.template.none')}</option>
          {(tpl.data?.templates || []).map((x) => <option key={x.name} value={x.name}>{x.name}</option>)}
        </select></label>
        {chosen && <div class="small" data-testid="template-info"><p>{chosen.description}</p><p class="mono">{(chosen.config?.tools || []).join(' ')}</p></div>}
        {!pick && (
          <label>{t('ag.type')}<select name="type" value={type} onChange={(e) => setType((e.target as HTMLSelectElement).value)}>
            <option value="local">{t('ag.local')}</option><option value="remote">{t('ag.remote')}</option></select></label>
        )}
        {!pick && type === 'remote' && <label>{t('mcp.add.url')}<input name="url" type="url" required class="mono" /></label>}
        <label>{t('ag.replicas')}<input name="replicas" type="number" min="1" max="16" defaultValue="1" /></label>
        <div class="row"><button type="submit" class="primary" data-testid="agent-create">{t('ag.create')}</button><button type="button" onClick={onClose}>{t('common.cancel')}</button></div>
        <Err msg={err || tpl.err} />
      </form>
    </Modal>
  );
}

/* The registry's tools (server__tool), loaded once per page view. */
let toolsCache: Promise<string[]> | null = null;
function registryTools(): Promise<string[]> {
  if (!toolsCache) toolsCache = listToolsAt('/mcp').then((x) => x.map((y) => y.name).sort()).catch((e) => { toolsCache = null; throw e; });
  return toolsCache;
}

function AgentView({ name, onChanged, onGone, onOpen }: { name: string; onChanged: () => void; onGone: () => void; onOpen: (n: string) => void }) {
  const path = `/agents/${encodeURIComponent(name)}`;
  const cur = useLoad<Agent>(path);
  const vers = useLoad<{ versions: any[] }>(`${path}/versions`);
  const [err, setErr] = useState('');
  const [msg, setMsg] = useState('');
  // a saved version: its message waits until the loaded agent has it, so
  // that the form (keyed by latest_version) is the saved one when it shows
  const [want, setWant] = useState(0);
  const [releasing, setReleasing] = useState<number | null>(null);
  // the routes' resource is agent:<the path's name>
  const admin = can('admin', `agent:${name}`);
  const op = can('operate', `agent:${name}`);
  // live: the value events (its agent.status, recovery, anomaly) and,
  // while replicas are replaced under a running status, every second
  const a0 = cur.data;
  const last = useRef('');
  const seen = (x: Agent) => { const k = `${x.status} ${x.replicas} ${x.version}`; if (k !== last.current) { last.current = k; onChanged(); } };
  const refresh = () => { if (!document.hidden) api<Agent>('GET', path).then((x) => { cur.setData(x); seen(x); }).catch(() => {}); };
  useOnFeed(refresh);
  // load and statistics change with every call, which has no event: a
  // running agent is re-read every 5 s, every second while it rolls
  const every = !a0 ? 0 : rolling(a0) ? 1000 : a0.run_id ? 5000 : 0;
  useEffect(() => {
    if (!every) return;
    const h = setInterval(refresh, every);
    return () => clearInterval(h);
  }, [every]);
  if (!cur.data) return <Err msg={cur.err} />;
  const a = cur.data;
  const local = a.type !== 'remote';
  const reload = () => { cur.reload(); vers.reload(); onChanged(); };
  const act = async (f: () => Promise<any>, done: string) => {
    setErr(''); setMsg('');
    try { await f(); setMsg(done); reload(); } catch (x: any) { setErr(x.message); }
  };
  const post = (verb: string, body?: unknown) => api('POST', `${path}/${verb}`, body ?? {});
  const clone = (e: Event) => {
    e.preventDefault();
    const n = val(e.currentTarget as HTMLFormElement, 'clone');
    if (!n.trim()) return;
    setErr('');
    api('POST', `${path}/clone`, { name: n.trim() }).then(() => { onChanged(); onOpen(n.trim()); }).catch((x) => setErr(x.message));
  };
  const del = () => {
    if (!confirm(t('ag.delete.confirm', { name: a.name }))) return;
    api('DELETE', path).then(onGone).catch((x) => setErr(x.message));
  };
  const stop = () => { if (confirm(t('ag.stop.confirm', { name: a.name }))) act(() => post('stop'), t('ag.stopped')); };
  const reps = a.live_replicas || [];
  return (
    <div class="stack" data-testid="agent" data-status={a.status}>
      <section class="panel">
        <header class="row">
          <h2>{a.name}</h2>
          <span class="badge">{local ? t('ag.local') : t('ag.remote')}</span>
          <span class="badge" data-testid="agent-version">v{a.version}</span>
          <span class="spacer" />
          {admin && (
            <form class="row" onSubmit={clone}>
              <label class="row">{t('ag.clone.name')}<input name="clone" required defaultValue={`${a.name}-copy`} style="width: 10rem" data-testid="clone-name" /></label>
              <button type="submit" data-testid="agent-clone">{t('ag.clone')}</button>
            </form>
          )}
          {admin && <button type="button" class="danger" onClick={del} data-testid="agent-delete">{t('common.delete')}</button>}
        </header>
        <h3>{t('ag.lifecycle')}</h3>
        <div class="row wrap">
          <span>{t('ag.status')}: <span class={`status status-${a.status}`} data-testid="agent-status" data-status={a.status}>{statusText(a.status)}</span></span>
          {a.run_id && <span class="small" data-testid="agent-load">{t('ag.load', { n: a.load ?? 0 })}</span>}
          {a.run_id && a.running_version != null && <span class="small muted">{t('ag.running.version', { v: a.running_version })}</span>}
          <span class="spacer" />
          {local && op && !a.run_id && <button type="button" class="primary" onClick={() => act(() => post('start'), t('ag.started', { n: a.replicas }))} data-testid="agent-start">{t('ag.start')}</button>}
          {local && op && a.run_id && <button type="button" class="danger" onClick={stop} data-testid="agent-stop">{t('ag.stop')}</button>}
          {local && op && (
            <form class="row" onSubmit={(e) => { e.preventDefault(); const n = Number(val(e.currentTarget as HTMLFormElement, 'replicas')); act(() => post('scale', { replicas: n }), t('ag.scaled', { n })); }}>
              <label class="row">{t('ag.replicas')}<input name="replicas" type="number" min="1" max="16" defaultValue={String(a.replicas)} key={a.replicas} style="width: 5rem" data-testid="agent-replicas" /></label>
              <button type="submit" data-testid="agent-scale">{t('ag.scale')}</button>
            </form>
          )}
        </div>
        <p class="row wrap small" data-testid="agent-mcp">
          {a.registered || a.route_prefix
            ? <span data-testid="agent-registered">{t('ag.registered')} <code>{`${a.name}__run_task`}</code> · <code>{a.route_prefix || `/agents/${a.name}/mcp`}</code></span>
            : <span class="muted">{t('ag.unregistered')}</span>}
          {admin && !(a.registered || a.route_prefix) && <button type="button" onClick={() => act(() => post('register-mcp'), t('ag.registered.done'))} data-testid="agent-register">{t('ag.register')}</button>}
          {admin && (a.registered || a.route_prefix) && <button type="button" onClick={() => { if (confirm(t('ag.unregister.confirm', { name: a.name }))) act(() => post('unregister-mcp'), t('ag.unregistered.done')); }} data-testid="agent-unregister">{t('ag.unregister')}</button>}
        </p>
        {msg && (a.latest_version ?? a.version) >= want && <p role="status" data-testid="agent-msg">{msg}</p>}
        <Err msg={err} />
        {reps.length > 0 && (
          <Scroll label={t('ag.reps')}>
            <table data-testid="replicas" class="small">
              <thead><tr><th>#</th><th>{t('ag.rep.pid')}</th><th>{t('ag.rep.state')}</th><th>{t('ag.version')}</th><th>{t('ag.rep.inflight')}</th><th>{t('ag.rep.restarts')}</th></tr></thead>
              <tbody>
                {reps.map((r) => (
                  <tr key={`${r.replica}-${r.pid}`} data-replica={r.replica} data-state={r.state} data-version={r.version}>
                    <td>{r.replica}</td><td class="mono">{r.pid || ''}</td>
                    <td><span class={`status status-${r.state}`}>{statusText(r.state)}</span>{r.draining && <span class="badge">{t('ag.rep.draining')}</span>}</td>
                    <td>v{r.version}</td><td>{r.in_flight}</td><td>{r.restarts}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
        {a.stats && <p class="small muted" data-testid="agent-stats">{t('ag.stats', { ...a.stats })}</p>}
        {(a.errors || []).length > 0 && <>
          <h4>{t('ag.errors')}</h4>
          <ul class="small" data-testid="agent-errors">{(a.errors || []).slice().reverse().map((x, i) => <li key={i}><span class="muted">{when(x.at)}</span> <span class="mono">{x.message}</span></li>)}</ul>
        </>}
      </section>
      <AgentRuns name={a.name} tick={`${a.run_id || ''} ${a.status}`} />
      {local && <AgentLogs name={a.name} />}
      <ConfigEditor agent={a} canEdit={admin} onSaved={(v) => { setWant(v); setMsg(t('ag.saved', { v })); reload(); }} />
      <Versions agent={a} versions={vers.data?.versions || null} err={vers.err} canRelease={op} onRelease={setReleasing} />
      {releasing != null && vers.data && (
        <ReleaseModal agent={a} versions={vers.data.versions} target={releasing} onClose={() => setReleasing(null)}
          onConfirm={() => { const v = releasing; setReleasing(null); act(() => post('release', { version: v }), t('ag.released', { v })); }} />
      )}
    </div>
  );
}

/* Release (a newer version) or roll back (an older one): what changes
 * from the live version, confirmed first. */
function ReleaseModal({ agent, versions, target, onClose, onConfirm }: { agent: Agent; versions: any[]; target: number; onClose: () => void; onConfirm: () => void }) {
  const from = versions.find((v) => v.version === agent.version);
  const to = versions.find((v) => v.version === target);
  const back = target < agent.version;
  return (
    <Modal title={back ? t('ag.rollback.title', { v: target }) : t('ag.release.title', { v: target })} onClose={onClose}>
      <div data-testid="release-modal">
        <p class="small">{t('ag.release.diff', { from: agent.version, to: target })}</p>
        {from && to && <DiffView a={configText(from.config)} b={configText(to.config)} />}
        {agent.run_id && <p class="small muted">{t('ag.release.rolling')}</p>}
        <div class="row">
          <button type="button" class="primary" onClick={onConfirm} data-testid="release-confirm">{back ? t('ag.rollback') : t('ag.release')}</button>
          <button type="button" onClick={onClose}>{t('common.cancel')}</button>
        </div>
      </div>
    </Modal>
  );
}

/* The agent's runs (GET /agents/:id/runs, newest first): each start to
 * its stop, with the version, replicas and statistics it ended with;
 * re-read when the status changes (tick). */
type Run = { run_id: string; status: string; stats?: { version?: number; replicas?: number; calls?: number; failures?: number; crashes?: number; restarts?: number }; started_at: string; finished_at?: string | null };
function AgentRuns({ name, tick }: { name: string; tick: string }) {
  const runs = useLoad<{ runs: Run[] }>(`/agents/${encodeURIComponent(name)}/runs`, [tick]);
  return (
    <section class="panel">
      <h3>{t('ag.runs')}</h3>
      <Err msg={runs.err} />
      {!runs.data ? <p>{t('common.loading')}</p> : runs.data.runs.length === 0 ? <p class="muted small" data-testid="agent-runs-none">{t('ag.runs.none')}</p> : (
        <Scroll label={t('ag.runs')}>
          <table class="small" data-testid="agent-runs" tabIndex={0} aria-label={t('ag.runs')}>
            <thead><tr><th>{t('ag.run.started')}</th><th>{t('ag.run.finished')}</th><th>{t('ag.status')}</th><th>{t('ag.version')}</th><th>{t('ag.run.stats')}</th></tr></thead>
            <tbody>
              {runs.data.runs.map((r) => (
                <tr key={r.run_id} data-run={r.run_id} data-status={r.status}>
                  <td>{when(r.started_at)}</td>
                  <td>{r.finished_at ? when(r.finished_at) : ''}</td>
                  <td><span class={`status status-${r.status}`}>{statusText(r.status)}</span></td>
                  <td>{r.stats?.version != null ? t('ag.run.version', { v: r.stats.version, n: r.stats.replicas ?? 0 }) : ''}</td>
                  <td>{r.stats?.calls != null ? t('ag.stats', { calls: r.stats.calls, failures: r.stats.failures ?? 0, crashes: r.stats.crashes ?? 0, restarts: r.stats.restarts ?? 0 }) : ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Scroll>
      )}
    </section>
  );
}

/* A5: the agent's log lines (its replicas' stderr, source
 * upstream:agent:<name>): the last `tail` of them, then live ones. */
const LOG_KEEP = 1000;
const LOG_STATE: Record<FollowState | 'paused', Key> = { connecting: 'ag.logs.connecting', live: 'ag.logs.live', reconnecting: 'ag.logs.reconnecting', paused: 'ag.logs.paused' };
function AgentLogs({ name }: { name: string }) {
  const [tail, setTail] = useState(100);
  const [paused, setPaused] = useState(false);
  const [state, setState] = useState<FollowState | 'paused'>('connecting');
  const [lines, setLines] = useState<any[]>([]);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (paused) { setState('paused'); return; }
    setLines([]);
    let seen = 0;
    const close = followSse(`/agents/${encodeURIComponent(name)}/logs?tail=${tail}`, ['log'], (f) => {
      let e: any;
      try { e = JSON.parse(f.data); } catch { return; }
      const id = Number(f.id ?? e.id);
      if (id && id <= seen) return; // a reconnect tails again: no line twice
      if (id) seen = id;
      setLines((xs) => (xs.length >= LOG_KEEP ? xs.slice(xs.length - LOG_KEEP + 1) : xs).concat(e));
    }, setState);
    return close;
  }, [name, tail, paused]);
  // follow the newest line while the box is scrolled to its end
  const atEnd = useRef(true);
  useEffect(() => { const b = box.current; if (b && atEnd.current) b.scrollTop = b.scrollHeight; }, [lines]);
  return (
    <section class="panel" data-testid="agent-logs">
      <header class="row wrap">
        <h3>{t('ag.logs')}</h3>
        <span class="badge small" data-testid="agent-logs-state" data-state={state}>{t(LOG_STATE[state])}</span>
        <span class="spacer" />
        <label class="row">{t('ag.logs.tail')}<select value={String(tail)} onChange={(e) => setTail(Number((e.target as HTMLSelectElement).value))} data-testid="agent-logs-tail">
          {[0, 20, 100, 500, 1000].map((n) => <option key={n} value={n}>{n}</option>)}</select></label>
        <button type="button" onClick={() => setPaused(!paused)} aria-pressed={paused} data-testid="agent-logs-pause">{paused ? t('ag.logs.resume') : t('ag.logs.pause')}</button>
      </header>
      <div class="scroll logtail" ref={box} tabIndex={0} role="log" aria-label={t('ag.logs')} style="max-height: 240px"
        onScroll={(e) => { const b = e.currentTarget as HTMLDivElement; atEnd.current = b.scrollTop + b.clientHeight >= b.scrollHeight - 4; }}>
        {lines.length === 0 ? <p class="muted small">{t('ag.logs.none')}</p> : (
          <table class="small" data-testid="agent-log-lines">
            <tbody>{lines.map((l) => (
              <tr key={l.id} class={`log-${l.level}`} data-id={l.id}><td class="nowrap">{when(l.ts)}</td><td>{l.level}</td><td class="mono">{l.message}</td></tr>
            ))}</tbody>
          </table>
        )}
      </div>
    </section>
  );
}

type EnvKind = 'value' | 'secret' | 'var';
type EnvEntry = [string, EnvKind, string];

function ConfigEditor({ agent, canEdit, onSaved }: { agent: Agent; canEdit: boolean; onSaved: (v: number) => void }) {
  const c = agent.config;
  const [tools, setTools] = useState<string[]>(c.tools || []);
  const [avail, setAvail] = useState<string[] | null>(null);
  const [filter, setFilter] = useState('');
  // new entries: a value (sealed when stored), or a reference to a runtime
  // secret or a variable of the agent's project, opened at each start
  const [env, setEnv] = useState<EnvEntry[]>([]);
  const [secretNames, setSecretNames] = useState<string[] | null>(null);
  const [varNames, setVarNames] = useState<string[] | null>(null);
  useEffect(() => {
    if (!canEdit || !env.length || secretNames) return;
    api<{ secrets: { name: string }[] }>('GET', '/config/runtime').then((r) => setSecretNames(r.secrets.map((x) => x.name).sort())).catch(() => setSecretNames([]));
    if (c.project_id) api<{ vars: { name: string }[] }>('GET', `/projects/${encodeURIComponent(c.project_id)}/vars`).then((r) => setVarNames([...new Set(r.vars.map((x) => x.name))].sort())).catch(() => setVarNames([]));
  }, [canEdit, env.length > 0]);
  const [drop, setDrop] = useState<string[]>([]);
  const [err, setErr] = useState('');
  useEffect(() => { registryTools().then(setAvail).catch((e) => setErr(e.message)); }, []);
  const remote = agent.type === 'remote';
  const servers = [...new Set((avail || []).map((x) => x.split('__')[0]))];
  const toggle = (x: string) => setTools(tools.includes(x) ? tools.filter((y) => y !== x) : [...tools, x]);
  const save = async (e: Event) => {
    e.preventDefault();
    setErr('');
    const f = e.currentTarget as HTMLFormElement;
    const config: any = remote ? { url: val(f, 'url').trim() } : {
      prompt: val(f, 'prompt'), sop: val(f, 'sop'), tools, concurrency: Number(val(f, 'concurrency')) || 1,
    };
    // env replaces the whole set: every name kept is sent as null (the
    // stored value stays), a new or replaced one with its value
    const envs = env.filter(([k]) => k.trim());
    if (envs.length || drop.length) {
      config.env = Object.fromEntries((c.env_names || []).filter((n) => !drop.includes(n)).map((n) => [n, null]));
      for (const [k, kind, v] of envs) config.env[k.trim()] = kind === 'value' ? v : { [kind]: v };
    }
    try {
      const r = await api('PATCH', `/agents/${encodeURIComponent(agent.name)}`, { config });
      setEnv([]);
      setDrop([]);
      onSaved(r.latest_version ?? r.version);
    } catch (x: any) { setErr(x.message); }
  };
  const shown = (avail || []).filter((x) => !filter || x.includes(filter));
  return (
    <form class="panel" onSubmit={save} data-testid="agent-config" key={agent.latest_version}>
      <h3>{t('ag.config')}</h3>
      <fieldset disabled={!canEdit} class="plain">
        {remote ? <label>{t('mcp.add.url')}<input name="url" class="mono" defaultValue={c.url || ''} /></label> : <>
          <label>{t('ag.prompt')}<textarea name="prompt" rows={5} defaultValue={c.prompt || ''} data-testid="agent-prompt" /></label>
          <label>{t('ag.sop')}<textarea name="sop" rows={3} class="mono" defaultValue={c.sop || ''} data-testid="agent-sop" /></label>
          <label>{t('ag.concurrency')}<input name="concurrency" type="number" min="1" defaultValue={String(c.concurrency ?? 1)} style="width: 6rem" /></label>
          <h4>{t('ag.tools')}</h4>
          <p class="small" data-testid="agent-tools">{tools.length ? tools.map((x) => (
            <span key={x} class="tag mono">{x} {canEdit && <button type="button" class="link" aria-label={t('ag.tool.remove', { tool: x })} onClick={() => toggle(x)}>×</button>}</span>
          )) : <span class="muted">{t('ag.tools.none')}</span>}</p>
          {canEdit && (
            <details>
              <summary>{t('ag.tools.pick')}</summary>
              <label>{t('ag.tools.filter')}<input value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} data-testid="tool-filter" /></label>
              {!avail ? <p>{t('common.loading')}</p> : (
                <div class="tool-pick scroll" data-testid="tool-pick">
                  {servers.filter((s) => !filter || `${s}__*`.includes(filter) || shown.some((x) => x.startsWith(s + '__'))).map((s) => (
                    <div key={s}>
                      <label class="check"><input type="checkbox" checked={tools.includes(`${s}__*`)} onChange={() => toggle(`${s}__*`)} data-tool={`${s}__*`} /><span class="mono">{s}__*</span> <span class="muted small">{t('ag.tools.all')}</span></label>
                      {shown.filter((x) => x.startsWith(s + '__')).map((x) => (
                        <label key={x} class="check indent"><input type="checkbox" checked={tools.includes(x)} disabled={tools.includes(`${s}__*`)} onChange={() => toggle(x)} data-tool={x} /><span class="mono">{x}</span></label>
                      ))}
                    </div>
                  ))}
                </div>
              )}
            </details>
          )}
        </>}
        <h4>{t('ag.env')}</h4>
        <p class="small" data-testid="agent-env">{(c.env_names || []).length ? (c.env_names || []).filter((x) => !drop.includes(x)).map((x) => {
          const ref = c.env_refs?.[x];
          return (
            <span key={x} class="tag mono" data-env={x}>{x}{ref?.var ? ` ${t('ag.env.ref.var', { name: ref.var })}` : ref?.secret ? ` ${t('ag.env.ref.secret', { name: ref.secret })}` : ''} {canEdit && <button type="button" class="link" aria-label={t('ag.env.remove', { name: x })} onClick={() => setDrop([...drop, x])}>×</button>}</span>
          );
        }) : <span class="muted">{t('ag.env.none')}</span>}</p>
        <p class="muted small">{t('ag.env.help')}</p>
        {env.map(([k, kind, v], i) => {
          const set = (n: EnvEntry) => setEnv(env.map((p, j) => (j === i ? n : p)));
          const names = kind === 'secret' ? secretNames : varNames;
          return (
            <div class="row wrap" key={i} data-testid="env-entry">
              <label>{t('sec.name')}<input class="mono" value={k} data-testid="env-name" onInput={(e) => set([(e.target as HTMLInputElement).value, kind, v])} /></label>
              <label>{t('ag.env.kind')}<select value={kind} data-testid="env-kind" onChange={(e) => set([k, (e.target as HTMLSelectElement).value as EnvKind, ''])}>
                <option value="value">{t('ag.env.kind.value')}</option>
                <option value="secret">{t('ag.env.kind.secret')}</option>
                <option value="var" disabled={!c.project_id}>{t('ag.env.kind.var')}</option>
              </select></label>
              {kind === 'value'
                ? <label>{t('sec.value')}<input type="password" autocomplete="off" value={v} data-testid="env-value" onInput={(e) => set([k, kind, (e.target as HTMLInputElement).value])} /></label>
                : <label>{kind === 'secret' ? t('ag.env.secret') : t('ag.env.var')}<select value={v} data-testid="env-ref" onChange={(e) => set([k, kind, (e.target as HTMLSelectElement).value])}>
                    <option value="">{names ? t('ag.env.pick') : t('common.loading')}</option>
                    {(names || []).map((n) => <option key={n} value={n}>{n}</option>)}
                  </select></label>}
            </div>
          );
        })}
        {!c.project_id && env.length > 0 && <p class="muted small">{t('ag.env.noproject')}</p>}
        {canEdit && <button type="button" onClick={() => setEnv([...env, ['', 'value', '']])} data-testid="env-add">{t('ag.env.add')}</button>}
      </fieldset>
      {canEdit && <p><button type="submit" class="primary" data-testid="agent-save">{t('ag.save')}</button></p>}
      <Err msg={err} />
    </form>
  );
}

/* A version's configuration as text for the line diff: each key a
 * section, a string's own lines (a prompt's edits show line by line), an
 * array one item a line. */
function configText(c: any): string {
  return Object.keys(c || {}).sort().map((k) => {
    const v = c[k];
    const body = typeof v === 'string' ? v : Array.isArray(v) ? v.map((x) => `- ${typeof x === 'string' ? x : JSON.stringify(x)}`).join('\n') : pretty(v);
    return `[${k}]\n${body}`;
  }).join('\n\n');
}

function Versions({ agent, versions, err, canRelease, onRelease }: { agent: Agent; versions: any[] | null; err: string; canRelease: boolean; onRelease: (v: number) => void }) {
  const [a, setA] = useState<number | null>(null);
  const [b, setB] = useState<number | null>(null);
  if (!versions) return <Err msg={err} />;
  const latest = versions.length ? versions[versions.length - 1].version : 1;
  const va = versions.find((v) => v.version === (a ?? Math.max(1, latest - 1))) || versions[0];
  const vb = versions.find((v) => v.version === (b ?? latest)) || versions[versions.length - 1];
  return (
    <section class="panel">
      <h3>{t('mem.versions')}</h3>
      <table data-testid="versions">
        <thead><tr><th>{t('ag.version')}</th><th>{t('sec.created')}</th><th>{t('ag.changed')}</th><th /></tr></thead>
        <tbody>
          {[...versions].reverse().map((v) => (
            <tr key={v.version} data-version={v.version}>
              <td>v{v.version} {v.version === agent.version && <span class="badge" data-testid="live">{t('ag.live')}</span>}</td>
              <td class="small">{when(v.created_at)} <span class="muted">{v.created_by}</span></td>
              <td class="mono small">{v.version === 1 ? t('ag.first') : Object.keys(v.diff || {}).join(', ')}</td>
              <td>{canRelease && v.version !== agent.version && (
                <button type="button" onClick={() => onRelease(v.version)} data-testid={`release-${v.version}`}>
                  {v.version > agent.version ? t('ag.release') : t('ag.rollback')}</button>)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {versions.length > 1 && va && vb && <>
        <div class="row">
          <label>{t('set.from')}<select data-testid="ver-a" value={va.version} onChange={(e) => setA(Number((e.target as HTMLSelectElement).value))}>
            {versions.map((v) => <option key={v.version} value={v.version}>v{v.version}</option>)}</select></label>
          <label>{t('set.to')}<select data-testid="ver-b" value={vb.version} onChange={(e) => setB(Number((e.target as HTMLSelectElement).value))}>
            {versions.map((v) => <option key={v.version} value={v.version}>v{v.version}</option>)}</select></label>
        </div>
        <DiffView a={configText(va.config)} b={configText(vb.config)} />
      </>}
    </section>
  );
}

type Script = { id: string; name: string; entry_file: string; description: string; schedule_ms: number | null; files: Record<string, string>; caps: any; env_names: string[]; created_at: string; updated_at: string };

function Sandbox() {
  const status = useLoad<any>('/sandbox/status');
  const list = useLoad<{ scripts: Script[] }>('/sandbox/scripts');
  const [open, setOpen] = useState<string | null>(null);
  const [edit, setEdit] = useState<Script | 'new' | null>(null);
  const admin = can('admin', 'system');
  return (
    <div class="stack">
      <section class="panel">
        <header class="row"><h2>{t('sb.scripts')}</h2><span class="spacer" />
          {status.data && <span class="small muted" data-testid="sandbox-status">{status.data.available ? t('sb.status', { running: status.data.running, max: status.data.max_running }) : t('sb.unavailable')}</span>}
          {admin && <button type="button" class="primary" onClick={() => setEdit('new')} data-testid="script-new">{t('sb.new')}</button>}</header>
        <Err msg={list.err || status.err} />
        {!list.data ? <p>{t('common.loading')}</p> : list.data.scripts.length === 0 ? <p class="muted">{t('common.none')}</p> : (
          <table data-testid="scripts">
            <thead><tr><th>{t('sec.name')}</th><th>{t('sb.entry')}</th><th>{t('mem.description')}</th><th>{t('sb.schedule')}</th><th>{t('sec.created')}</th></tr></thead>
            <tbody>
              {list.data.scripts.map((s) => (
                <tr key={s.id} data-script={s.name}>
                  <td><button type="button" class="link" aria-expanded={open === s.id} onClick={() => setOpen(open === s.id ? null : s.id)}>{s.name}</button></td>
                  <td class="mono">{s.entry_file}</td><td>{s.description}</td>
                  <td>{s.schedule_ms ? t('sb.every', { s: s.schedule_ms / 1000 }) : '—'}</td>
                  <td class="small">{when(s.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {open && <ScriptView key={open} id={open} onEdit={setEdit} onGone={() => { setOpen(null); list.reload(); }} />}
      {edit && <ScriptForm script={edit === 'new' ? null : edit} onClose={() => setEdit(null)}
        onSaved={(s) => { setEdit(null); list.reload(); setOpen(null); setTimeout(() => setOpen(s.id)); }} />}
    </div>
  );
}

function ScriptForm({ script, onClose, onSaved }: { script: Script | null; onClose: () => void; onSaved: (s: Script) => void }) {
  const [err, setErr] = useState('');
  const entry = script?.entry_file || 'main.sh';
  const save = async (e: Event) => {
    e.preventDefault();
    setErr('');
    const f = e.currentTarget as HTMLFormElement;
    const file = val(f, 'entry_file').trim();
    const body: any = { description: val(f, 'description'), entry_file: file, files: { ...(script?.files || {}), [file]: val(f, 'code') } };
    if (!script) body.name = val(f, 'name').trim();
    const sched = Number(val(f, 'schedule_s'));
    if (sched > 0) body.schedule_ms = Math.round(sched * 1000);
    else if (script?.schedule_ms) body.schedule_ms = null;
    const caps: any = {};
    const tmo = Number(val(f, 'timeout_s'));
    if (tmo > 0) caps.timeout_ms = Math.round(tmo * 1000);
    if ((f.elements.namedItem('network') as HTMLInputElement).checked) caps.network = true;
    if (Object.keys(caps).length || script) body.caps = { ...(script?.caps || {}), ...caps };
    if (script && !(f.elements.namedItem('network') as HTMLInputElement).checked) delete body.caps.network;
    try {
      const r = script ? await api('PATCH', `/sandbox/scripts/${script.id}`, body) : await api('POST', '/sandbox/scripts', body);
      onSaved(r);
    } catch (x: any) { setErr(x.message); }
  };
  return (
    <Modal title={script ? t('sb.edit', { name: script.name }) : t('sb.new')} onClose={onClose}>
      <form onSubmit={save} data-testid="script-form">
        {!script && <label>{t('sec.name')}<input name="name" required data-testid="script-name" /></label>}
        <label>{t('mem.description')}<input name="description" defaultValue={script?.description || ''} /></label>
        <label>{t('sb.entry')}<input name="entry_file" required class="mono" defaultValue={entry} data-testid="script-entry" /></label>
        <label>{t('sb.code')}<textarea name="code" rows={8} class="mono" required defaultValue={script?.files[entry] || ''} data-testid="script-code" /></label>
        <div class="row">
          <label>{t('sb.schedule.s')}<input name="schedule_s" type="number" min="0" step="any" defaultValue={script?.schedule_ms ? String(script.schedule_ms / 1000) : ''} /></label>
          <label>{t('sb.timeout')}<input name="timeout_s" type="number" min="0" step="any" defaultValue={script?.caps?.timeout_ms ? String(script.caps.timeout_ms / 1000) : ''} /></label>
          <label class="check"><input type="checkbox" name="network" defaultChecked={!!script?.caps?.network} />{t('sb.network')}</label>
        </div>
        <div class="row"><button type="submit" class="primary" data-testid="script-save">{t('common.save')}</button><button type="button" onClick={onClose}>{t('common.cancel')}</button></div>
        <Err msg={err} />
      </form>
    </Modal>
  );
}

function ScriptView({ id, onEdit, onGone }: { id: string; onEdit: (s: Script) => void; onGone: () => void }) {
  const cur = useLoad<Script>(`/sandbox/scripts/${id}`);
  const runs = useLoad<{ runs: any[] }>(`/sandbox/scripts/${id}/runs`);
  const [sel, setSel] = useState<string | null>(null);
  const [err, setErr] = useState('');
  const active = (runs.data?.runs || []).some((r) => r.status === 'running' || r.status === 'queued');
  useEffect(() => {
    if (!active) return;
    const h = setInterval(() => { if (!document.hidden) runs.reload(); }, 1000);
    return () => clearInterval(h);
  }, [active]);
  if (!cur.data) return <Err msg={cur.err} />;
  const s = cur.data;
  const admin = can('admin', 'system');
  const run = async () => {
    setErr('');
    try { const r = await api('POST', `/sandbox/scripts/${id}/run`, {}); setSel(r.id); runs.reload(); } catch (x: any) { setErr(x.message); }
  };
  const del = async () => {
    if (!confirm(t('sb.delete.confirm', { name: s.name }))) return;
    try { await api('DELETE', `/sandbox/scripts/${id}`); onGone(); } catch (x: any) { setErr(x.message); }
  };
  const cancel = async (rid: string) => {
    try { await api('POST', `/sandbox/runs/${rid}/cancel`); runs.reload(); } catch (x: any) { setErr(x.message); }
  };
  const r = (runs.data?.runs || []).find((x) => x.id === sel);
  return (
    <section class="panel" data-testid="script">
      <header class="row"><h2>{s.name}</h2><span class="spacer" />
        {can('operate') && <button type="button" class="primary" onClick={run} data-testid="script-run">{t('sb.run')}</button>}
        {admin && <button type="button" onClick={() => onEdit(s)} data-testid="script-edit">{t('mem.edit')}</button>}
        {admin && <button type="button" class="danger" onClick={del} data-testid="script-delete">{t('common.delete')}</button>}
      </header>
      <p class="small muted">
        {s.description && <>{s.description} · </>}
        {s.env_names.length > 0 && <>{t('ag.env')}: <span class="mono">{s.env_names.join(', ')}</span> · </>}
        {t('sb.caps')}: <span class="mono">{Object.keys(s.caps || {}).length ? JSON.stringify(s.caps) : t('sb.caps.default')}</span>
      </p>
      {Object.entries(s.files).map(([n, code]) => <details key={n}><summary class="mono">{n}</summary><pre>{code}</pre></details>)}
      <Err msg={err || runs.err} />
      <h3>{t('sb.runs')}</h3>
      {!runs.data ? <p>{t('common.loading')}</p> : runs.data.runs.length === 0 ? <p class="muted">{t('common.none')}</p> : (
        <table data-testid="runs">
          <thead><tr><th>{t('sb.started')}</th><th>{t('ag.status')}</th><th>{t('sb.exit')}</th><th>{t('sb.duration')}</th><th>{t('sb.actor')}</th><th /></tr></thead>
          <tbody>
            {runs.data.runs.map((x) => (
              <tr key={x.id} data-run={x.id} data-status={x.status} class={sel === x.id ? 'selected' : ''}>
                <td class="small"><button type="button" class="link" onClick={() => setSel(x.id)} aria-pressed={sel === x.id}>{when(x.started_at)}</button></td>
                <td><span class={`status status-${x.status}`}>{statusText(x.status)}</span></td>
                <td>{x.exit_code ?? x.signal ?? ''} {x.reason && <span class="small muted">{x.reason}</span>}</td>
                <td>{x.duration_ms != null ? `${x.duration_ms} ms` : ''}</td>
                <td class="mono small">{x.actor}</td>
                <td>{x.status === 'running' && can('operate') && <button type="button" class="danger" onClick={() => cancel(x.id)}>{t('common.cancel')}</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {r && (
        <div data-testid="run-output">
          <h4>{t('sb.stdout')}</h4><pre data-testid="stdout" tabIndex={0}>{r.stdout}</pre>
          <h4>{t('sb.stderr')}</h4><pre data-testid="stderr" tabIndex={0}>{r.stderr}</pre>
          {r.truncated && <p class="warn small">{t('sb.truncated')}</p>}
          {r.error && <p class="error">{r.error}</p>}
          {r.usage && <p class="small muted mono">{t('sb.usage', { cpu: Math.round((r.usage.user_us + r.usage.sys_us) / 1000), rss: r.usage.max_rss_kb })}</p>}
          {r.trace_id && <p class="small muted mono">{t('card.trace')} {r.trace_id}</p>}
        </div>
      )}
    </section>
  );
}
