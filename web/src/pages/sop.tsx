// sop.tsx - P3 on the Projects page: SOP blueprints (docs/MEMORY.md, R2;
// /api/memory/blueprints) edited as a list of steps rather than as JSON.
//
// A blueprint is {project_id, name, description, spec, params}; spec is a
// TaskSpec whose plan.steps the editor shows one by one (docs/ORCHESTRATOR.md,
// "The plan"): a tool step (the tool picked from the gateway's tools/list
// as the signed-in principal sees it, its arguments from the tool's input
// schema - schemaform.tsx, the same fields as Integrations' "try a tool" -
// check, retry, fallback, optional, timeout_ms), an approval gate
// (message, timeout_s, on_timeout) or a milestone, each with its id and
// `when`. Steps are added, removed and moved (buttons; Alt+Up / Alt+Down
// on a step; or dragged).
//
// The draft IS the JSON the API takes: every control changes only its own
// field (an emptied field removes its key, an emptied check or retry goes
// too), so a blueprint opened and saved unchanged is the same JSON, and
// the JSON shown under "JSON" is exactly the body sent. Saving is a PUT (a
// new version) after a GET that finds the version still the one the
// editor started from (else it says who saved which and writes nothing:
// the PUT itself has no base version), or, for a new one, a POST. The versions are listed with a line diff between any two; a run
// starts from any version: instantiate {params, version}, then POST
// /api/run with the TaskSpec, which validates the plan as for any task.
import { useEffect, useState } from 'preact/hooks';
import { t, Key } from '../i18n';
import { api } from '../api';
import { can } from '../perm';
import { Err, useLoad, DiffView, pretty, when } from '../ui';
import { SchemaFields, JsonBox, NumberBox } from '../schemaform';
import { listToolsAt, Tool } from './integrations';
import { BlueprintList } from '../blueprints';

type Json = any;
type Step = Record<string, Json>;
type Draft = { description: Json; params: Record<string, Json>; spec: Record<string, Json> };
type Blueprint = Draft & { id: number; project_id: string; name: string; version: number; current_version?: number; author: string; updated_at: string; diff: any };

const KIND: Record<string, Key> = { tool: 'sop.kind.tool', approval: 'sop.kind.approval', milestone: 'sop.kind.milestone', other: 'sop.kind.other' };
const clone = <T,>(x: T): T => JSON.parse(JSON.stringify(x));
const kindOf = (s: Step) => ('tool' in s ? 'tool' : 'approval' in s ? 'approval' : 'milestone' in s ? 'milestone' : 'other');
const stepsOf = (d: Draft): Step[] => (Array.isArray(d.spec?.plan?.steps) ? d.spec.plan.steps : []);
const withSteps = (d: Draft, steps: Step[]): Draft => ({ ...d, spec: { ...d.spec, plan: { ...(d.spec.plan || {}), steps } } });
/* The body of a save (PUT; a POST adds project_id and name). */
const bodyOf = (d: Draft) => ({ description: d.description, spec: d.spec, params: d.params });
/* A field whose text is not a value yet (JSON that does not parse, a
 * number that is none): the draft still holds the last good value, so a
 * save would not be what the page shows. */
const invalid = () => !!document.querySelector('[data-testid="sop-editor"] [aria-invalid="true"]');
const draftOf = (b: Blueprint): Draft => clone({ description: b.description, params: b.params, spec: b.spec });
const bpText = (v: Draft) => pretty({ description: v.description, params: v.params, spec: v.spec });

/* obj with the field at path set (v undefined: removed), a new object at
 * each level; `check` and `retry` left empty are removed too. */
function setIn(obj: Step, path: string[], v: Json): Step {
  const [k, ...rest] = path;
  const n: Step = { ...obj };
  const x = rest.length ? setIn(obj[k] && typeof obj[k] === 'object' ? obj[k] : {}, rest, v) : v;
  if (x === undefined || (rest.length && (k === 'check' || k === 'retry') && Object.keys(x).length === 0)) delete n[k];
  else n[k] = x;
  return n;
}

/* The references a step may use (docs/ORCHESTRATOR.md, "References"): the
 * blueprint's params, the spec's inputs, the task, and the earlier steps'
 * results and decisions. */
