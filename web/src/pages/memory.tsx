// memory.tsx - the Memory page (docs/MEMORY.md, docs/SETTINGS.md):
//   Profile     R1 the caller's profile (GET/PUT /api/memory/profile):
//               language, time zone and the JSON objects of preferences.
//   Blueprints  R2 a project's blueprints: the current version, a new
//               version saved from the editor, every version with the
//               diff between any two (and the server's diff ops), and an
//               instantiation with parameters that can be run as a task.
//   Variables   R2 the project variable library (/projects/:id/vars):
//               a variable names a runtime secret, never holds a value.
//   Items       R3 the items newest first (GET /api/memory/items) with
//               "see more" paging, a project and tag filter (a tag
//               clicked filters by it) and a view of the deleted ones,
//               each restorable; keyword, vector (semantic) and hybrid
//               search with the same filters, showing each result's
//               score parts and ranks; create, edit, delete; an item's
//               audit trail for an Admin.
import { useEffect, useRef, useState } from 'preact/hooks';
import { t, Key } from '../i18n';
import { api } from '../api';
import { can } from '../perm';
import { useLoad, Err, Tabs, TabPanel, Modal, DiffView, pretty, when, val } from '../ui';
import { BlueprintList } from '../blueprints';

type Tab = 'profile' | 'blueprints' | 'vars' | 'items';

export function Memory() {
  const [tab, setTab] = useState<Tab>('items');
  const tabs: [Tab, string][] = [['profile', t('mem.tab.profile')], ['blueprints', t('mem.tab.blueprints')], ['vars', t('mem.tab.vars')], ['items', t('mem.tab.items')]];
  return (
    <div class="page memory">
      <h1>{t('nav.memory')}</h1>
      <Tabs id="mem" label={t('nav.memory')} tabs={tabs} value={tab} onChange={setTab} />
      <TabPanel id="mem" value={tab}>
        {tab === 'profile' && <Profile />}
        {tab === 'blueprints' && <Blueprints />}
        {tab === 'vars' && <Vars />}
        {tab === 'items' && <Items />}
      </TabPanel>
    </div>
  );
}

/* A JSON object from a textarea; '' is absent. Throws a readable error. */
function objOf(text: string, what: string): any {
  const s = text.trim();
  if (!s) return undefined;
  let v;
  try { v = JSON.parse(s); } catch (e: any) { throw new Error(t('mcp.try.badjson', { message: `${what}: ${e.message}` })); }
  return v;
}

const PROFILE_OBJS = ['task_defaults', 'notifications', 'preferences'];
const PROFILE_KEY: Record<string, Key> = { task_defaults: 'mem.p.defaults', notifications: 'mem.p.notifications', preferences: 'mem.p.preferences' };

function Profile() {
  const { data, err, reload, setData } = useLoad<any>('/api/memory/profile');
  const [e2, setE2] = useState('');
  const [msg, setMsg] = useState('');
  if (!data) return err ? <Err msg={err} /> : <p>{t('common.loading')}</p>;
  const p = data.profile || {};
  const save = async (e: Event) => {
    e.preventDefault();
    setE2(''); setMsg('');
    const f = e.currentTarget as HTMLFormElement;
    try {
      const body: any = {};
      if (val(f, 'language')) body.language = val(f, 'language');
      if (val(f, 'timezone').trim()) body.timezone = val(f, 'timezone').trim();
      for (const k of PROFILE_OBJS) { const o = objOf(val(f, k), k); if (o !== undefined) body[k] = o; }
      // the answer is the saved profile: the form shows it at once (a reload
      // landing later would reset what was typed after the save)
      const saved = await api<any>('PUT', '/api/memory/profile', body);
      if (saved && saved.version) setData(saved);
      else reload();
      setMsg(t('sec.saved'));
    } catch (x: any) { setE2(x.message); }
  };
  return (
    <form class="panel" onSubmit={save} data-testid="profile-form" key={data.version}>
      <h2>{t('mem.profile')}</h2>
      <p class="muted small">{t('mem.profile.who', { who: data.principal || '', v: data.version })}{data.updated_at && ` · ${when(data.updated_at)}`}</p>
      <label>{t('mem.language')}<select name="language" defaultValue={p.language || ''}>
        <option value="">—</option><option value="en">English</option><option value="zh-CN">简体中文</option></select></label>
      <label>{t('mem.timezone')}<input name="timezone" class="mono" defaultValue={p.timezone || ''} placeholder="Asia/Shanghai" /></label>
      {PROFILE_OBJS.map((k) => (
        <label key={k}>{t(PROFILE_KEY[k])}<textarea name={k} rows={3} class="mono" defaultValue={p[k] ? JSON.stringify(p[k], null, 2) : ''} placeholder="{}" /></label>
      ))}
      <button type="submit" class="primary" data-testid="profile-save">{t('common.save')}</button>
      {msg && <p role="status">{msg}</p>}
      <Err msg={e2} />
    </form>
  );
}

