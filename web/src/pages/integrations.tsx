// integrations.tsx - the Integrations page: G1 the MCP registry (GET
// /mcp/registry, refreshed every few seconds: G3 health, breaker, latency,
// errors live), adding a server (a stdio command or a URL: POST
// /mcp/registry; or an mcpServers JSON: POST /mcp/registry/import),
// deleting one, and each server's tools (MCP tools/list on
// /mcp/servers/:name) with a "try a tool" form generated from the tool's
// inputSchema that calls POST /mcp/call. G2: an open server's transport
// and TLS details (URL as the API shows it, credentials replaced; TLS
// verification, which is never off; the CA bundle; an https server's
// certificate from its last handshake: health.peer_cert), its other
// settings and limits, and an edit form that PATCHes only the fields
// changed (the API keeps the rest, secrets included; a secret is only
// ever written, never shown).
import { useEffect, useState } from 'preact/hooks';
import { t } from '../i18n';
import { api, authHeaders } from '../api';
import { can } from '../perm';
import { NoAccess, statusText, Err, val } from '../ui';
import { ComponentChildren } from 'preact';
import { Key } from '../i18n';
import { SchemaFields, schemaDefaults, Args } from '../schemaform';

const REFRESH_S = 5;

type Cert = { subject: string; issuer: string; not_before: string; not_after: string };
type Server = {
  name: string; transport: string; base_url?: string; command?: string; args?: string[]; url?: string;
  enabled: boolean; builtin?: boolean; agent?: boolean; description?: string; timeout_ms?: number; ca_file?: string; cwd?: string;
  env_passthrough?: string[]; env_keys?: string[]; header_names?: string[]; has_auth_token?: boolean; session_mode?: string;
  limits?: Record<string, number>;
  health: { state: string; status: string; breaker: string; latency_ms?: number; last_error?: string | null; tools?: number; inflight?: number; queued?: number; quota_used?: number; peer_cert?: Cert };
};
export type Tool = { name: string; description?: string; inputSchema?: any };

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
      {open && servers?.find((x) => x.name === open) && <Details key={`d-${open}`} s={servers.find((x) => x.name === open)!} onSaved={load} />}
      {open && <Tools key={open} server={open} />}
      {can('admin') ? <AddServer onAdded={load} /> : <p class="muted small" data-testid="no-admin">{t('perm.admin')}</p>}
    </div>
  );
}

