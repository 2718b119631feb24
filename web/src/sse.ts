// sse.ts - a server-sent event stream other than the value events
// (events.ts has those): GET path, its named events (e.g. a log tail's
// "log" and "end") handed to onFrame. In cookie mode by EventSource (the
// session cookie goes along); in bearer mode by fetch() with a
// ReadableStream, since EventSource cannot send an Authorization header.
// When the stream ends or drops it is opened again after a second (the
// caller drops what it has seen, by id); close() stops it for good.
import { authHeaders, mode } from './api';

export type SseState = 'connecting' | 'live' | 'reconnecting';
export type SseFrame = { id?: string; event: string; data: string };

export function openSse(path: string, events: string[], onFrame: (f: SseFrame) => void, onState: (s: SseState) => void): () => void {
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
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let k;
        while ((k = buf.search(/\r?\n\r?\n/)) >= 0) {
          const block = buf.slice(0, k);
          buf = buf.slice(k).replace(/^\r?\n\r?\n/, '');
          let id: string | undefined, event = 'message', data = '';
          for (const line of block.split(/\r?\n/)) {
            if (line.startsWith(':')) continue;
            const i = line.indexOf(':');
            const f = i < 0 ? line : line.slice(0, i);
            const v = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
            if (f === 'id') id = v;
            else if (f === 'event') event = v;
            else if (f === 'data') data += (data ? '\n' : '') + v;
          }
          if (data && events.includes(event)) onFrame({ id, event, data });
        }
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