function refsBefore(d: Draft, i: number): string[] {
  const out = Object.keys(d.params || {}).map((k) => `\${params.${k}}`);
  if (d.spec.inputs && typeof d.spec.inputs === 'object') out.push(...Object.keys(d.spec.inputs).map((k) => `\${inputs.${k}}`));
  for (const s of stepsOf(d).slice(0, i)) {
    if ('tool' in s && s.id) out.push(`\${${s.id}.result}`);
    if ('approval' in s && s.id) out.push(`\${${s.id}.decision}`);
  }
  out.push('${task.trace_id}', '${task.workspace}');
  return out;
}

function freshId(steps: Step[], prefix: string): string {
  const ids = new Set(steps.map((s) => s.id));
  for (let i = steps.length + 1; ; i++) if (!ids.has(`${prefix}${i}`)) return `${prefix}${i}`;
}

export function Blueprints({ onOpenRun }: { onOpenRun: (trace: string) => void }) {
  const q = new URLSearchParams(location.search);
  const [project, setProject] = useState('');
  const [open, setOpenState] = useState<number | 'new' | null>(q.get('bp') ? Number(q.get('bp')) : null);
  const list = useLoad<{ blueprints: Blueprint[] }>(`/api/memory/blueprints${project ? '?project_id=' + encodeURIComponent(project) : ''}`);
  const setOpen = (x: number | 'new' | null) => {
    history.replaceState(null, '', typeof x === 'number' ? `/projects?tab=sop&bp=${x}` : '/projects?tab=sop');
    setOpenState(x);
  };
  return (
    <div class="split sop">
      <BlueprintList title={t('sop.title')} project={project} setProject={setProject} list={list.data?.blueprints} err={list.err}
        open={open} onOpen={setOpen} onNew={() => setOpen('new')} ids={{ list: 'sop-list', add: 'sop-new', project: 'sop-project' }} />
      <div>
        {open === 'new' && <NewBlueprint project={project} onSaved={(id) => { list.reload(); setOpen(id); }} />}
        {typeof open === 'number' && <BlueprintEditor key={open} id={open} onSaved={list.reload} onOpenRun={onOpenRun} />}
        {open == null && <p class="muted">{t('sop.pick')}</p>}
      </div>
    </div>
  );
}

/* The gateway's tools as the signed-in principal sees them (one session
 * on /mcp, every server's tools as server__tool). */
function useTools() {
  const [tools, setTools] = useState<Tool[] | null>(null);
  const [err, setErr] = useState('');
  useEffect(() => { listToolsAt('/mcp').then(setTools).catch((e) => setErr(e.message)); }, []);
  return { tools, err };
}

function NewBlueprint({ project, onSaved }: { project: string; onSaved: (id: number) => void }) {
  const [pid, setPid] = useState(project);
  const [name, setName] = useState('');
  const [draft, setDraft] = useState<Draft>({ description: '', params: {}, spec: { plan: { steps: [] } } });
  const [err, setErr] = useState('');
  const tools = useTools();
  const save = async () => {
    setErr('');
    if (invalid()) { setErr(t('sf.invalid')); return; }
    try { const r = await api('POST', '/api/memory/blueprints', { project_id: pid, name, ...bodyOf(draft) }); onSaved(r.id); }
    catch (x: any) { setErr(x.message); }
  };
  return (
    <section class="panel stack" data-testid="sop-editor">
      <h2>{t('mem.bp.new')}</h2>
      <div class="row">
        <label>{t('mem.project')}<input class="mono" value={pid} required onInput={(e) => setPid((e.target as HTMLInputElement).value.trim())} data-testid="sop-new-project" /></label>
        <label>{t('sec.name')}<input class="mono" value={name} required pattern="[A-Za-z0-9._\-]{1,128}" onInput={(e) => setName((e.target as HTMLInputElement).value.trim())} data-testid="sop-new-name" /></label>
      </div>
      <DraftEditor draft={draft} setDraft={setDraft} tools={tools.tools} toolsErr={tools.err} readOnly={false} />
      <Err msg={err} />
      <div class="row"><button type="button" class="primary" onClick={save} disabled={!pid || !name} data-testid="sop-save">{t('sop.create')}</button></div>
    </section>
  );
}