/* G2: an open server's transport, TLS and other settings; the edit form. */
function Details({ s, onSaved }: { s: Server; onSaved: () => void }) {
  const [editing, setEditing] = useState(false);
  const http = s.transport === 'streamable-http' || s.transport === 'sse', stdio = s.transport === 'stdio';
  const https = http && /^https:/i.test(s.url || s.base_url || '');
  const pc = s.health?.peer_cert;
  const exp = pc ? Date.parse(pc.not_after) : NaN;
  const days = Number.isFinite(exp) ? Math.floor((exp - Date.now()) / 86400000) : null;
  const dl = (k: Key, v: ComponentChildren, testid?: string) => <><dt>{t(k)}</dt><dd data-testid={testid}>{v}</dd></>;
  const list = (a?: string[]) => (a && a.length ? <span class="mono">{a.join(', ')}</span> : <span class="muted">{t('common.none')}</span>);
  return (
    <section class="panel details" data-testid="server-details" data-server={s.name}>
      <header class="row">
        <h2>{t('mcp.details', { name: s.name })}</h2><span class="spacer" />
        {!s.builtin && !s.agent && can('admin') && <button type="button" onClick={() => setEditing(!editing)} aria-expanded={editing} data-testid="edit-server">{t('mcp.edit')}</button>}
      </header>
      {s.description && <p>{s.description}</p>}
      <dl class="kv">
        {dl('mcp.transport', s.transport, 'd-transport')}
        {http && dl('mcp.add.url', <span class="mono">{s.url || s.base_url}</span>, 'd-url')}
        {stdio && dl('mcp.add.command', <span class="mono">{[s.command, ...(s.args || [])].join(' ')}</span>, 'd-command')}
        {!http && !stdio && dl('mcp.target', <span class="mono">{s.base_url}</span>, 'd-target')}
        {http && dl('mcp.tls', https ? t('mcp.tls.verified') : t('mcp.tls.none'), 'd-tls')}
        {https && dl('mcp.tls.ca', s.ca_file ? <span class="mono">{s.ca_file}</span> : t('mcp.tls.systemca'), 'd-ca')}
        {https && (pc ? <>
          {dl('mcp.cert.subject', <span class="mono">{pc.subject}</span>, 'd-subject')}
          {dl('mcp.cert.issuer', <span class="mono">{pc.issuer}</span>, 'd-issuer')}
          {dl('mcp.cert.valid', <>{t('mcp.cert.range', { from: pc.not_before, to: pc.not_after })}{days != null && <> · <span class={days < 14 ? 'error' : 'muted'}>{days < 0 ? t('mcp.cert.expired') : t('mcp.cert.days', { n: days })}</span></>}</>, 'd-expiry')}
        </> : dl('mcp.cert', <span class="muted">{t('mcp.cert.none')}</span>, 'd-nocert'))}
        {http && dl('mcp.session', s.session_mode || 'shared')}
        {http && dl('mcp.headers', list(s.header_names))}
        {http && dl('mcp.token', s.has_auth_token ? t('mcp.token.set') : t('mcp.token.unset'), 'd-token')}
        {stdio && dl('mcp.cwd', s.cwd ? <span class="mono">{s.cwd}</span> : <span class="muted">{t('common.none')}</span>)}
        {stdio && dl('mcp.envkeys', list(s.env_keys))}
        {stdio && dl('mcp.passthrough', list(s.env_passthrough))}
        {s.timeout_ms != null && dl('mcp.timeout', `${s.timeout_ms} ms`, 'd-timeout')}
        {s.health?.quota_used != null && dl('mcp.quota.used', `${s.health.quota_used} / ${s.limits?.quota ?? ''}`)}
      </dl>
      {s.limits && <details>
        <summary>{t('mcp.limits')}</summary>
        <table class="small" data-testid="d-limits"><tbody>
          {Object.entries(s.limits).map(([k, v]) => <tr key={k}><th class="mono">{k}</th><td>{v}</td></tr>)}
        </tbody></table>
      </details>}
      {editing && <EditServer s={s} onSaved={() => { setEditing(false); onSaved(); }} />}
    </section>
  );
}

/* PATCH /mcp/registry/:name with the fields changed only: the URL shown
 * has its credentials replaced, so it is sent only when retyped; a new
 * token only when one is typed. */
