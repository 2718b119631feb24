// suggestion.tsx - the Analyzer's repair suggestion on an anomaly's card
// (src/monitor/analyzer.c publishes it as the card's next version, payload
// .suggestion = {id, rule, title, detail, actions, llm?}). The rule's title
// and detail are shown in the UI's language (the server's English text is
// the fallback for a rule this build does not know); the model's text, when
// there is one, as the model wrote it. Actions: raising timeout_ms is done
// here (PATCH /mcp/registry/:name, Admin); the others open where the answer
// is - the trace in the workspace, the run in Projects, the server in
// Integrations, the log lines in Monitor. actionText and ruleTitle serve
// Monitor's Analyzer tab too.
import { useState } from 'preact/hooks';
import { t, Key } from '../i18n';
import { api } from '../api';
import { can } from '../perm';
import { navigate } from '../router';
import { Preview } from './workspace';

export type Action = { label: string; method: string; path: string; field?: string };
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
  agent_unhealthy: ['analyzer.rule.unhealthy', 'analyzer.rule.unhealthy.detail'],
};

// What an action is called, by what it does (its label is the server's English).
export function actionText(a: Action): string {
  if (a.method === 'PATCH') return t('analyzer.action.raise', { field: a.field || '' });
  if (a.path.startsWith('/api/logs')) return a.path.includes('trace_id=') ? t('analyzer.action.logs') : t('analyzer.action.errors');
  if (a.path.startsWith('/api/traces/')) return t('analyzer.action.trace');
  if (a.path.startsWith('/api/episodes/')) return t('analyzer.action.episode');
  if (a.path.startsWith('/mcp/registry/')) return t('analyzer.action.health');
  if (a.path === '/config') return t('analyzer.action.llm');
  if (/^\/agents\/[^/]+\/logs/.test(a.path)) return t('analyzer.action.agentlogs');
  if (/^\/agents\/[^/]+\/versions/.test(a.path)) return t('analyzer.action.versions');
  if (/^\/agents\/[^/]+$/.test(a.path)) return t('analyzer.action.agenthealth');
  return a.label;
}

// A rule's title in the page's language (the server's English for a rule
// this build does not know); a step's tool is "server__tool".
export function ruleTitle(s: { rule: string; title: string }, server?: string, tool?: string, agent?: string): string {
  const rule = RULES[s.rule];
  if (!rule) return s.title;
  const [sv, tl] = !server && tool?.includes('__') ? [tool.slice(0, tool.indexOf('__')), tool.slice(tool.indexOf('__') + 2)] : [server, tool];
  return t(rule[0], { server: sv || '', tool: tl || '', agent: agent || '' });
}

export function Suggestion({ s, server, tool, agent, onPreview }: {
  s: SuggestionData; server?: string; tool?: string; agent?: string; onPreview: (p: Preview) => void;
}) {
  const rule = RULES[s.rule];
  return (
    <section class="suggestion" data-testid="suggestion" data-rule={s.rule}>
      <h4><span class="muted">{t('analyzer.suggestion')}</span> {ruleTitle(s, server, tool, agent)}</h4>
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
  const label = actionText(a);
  if (a.method === 'PATCH' && a.field === 'timeout_ms') return <RaiseTimeout a={a} label={label} />;
  const go = () => {
    const [path, query] = a.path.split('?');
    let m;
    if ((m = path.match(/^\/api\/traces\/([0-9a-f]{32})$/))) onPreview({ kind: 'trace', trace: m[1] });
    else if ((m = path.match(/^\/api\/episodes\/([0-9a-f]{32})$/))) navigate(`/projects?trace=${m[1]}`);
    else if (path.startsWith('/mcp/registry/')) navigate('/integrations');
    else if (path === '/api/logs') {
      const tr = new URLSearchParams(query || '').get('trace_id');
      navigate(`/telemetry?tab=logs${tr ? `&logs_trace=${tr}` : ''}`);
    }
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
