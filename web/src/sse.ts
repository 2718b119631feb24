// sse.ts - server-sent-event streams of aosd other than the value events
// (events.ts has those): in cookie mode an EventSource (the session cookie
// goes along), in bearer mode fetch() reading the body, since EventSource
// cannot send an Authorization header.
//   openSse    opened once (the Monitor's live log tail, GET
//              /api/logs/stream); when it drops, onState('closed') tells
//              the caller, which opens a new one from where it was (the
//              log stream's after_id), so that what the caller saw decides
//              where to resume.
//   followSse  opened again a second after it ends or drops (an agent's
//              log tail); the caller drops what it has seen, by id; only
//              the named events are handed on.
//   readFrames the frames of a fetch()ed event-stream body, for all three.
import { authHeaders, mode } from './api';

export type SseState = 'connecting' | 'live' | 'closed';
export type SseFrame = { id?: string; event?: string; data: string };

/* Opens path; returns a function that closes it (no 'closed' after that). */
export function openSse(path: string, onFrame: (f: SseFrame) => void, onState: (s: SseState) => void): () => void {
  let stopped = false;
  onState('connecting');
  if (mode() === 'cookie') {
    const es = new EventSource(path, { withCredentials: true });
    es.onopen = () => { if (!stopped) onState('live'); };
    const on = (ev: MessageEvent) => { if (!stopped) onFrame({ id: ev.lastEventId, event: ev.type, data: ev.data }); };
    es.onmessage = on;
    es.addEventListener('log', on as EventListener);
    es.addEventListener('end', (ev) => { on(ev as MessageEvent); es.close(); if (!stopped) onState('closed'); });
    // the browser would reconnect by itself; the caller decides instead
    es.onerror = () => { es.close(); if (!stopped) onState('closed'); };
    return () => { stopped = true; es.close(); };
  }
  const ac = new AbortController();
  (async () => {
    try {
      const r = await fetch(path, { headers: { Accept: 'text/event-stream', ...authHeaders() }, signal: ac.signal, cache: 'no-store' });
      if (!r.ok || !r.body) throw new Error(String(r.status));
      onState('live');
      for await (const f of readFrames(r.body)) if (!stopped) onFrame(f);
    } catch { /* dropped, refused or stopped */ }
    if (!stopped) onState('closed');
  })();
  return () => { stopped = true; ac.abort(); };
}

export type FollowState = 'connecting' | 'live' | 'reconnecting';

/* Follows path: events named in events go to onFrame; returns a function
 * that stops it for good. */
export function followSse(path: string, events: string[], onFrame: (f: SseFrame & { event: string }) => void, onState: (s: FollowState) => void): () => void {
  let stopped = false;
  let es: EventSource | null = null;
  let ac: AbortController | null = null;
  let timer: number | undefined;
  const retry = () => {
    if (stopped) return;
    onState('reconnecting');
    timer = window.setTimeout(connect, 1000);
  };
  const viaEventSource = () => {
    const s = new EventSource(path, { withCredentials: true });
    es = s;
    s.onopen = () => onState('live');
    for (const name of events) s.addEventListener(name, (ev) => onFrame({ id: (ev as MessageEvent).lastEventId || undefined, event: name, data: (ev as MessageEvent).data }));
    s.addEventListener('end', () => { s.close(); retry(); });
    s.onerror = () => { s.close(); retry(); };
  };
  const viaFetch = async () => {
    const c = new AbortController();
    ac = c;
    try {
      const r = await fetch(path, { headers: { Accept: 'text/event-stream', ...authHeaders() }, signal: c.signal, cache: 'no-store' });
      if (!r.ok || !r.body) throw new Error(String(r.status));
      onState('live');
      for await (const f of readFrames(r.body)) {
        const event = f.event || 'message';
        if (f.data && events.includes(event)) onFrame({ id: f.id, event, data: f.data });
      }
    } catch {
      if (stopped) return;
    }
    retry();
  };
  const connect = () => {
    if (stopped) return;
    onState('connecting');
    if (mode() === 'cookie') viaEventSource();
    else viaFetch();
  };
  connect();
  return () => { stopped = true; clearTimeout(timer); es?.close(); ac?.abort(); };
}

/* The frames of an event-stream body (the WHATWG parsing of id, event and
 * data lines; comments skipped; a frame without data is no event), until
 * the body ends; a dropped connection throws. Also events.ts's reader. */
export async function* readFrames(body: NonNullable<Response['body']>): AsyncGenerator<SseFrame> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let k;
    while ((k = buf.search(/\r?\n\r?\n/)) >= 0) {
      const frame = buf.slice(0, k);
      buf = buf.slice(k).replace(/^\r?\n\r?\n/, '');
      const f: SseFrame = { data: '' };
      let has = false;
      for (const line of frame.split(/\r?\n/)) {
        if (line.startsWith(':')) continue;
        const c = line.indexOf(':');
        const name = c < 0 ? line : line.slice(0, c);
        const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
        if (name === 'id') f.id = v;
        else if (name === 'event') f.event = v;
        else if (name === 'data') { f.data += (has ? '\n' : '') + v; has = true; }
      }
      if (has) yield f;
    }
  }
}
