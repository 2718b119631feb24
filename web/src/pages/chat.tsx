// chat.tsx - the Chat Hub (SPEC §2 CH1-CH3): conversations and their
// messages, the composer (a message, Action DSL, files: the multipart
// POST /api/chat/send), the value-event cards live over /agent/events with
// "see more" paging of older ones (/agent/events/history), and the
// workspace panel previewing an artifact or a trace; a receipt opens its
// run in Projects. The cards come from
// the app's feed (feed.ts).
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { t, Key, lang } from '../i18n';
import { api } from '../api';
import { useFeed, feed, Card } from '../feed';
import { Workspace, Preview } from './workspace';
import { Suggestion } from './suggestion';
import { can } from '../perm';
import { NoAccess, statusText } from '../ui';
import { navigate } from '../router';

type Conversation = { id: string; title: string | null; messages: number; updated_at?: string };
type Message = { id: number; role: string; content: string; dsl: string | null; trace_id: string | null; created_at: string };

export function ChatHub() {
  return can('read', 'system') ? <ChatHubPage /> : <NoAccess title={t('nav.chat')} />;
}

function ChatHubPage() {
  const [convs, setConvs] = useState<Conversation[] | null>(null);
  const [conv, setConv] = useState<string | null>(null);
  const [msgs, setMsgs] = useState<Message[]>([]);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [err, setErr] = useState('');
  const bottom = useRef<HTMLDivElement>(null);
  const { cards, older, decided } = useFeed();
  // only the newest cards are rendered; "see more" shows older ones kept
  // here first, then pages in more from the server
  const [limit, setLimit] = useState(SHOWN);

  const loadConvs = () => api('GET', '/api/chat/conversations').then((r) => setConvs(r.conversations)).catch((e) => setErr(e.message));
  useEffect(() => { loadConvs(); }, []);

  useEffect(() => {
    if (!conv) { setMsgs([]); return; }
    api('GET', `/api/chat/conversations/${conv}`).then((r) => setMsgs(r.messages)).catch((e) => setErr(e.message));
  }, [conv]);

  const sent = (r: any) => {
    setConv(r.conversation_id);
    if (Array.isArray(r.events)) feed.add(r.events);
    api('GET', `/api/chat/conversations/${r.conversation_id}`).then((x) => setMsgs(x.messages)).catch(() => {});
    loadConvs();
  };

  const sorted = useMemo(() => [...cards.values()].sort((a, b) => a.first - b.first), [cards]);
  const hidden = Math.max(0, sorted.length - limit);
  const visible = hidden ? sorted.slice(hidden) : sorted;
  const more = () => {
    if (!hidden) feed.seeMore();
    setLimit(limit + SHOWN);
  };
  useEffect(() => { bottom.current?.scrollIntoView?.({ block: 'nearest' }); }, [sorted[sorted.length - 1]?.id, msgs.length]);

  return (
    <div class="chat">
      <aside class="convs panel" aria-label={t('chat.conversations')}>
        <h2>{t('chat.conversations')}</h2>
        <button type="button" onClick={() => setConv(null)} data-testid="new-conv">{t('chat.new')}</button>
        {convs === null ? <p>{t('common.loading')}</p> : convs.length === 0 ? <p class="muted">{t('common.none')}</p> : (
          <ul>
            {convs.map((c) => (
              <li key={c.id}>
                <button type="button" class={`link ${c.id === conv ? 'active' : ''}`} aria-current={c.id === conv ? 'true' : undefined}
                  onClick={() => setConv(c.id)}>
                  <span>{c.title || t('chat.untitled')}</span>
                  <small class="muted">{t('chat.messages', { n: c.messages })}</small>
                </button>
              </li>
            ))}
          </ul>
        )}
      </aside>
      <section class="stream panel" aria-label={t('chat.events')}>
        {(err || feed.error) && <p class="error" role="alert">{t('common.error', { message: err || feed.error })}</p>}
        <div class="msgs" data-testid="messages" tabIndex={0} role="log" aria-label={t('chat.msgs')}>
          {msgs.length === 0 && <p class="muted">{t('chat.empty')}</p>}
          {msgs.map((m) => (
            <div key={m.id} class={`msg msg-${m.role}`}>
              <div class="who">{m.role === 'user' ? t('chat.you') : t('chat.assistant')}</div>
              <div class="text">{m.content}</div>
              {m.dsl && <pre class="dsl">{m.dsl}</pre>}
              {m.trace_id && <div class="muted small">{t('chat.task', { trace: m.trace_id.slice(0, 8) })}</div>}
            </div>
          ))}
        </div>
        <h2 class="events-title">{t('chat.events')}</h2>
        <div class="cards" data-testid="cards" aria-live="polite">
          {older || hidden ? <button type="button" onClick={more} data-testid="see-more">{t('chat.seemore')}</button>
            : older === null && sorted.length > 0 ? <p class="muted small">{t('chat.nomore')}</p> : null}
          {visible.map((c) => (
            <CardView key={c.id} card={c} decided={decided} allCards={cards}
              onDecided={(k, d) => feed.decide(k, d)} onPreview={setPreview} />
          ))}
          <div ref={bottom} />
        </div>
        <Composer conversation={conv} onSent={sent} />
      </section>
      <Workspace preview={preview} onClose={() => setPreview(null)} />
    </div>
  );
}