function BlueprintEditor({ id, onSaved, onOpenRun }: { id: number; onSaved: () => void; onOpenRun: (trace: string) => void }) {
  const cur = useLoad<Blueprint>(`/api/memory/blueprints/${id}`);
  const vers = useLoad<{ versions: Blueprint[] }>(`/api/memory/blueprints/${id}/versions`);
  const [draft, setDraft] = useState<Draft | null>(null);
  const [base, setBase] = useState<number>(0); // the version the draft started from
  const [gen, setGen] = useState(0); // bumped when the draft is replaced (a version loaded, reverted)
  const replace = (d: Draft) => { setDraft(d); setGen(gen + 1); };
  const [err, setErr] = useState('');
  const [msg, setMsg] = useState('');
  const [conflict, setConflict] = useState(0);
  const tools = useTools();
  const op = can('operate');
  useEffect(() => { if (cur.data && (!draft || base !== cur.data.version)) { setDraft(draftOf(cur.data)); setBase(cur.data.version); } }, [cur.data]);
  if (!cur.data || !draft) return <Err msg={cur.err} />;
  // data-version says which version the draft below holds: a reload
  // renders once with the new version and the old draft before the effect
  // above replaces the draft, so it is `base`, not the loaded version.
  const bp = cur.data;
  const dirty = JSON.stringify(bodyOf(draft)) !== JSON.stringify(bodyOf(draftOf(bp)));
  const save = async () => {
    setErr(''); setMsg('');
    if (invalid()) { setErr(t('sf.invalid')); return; }
    try {
      // the API's PUT writes over whatever is current: a version saved
      // since this page read it is refused here rather than overwritten
      const now = await api<Blueprint>('GET', `/api/memory/blueprints/${id}`);
      if (now.version !== bp.version) { setConflict(now.version); setErr(t('sop.conflict', { v: now.version, who: now.author })); vers.reload(); return; }
      await api('PUT', `/api/memory/blueprints/${id}`, bodyOf(draft));
      setMsg(t('sop.saved', { v: bp.version + 1 }));
      cur.reload(); vers.reload(); onSaved();
    } catch (x: any) { setErr(x.message); }
  };
  return (
    <div class="stack" data-testid="sop-editor" data-version={base}>
      <section class="panel stack">
        <header class="row">
          <h2>{bp.name} <span class="badge" data-testid="sop-version">v{bp.version}</span></h2>
          <span class="small muted">{bp.project_id} · {bp.author} · {when(bp.updated_at)}</span>
        </header>
        <DraftEditor key={`${base}-${gen}`} draft={draft} setDraft={setDraft} tools={tools.tools} toolsErr={tools.err} readOnly={!op} />
        <Err msg={err} />
        {conflict > 0 && <button type="button" onClick={() => { setConflict(0); setErr(''); cur.reload(); }} data-testid="sop-restart">{t('sop.restart', { v: conflict })}</button>}
        {msg && <p role="status" data-testid="sop-msg">{msg}</p>}
        {op && <div class="row">
          <button type="button" class="primary" onClick={save} disabled={!dirty} data-testid="sop-save">{t('mem.bp.save')}</button>
          <button type="button" onClick={() => replace(draftOf(bp))} disabled={!dirty} data-testid="sop-revert">{t('sop.revert')}</button>
        </div>}
      </section>
      <Versions versions={vers.data?.versions || []} err={vers.err} current={bp.version} onLoad={(v) => { replace(draftOf(v)); setMsg(t('sop.loaded', { v: v.version })); }} readOnly={!op} />
      <RunFrom bp={bp} versions={vers.data?.versions || []} onOpenRun={onOpenRun} />
    </div>
  );
}

