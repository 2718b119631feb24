// integrations.tsx - the Integrations page: G1 the MCP registry (GET
// /mcp/registry, refreshed every few seconds: G3 health, breaker, latency,
// errors live), adding a server (a stdio command or a URL: POST
// /mcp/registry; or an mcpServers JSON: POST /mcp/registry/import),
// deleting one, and each server's tools (MCP tools/list on
// /mcp/servers/:name) with a "try a tool" form generated from the tool's
// inputSchema that calls POST /mcp/call.
import { useEffect, useState } from 'preact/hooks';
import { t } from '../i18n';
import { api, authHeaders } from '../api';
import { can } from '../perm';
import { NoAccess, statusText } from '../ui';

const REFRESH_S = 5;

type Server = {
  name: string; transport: string; base_url?: string; command?: string; args?: string[]; url?: string;
  enabled: boolean; builtin?: boolean;
  health: { state: string; status: string; breaker: string; latency_ms?: number; last_error?: string | null; tools?: number; inflight?: number; queued?: number };
};
type Tool = { name: string; description?: string; inputSchema?: any };

/* One MCP session on /mcp/servers/:name: initialize, tools/list, end. */
function listTools(server: string): Promise<Tool[]> {
  return listToolsAt(`/mcp/servers/${encodeURIComponent(server)}`);
}

/* The same on any MCP endpoint; '/mcp' lists every server's tools as
 * server__tool (the Agents page's tool mapping). */