type Blueprint = { id: number; project_id: string; name: string; version: number; current_version: number; description: string; spec: any; params: any; diff: any; author: string; updated_at: string };

function Blueprints() {
  const [project, setProject] = useState('');
  const list = useLoad<{ blueprints: Blueprint[] }>(`/api/memory/blueprints${project ? '?project_id=' + encodeURIComponent(project) : ''}`);
  const [open, setOpen] = useState<number | null>(null);
  const [creating, setCreating] = useState(false);
  const [err, setErr] = useState('');
  const create = async (e: Event) => {
    e.preventDefault();
    setErr('');
    const f = e.currentTarget as HTMLFormElement;
    try {
      const r = await api('POST', '/api/memory/blueprints', {
        project_id: val(f, 'project_id').trim(), name: val(f, 'name').trim(), description: val(f, 'description'),
        spec: objOf(val(f, 'spec'), 'spec') ?? {}, params: objOf(val(f, 'params'), 'params') ?? {},
      });
      setCreating(false); list.reload(); setOpen(r.id);
    } catch (x: any) { setErr(x.message); }
  };
  return (
    <div class="split">
      <BlueprintList project={project} setProject={setProject} list={list.data?.blueprints} err={list.err}
        open={open} onOpen={setOpen} onNew={() => setCreating(true)} ids={{ list: 'blueprints', add: 'bp-new' }} />
      <div>
        {open != null && <BlueprintView key={open} id={open} onChanged={list.reload} />}
        {open == null && <p class="muted">{t('mem.bp.pick')}</p>}
      </div>
      {creating && (
        <Modal title={t('mem.bp.new')} onClose={() => setCreating(false)}>
          <form onSubmit={create} data-testid="bp-form">
            <label>{t('mem.project')}<input name="project_id" required class="mono" defaultValue={project} /></label>
            <label>{t('sec.name')}<input name="name" required /></label>
            <label>{t('mem.description')}<input name="description" /></label>
            <label>{t('mem.spec')}<textarea name="spec" rows={6} class="mono" required placeholder={'{"goal": "clean ${params.file}", "dsl": "step s1: ..."}'} /></label>
            <label>{t('mem.params')}<textarea name="params" rows={3} class="mono" placeholder={'{"file": {"description": "…", "required": true}}'} /></label>
            <div class="row"><button type="submit" class="primary">{t('common.save')}</button><button type="button" onClick={() => setCreating(false)}>{t('common.cancel')}</button></div>
            <Err msg={err} />
          </form>
        </Modal>
      )}
    </div>
  );
}

/* A version's content as one text, for the line diff. */
const bpText = (v: Blueprint) => pretty({ description: v.description, params: v.params, spec: v.spec });