/* The blueprint's goal, description, params, other TaskSpec fields and its steps. */
function DraftEditor({ draft, setDraft, tools, toolsErr, readOnly }: {
  draft: Draft; setDraft: (d: Draft) => void; tools: Tool[] | null; toolsErr: string; readOnly: boolean;
}) {
  const steps = stepsOf(draft);
  const [sel, setSel] = useState<number>(steps.length ? 0 : -1);
  const [drag, setDrag] = useState<number | null>(null);
  const setSteps = (s: Step[]) => setDraft(withSteps(draft, s));
  const move = (i: number, d: number) => {
    const j = i + d;
    if (j < 0 || j >= steps.length) return;
    const s = steps.slice();
    const [x] = s.splice(i, 1);
    s.splice(j, 0, x);
    setSteps(s);
    setSel(j);
    requestAnimationFrame(() => (document.querySelector(`[data-testid="sop-steps"] > li:nth-child(${j + 1}) .sop-pick`) as HTMLElement | null)?.focus());
  };
  const add = (kind: 'tool' | 'approval' | 'milestone') => {
    const s: Step = kind === 'tool' ? { id: freshId(steps, 's'), tool: tools?.[0]?.name || '', args: {} }
      : kind === 'approval' ? { id: freshId(steps, 'gate'), approval: { message: '' } }
        : { id: freshId(steps, 'm'), milestone: '' };
    setSteps([...steps, s]);
    setSel(steps.length);
  };
  const remove = (i: number) => {
    setSteps(steps.filter((_, j) => j !== i));
    setSel(Math.min(i, steps.length - 2));
  };
  const other = Object.fromEntries(Object.entries(draft.spec).filter(([k]) => k !== 'goal' && k !== 'plan'));
  const step = sel >= 0 ? steps[sel] : undefined;
  return (
    <div class="stack">
      <label>{t('prj.goal')}<input value={draft.spec.goal ?? ''} readOnly={readOnly} data-testid="sop-goal"
        onInput={(e) => { const v = (e.target as HTMLInputElement).value; setDraft({ ...draft, spec: setIn(draft.spec, ['goal'], v === '' ? undefined : v) }); }} /></label>
      <label>{t('mem.description')}<input value={draft.description ?? ''} readOnly={readOnly} data-testid="sop-description"
        onInput={(e) => setDraft({ ...draft, description: (e.target as HTMLInputElement).value })} /></label>
      <details>
        <summary>{t('sop.more')}</summary>
        <JsonBox name="params" label={t('mem.params')} id="sop-params" v={draft.params} rows={4} readOnly={readOnly} set={(v) => setDraft({ ...draft, params: v && typeof v === 'object' ? v as any : {} })} />
        <JsonBox name="specother" label={t('sop.specother')} id="sop-specother" v={other} rows={4} readOnly={readOnly}
          set={(v) => setDraft({ ...draft, spec: { ...(v && typeof v === 'object' ? v as any : {}), ...(draft.spec.goal !== undefined ? { goal: draft.spec.goal } : {}), ...(draft.spec.plan !== undefined ? { plan: draft.spec.plan } : {}) } })} />
      </details>
      {draft.spec.dsl !== undefined && <p class="muted small">{t('sop.dsl')}</p>}
      <div class="sop-grid">
        <div>
          <h3 id="sop-steps-h">{t('prj.steps')}</h3>
          <p class="small muted">{t('sop.keys')}</p>
          <ol class="steps sop-steps" data-testid="sop-steps" aria-labelledby="sop-steps-h">
            {steps.map((s, i) => (
              <li key={`${i}-${s.id}`} data-step={s.id} class={`${i === sel ? 'selected' : ''} ${drag === i ? 'dragging' : ''}`} draggable={!readOnly}
                onDragStart={(e) => { setDrag(i); (e as DragEvent).dataTransfer?.setData('text/plain', String(i)); }}
                onDragOver={(e) => e.preventDefault()}
                onDrop={(e) => { e.preventDefault(); if (drag != null && drag !== i) move(drag, i - drag); setDrag(null); }}
                onDragEnd={() => setDrag(null)}>
                <div class="row">
                  <button type="button" class="link sop-pick" aria-current={i === sel} onClick={() => setSel(i)} data-testid={`sop-pick-${s.id}`}
                    onKeyDown={(e) => { if (readOnly || !e.altKey) return; if (e.key === 'ArrowUp') { e.preventDefault(); move(i, -1); } if (e.key === 'ArrowDown') { e.preventDefault(); move(i, 1); } }}>
                    <strong class="mono">{s.id || '?'}</strong></button>
                  <span class="badge">{t(KIND[kindOf(s)])}</span>
                  <span class="small mono muted">{kindOf(s) === 'tool' ? s.tool : kindOf(s) === 'milestone' ? s.milestone : ''}</span>
                  <span class="spacer" />
                  {!readOnly && <>
                    <button type="button" onClick={() => move(i, -1)} disabled={i === 0} aria-label={t('sop.up', { id: s.id })} data-testid={`sop-up-${s.id}`}>↑</button>
                    <button type="button" onClick={() => move(i, 1)} disabled={i === steps.length - 1} aria-label={t('sop.down', { id: s.id })} data-testid={`sop-down-${s.id}`}>↓</button>
                    <button type="button" class="danger" onClick={() => remove(i)} aria-label={t('sop.remove', { id: s.id })} data-testid={`sop-remove-${s.id}`}>×</button>
                  </>}
                </div>
              </li>
            ))}
          </ol>
          {steps.length === 0 && <p class="muted small">{t('common.none')}</p>}
          {!readOnly && <div class="row">
            <button type="button" onClick={() => add('tool')} data-testid="sop-add-tool">{t('sop.add.tool')}</button>
            <button type="button" onClick={() => add('approval')} data-testid="sop-add-approval">{t('sop.add.approval')}</button>
            <button type="button" onClick={() => add('milestone')} data-testid="sop-add-milestone">{t('sop.add.milestone')}</button>
          </div>}
        </div>
        {step && <StepEditor key={`${sel}-${steps.length}`} step={step} tools={tools} toolsErr={toolsErr} readOnly={readOnly} refs={refsBefore(draft, sel)}
          onChange={(s) => setSteps(steps.map((x, j) => (j === sel ? s : x)))} />}
      </div>
      <details>
        <summary>{t('sop.json')}</summary>
        <pre class="mono small" data-testid="sop-json">{JSON.stringify(bodyOf(draft), null, 2)}</pre>
      </details>
    </div>
  );
}

