// topology.tsx - the topology of the range (Monitor, M3): GET
// /api/topology's nodes in columns by kind (clients - who called: a
// token, a user, anonymous -, then services, agents, MCP servers and
// models, then tools) and its edges as curves labelled
// with their calls and errors, an edge with errors in the error colour
// (a kind with no node takes no column),
// all in one SVG that scales to the page's width. The same edges as a
// table below it: their numbers (p50/p95/p99 too) for a screen reader,
// a test, or a phone where the drawing is small.
import { useEffect, useState } from 'preact/hooks';
import { t, Key } from '../i18n';
import { api } from '../api';
import { Err, Scroll } from '../ui';
import { window_, Range } from './timerange';

type Node = { id: string; type: string; name: string };
type Edge = { source: string; target: string; calls: number; errors: number; error_rate: number; p50_ms: number; p95_ms: number; p99_ms: number };
type Topo = { nodes: Node[]; edges: Edge[]; spans: number; truncated: boolean };

const COLUMN: Record<string, number> = { client: 0, service: 1, agent: 2, mcp_server: 3, model: 3, tool: 4 };
const TYPE: Record<string, Key> = {
  client: 'monitor.topo.client', service: 'monitor.topo.service', agent: 'monitor.topo.agent', mcp_server: 'monitor.topo.mcpserver',
  model: 'monitor.topo.model', tool: 'monitor.topo.tool',
};
const COL_W = 330, NODE_W = 180, NODE_H = 34, GAP = 14, PAD = 20;

const short = (s: string, n = 24) => s.length > n ? s.slice(0, n - 1) + '…' : s;

export function Topology({ range }: { range: Range }) {
  const [topo, setTopo] = useState<Topo | null>(null);
  const [err, setErr] = useState('');
  const load = () => {
    const { from, to } = window_(range);
    api('GET', `/api/topology?from=${from}&to=${to + 60}`).then((r) => { setTopo(r); setErr(''); }).catch((e) => setErr(e.message));
  };
  useEffect(load, [range]);
  if (!topo) return <section class="panel"><Err msg={err} />{!err && <p>{t('common.loading')}</p>}</section>;
  const all: Node[][] = [[], [], [], [], []];
  for (const n of topo.nodes) all[COLUMN[n.type] ?? 4].push(n);
  const cols = all.filter((c) => c.length); // no gap for a kind the range lacks
  for (const c of cols) c.sort((a, b) => a.type.localeCompare(b.type) || a.name.localeCompare(b.name));
  const pos = new Map<string, { x: number; y: number }>();
  cols.forEach((c, i) => c.forEach((n, j) => pos.set(n.id, { x: PAD + i * COL_W, y: PAD + j * (NODE_H + GAP) })));
  const h = PAD * 2 + Math.max(1, ...cols.map((c) => c.length)) * (NODE_H + GAP);
  const W = PAD * 2 + Math.max(1, cols.length) * COL_W - (COL_W - NODE_W);
  const name = (id: string) => topo.nodes.find((n) => n.id === id)?.name || id;
  return (
    <section class="panel" aria-labelledby="topo-h">
      <header class="row"><h2 id="topo-h">{t('monitor.topo.title')}</h2><span class="spacer" />
        <button type="button" onClick={load}>{t('common.refresh')}</button></header>
      <p class="small muted">{t('monitor.topo.summary', { nodes: topo.nodes.length, edges: topo.edges.length, spans: topo.spans })}
        {topo.truncated && <span class="warn"> {t('monitor.topo.truncated')}</span>}</p>
      <Err msg={err} />
      {!topo.nodes.length ? <p class="muted" data-testid="topo-none">{t('monitor.topo.none')}</p> : <>
        <svg class="topo" viewBox={`0 0 ${W} ${h}`} style={`max-width: ${W}px`} role="img" aria-labelledby="topo-h" data-testid="topology" preserveAspectRatio="xMinYMin meet">
          <defs><marker id="topo-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="topo-arrow" /></marker></defs>
          {topo.edges.map((e) => {
            const a = pos.get(e.source), b = pos.get(e.target);
            if (!a || !b) return null;
            const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
            const back = x2 <= x1; // same column or backwards: loop round
            const d = back ? `M${x1},${y1} C${x1 + 50},${y1} ${x2 + NODE_W + 50},${y2} ${x2 + NODE_W},${y2}`
              : `M${x1},${y1} C${(x1 + x2) / 2},${y1} ${(x1 + x2) / 2},${y2} ${x2},${y2}`;
            const mx = back ? Math.max(x1, x2 + NODE_W) + 30 : (x1 + x2) / 2, my = (y1 + y2) / 2 - 3;
            return (
              <g key={`${e.source}>${e.target}`} class={`topo-edge ${e.errors ? 'topo-bad' : ''}`} data-source={e.source} data-target={e.target}>
                <path d={d} marker-end="url(#topo-arrow)" />
                <text x={mx} y={my} text-anchor="middle">{e.errors ? t('monitor.topo.label.err', { calls: e.calls, errors: e.errors }) : t('monitor.topo.label', { calls: e.calls })}</text>
              </g>
            );
          })}
          {topo.nodes.map((n) => {
            const p = pos.get(n.id)!;
            return (
              <g key={n.id} class={`topo-node topo-${n.type}`} data-node={n.id} data-type={n.type}>
                <title>{`${t(TYPE[n.type] || 'monitor.topo.tool')}: ${n.name}`}</title>
                <rect x={p.x} y={p.y} width={NODE_W} height={NODE_H} rx="6" />
                <text x={p.x + 8} y={p.y + 14} class="topo-type">{t(TYPE[n.type] || 'monitor.topo.tool')}</text>
                <text x={p.x + 8} y={p.y + 28}>{short(n.name)}</text>
              </g>
            );
          })}
        </svg>
        <h3>{t('monitor.topo.edges')}</h3>
        <Scroll label={t('monitor.topo.edges')}>
          <table class="small" data-testid="topo-edges">
            <thead><tr><th>{t('monitor.topo.from')}</th><th>{t('monitor.topo.to')}</th><th>{t('monitor.topo.calls')}</th><th>{t('monitor.topo.errors')}</th><th>p50</th><th>p95</th><th>p99</th></tr></thead>
            <tbody>
              {topo.edges.map((e) => (
                <tr key={`${e.source}>${e.target}`} data-source={e.source} data-target={e.target} data-calls={e.calls} data-errors={e.errors}>
                  <td class="mono">{name(e.source)}</td><td class="mono">{name(e.target)}</td><td>{e.calls}</td>
                  <td class={e.errors ? 'error' : ''}>{e.errors}{e.errors ? ` (${(e.error_rate * 100).toFixed(1)} %)` : ''}</td>
                  <td>{e.p50_ms.toFixed(1)} ms</td><td>{e.p95_ms.toFixed(1)} ms</td><td>{e.p99_ms.toFixed(1)} ms</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Scroll>
      </>}
    </section>
  );
}