function BlueprintView({ id, onChanged }: { id: number; onChanged: () => void }) {
  const cur = useLoad<Blueprint>(`/api/memory/blueprints/${id}`);
  const vers = useLoad<{ versions: Blueprint[] }>(`/api/memory/blueprints/${id}/versions`);
  const [a, setA] = useState<number | null>(null);
  const [b, setB] = useState<number | null>(null);
  const [err, setErr] = useState('');
  const [inst, setInst] = useState<any>(null);
  const [ran, setRan] = useState('');
  const op = can('operate');
  if (!cur.data) return <Err msg={cur.err} />;
  const bp = cur.data;
  const vs = vers.data?.versions || [];
  const va = vs.find((v) => v.version === (a ?? bp.version - 1)) || vs[0];
  const vb = vs.find((v) => v.version === (b ?? bp.version)) || vs[vs.length - 1];
  const save = async (e: Event) => {
    e.preventDefault();
    setErr('');
    const f = e.currentTarget as HTMLFormElement;
    try {
      await api('PUT', `/api/memory/blueprints/${id}`, { description: val(f, 'description'), spec: objOf(val(f, 'spec'), 'spec') ?? {}, params: objOf(val(f, 'params'), 'params') ?? {} });
      cur.reload(); vers.reload(); onChanged(); setA(null); setB(null);
    } catch (x: any) { setErr(x.message); }
  };
  const instantiate = async (e: Event) => {
    e.preventDefault();
    setErr(''); setRan('');
    const f = e.currentTarget as HTMLFormElement;
    try { setInst(await api('POST', `/api/memory/blueprints/${id}/instantiate`, { params: objOf(val(f, 'iparams'), 'params') ?? {} })); }
    catch (x: any) { setErr(x.message); setInst(null); }
  };
  const run = async () => {
    setErr('');
    try { const r = await api('POST', '/api/run', inst.spec); setRan(r.trace_id || ''); } catch (x: any) { setErr(x.message); }
  };
  return (
    <div class="stack" data-testid="blueprint">
      <form class="panel" onSubmit={save} key={bp.version}>
        <h2>{bp.name} <span class="badge">v{bp.version}</span></h2>
        <p class="small muted">{bp.project_id} · {bp.author} · {when(bp.updated_at)}</p>
        <label>{t('mem.description')}<input name="description" defaultValue={bp.description} readOnly={!op} /></label>
        <label>{t('mem.spec')}<textarea name="spec" rows={8} class="mono" defaultValue={JSON.stringify(bp.spec, null, 2)} readOnly={!op} data-testid="bp-spec" /></label>
        <label>{t('mem.params')}<textarea name="params" rows={4} class="mono" defaultValue={JSON.stringify(bp.params, null, 2)} readOnly={!op} /></label>
        {op && <button type="submit" class="primary" data-testid="bp-save">{t('mem.bp.save')}</button>}
      </form>
      <Err msg={err || vers.err} />
      {vs.length > 1 && va && vb && (
        <section class="panel">
          <h3>{t('mem.versions')}</h3>
          <div class="row">
            <label>{t('set.from')}<select data-testid="ver-a" value={va.version} onChange={(e) => setA(Number((e.target as HTMLSelectElement).value))}>
              {vs.map((v) => <option key={v.version} value={v.version}>v{v.version}</option>)}</select></label>
            <label>{t('set.to')}<select data-testid="ver-b" value={vb.version} onChange={(e) => setB(Number((e.target as HTMLSelectElement).value))}>
              {vs.map((v) => <option key={v.version} value={v.version}>v{v.version}</option>)}</select></label>
          </div>
          <DiffView a={bpText(va)} b={bpText(vb)} />
          <ul class="small">
            {vs.filter((v) => v.diff).map((v) => (
              <li key={v.version}>v{v.version}: {(v.diff as any[]).map((d) => `${d.op} ${d.path}`).join(', ')}</li>
            ))}
          </ul>
        </section>
      )}
      <form class="panel" onSubmit={instantiate}>
        <h3>{t('mem.instantiate')}</h3>
        <label>{t('mem.params')}<textarea name="iparams" rows={3} class="mono" data-testid="bp-iparams"
          defaultValue={JSON.stringify(Object.fromEntries(Object.entries(bp.params || {}).map(([k, p]: [string, any]) => [k, p?.default ?? ''])), null, 2)} /></label>
        <button type="submit" data-testid="bp-instantiate">{t('mem.instantiate')}</button>
        {inst && <>
          <pre data-testid="bp-result">{JSON.stringify(inst.spec, null, 2)}</pre>
          {can('operate', 'task:*') && <button type="button" class="primary" onClick={run} data-testid="bp-run">{t('mem.run')}</button>}
        </>}
        {ran && <p role="status" data-testid="bp-ran">{t('mem.ran', { trace: ran.slice(0, 8) })}</p>}
      </form>
    </div>
  );
}