function Text({ label, v, set, id, readOnly, area, testid }: { label: string; v: Json; set: (v: Json) => void; id: string; readOnly: boolean; area?: boolean; testid?: string }) {
  const on = (e: Event) => { const s = (e.target as HTMLInputElement).value; set(s === '' ? undefined : s); };
  return area
    ? <label>{label}<textarea id={id} rows={2} value={v ?? ''} readOnly={readOnly} onInput={on} data-testid={testid} /></label>
    : <label>{label}<input id={id} value={v ?? ''} readOnly={readOnly} onInput={on} data-testid={testid} /></label>;
}

function Num({ label, v, set, id, readOnly, testid }: { label: string; v: Json; set: (v: Json) => void; id: string; readOnly: boolean; testid?: string }) {
  return <span data-testid={testid}><NumberBox name={id} label={label} id={id} v={v} set={set} integer refs={false} required={false} readOnly={readOnly} /></span>;
}

function Check({ label, v, def, set, readOnly, testid }: { label: string; v: Json; def: boolean; set: (v: boolean) => void; readOnly: boolean; testid?: string }) {
  return <label class="check"><input type="checkbox" checked={typeof v === 'boolean' ? v : def} disabled={readOnly} onChange={(e) => set((e.target as HTMLInputElement).checked)} data-testid={testid} />{label}</label>;
}