function Composer({ conversation, onSent }: { conversation: string | null; onSent: (r: any) => void }) {
  const [mode, setMode] = useState<'text' | 'dsl'>('text');
  const [text, setText] = useState('');
  const [files, setFiles] = useState<File[]>([]);
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState('');
  const fileRef = useRef<HTMLInputElement>(null);

  const send = async (e: Event) => {
    e.preventDefault();
    if (!text.trim() && files.length === 0) return;
    setBusy(true);
    setErr('');
    try {
      const f = new FormData();
      if (mode === 'dsl') { f.append('dsl', text); f.append('message', text.split('\n')[0].slice(0, 200)); }
      else f.append('message', text);
      if (conversation) f.append('conversation_id', conversation);
      for (const x of files) f.append('file', x, x.name);
      const r = await api('POST', '/api/chat/send', f);
      setText('');
      setFiles([]);
      if (fileRef.current) fileRef.current.value = '';
      onSent(r);
    } catch (x: any) {
      setErr(x.message);
    }
    setBusy(false);
  };

  return (
    <form class="composer" onSubmit={send} aria-label={t('chat.composer')}>
      <div class="tabs" role="radiogroup" aria-label={t('chat.composer')}>
        {(['text', 'dsl'] as const).map((m) => (
          <label key={m} class={mode === m ? 'on' : ''}>
            <input type="radio" name="mode" value={m} checked={mode === m} onChange={() => setMode(m)} data-testid={`mode-${m}`} />
            {t(m === 'text' ? 'chat.mode.text' : 'chat.mode.dsl')}
          </label>
        ))}
      </div>
      <label class="sr-only" for="composer-text">{t('chat.composer')}</label>
      <textarea id="composer-text" data-testid="composer" rows={mode === 'dsl' ? 6 : 3} value={text}
        class={mode === 'dsl' ? 'mono' : ''}
        placeholder={t(mode === 'dsl' ? 'chat.placeholder.dsl' : 'chat.placeholder.text')}
        onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
        onKeyDown={(e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) send(e); }} />
      <div class="row">
        <label class="file">
          {t('chat.attach')}
          <input ref={fileRef} type="file" multiple data-testid="attach"
            onChange={(e) => setFiles([...((e.target as HTMLInputElement).files || [])])} />
        </label>
        {files.length > 0 && <span class="muted small">{t('chat.attached', { n: files.length })}</span>}
        <span class="spacer" />
        <button type="submit" class="primary" disabled={busy || !can('operate')} title={can('operate') ? undefined : t('perm.operate')} data-testid="send">{busy ? t('chat.sending') : t('chat.send')}</button>
      </div>
      {err && <p class="error" role="alert">{t('common.error', { message: err })}</p>}
    </form>
  );
}

const SHOWN = 100; // cards rendered at first, and added by each "see more"

const TITLE: Record<string, Key> = {
  'task.acceptance': 'card.acceptance',
  'task.progress.milestone': 'card.milestone',
  'approval.request': 'card.approval',
  'anomaly.detected': 'card.anomaly',
  'recovery.start': 'card.recovery.start',
  'recovery.done': 'card.recovery.done',
  'task.receipt': 'card.receipt',
  'agent.status': 'card.agent.status',
};

const STATUS: Record<string, Key> = {
  done: 'status.done', failed: 'status.failed', cancelled: 'status.cancelled',
};

const DECISION: Record<string, Key> = {
  approve: 'card.decision.approve', continue: 'card.decision.continue',
  downgrade: 'card.decision.downgrade', abort: 'card.decision.abort',
};