function EditServer({ s, onSaved }: { s: Server; onSaved: () => void }) {
  const http = s.transport !== 'stdio';
  const [err, setErr] = useState('');
  const lines = (x?: string[]) => (x || []).join('\n');
  const save = async (e: Event) => {
    e.preventDefault();
    setErr('');
    const f = e.currentTarget as HTMLFormElement;
    const v = (n: string) => val(f, n);
    const body: Record<string, any> = {};
    if (v('description') !== (s.description || '')) body.description = v('description');
    if (v('timeout_ms') !== String(s.timeout_ms ?? '')) body.timeout_ms = Number(v('timeout_ms'));
    if (http) {
      if (v('url').trim() !== (s.url || s.base_url || '')) body.url = v('url').trim();
      if (v('ca_file').trim() !== (s.ca_file || '')) { if (v('ca_file').trim()) body.ca_file = v('ca_file').trim(); else body.ca_file = null; }
      if (v('session_mode') !== (s.session_mode || 'shared')) body.session_mode = v('session_mode');
      if (v('auth_token')) body.auth_token = v('auth_token');
    } else {
      if (v('command').trim() !== (s.command || '')) body.command = v('command').trim();
      const args = v('args').split('\n').map((x) => x.trim()).filter(Boolean);
      if (args.join('\n') !== lines(s.args)) body.args = args;
      if (v('cwd').trim() !== (s.cwd || '')) body.cwd = v('cwd').trim() || null;
      const pt = v('env_passthrough').split('\n').map((x) => x.trim()).filter(Boolean);
      if (pt.join('\n') !== lines(s.env_passthrough)) body.env_passthrough = pt;
    }
    const lim: Record<string, number> = { ...(s.limits || {}) };
    let limChanged = false;
    for (const [k, x] of Object.entries(s.limits || {})) {
      const n = Number(v(`limit-${k}`));
      if (v(`limit-${k}`) !== '' && n !== x) { lim[k] = n; limChanged = true; }
    }
    if (limChanged) body.limits = lim; // the whole object: a PATCH replaces a field whole
    if (!Object.keys(body).length) { onSaved(); return; }
    try { await api('PATCH', `/mcp/registry/${encodeURIComponent(s.name)}`, body); onSaved(); }
    catch (x: any) { setErr(x.message); }
  };
  return (
    <form onSubmit={save} class="stack" data-testid="edit-form">
      <label>{t('mem.description')}<input name="description" defaultValue={s.description || ''} /></label>
      <label>{t('mcp.timeout')} (ms)<input name="timeout_ms" type="number" min={1} defaultValue={s.timeout_ms ?? ''} /></label>
      {http ? <>
        <label>{t('mcp.add.url')}<input name="url" type="url" class="mono" defaultValue={s.url || s.base_url || ''} required /></label>
        <p class="small muted">{t('mcp.edit.url')}</p>
        <label>{t('mcp.tls.ca')}<input name="ca_file" class="mono" defaultValue={s.ca_file || ''} placeholder={t('mcp.tls.systemca')} /></label>
        <label>{t('mcp.session')}<select name="session_mode" defaultValue={s.session_mode || 'shared'}>
          <option value="shared">shared</option><option value="per-client">per-client</option></select></label>
        <label>{t('mcp.token.new')}<input name="auth_token" type="password" autocomplete="new-password" placeholder={s.has_auth_token ? t('mcp.token.keep') : ''} /></label>
      </> : <>
        <label>{t('mcp.add.command')}<input name="command" class="mono" defaultValue={s.command || ''} required /></label>
        <label>{t('mcp.add.args')}<textarea name="args" rows={3} class="mono" defaultValue={lines(s.args)} /></label>
        <label>{t('mcp.cwd')}<input name="cwd" class="mono" defaultValue={s.cwd || ''} /></label>
        <label>{t('mcp.passthrough')}<textarea name="env_passthrough" rows={2} class="mono" defaultValue={lines(s.env_passthrough)} /></label>
      </>}
      <details>
        <summary>{t('mcp.limits')}</summary>
        <div class="limits-grid">
          {Object.entries(s.limits || {}).map(([k, x]) => <label key={k} class="small"><span class="mono">{k}</span><input name={`limit-${k}`} type="number" step="any" min={0} defaultValue={String(x)} /></label>)}
        </div>
      </details>
      <Err msg={err} />
      <div class="row"><button type="submit" class="primary" data-testid="edit-save">{t('common.save')}</button></div>
    </form>
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
      if (val(f, 'ca_file').trim()) body.ca_file = val(f, 'ca_file').trim();
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
        ) : <>
          <label>{t('mcp.add.url')}<input name="url" type="url" required class="mono" data-testid="add-url" /></label>
          <label>{t('mcp.tls.ca')}<input name="ca_file" class="mono" placeholder={t('mcp.tls.systemca')} data-testid="add-ca" /></label>
        </>}
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

/* "Try a tool": a form generated from the tool's inputSchema
 * (schemaform.tsx, shared with the SOP editor) that calls POST /mcp/call. */
function TryTool({ server, tool }: { server: string; tool: Tool }) {
  const [args, setArgs] = useState<Args>(() => schemaDefaults(tool.inputSchema));
  const [result, setResult] = useState<any>(null);
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const call = async (e: Event) => {
    e.preventDefault();
    setErr('');
    if ((e.currentTarget as HTMLFormElement).querySelector('[aria-invalid="true"]')) { setErr(t('sf.invalid')); return; }
    setBusy(true);
    try { setResult(await api('POST', '/mcp/call', { server, tool: tool.name, args })); }
    catch (x: any) { setErr(x.message); setResult(null); }
    setBusy(false);
  };
  return (
    <form class="try" onSubmit={call} data-testid="try-form">
      <h3>{t('mcp.try')}: <span class="mono">{tool.name}</span></h3>
      <SchemaFields schema={tool.inputSchema || {}} value={args} onChange={setArgs} idp="try" />
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
