// suggestion.tsx - the Analyzer's repair suggestion on an anomaly's card
// (src/monitor/analyzer.c publishes it as the card's next version, payload
// .suggestion = {id, rule, title, detail, actions, llm?}). The rule's title
// and detail are shown in the UI's language (the server's English text is
// the fallback for a rule this build does not know); the model's text, when
// there is one, as the model wrote it. Actions: raising timeout_ms is done
// here (PATCH /mcp/registry/:name, Admin); the others open where the answer
// is - the trace in the workspace, the run in Projects, the server in
// Integrations, the log lines in Monitor.
import { useState } from 'preact/hooks';
import { t, Key } from '../i18n';
import { api } from '../api';
import { can } from '../perm';
import { navigate } from '../router';
import { Preview } from './workspace';

type Action = { label: string; method: string; path: string; field?: string };
export type SuggestionData = {
  id: string; rule: string; title: string; detail: string; count?: number;
  actions?: Action[]; llm?: { text: string; model: string };
  costliest?: { step: string; cost_cny: number }[];
};

const RULES: Record<string, [Key, Key]> = {
  timeout_storm: ['analyzer.rule.timeout', 'analyzer.rule.timeout.detail'],
  breaker_opens: ['analyzer.rule.breaker', 'analyzer.rule.breaker.detail'],
  server_errors: ['analyzer.rule.server', 'analyzer.rule.server.detail'],
  repeated_failure: ['analyzer.rule.repeated', 'analyzer.rule.repeated.detail'],
  budget_breach: ['analyzer.rule.budget', 'analyzer.rule.budget.detail'],
  deadline_missed: ['analyzer.rule.deadline', 'analyzer.rule.deadline.detail'],
  task_failures: ['analyzer.rule.tasks', 'analyzer.rule.tasks.detail'],
  approval_timeouts: ['analyzer.rule.approvals', 'analyzer.rule.approvals.detail'],
  planning_failures: ['analyzer.rule.planning', 'analyzer.rule.planning.detail'],
  agent_crash_loop: ['analyzer.rule.crashloop', 'analyzer.rule.crashloop.detail'],
};

const LABELS: Record<string, Key> = {
  'Raise timeout_ms': 'analyzer.action.raise', 'Server health': 'analyzer.action.health',
  'Last errors': 'analyzer.action.errors', 'Log lines': 'analyzer.action.logs',
  Trace: 'analyzer.action.trace', Episode: 'analyzer.action.episode',
  'LLM settings': 'analyzer.action.llm', 'Agent logs': 'analyzer.action.agentlogs',
  Versions: 'analyzer.action.versions',
};

export function Suggestion({ s, server, tool, agent, onPreview }: {
  s: SuggestionData; server?: string; tool?: string; agent?: string; onPreview: (p: Preview) => void;
}) {
  const rule = RULES[s.rule];
  // a step's tool is "server__tool"
  const [sv, tl] = !server && tool?.includes('__') ? [tool.slice(0, tool.indexOf('__')), tool.slice(tool.indexOf('__') + 2)] : [server, tool];
  const vars = { server: sv || '', tool: tl || '', agent: agent || '' };
  return (
    <section class="suggestion" data-testid="suggestion" data-rule={s.rule}>
      <h4><span class="muted">{t('analyzer.suggestion')}</span> {rule ? t(rule[0], vars) : s.title}</h4>
      <p class="small">{rule ? t(rule[1]) : s.detail}</p>
      {s.costliest && s.costliest.length > 0 && (
        <p class="small" data-testid="suggestion-costliest">{t('analyzer.costliest', {
          list: s.costliest.map((c) => `${c.step} ¥${Number(c.cost_cny).toFixed(4)}`).join(', ') })}</p>
      )}
      {s.llm && (
        <blockquote class="small" data-testid="suggestion-llm">
          <span class="muted">{t('analyzer.model', { model: s.llm.model })}</span>
          <p>{s.llm.text}</p>
        </blockquote>
      )}
      <div class="row wrap">
        {(s.actions || []).map((a) => <ActionView key={a.label + a.path} a={a} onPreview={onPreview} />)}
      </div>
    </section>
  );
}

function ActionView({ a, onPreview }: { a: Action; onPreview: (p: Preview) => void }) {
  const label = LABELS[a.label] ? t(LABELS[a.label]) : a.label;
  if (a.method === 'PATCH' && a.field === 'timeout_ms') return <RaiseTimeout a={a} label={label} />;
  const go = () => {
    const [path, query] = a.path.split('?');
    let m;
    if ((m = path.match(/^\/api\/traces\/([0-9a-f]{32})$/))) onPreview({ kind: 'trace', trace: m[1] });
    else if ((m = path.match(/^\/api\/episodes\/([0-9a-f]{32})$/))) navigate(`/projects?trace=${m[1]}`);
    else if (path.startsWith('/mcp/registry/')) navigate('/integrations');
    else if (path === '/api/logs') navigate(`/telemetry${query ? `?${query}` : ''}`);
    else if (path === '/config') navigate('/settings');
    else if (path.startsWith('/agents/')) navigate('/agents');
  };
  return <button type="button" class="link small" data-testid="suggestion-action" onClick={go}>{label}</button>;
}

function RaiseTimeout({ a, label }: { a: Action; label: string }) {
  const server = decodeURIComponent(a.path.split('/').pop() || '');
  const [ms, setMs] = useState('');
  const [msg, setMsg] = useState('');
  const [err, setErr] = useState('');
  const admin = can('admin');
  const save = async (e: Event) => {
    e.preventDefault();
    setErr('');
    setMsg('');
    try {
      await api('PATCH', a.path, { timeout_ms: Number(ms) });
      setMsg(t('analyzer.timeout.saved', { ms }));
    } catch (x: any) {
      setErr(x.message);
    }
  };
  return (
    <form class="row" onSubmit={save} data-testid="suggestion-timeout">
      <label class="small">{label} · {t('analyzer.timeout.label', { server })}
        <input type="number" min="1" max="3600000" step="1" required value={ms} disabled={!admin}
          title={admin ? undefined : t('analyzer.timeout.perm')}
          onInput={(e) => setMs((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit" disabled={!admin || !ms} title={admin ? undefined : t('analyzer.timeout.perm')}>{t('analyzer.timeout.save')}</button>
      {msg && <span class="small" role="status">{msg}</span>}
      {err && <span class="error small" role="alert">{t('common.error', { message: err })}</span>}
    </form>
  );
}
