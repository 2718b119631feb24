// workspace.tsx - the Chat Hub's workspace panel (CH2): an artifact of a
// task (GET /api/episodes/:trace/artifacts/:name) previewed by its type -
// CSV as a table, PNG/JPEG/SVG as an image, JSON pretty-printed, other
// text as it is - or a task's trace (GET /api/traces/:trace) as an
// indented span list with durations, loaded only when asked for.
// Fetched with the session's credentials; an image is shown from a blob:
// URL, so an SVG's scripts never run.
import { useEffect, useState } from 'preact/hooks';
import { t } from '../i18n';
import { authHeaders, api } from '../api';

export type Preview =
  | { kind: 'artifact'; trace: string; name: string; type?: string; url?: string }
  | { kind: 'trace'; trace: string };

const ROWS = 200;

/* RFC 4180: quoted fields, doubled quotes, CRLF or LF. */
export function parseCsv(text: string, max = ROWS + 1): string[][] {
  const rows: string[][] = [];
  let row: string[] = [], f = '', q = false;
  for (let i = 0; i < text.length && rows.length < max; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') { f += '"'; i++; }
      else if (c === '"') q = false;
      else f += c;
    } else if (c === '"') q = true;
    else if (c === ',') { row.push(f); f = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(f); rows.push(row); row = []; f = '';
    } else f += c;
  }
  if ((f || row.length) && rows.length < max) { row.push(f); rows.push(row); }
  return rows;
}

type Loaded =
  | { kind: 'csv'; rows: string[][] } | { kind: 'image'; url: string } | { kind: 'text'; text: string }
  | { kind: 'trace'; spans: { depth: number; name: string; ms: number; start: number; ok: boolean }[]; total: number };

function flatten(spans: any[], depth = 0, out: any[] = []) {
  for (const s of spans || []) {
    out.push({ depth, name: s.name, ms: s.duration_ms || 0, start: Date.parse(s.start_time) || 0, ok: s.status?.code !== 'ERROR' });
    flatten(s.children, depth + 1, out);
  }
  return out;
}

export function Workspace({ preview, onClose }: { preview: Preview | null; onClose: () => void }) {
  const [data, setData] = useState<Loaded | null>(null);
  const [err, setErr] = useState('');
  useEffect(() => {
    setData(null);
    setErr('');
    if (!preview) return;
    let url = '';
    const load = async () => {
      if (preview.kind === 'trace') {
        const r = await api('GET', `/api/traces/${preview.trace}`);
        const spans = flatten(r.spans);
        const t0 = Math.min(...spans.map((s) => s.start));
        const total = Math.max(1, ...spans.map((s) => s.start - t0 + s.ms));
        setData({ kind: 'trace', spans: spans.map((s) => ({ ...s, start: s.start - t0 })), total });
        return;
      }
      const path = `/api/episodes/${preview.trace}/artifacts/${encodeURIComponent(preview.name)}`;
      const r = await fetch(path, { headers: authHeaders(), credentials: 'same-origin' });
      if (!r.ok) throw new Error(`${r.status}`);
      const type = preview.type || r.headers.get('content-type') || '';
      const name = preview.name.toLowerCase();
      if (/^image\/(png|jpeg|svg\+xml|gif|webp)/.test(type) || /\.(png|jpe?g|svg|gif|webp)$/.test(name)) {
        const blob = await r.blob();
        const typed = name.endsWith('.svg') ? new Blob([blob], { type: 'image/svg+xml' }) : blob;
        url = URL.createObjectURL(typed);
        setData({ kind: 'image', url });
      } else if (type.includes('csv') || name.endsWith('.csv')) {
        setData({ kind: 'csv', rows: parseCsv(await r.text()) });
      } else {
        let text = await r.text();
        if (type.includes('json') || name.endsWith('.json')) {
          try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* shown as it is */ }
        }
        setData({ kind: 'text', text: text.slice(0, 200000) });
      }
    };
    load().catch((e) => setErr(e.message));
    return () => { if (url) URL.revokeObjectURL(url); };
  }, [preview]);

  return (
    <aside class="workspace panel" aria-label={t('chat.workspace')} data-testid="workspace">
      <header class="row">
        <h2>{t('chat.workspace')}</h2>
        <span class="spacer" />
        {preview && <button type="button" onClick={onClose}>{t('common.close')}</button>}
      </header>
      {!preview && <p class="muted">{t('chat.workspace.empty')}</p>}
      {preview && <h3 class="mono small">{preview.kind === 'trace' ? `${t('card.trace')} ${preview.trace}` : preview.name}</h3>}
      {preview && !data && !err && <p>{t('common.loading')}</p>}
      {err && <p class="error" role="alert">{t('common.error', { message: err })}</p>}
      {data?.kind === 'csv' && (
        <div class="scroll">
          <table class="csv" data-testid="csv-table">
            <thead><tr>{(data.rows[0] || []).map((h, i) => <th key={i}>{h}</th>)}</tr></thead>
            <tbody>{data.rows.slice(1, ROWS + 1).map((r, i) => <tr key={i}>{r.map((c, j) => <td key={j}>{c}</td>)}</tr>)}</tbody>
          </table>
          {data.rows.length > ROWS && <p class="muted small">{t('chat.workspace.toolarge', { n: ROWS })}</p>}
        </div>
      )}
      {data?.kind === 'image' && <img src={data.url} alt={preview?.kind === 'artifact' ? preview.name : ''} class="artifact-img" />}
      {data?.kind === 'text' && <pre class="scroll">{data.text}</pre>}
      {data?.kind === 'trace' && (
        <ul class="spans" data-testid="spans">
          {data.spans.map((s, i) => (
            <li key={i} style={{ paddingLeft: `${s.depth}rem` }}>
              <span class={s.ok ? '' : 'error'}>{s.name}</span>
              <span class="muted small"> {s.ms.toFixed(1)} ms</span>
              <div class="bar"><i style={{ marginLeft: `${(100 * s.start) / data.total}%`, width: `${Math.max(0.5, (100 * s.ms) / data.total)}%` }} /></div>
            </li>
          ))}
        </ul>
      )}
    </aside>
  );
}