function CardView({ card, decided, allCards, onDecided, onPreview }: {
  card: Card; decided: Record<string, string>; allCards: Map<string, Card>;
  onDecided: (k: string, d: string) => void; onPreview: (p: Preview) => void;
}) {
  const e = card.ev;
  const p = e.payload || {};
  const trace = e.trace_id;
  const title = TITLE[e.type] ? t(TITLE[e.type]) : t('card.other', { type: e.type });
  const finished = trace && allCards.get(`task:${trace}`)?.ev.type === 'task.receipt';
  return (
    <article class={`card card-${e.type.replace(/\./g, '-')} sev-${e.severity || 'info'}`} data-type={e.type} data-card={card.id}>
      <header>
        <strong>{title}</strong>
        {card.updates > 1 && <span class="badge">{t('card.updates', { n: card.updates })}</span>}
        <span class="spacer" />
        <time class="muted small" dateTime={e.created_at}>{e.created_at ? new Date(e.created_at).toLocaleTimeString(lang()) : ''}</time>
        {trace && (
          <button type="button" class="link small" data-testid="trace-link"
            onClick={() => onPreview({ kind: 'trace', trace })}>{t('card.trace')} {trace.slice(0, 8)}</button>
        )}
      </header>
      {e.type === 'task.acceptance' && <p>{p.title || p.goal} <span class="muted">({p.planner}, {p.steps})</span></p>}
      {e.type === 'task.progress.milestone' && (
        <div>
          <progress max={p.total || 1} value={p.done || 0} />
          <p>{t('card.progress', { done: p.done ?? 0, total: p.total ?? 0 })} · {t('card.step', { step: p.step })} {p.label ? `· ${p.label}` : ''}</p>
        </div>
      )}
      {e.type === 'approval.request' && (
        <Approval card={card} decided={decided[card.id] || (finished ? '-' : '')} onDecided={(d) => onDecided(card.id, d)} />
      )}
      {e.type === 'anomaly.detected' && <p class="error">{p.message || p.reason || p.kind || ''} {p.step ? `· ${t('card.step', { step: p.step })}` : ''}
        {p.error && <pre class="small">{typeof p.error === 'string' ? p.error : JSON.stringify(p.error, null, 1)}</pre>}</p>}
      {e.type === 'anomaly.detected' && p.suggestion && <Suggestion s={p.suggestion} server={p.server} tool={p.tool} agent={p.agent} onPreview={onPreview} />}
      {(e.type === 'recovery.start' || e.type === 'recovery.done') && p.step && <p>{t('card.step', { step: p.step })}</p>}
      {e.type === 'agent.status' && <p data-testid="agent-status-card"><span class={`status status-${p.status}`}>{t('card.agent.line', { agent: p.agent, status: statusText(p.status), previous: statusText(p.previous) })}</span></p>}
      {e.type === 'task.receipt' && (
        <div>
          <p>
            <span class={`status status-${p.status}`}>{t('card.receipt.status', { status: STATUS[p.status] ? t(STATUS[p.status]) : p.status })}</span>{' · '}
            {t('card.receipt.cost', { cost: Number(p.cost_cny || 0).toFixed(4) })}{' · '}
            {t('card.receipt.latency', { ms: p.latency_ms ?? 0 })}
          </p>
          <h4>{t('card.receipt.artifacts')}</h4>
          {(p.artifacts || []).length === 0 ? <p class="muted small">{t('card.receipt.noartifacts')}</p> : (
            <ul class="artifacts">
              {p.artifacts.map((a: any) => (
                <li key={a.name}>
                  <button type="button" class="link" data-testid="artifact"
                    onClick={() => onPreview({ kind: 'artifact', trace: trace!, name: a.name, type: a.type, url: a.url })}>{a.name}</button>
                  <span class="muted small"> {a.type} · {a.size} B</span>
                </li>
              ))}
            </ul>
          )}
          {trace && <p><button type="button" class="link small" data-testid="open-run" onClick={() => navigate(`/projects?trace=${trace}`)}>{t('card.openrun')}</button></p>}
        </div>
      )}
      {!TITLE[e.type] && <pre class="small">{JSON.stringify(p)}</pre>}
    </article>
  );
}

function Approval({ card, decided, onDecided }: { card: Card; decided: string; onDecided: (d: string) => void }) {
  const p = card.ev.payload || {};
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState('');
  const decide = async (d: string) => {
    setBusy(true);
    setErr('');
    try {
      const body: any = { trace_id: card.ev.trace_id, step_id: p.step, decision: d };
      if (comment) body.comment = comment;
      await api('POST', '/agent/approve', body);
      onDecided(d);
    } catch (x: any) {
      setErr(x.message);
    }
    setBusy(false);
  };
  return (
    <div>
      <p class="approval-msg">{p.message}</p>
      {p.deadline && <p class="muted small">{t('card.approval.deadline', { time: new Date(p.deadline).toLocaleString(lang()) })}</p>}
      {decided ? <p data-testid="decided">{t('card.approval.decided', { decision: decided === '-' ? '✓' : t(DECISION[decided] || 'card.decision.approve') })}</p> : (
        <div class="approval">
          <label>{t('card.approval.comment')}
            <input value={comment} onInput={(e) => setComment((e.target as HTMLInputElement).value)} data-testid="approval-comment" />
          </label>
          <div class="row">
            {(p.decisions || ['approve', 'continue', 'downgrade', 'abort']).map((d: string) => (
              <button key={d} type="button" disabled={busy || !can('operate')} title={can('operate') ? undefined : t('perm.operate')} class={d === 'abort' ? 'danger' : d === 'approve' ? 'primary' : ''}
                data-decision={d} onClick={() => decide(d)}>{DECISION[d] ? t(DECISION[d]) : d}</button>
            ))}
          </div>
          {err && <p class="error" role="alert">{t('common.error', { message: err })}</p>}
        </div>
      )}
    </div>
  );
}