export async function listToolsAt(url: string): Promise<Tool[]> {
  let sid = '';
  let id = 0;
  const rpc = async (method: string, params?: any, notify = false) => {
    const h: Record<string, string> = { ...authHeaders('POST'), 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
    if (sid) { h['Mcp-Session-Id'] = sid; h['MCP-Protocol-Version'] = '2025-06-18'; }
    const body = notify ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', id: ++id, method, params };
    const r = await fetch(url, { method: 'POST', headers: h, body: JSON.stringify(body), credentials: 'same-origin' });
    if (!r.ok) throw new Error(`${method}: ${r.status}`);
    sid = r.headers.get('mcp-session-id') || sid;
    const text = await r.text();
    if (notify) return null;
    const ct = r.headers.get('content-type') || '';
    const msgs = ct.includes('event-stream')
      ? text.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => JSON.parse(l.slice(5)))
      : [JSON.parse(text)];
    const m = msgs.find((x) => x.id === id);
    if (!m) throw new Error(`${method}: no answer`);
    if (m.error) throw new Error(m.error.message);
    return m.result;
  };
  await rpc('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'aos-ui', version: '1' } });
  await rpc('notifications/initialized', undefined, true);
  const tools: Tool[] = [];
  let cursor: string | undefined;
  do {
    const r = await rpc('tools/list', cursor ? { cursor } : {});
    tools.push(...(r.tools || []));
    cursor = r.nextCursor;
  } while (cursor && tools.length < 1000);
  if (sid) await fetch(url, { method: 'DELETE', headers: { ...authHeaders('DELETE'), 'Mcp-Session-Id': sid }, credentials: 'same-origin' }).catch(() => {});
  return tools;
}

export function Integrations() {
  return can('read', 'system') ? <IntegrationsPage /> : <NoAccess title={t('nav.integrations')} />;
}

function IntegrationsPage() {
  const [servers, setServers] = useState<Server[] | null>(null);
  const [err, setErr] = useState('');
  const [open, setOpen] = useState<string | null>(null);

  const load = () => api('GET', '/mcp/registry').then((r) => { setServers(r.servers); setErr(''); }).catch((e) => setErr(e.message));
  useEffect(() => {
    load();
    const id = setInterval(() => { if (!document.hidden) load(); }, REFRESH_S * 1000);
    return () => clearInterval(id);
  }, []);

  const toggle = async (s: Server) => {
    try { await api('PATCH', `/mcp/registry/${encodeURIComponent(s.name)}`, { enabled: !s.enabled }); load(); }
    catch (e: any) { setErr(e.message); }
  };

  const del = async (name: string) => {
    if (!confirm(t('mcp.delete.confirm', { name }))) return;
    try { await api('DELETE', `/mcp/registry/${encodeURIComponent(name)}`); if (open === name) setOpen(null); load(); }
    catch (e: any) { setErr(e.message); }
  };

  return (
    <div class="integrations">
      <section class="panel">
        <header class="row">
          <h1>{t('mcp.title')}</h1>
          <span class="spacer" />
          <span class="muted small">{t('mcp.live', { s: REFRESH_S })}</span>
          <button type="button" onClick={load}>{t('common.refresh')}</button>
        </header>
        {err && <p class="error" role="alert">{t('common.error', { message: err })}</p>}
        {servers === null ? <p>{t('common.loading')}</p> : (
          <div class="scroll">
            <table class="servers" data-testid="servers">
              <thead>
                <tr>
                  <th>{t('mcp.name')}</th><th>{t('mcp.transport')}</th><th>{t('mcp.target')}</th><th>{t('mcp.state')}</th>
                  <th>{t('mcp.health')}</th><th>{t('mcp.breaker')}</th><th>{t('mcp.latency')}</th><th>{t('mcp.tools')}</th><th>{t('mcp.errors')}</th><th />
                </tr>
              </thead>
              <tbody>
                {servers.map((s) => (
                  <tr key={s.name} data-server={s.name} class={s.enabled ? '' : 'muted'}>
                    <td><button type="button" class="link" aria-expanded={open === s.name} onClick={() => setOpen(open === s.name ? null : s.name)}>{s.name}</button></td>
                    <td>{s.transport}</td>
                    <td class="mono small">{s.command ? [s.command.split('/').pop(), ...(s.args || [])].join(' ') : s.base_url}</td>
                    <td>{s.health?.state ? statusText(s.health.state) : ''}</td>
                    <td><span class={`status status-${s.health?.status}`} data-testid="health">{s.health?.status}</span></td>
                    <td><span class={`status breaker-${s.health?.breaker}`}>{s.health?.breaker}</span></td>
                    <td>{s.health?.latency_ms != null ? `${s.health.latency_ms.toFixed(1)} ms` : ''}</td>
                    <td>{s.health?.tools ?? ''}</td>
                    <td class="small error">{s.health?.last_error || ''}</td>
                    <td class="row">{!s.builtin && can('admin') && <>
                      <button type="button" onClick={() => toggle(s)} data-testid={`toggle-${s.name}`} aria-pressed={s.enabled}>{t(s.enabled ? 'mcp.disable' : 'mcp.enable')}</button>
                      <button type="button" class="danger" onClick={() => del(s.name)} data-testid={`delete-${s.name}`}>{t('common.delete')}</button>
                    </>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {open && <Tools key={open} server={open} />}
      {can('admin') ? <AddServer onAdded={load} /> : <p class="muted small" data-testid="no-admin">{t('perm.admin')}</p>}
    </div>
  );
}

function AddServer({ onAdded }: { onAdded: () => void }) {
  const [kind, setKind] = useState<'stdio' | 'http'>('stdio');
  const [err, setErr] = useState('');
  const [msg, setMsg] = useState('');
  const val = (f: HTMLFormElement, n: string) => (f.elements.namedItem(n) as HTMLInputElement).value;
  const add = async (e: Event) => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    setErr('');
    setMsg('');
    const body: any = { name: val(f, 'name').trim() };
    if (kind === 'stdio') {
      body.transport = 'stdio';
      body.command = val(f, 'command').trim();
      body.args = val(f, 'args').split('\n').map((x) => x.trim()).filter(Boolean);
    } else {
      body.transport = 'streamable-http';
      body.url = val(f, 'url').trim();
    }
    try { await api('POST', '/mcp/registry', body); f.reset(); onAdded(); }
    catch (x: any) { setErr(x.message); }
  };
  const imp = async (e: Event) => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    setErr('');
    setMsg('');
    let json;
    try { json = JSON.parse(val(f, 'json')); } catch (x: any) { setErr(t('mcp.try.badjson', { message: x.message })); return; }
    try {
      const r = await api('POST', '/mcp/registry/import', json);
      const n = Array.isArray(r?.servers) ? r.servers.length : Array.isArray(r?.imported) ? r.imported.length : Array.isArray(r) ? r.length : 0;
      setMsg(t('mcp.import.done', { n }));
      f.reset();
      onAdded();
    } catch (x: any) { setErr(x.message); }
  };
  return (
    <section class="panel add-server">
      <h2>{t('mcp.add')}</h2>
      <form onSubmit={add} data-testid="add-form">
        <div class="tabs" role="radiogroup" aria-label={t('mcp.transport')}>
          <label class={kind === 'stdio' ? 'on' : ''}><input type="radio" name="kind" checked={kind === 'stdio'} onChange={() => setKind('stdio')} />{t('mcp.add.stdio')}</label>
          <label class={kind === 'http' ? 'on' : ''}><input type="radio" name="kind" checked={kind === 'http'} onChange={() => setKind('http')} />{t('mcp.add.http')}</label>
        </div>
        <label>{t('mcp.name')}<input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}" data-testid="add-name" /></label>
        {kind === 'stdio' ? (
          <>
            <label>{t('mcp.add.command')}<input name="command" required class="mono" data-testid="add-command" /></label>
            <label>{t('mcp.add.args')}<textarea name="args" rows={2} class="mono" data-testid="add-args" /></label>
          </>
        ) : <label>{t('mcp.add.url')}<input name="url" type="url" required class="mono" /></label>}
        <button type="submit" class="primary" data-testid="add-submit">{t('mcp.add.submit')}</button>
      </form>
      <form onSubmit={imp}>
        <label>{t('mcp.import')}<textarea name="json" rows={4} class="mono" required placeholder='{"mcpServers": {"name": {"command": "…", "args": []}}}' /></label>
        <button type="submit">{t('mcp.import.submit')}</button>
      </form>
      {msg && <p role="status">{msg}</p>}
      {err && <p class="error" role="alert">{t('common.error', { message: err })}</p>}
    </section>
  );
}

function Tools({ server }: { server: string }) {
  const [tools, setTools] = useState<Tool[] | null>(null);
  const [err, setErr] = useState('');
  const [pick, setPick] = useState<string>('');
  useEffect(() => {
    listTools(server).then((x) => { setTools(x); setPick(x[0]?.name || ''); }).catch((e) => setErr(e.message));
  }, [server]);
  const tool = tools?.find((x) => x.name === pick);
  return (
    <section class="panel tools" data-testid="tools">
      <h2>{t('mcp.tools')}: {server}</h2>
      {err && <p class="error" role="alert">{t('common.error', { message: err })}</p>}
      {!tools && !err && <p>{t('common.loading')}</p>}
      {tools && tools.length === 0 && <p class="muted">{t('mcp.notools')}</p>}
      {tools && tools.length > 0 && (
        <div class="tools-grid">
          <ul class="tool-list">
            {tools.map((x) => (
              <li key={x.name}>
                <button type="button" class={`link ${x.name === pick ? 'active' : ''}`} onClick={() => setPick(x.name)} data-tool={x.name}>{x.name}</button>
                {x.description && <div class="muted small">{x.description}</div>}
              </li>
            ))}
          </ul>
          {tool && <TryTool key={tool.name} server={server} tool={tool} />}
        </div>
      )}
    </section>
  );
}

/* A form from a JSON Schema's top-level properties: strings (an enum as a
 * select), numbers, booleans; anything else as JSON text. */
function TryTool({ server, tool }: { server: string; tool: Tool }) {
  const schema = tool.inputSchema || {};
  const props: Record<string, any> = schema.properties || {};
  const required: string[] = schema.required || [];
  const [result, setResult] = useState<any>(null);
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const call = async (e: Event) => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    const args: Record<string, unknown> = {};
    setErr('');
    for (const [k, p] of Object.entries(props)) {
      const el = f.elements.namedItem(k) as HTMLInputElement | null;
      if (!el) continue;
      const type = Array.isArray(p.type) ? p.type[0] : p.type;
      if (type === 'boolean') { args[k] = el.checked; continue; }
      const v = el.value;
      if (v === '' && !required.includes(k)) continue;
      if (type === 'number' || type === 'integer') args[k] = Number(v);
      else if (type === 'string' || (!type && !p.properties)) args[k] = v;
      else {
        try { args[k] = JSON.parse(v); } catch (x: any) { setErr(t('mcp.try.badjson', { message: `${k}: ${x.message}` })); return; }
      }
    }
    setBusy(true);
    try { setResult(await api('POST', '/mcp/call', { server, tool: tool.name, args })); }
    catch (x: any) { setErr(x.message); setResult(null); }
    setBusy(false);
  };
  return (
    <form class="try" onSubmit={call} data-testid="try-form">
      <h3>{t('mcp.try')}: <span class="mono">{tool.name}</span></h3>
      {Object.entries(props).map(([k, p]) => {
        const type = Array.isArray(p.type) ? p.type[0] : p.type;
        const label = `${k}${required.includes(k) ? ' *' : ''}`;
        if (type === 'boolean') return <label key={k} class="check"><input type="checkbox" name={k} defaultChecked={!!p.default} />{label}</label>;
        if (Array.isArray(p.enum)) return <label key={k}>{label}<select name={k}>{p.enum.map((v: any) => <option key={v} value={v}>{String(v)}</option>)}</select></label>;
        if (type === 'number' || type === 'integer') return <label key={k}>{label}<input type="number" name={k} step={type === 'integer' ? 1 : 'any'} required={required.includes(k)} defaultValue={p.default ?? ''} /></label>;
        if (type === 'string' || (!type && !p.properties)) return <label key={k}>{label}<input name={k} required={required.includes(k)} defaultValue={p.default ?? ''} title={p.description || ''} /></label>;
        return <label key={k}>{label} ({t('mcp.try.json')})<textarea name={k} rows={3} class="mono" required={required.includes(k)} defaultValue={p.default !== undefined ? JSON.stringify(p.default) : ''} /></label>;
      })}
      <button type="submit" class="primary" disabled={busy || !can('operate')} title={can('operate') ? undefined : t('perm.operate')} data-testid="try-call">{t('mcp.try.call')}</button>
      {err && <p class="error" role="alert">{t('common.error', { message: err })}</p>}
      {result !== null && (
        <div>
          <h4>{t('mcp.try.result')}</h4>
          <pre class="scroll" data-testid="try-result">{JSON.stringify(result, null, 2)}</pre>
        </div>
      )}
    </form>
  );
}