function StepEditor({ step, tools, toolsErr, readOnly, onChange, refs }: { step: Step; tools: Tool[] | null; toolsErr: string; readOnly: boolean; onChange: (s: Step) => void; refs: string[] }) {
  const set = (path: string[], v: Json) => onChange(setIn(step, path, v));
  const kind = kindOf(step);
  const sid = `sop-${step.id}`;
  const tool = kind === 'tool' ? tools?.find((x) => x.name === step.tool) : undefined;
  const retry = typeof step.retry === 'number' ? { max: step.retry } : step.retry || {};
  const setRetry = (k: string, v: Json) => onChange(setIn({ ...step, ...(step.retry !== undefined ? { retry: retry } : {}) }, ['retry', k], v));
  return (
    <fieldset class="panel stack sop-step" data-testid="sop-step" data-step={step.id}>
      <legend>{t('sop.step', { id: step.id })}</legend>
      <Text label={t('sop.id')} v={step.id} set={(v) => set(['id'], v ?? '')} id={`${sid}-id`} readOnly={readOnly} testid="sop-id" />
      {kind === 'tool' && <>
        <label>{t('sop.tool')}<select value={step.tool} disabled={readOnly} data-testid="sop-tool"
          onChange={(e) => onChange({ ...step, tool: (e.target as HTMLSelectElement).value, args: {} })}>
          {!tool && <option value={step.tool}>{step.tool || '—'}{tools ? ` (${t('sop.unlisted')})` : ''}</option>}
          {(tools || []).map((x) => <option key={x.name} value={x.name}>{x.name}</option>)}
        </select></label>
        {toolsErr && <Err msg={toolsErr} />}
        {tool?.description && <p class="small muted">{tool.description}</p>}
        <fieldset><legend>{t('sop.args')}</legend>
          <p class="small muted">{t('sop.refs')}</p>
          <SchemaFields key={step.tool} schema={tool?.inputSchema || {}} value={step.args && typeof step.args === 'object' ? step.args : {}} idp={`${sid}-arg`} refs readOnly={readOnly} suggest={refs}
            onChange={(a) => set(['args'], a)} />
        </fieldset>
        <fieldset><legend>{t('sop.check')}</legend>
          <div class="row">
            <Check label={t('sop.check.nonempty')} v={step.check?.non_empty} def={false} set={(v) => set(['check', 'non_empty'], v)} readOnly={readOnly} testid="sop-check-nonempty" />
            <Check label={t('sop.check.noterror')} v={step.check?.not_error} def set={(v) => set(['check', 'not_error'], v)} readOnly={readOnly} />
          </div>
          <Text label={t('sop.check.contains')} v={step.check?.contains} set={(v) => set(['check', 'contains'], v)} id={`${sid}-contains`} readOnly={readOnly} testid="sop-check-contains" />
          <Text label={t('sop.check.matches')} v={step.check?.matches} set={(v) => set(['check', 'matches'], v)} id={`${sid}-matches`} readOnly={readOnly} />
          <Text label={t('sop.check.llm')} v={step.check?.llm} set={(v) => set(['check', 'llm'], v)} id={`${sid}-llm`} readOnly={readOnly} area />
          <JsonBox name="schema" label={t('sop.check.schema')} id={`${sid}-schema`} v={step.check?.schema} set={(v) => set(['check', 'schema'], v)} readOnly={readOnly} />
        </fieldset>
        <div class="row">
          <Num label={t('sop.retry.max')} v={retry.max} set={(v) => setRetry('max', v)} id={`${sid}-retry`} readOnly={readOnly} testid="sop-retry-max" />
          <Num label={t('sop.retry.backoff')} v={retry.backoff_ms} set={(v) => setRetry('backoff_ms', v)} id={`${sid}-backoff`} readOnly={readOnly} />
          <Num label={t('sop.timeout.ms')} v={step.timeout_ms} set={(v) => set(['timeout_ms'], v)} id={`${sid}-timeout`} readOnly={readOnly} testid="sop-timeout-ms" />
        </div>
        <div class="row">
          <Text label={t('sop.fallback')} v={step.fallback} set={(v) => set(['fallback'], v)} id={`${sid}-fallback`} readOnly={readOnly} />
          <Check label={t('sop.optional')} v={step.optional} def={false} set={(v) => set(['optional'], v)} readOnly={readOnly} testid="sop-optional" />
        </div>
      </>}
      {kind === 'approval' && <>
        <Text label={t('sop.approval.message')} v={step.approval?.message} set={(v) => set(['approval', 'message'], v ?? '')} id={`${sid}-message`} readOnly={readOnly} area testid="sop-approval-message" />
        <div class="row">
          <Num label={t('sop.approval.timeout')} v={step.approval?.timeout_s} set={(v) => set(['approval', 'timeout_s'], v)} id={`${sid}-atimeout`} readOnly={readOnly} testid="sop-approval-timeout" />
          <label>{t('sop.approval.ontimeout')}<select value={step.approval?.on_timeout ?? ''} disabled={readOnly} data-testid="sop-approval-ontimeout"
            onChange={(e) => { const v = (e.target as HTMLSelectElement).value; set(['approval', 'on_timeout'], v || undefined); }}>
            <option value="">{t('sop.default', { v: 'abort' })}</option>
            {['approve', 'abort', 'downgrade'].map((x) => <option key={x} value={x}>{x}</option>)}
          </select></label>
        </div>
      </>}
      {kind === 'milestone' && <Text label={t('sop.milestone')} v={step.milestone} set={(v) => set(['milestone'], v ?? '')} id={`${sid}-milestone`} readOnly={readOnly} testid="sop-milestone" />}
      {kind === 'other' && <JsonBox name="step" label={t('sop.kind.other')} id={`${sid}-json`} v={step} set={(v) => v && typeof v === 'object' && onChange(v as Step)} readOnly={readOnly} rows={6} />}
      <Text label={t('sop.when')} v={step.when} set={(v) => set(['when'], v)} id={`${sid}-when`} readOnly={readOnly} testid="sop-when" />
    </fieldset>
  );
}