function Vars() {
  const [project, setProject] = useState('');
  const list = useLoad<{ vars: any[] }>(project ? `/projects/${encodeURIComponent(project)}/vars` : null);
  const secrets = useLoad<{ secrets: any[] }>(can('read', 'system') ? '/config/runtime' : null);
  const [err, setErr] = useState('');
  const admin = can('admin', project ? `project:${project}` : undefined);
  const put = async (e: Event) => {
    e.preventDefault();
    setErr('');
    const f = e.currentTarget as HTMLFormElement;
    try {
      await api('PUT', `/projects/${encodeURIComponent(project)}/vars/${encodeURIComponent(val(f, 'name').trim())}`,
        { secret: val(f, 'secret'), purpose: val(f, 'purpose'), scope: val(f, 'scope') });
      f.reset(); list.reload();
    } catch (x: any) { setErr(x.message); }
  };
  const del = async (name: string) => {
    setErr('');
    try { await api('DELETE', `/projects/${encodeURIComponent(project)}/vars/${encodeURIComponent(name)}`); list.reload(); } catch (x: any) { setErr(x.message); }
  };
  return (
    <section class="panel">
      <h2>{t('mem.vars')}</h2>
      <p class="muted small">{t('mem.vars.help')}</p>
      <form class="row inline-form" onSubmit={(e) => { e.preventDefault(); setProject(val(e.currentTarget as HTMLFormElement, 'p').trim()); }}>
        <label>{t('mem.project')}<input name="p" class="mono" required data-testid="vars-project" /></label>
        <button type="submit">{t('mem.open')}</button>
      </form>
      {project && !list.data && <Err msg={list.err} />}
      {list.data && (list.data.vars.length === 0 ? <p class="muted">{t('common.none')}</p> : (
        <table data-testid="vars">
          <thead><tr><th>{t('sec.name')}</th><th>{t('mem.secret')}</th><th>{t('sec.scope')}</th><th>{t('sec.purpose')}</th><th /></tr></thead>
          <tbody>
            {list.data.vars.map((v) => (
              <tr key={v.name} data-var={v.name}>
                <td class="mono">{v.name}</td><td class="mono">{v.secret}</td><td>{v.scope}</td><td>{v.purpose}</td>
                <td>{admin && <button type="button" class="danger" onClick={() => del(v.name)}>{t('common.delete')}</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ))}
      {list.data && admin && (
        <form class="row inline-form" onSubmit={put} data-testid="var-form">
          <label>{t('sec.name')}<input name="name" required class="mono" /></label>
          <label>{t('mem.secret')}{secrets.data
            ? <select name="secret" required>{secrets.data.secrets.map((s) => <option key={s.name} value={s.name}>{s.name} ({s.scope})</option>)}</select>
            : <input name="secret" required class="mono" />}</label>
          <label>{t('sec.scope')}<select name="scope"><option value="project">{t('mem.scope.project')}</option><option value="task">{t('mem.scope.task')}</option></select></label>
          <label>{t('sec.purpose')}<input name="purpose" /></label>
          <button type="submit">{t('mem.var.add')}</button>
        </form>
      )}
      <Err msg={err} />
    </section>
  );
}

type Item = { id: number; project_id: string; subject: string | null; text: string; tags: string[]; source: string; created_at: string; updated_at: string; deleted_at: string | null; version: number;
  score?: number; scores?: { keyword: number | null; vector: number | null; rrf: number | null }; ranks?: { keyword: number | null; vector: number | null } };

const MODES: [string, Key][] = [['hybrid', 'mem.mode.hybrid'], ['keyword', 'mem.mode.keyword'], ['vector', 'mem.mode.vector']];
const rank = (x: number | null | undefined) => x == null ? '' : ` (#${x})`;
const num = (x: number | null | undefined) => x == null ? '—' : Math.abs(x) < 0.001 && x !== 0 ? x.toExponential(2) : x.toFixed(4);

/* The browse filters (GET /api/memory/items) and, when q is set on the
 * current items, a search (GET /api/memory/search) with the same ones. */
type Filter = { project: string; tags: string; deleted: boolean; q: string; mode: string; k: string };
const tagList = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean).join(',');
const LIMIT = 50;

function Items() {
  const [filter, setFilter] = useState<Filter>({ project: '', tags: '', deleted: false, q: '', mode: 'hybrid', k: '10' });
  const [results, setResults] = useState<Item[] | null>(null);
  const [list, setList] = useState<Item[] | null>(null);
  const [next, setNext] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState('');
  const [edit, setEdit] = useState<Item | 'new' | null>(null);
  const [trail, setTrail] = useState<Item | null>(null);
  const searching = !!filter.q && !filter.deleted;
  const search = async (f: Filter) => {
    const p = new URLSearchParams({ q: f.q, mode: f.mode, k: f.k || '10' });
    if (f.tags) p.set('tags', f.tags);
    if (f.project) p.set('project_id', f.project);
    try { setResults((await api('GET', `/api/memory/search?${p}`)).results); } catch (x: any) { setErr(x.message); }
  };
  /* A page of the list, newest first: the first one (replacing what is
   * shown) or the one after `before` (appended). */
  const page = async (f: Filter, before: number | null) => {
    const p = new URLSearchParams({ limit: String(LIMIT), deleted: String(f.deleted) });
    if (f.tags) p.set('tags', f.tags);
    if (f.project) p.set('project_id', f.project);
    if (before != null) p.set('before', String(before));
    setBusy(true);
    try {
      const r = await api<{ items: Item[]; next_before: number | null }>('GET', `/api/memory/items?${p}`);
      setList((old) => before != null && old ? [...old, ...r.items.filter((i) => !old.some((o) => o.id === i.id))] : r.items);
      setNext(r.next_before);
    } catch (x: any) { setErr(x.message); } finally { setBusy(false); }
  };
  const load = (f: Filter) => { setErr(''); if (f.q && !f.deleted) search(f); else { setResults(null); page(f, null); } };
  useEffect(() => { load(filter); }, [filter]);
  const submit = (e: Event) => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    setFilter({ q: val(f, 'q').trim(), mode: val(f, 'mode'), k: val(f, 'k'), tags: tagList(val(f, 'tags')), project: val(f, 'project_id').trim(), deleted: val(f, 'show') === 'deleted' });
  };
  /* An item changed here leaves the view it no longer belongs to; the
   * rest of the list (and the pages loaded) stays as it is. */
  const drop = (it: Item) => { setList((l) => l && l.filter((x) => x.id !== it.id)); if (searching) search(filter); };
  const del = async (it: Item) => {
    setErr('');
    try { await api('DELETE', `/api/memory/items/${it.id}`); drop(it); } catch (x: any) { setErr(x.message); }
  };
  const restore = async (it: Item) => {
    setErr('');
    try { await api('POST', `/api/memory/items/${it.id}/restore`); drop(it); } catch (x: any) { setErr(x.message); }
  };
  const saved = async (it: Item | null) => {
    setEdit(null);
    if (searching) return search(filter);
    if (!it) return page(filter, null); // a new item is the newest: the list from its start
    try {
      const got = await api<Item>('GET', `/api/memory/items/${it.id}`);
      setList((l) => l && l.map((x) => x.id === got.id ? got : x));
    } catch (x: any) { setErr(x.message); }
  };
  /* Changes made here, not in the form, are written into it too. */
  const form = useRef<HTMLFormElement>(null);
  const setField = (n: string, v: string) => { const el = form.current?.elements.namedItem(n) as HTMLInputElement | null; if (el) el.value = v; };
  const byTag = (tag: string) => { setField('tags', tag); setFilter({ ...filter, tags: tag }); };
  const clear = () => { setField('q', ''); setFilter({ ...filter, q: '' }); };
  const op = can('operate');
  const row = (r: Item) => (
    <li key={r.id} data-item={r.id}>
      <div class="text">{r.subject && <strong>{r.subject}: </strong>}{r.text}</div>
      <div class="small muted">
        {r.tags.map((x) => <button type="button" key={x} class="tag" onClick={() => byTag(x)} title={t('mem.tag.filter', { tag: x })}>{x}</button>)}
        {' '}{r.project_id} · v{r.version} · {r.source} · {when(r.updated_at)}
        {r.deleted_at && <> · <span data-testid="deleted-at">{t('mem.deleted.at', { when: when(r.deleted_at) })}</span></>}
      </div>
      {r.scores && (
        <div class="small mono" data-testid="scores">
          {t('mem.score', { s: num(r.score) })} · {t('mem.mode.keyword')} {num(r.scores?.keyword)}{rank(r.ranks?.keyword)} · {t('mem.mode.vector')} {num(r.scores?.vector)}{rank(r.ranks?.vector)} · RRF {num(r.scores?.rrf)}
        </div>
      )}
      <div class="row">
        {op && !r.deleted_at && <button type="button" onClick={() => setEdit(r)} data-testid="mem-edit">{t('mem.edit')}</button>}
        {op && !r.deleted_at && <button type="button" class="danger" onClick={() => del(r)} data-testid="mem-delete">{t('common.delete')}</button>}
        {op && r.deleted_at && <button type="button" onClick={() => restore(r)} data-testid="mem-restore">{t('mem.restore')}</button>}
        {can('admin', 'system') && <button type="button" onClick={() => setTrail(r)} data-testid="mem-trail">{t('mem.trail')}</button>}
      </div>
    </li>
  );
  return (
    <div class="stack">
      <section class="panel">
        <form class="row inline-form" onSubmit={submit} data-testid="mem-search" ref={form}>
          <label style="flex: 3 1 16rem">{t('mem.query')}<input name="q" data-testid="mem-q" defaultValue={filter.q} placeholder={t('mem.query.hint')} disabled={filter.deleted} /></label>
          <label>{t('mem.mode')}<select name="mode" data-testid="mem-mode" defaultValue={filter.mode}>{MODES.map(([m, k]) => <option key={m} value={m}>{t(k)}</option>)}</select></label>
          <label>{t('mem.tags')}<input name="tags" placeholder="a, b" defaultValue={filter.tags} data-testid="mem-tags" /></label>
          <label>{t('mem.project')}<input name="project_id" class="mono" defaultValue={filter.project} /></label>
          <label style="flex: 0 1 5rem">{t('mem.k')}<input name="k" type="number" min="1" max="100" defaultValue={filter.k} /></label>
          <label>{t('mem.show')}<select name="show" data-testid="mem-show" value={filter.deleted ? 'deleted' : 'live'}
            onChange={(e) => (e.currentTarget as HTMLSelectElement).form!.requestSubmit()}>
            <option value="live">{t('mem.show.live')}</option><option value="deleted">{t('mem.show.deleted')}</option></select></label>
          <button type="submit" class="primary">{t('mem.search')}</button>
        </form>
        {op && <button type="button" onClick={() => setEdit('new')} data-testid="mem-new">{t('mem.item.new')}</button>}
        <Err msg={err} />
      </section>
      {searching && results && (
        <section class="panel" aria-live="polite">
          <div class="row"><h2 class="spacer">{t('mem.results', { n: results.length })}</h2>
            <button type="button" onClick={clear} data-testid="mem-clear">{t('mem.clear')}</button></div>
          {results.length === 0 ? <p class="muted">{t('mem.noresults')}</p> : <ol class="results" data-testid="mem-results">{results.map(row)}</ol>}
        </section>
      )}
      {!searching && list && (
        <section class="panel" aria-live="polite" data-testid={filter.deleted ? 'mem-deleted' : 'mem-list'}>
          <h2>{t(filter.deleted ? 'mem.list.deleted' : 'mem.list', { n: list.length })}{filter.tags && <> · {filter.tags.split(',').map((x) => <span key={x} class="tag">{x}</span>)}</>}</h2>
          {list.length === 0 ? <p class="muted">{t('common.none')}</p> : <ol class="results" data-testid="mem-items">{list.map(row)}</ol>}
          {next != null && <button type="button" onClick={() => page(filter, next)} disabled={busy} data-testid="mem-more">{t('mem.more')}</button>}
          {next == null && list.length > 0 && <p class="muted small" data-testid="mem-end">{t('mem.end')}</p>}
        </section>
      )}
      {edit && <ItemForm item={edit === 'new' ? null : edit} onClose={() => setEdit(null)} onSaved={() => saved(edit === 'new' ? null : edit)} />}
      {trail && <Trail item={trail} onClose={() => setTrail(null)} />}
    </div>
  );
}

function ItemForm({ item, onClose, onSaved }: { item: Item | null; onClose: () => void; onSaved: () => void }) {
  const [err, setErr] = useState('');
  const save = async (e: Event) => {
    e.preventDefault();
    setErr('');
    const f = e.currentTarget as HTMLFormElement;
    const body: any = {
      project_id: val(f, 'project_id').trim(), text: val(f, 'text'),
      subject: val(f, 'subject').trim() || null,
      tags: val(f, 'tags').split(',').map((x) => x.trim()).filter(Boolean),
    };
    try {
      if (item) await api('PATCH', `/api/memory/items/${item.id}`, body);
      else await api('POST', '/api/memory/items', body);
      onSaved();
    } catch (x: any) { setErr(x.message); }
  };
  return (
    <Modal title={item ? t('mem.edit') : t('mem.item.new')} onClose={onClose}>
      <form onSubmit={save} data-testid="item-form">
        <label>{t('mem.project')}<input name="project_id" required class="mono" defaultValue={item?.project_id || ''} data-testid="item-project" /></label>
        <label>{t('mem.subject')}<input name="subject" defaultValue={item?.subject || ''} /></label>
        <label>{t('mem.text')}<textarea name="text" rows={5} required defaultValue={item?.text || ''} data-testid="item-text" /></label>
        <label>{t('mem.tags')}<input name="tags" defaultValue={(item?.tags || []).join(', ')} placeholder="a, b" data-testid="item-tags" /></label>
        <div class="row"><button type="submit" class="primary" data-testid="item-save">{t('common.save')}</button><button type="button" onClick={onClose}>{t('common.cancel')}</button></div>
        <Err msg={err} />
      </form>
    </Modal>
  );
}

/* The item's audit rows (Admin: GET /audit/logs by resource). */
function Trail({ item, onClose }: { item: Item; onClose: () => void }) {
  const { data, err } = useLoad<{ items: any[] }>(`/audit/logs?resource=${encodeURIComponent(`mem_items/${item.id}`)}&limit=100`);
  return (
    <Modal title={t('mem.trail')} onClose={onClose}>
      <Err msg={err} />
      {data && (
        <table data-testid="trail">
          <thead><tr><th>{t('aud.time')}</th><th>{t('aud.actor')}</th><th>{t('aud.action')}</th><th>{t('aud.diff')}</th></tr></thead>
          <tbody>{data.items.filter((i) => i.resource === `mem_items/${item.id}`).map((i) => <tr key={i.id} data-action={i.action}><td class="small">{when(i.created_at)}</td><td class="mono small">{i.actor}</td><td class="mono small">{i.action}</td><td class="mono small diffcell">{JSON.stringify(i.diff)}</td></tr>)}</tbody>
        </table>
      )}
      <button type="button" onClick={onClose}>{t('common.close')}</button>
    </Modal>
  );
}
