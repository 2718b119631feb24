// feed.ts - the value-event feed of the signed-in UI, one for the whole
// app, so the connection state shows on every page and the Chat Hub's
// cards stay while another page is open. It loads the newest page of
// /agent/events/history, then follows /agent/events from there
// (events.ts); "see more" pages older events in.
//
// Cards: one per card_id (a task, its progress, each approval). An event
// whose id was seen is dropped, and a card keeps only its newest version,
// so a replay after a reconnect never shows a card twice; the number of
// versions folded into a card is counted on it. An approval.decided event
// marks its request's card decided (by whoever, wherever) instead of
// replacing it.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api';
import { EventStream, Envelope, ConnState } from './events';

export type Card = { id: string; first: number; ev: Envelope; updates: number };

const PAGE = 50;

class Feed {
  cards = new Map<string, Card>();
  older: number | null | undefined = undefined; // undefined: not loaded yet
  conn: ConnState = 'offline';
  error = '';
  decided: Record<string, string> = {}; // approvals decided here: card id -> decision
  private seen = new Set<number>();
  private stream: EventStream | null = null;
  private listeners = new Set<() => void>();
  private gen = 0;

  private notify() { for (const l of this.listeners) l(); }

  subscribe(fn: () => void) {
    this.listeners.add(fn);
    return () => { this.listeners.delete(fn); };
  }

  add(evs: Envelope[]) {
    const next = new Map(this.cards);
    for (const e of evs) {
      if (this.seen.has(e.id)) continue;
      this.seen.add(e.id);
      const key = e.card_id || `event:${e.id}`;
      const c = next.get(key);
      // a decision folds into its request's card (it may come first when
      // older pages load later): the card keeps the question, shows the answer
      if (e.type === 'approval.decided' && e.card_id) {
        this.decided = { ...this.decided, [key]: e.payload?.decision || '-' };
        if (c) next.set(key, { ...c, updates: c.updates + 1 });
        continue;
      }
      if (!c) next.set(key, { id: key, first: e.id, ev: e, updates: 1 });
      else {
        const newer = (e.card_version ?? e.id) >= (c.ev.card_version ?? c.ev.id);
        next.set(key, { ...c, first: Math.min(c.first, e.id), ev: newer ? e : c.ev, updates: c.updates + 1 });
      }
    }
    this.cards = next;
    this.notify();
  }

  start() {
    if (this.stream || this.conn === 'connecting') return;
    const gen = ++this.gen;
    this.conn = 'connecting';
    this.notify();
    api('GET', `/agent/events/history?limit=${PAGE}`).then((r) => {
      if (gen !== this.gen) return;
      const evs: Envelope[] = r.events;
      this.older = r.next_before;
      this.add(evs);
      const last = evs.reduce((m, e) => Math.max(m, e.id), 0);
      this.stream = new EventStream({
        onEvent: (e) => this.add([e]),
        onState: (s) => { this.conn = s; this.notify(); },
      }, last);
    }).catch((e) => {
      if (gen !== this.gen) return;
      this.error = e.message;
      this.conn = 'offline';
      this.notify();
    });
  }

  stop() {
    this.gen++;
    this.stream?.stop();
    this.stream = null;
    this.cards = new Map();
    this.seen = new Set();
    this.older = undefined;
    this.decided = {};
    this.conn = 'offline';
    this.notify();
  }

  seeMore() {
    if (!this.older) return;
    api('GET', `/agent/events/history?before=${this.older}&limit=${PAGE}`).then((r) => {
      this.older = r.next_before;
      this.add(r.events);
    }).catch((e) => { this.error = e.message; this.notify(); });
  }

  decide(card: string, decision: string) {
    this.decided = { ...this.decided, [card]: decision };
    this.notify();
  }
}

export const feed = new Feed();

/* Re-renders the calling component on every change of the feed. */
export function useFeed() {
  const [, tick] = useState(0);
  useEffect(() => feed.subscribe(() => tick((n) => n + 1)), []);
  return feed;
}

/* Calls fn shortly after the feed changes (a task accepted, progressing,
 * waiting or finished; an agent's recovery), at most every 300 ms: a page
 * follows the value events, its timers are only a fallback. */
export function useOnFeed(fn: () => void) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    let h: ReturnType<typeof setTimeout> | null = null;
    const off = feed.subscribe(() => {
      if (!h) h = setTimeout(() => { h = null; ref.current(); }, 300);
    });
    return () => { off(); if (h) clearTimeout(h); };
  }, []);
}