function Versions({ versions, err, current, onLoad, readOnly }: { versions: Blueprint[]; err: string; current: number; onLoad: (v: Blueprint) => void; readOnly: boolean }) {
  const [a, setA] = useState<number | null>(null);
  const [b, setB] = useState<number | null>(null);
  const va = versions.find((v) => v.version === (a ?? current - 1)) || versions[0];
  const vb = versions.find((v) => v.version === (b ?? current)) || versions[versions.length - 1];
  return (
    <section class="panel" data-testid="sop-versions">
      <h3>{t('mem.versions')}</h3>
      <Err msg={err} />
      <ul class="list small">
        {versions.map((v) => (
          <li key={v.version} class="row" data-version={v.version}>
            <strong>v{v.version}</strong><span class="muted">{v.author} · {when(v.updated_at)}</span>
            {v.diff && <span class="muted">{(v.diff as any[]).length} Δ</span>}
            <span class="spacer" />
            {!readOnly && v.version !== current && <button type="button" onClick={() => onLoad(v)} data-testid={`sop-load-${v.version}`}>{t('sop.load')}</button>}
          </li>
        ))}
      </ul>
      {versions.length > 1 && va && vb && <>
        <div class="row">
          <label>{t('set.from')}<select data-testid="sop-ver-a" value={va.version} onChange={(e) => setA(Number((e.target as HTMLSelectElement).value))}>
            {versions.map((v) => <option key={v.version} value={v.version}>v{v.version}</option>)}</select></label>
          <label>{t('set.to')}<select data-testid="sop-ver-b" value={vb.version} onChange={(e) => setB(Number((e.target as HTMLSelectElement).value))}>
            {versions.map((v) => <option key={v.version} value={v.version}>v{v.version}</option>)}</select></label>
        </div>
        <DiffView a={bpText(va)} b={bpText(vb)} />
      </>}
    </section>
  );
}

/* A run of a chosen version: its params (declared in that version; a
 * param whose default is not text is typed as JSON), instantiate, run. */
function RunFrom({ bp, versions, onOpenRun }: { bp: Blueprint; versions: Blueprint[]; onOpenRun: (trace: string) => void }) {
  const [ver, setVer] = useState<number>(bp.version);
  const [vals, setVals] = useState<Record<string, string>>({});
  const [err, setErr] = useState('');
  const [ran, setRan] = useState('');
  useEffect(() => setVer(bp.version), [bp.version]);
  if (!can('operate', 'task:*')) return null;
  const v = versions.find((x) => x.version === ver) || bp;
  const params: Record<string, any> = v.params || {};
  const run = async (e: Event) => {
    e.preventDefault();
    setErr(''); setRan('');
    const p: Record<string, Json> = {};
    for (const [k, d] of Object.entries(params)) {
      const s = vals[k];
      if (s === undefined || s === '') continue;
      if (d?.default !== undefined && typeof d.default !== 'string') {
        try { p[k] = JSON.parse(s); } catch (x: any) { setErr(t('mcp.try.badjson', { message: `${k}: ${x.message}` })); return; }
      } else p[k] = s;
    }
    try {
      const inst = await api('POST', `/api/memory/blueprints/${bp.id}/instantiate`, { params: p, version: ver });
      const r = await api('POST', '/api/run', inst.spec);
      setRan(r.trace_id);
    } catch (x: any) { setErr(x.message); }
  };
  return (
    <form class="panel stack" onSubmit={run} data-testid="sop-run">
      <h3>{t('sop.run')}</h3>
      <label>{t('sop.version')}<select value={ver} onChange={(e) => setVer(Number((e.target as HTMLSelectElement).value))} data-testid="sop-run-version">
        {(versions.length ? versions : [bp]).map((x) => <option key={x.version} value={x.version}>v{x.version}</option>)}</select></label>
      {Object.entries(params).map(([k, d]) => (
        <label key={k}>{k}{d?.required ? ' *' : ''}<input class="mono" name={k} required={!!d?.required && d?.default === undefined} title={d?.description || undefined}
          placeholder={d?.default !== undefined ? (typeof d.default === 'string' ? d.default : JSON.stringify(d.default)) : ''}
          value={vals[k] ?? ''} onInput={(e) => setVals({ ...vals, [k]: (e.target as HTMLInputElement).value })} /></label>
      ))}
      <div class="row"><button type="submit" class="primary" data-testid="sop-run-submit">{t('mem.run')}</button></div>
      <Err msg={err} />
      {ran && <p role="status" data-testid="sop-ran">{t('mem.ran', { trace: ran.slice(0, 8) })} <button type="button" class="link" onClick={() => onOpenRun(ran)} data-testid="sop-open-run">{t('sop.openrun')}</button></p>}
    </form>
  );
}
