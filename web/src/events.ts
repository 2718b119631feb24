// events.ts - the value-event stream of the Chat Hub: GET /agent/events
// (SSE). In bearer mode by fetch() with a ReadableStream, since EventSource
// cannot send an Authorization header; in cookie mode by EventSource. Both
// resume after a drop from the last event id seen (Last-Event-ID), so the
// server replays what was missed; the caller drops an id it has already
// seen, so a replay never duplicates a card. Reconnects back off from 0.5 s
// to 10 s. state() is what the shell shows: connecting, live, reconnecting.
import { authHeaders, mode } from './api';
import { readFrames } from './sse';

export type ConnState = 'connecting' | 'live' | 'reconnecting' | 'offline';
export type Envelope = {
  id: number; trace_id?: string; topic?: string; type: string; severity?: string;
  payload: any; created_at?: string; card_id?: string; card_version?: number;
};

type Listener = { onEvent: (e: Envelope) => void; onState: (s: ConnState) => void };

export class EventStream {
  private last = 0;
  private stopped = false;
  private abort: AbortController | null = null;
  private es: EventSource | null = null;
  private backoff = 500;
  private timer: number | undefined;
  state: ConnState = 'connecting';

  constructor(private l: Listener, after = 0) {
    this.last = after;
    this.connect();
  }

  lastId() { return this.last; }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort?.abort();
    this.es?.close();
    this.set('offline');
  }

  private set(s: ConnState) {
    if (this.state !== s) { this.state = s; this.l.onState(s); }
  }

  private deliver(id: string | undefined, type: string | undefined, data: string) {
    if (type === 'overflow') return; // the stream ends; resume from our last id
    let e: Envelope;
    try { e = JSON.parse(data); } catch { return; }
    const n = Number(id ?? e.id);
    if (n && n <= this.last) return;
    if (n) this.last = n;
    this.backoff = 500;
    this.l.onEvent(e);
  }

  private retry() {
    if (this.stopped) return;
    this.set('reconnecting');
    this.timer = window.setTimeout(() => this.connect(), this.backoff);
    this.backoff = Math.min(this.backoff * 2, 10000);
  }

  private url() { return '/agent/events' + (this.last ? `?after=${this.last}` : ''); }

  private connect() {
    if (this.stopped) return;
    if (mode() === 'cookie') return this.connectEventSource();
    this.connectFetch();
  }

  private connectEventSource() {
    this.es?.close();
    const es = new EventSource(this.url(), { withCredentials: true });
    this.es = es;
    es.onopen = () => this.set('live');
    const on = (ev: MessageEvent) => this.deliver(ev.lastEventId, ev.type, ev.data);
    es.onmessage = on;
    es.addEventListener('overflow', () => { es.close(); this.retry(); });
    es.onerror = () => { es.close(); this.retry(); };
  }

  private async connectFetch() {
    const ac = new AbortController();
    this.abort = ac;
    const headers: Record<string, string> = { Accept: 'text/event-stream', ...authHeaders() };
    if (this.last) headers['Last-Event-ID'] = String(this.last);
    try {
      const r = await fetch('/agent/events', { headers, signal: ac.signal, cache: 'no-store' });
      if (!r.ok || !r.body) throw new Error(String(r.status));
      this.set('live');
      for await (const f of readFrames(r.body)) if (f.data) this.deliver(f.id, f.event, f.data);
    } catch {
      if (ac.signal.aborted && this.stopped) return;
    }
    this.retry();
  }
}
