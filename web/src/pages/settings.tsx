// settings.tsx - the Settings page (docs/SETTINGS.md, docs/RBAC.md):
//   System   S1 every key of GET /config/system's schema as a form field
//            (its source, pinned by a flag, restart pending); Save first
//            asks PUT ?dry_run=1 and shows the diff in a modal, marking the
//            keys that take a restart; Confirm then PUTs it. S3's IP
//            allowlist is the key security.ip_allowlist (one range a line),
//            its redaction rules security.redact_patterns (a checkbox per
//            built-in pattern, saved through the same diff).
//   Secrets  names, scopes and purposes (GET /config/runtime, never a
//            value); add, rotate (a PUT of a new value), delete; with
//            security.two_person_secrets on, a change answers 202 and
//            waits in the pending list for another Admin to approve.
//   Access   S2 users, API tokens (the token is shown once, in a modal),
//            grants (the picker offers the custom roles too), and the
//            roles: built-in and custom, a custom one made (or changed)
//            from "role pattern" lines, and deleted.
//   Audit    GET /audit/logs with its filters and cursor; /audit/verify.
import { useState } from 'preact/hooks';
import { t, Key } from '../i18n';
import { api, mode, sessionEnded } from '../api';
import { can, principal } from '../perm';
import { useLoad, Err, Tabs, TabPanel, Modal, when, val, pretty, NoAccess, Scroll } from '../ui';

type Tab = 'system' | 'secrets' | 'access' | 'audit' | 'account';

export function Settings() {
  return can('read', 'system') ? <SettingsPage /> : <NoAccess title={t('nav.settings')} />;
}

function SettingsPage() {
  const [tab, setTab] = useState<Tab>('system');
  const admin = can('admin', 'system');
  const tabs: [Tab, string][] = [['system', t('set.tab.system')], ['secrets', t('set.tab.secrets')]];
  if (admin) tabs.push(['access', t('set.tab.access')], ['audit', t('set.tab.audit')]);
  if (mode() === 'cookie') tabs.push(['account', t('set.tab.account')]);
  return (
    <div class="page settings">
      <h1>{t('nav.settings')}</h1>
      <Tabs id="set" label={t('nav.settings')} tabs={tabs} value={tab} onChange={setTab} />
      <TabPanel id="set" value={tab}>
        {tab === 'system' && <System />}
        {tab === 'secrets' && <Secrets />}
        {tab === 'access' && <Access />}
        {tab === 'audit' && <Audit />}
        {tab === 'account' && <Account />}
      </TabPanel>
      {!admin && <p class="muted small" data-testid="no-admin">{t('set.viewer')}</p>}
    </div>
  );
}

type SchemaKey = { key: string; type: string; live: boolean; help: string; min?: number; max?: number; flag?: string };
type SystemConfig = { settings: Record<string, any>; sources: Record<string, string>; restart_pending: string[]; schema: SchemaKey[] };

/* The form's text for a value, and the value back from the text. */
function toText(k: SchemaKey, v: any): string {
  if (v == null) return '';
  if (k.type === 'cidr[]') return (v as string[]).join('\n');
  if (k.type === 'headers') return typeof v === 'string' ? v : JSON.stringify(v);
  return String(v);
}
function fromText(k: SchemaKey, s: string, el: HTMLInputElement): any {
  if (k.type === 'boolean') return el.checked;
  if (k.type === 'cidr[]') return s.split(/[\n,]/).map((x) => x.trim()).filter(Boolean);
  if (k.type === 'integer' || k.type === 'number') return s.trim() === '' ? null : Number(s);
  if (k.type === 'headers') { const x = s.trim(); if (!x) return null; try { return JSON.parse(x); } catch { return x; } }
  return s.trim() === '' ? null : s;
}

function System() {
  const { data, err, reload } = useLoad<SystemConfig>('/config/system');
  // a key of type secret names a runtime secret of scope system
  const secrets = useLoad<{ secrets: any[] }>('/config/runtime');
  const [diff, setDiff] = useState<{ body: Record<string, any>; diff: Record<string, { from: any; to: any }>; restart: string[] } | null>(null);
  const [msg, setMsg] = useState('');
  const [e2, setE2] = useState('');
  const admin = can('admin', 'system');
  if (!data) return <>{err ? <Err msg={err} /> : <p>{t('common.loading')}</p>}</>;
  const groups: Record<string, SchemaKey[]> = {};
  for (const k of data.schema) (groups[k.key.split('.')[0]] ||= []).push(k);

  const preview = async (e: Event) => {
    e.preventDefault();
    setMsg(''); setE2('');
    const f = e.currentTarget as HTMLFormElement;
    const body: Record<string, any> = {};
    for (const k of data.schema) {
      if (data.sources[k.key] === 'flag') continue;
      const el = f.elements.namedItem(k.key) as HTMLInputElement | null;
      if (!el) continue;
      const v = fromText(k, el.value, el);
      if (JSON.stringify(v) !== JSON.stringify(data.settings[k.key] ?? null)) body[k.key] = v;
    }
    if (!Object.keys(body).length) { setMsg(t('set.nochange')); return; }
    try {
      const r = await api('PUT', '/config/system?dry_run=1', body);
      setDiff({ body, diff: r.diff || {}, restart: r.restart_required || [] });
    } catch (x: any) { setE2(x.message); }
  };
  const save = async () => {
    if (!diff) return;
    try {
      const r = await api('PUT', '/config/system', diff.body);
      setDiff(null);
      setMsg(t('set.saved', { n: Object.keys(r.diff || {}).length }));
      reload();
    } catch (x: any) { setDiff(null); setE2(x.message); }
  };

  return (
    <form onSubmit={preview} data-testid="system-form" key={JSON.stringify(data.settings)}>
      {data.restart_pending.length > 0 && <p class="warn" role="status" data-testid="restart-pending">{t('set.restart.pending')}<span class="mono">{data.restart_pending.join(', ')}</span></p>}
      {Object.entries(groups).map(([g, keys]) => (
        <fieldset key={g} class="panel">
          <legend>{g}</legend>
          {keys.map((k) => {
            const pinned = data.sources[k.key] === 'flag';
            const v = data.settings[k.key];
            const id = `cfg-${k.key}`;
            const note = (
              <span class="small muted">
                {' '}<span class="badge">{t(SOURCE_KEY[data.sources[k.key]] || 'set.source.default')}</span>
                {!k.live && <span class="badge restart" title={t('set.restart.help')}>{t('set.restart')}</span>}
                {pinned && k.flag && <> {t('set.pinned', { flag: k.flag })}</>}
              </span>
            );
            const dis = pinned || !admin;
            return (
              <div key={k.key} class="field" data-key={k.key}>
                {k.type === 'boolean'
                  ? <label class="check"><input type="checkbox" id={id} name={k.key} defaultChecked={!!v} disabled={dis} /><span class="mono">{k.key}</span>{note}</label>
                  : <label for={id}><span class="mono">{k.key}</span>{note}</label>}
                {k.type === 'secret' ? (
                  <select id={id} name={k.key} disabled={dis} aria-describedby={`${id}-h`}>
                    <option value="" selected={!v}>{t('set.secret.none')}</option>
                    {v && !(secrets.data?.secrets || []).some((x) => x.name === v) && <option value={v} selected>{v}</option>}
                    {(secrets.data?.secrets || []).filter((x) => x.scope === 'system' || x.name === v).map((x) => <option key={x.name} value={x.name} selected={x.name === v}>{x.name}</option>)}
                  </select>
                ) : k.key === 'security.redact_patterns' ? <RedactField name={k.key} value={v} disabled={dis} />
                  : k.type === 'cidr[]' ? <textarea id={id} name={k.key} rows={3} class="mono" defaultValue={toText(k, v)} disabled={dis} placeholder="10.0.0.0/8" aria-describedby={`${id}-h`} />
                  : k.type !== 'boolean' && <input id={id} name={k.key} class="mono" defaultValue={toText(k, v)} disabled={dis}
                    type={k.type === 'integer' || k.type === 'number' ? 'number' : 'text'} step={k.type === 'integer' ? 1 : 'any'}
                    min={k.min} max={k.max} aria-describedby={`${id}-h`} />}
                <div class="small muted" id={`${id}-h`} lang="en">{k.help}</div>
              </div>
            );
          })}
        </fieldset>
      ))}
      {admin && <button type="submit" class="primary" data-testid="system-save">{t('set.review')}</button>}
      {msg && <p role="status" data-testid="system-msg">{msg}</p>}
      <Err msg={err || e2} />
      {diff && (
        <Modal title={t('set.diff.title')} onClose={() => setDiff(null)}>
          <table data-testid="diff-table">
            <thead><tr><th>{t('set.key')}</th><th>{t('set.from')}</th><th>{t('set.to')}</th><th /></tr></thead>
            <tbody>
              {Object.entries(diff.diff).map(([k, d]) => (
                <tr key={k} data-key={k}>
                  <td class="mono">{k}</td><td class="mono">{pretty(d.from)}</td><td class="mono">{pretty(d.to)}</td>
                  <td>{diff.restart.includes(k) && <span class="badge restart">{t('set.restart')}</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {diff.restart.length > 0 && <p class="warn small">{t('set.restart.help')}</p>}
          <div class="row">
            <button type="button" class="primary" onClick={save} data-testid="diff-confirm">{t('set.confirm')}</button>
            <button type="button" onClick={() => setDiff(null)}>{t('common.cancel')}</button>
          </div>
        </Modal>
      )}
    </form>
  );
}

/* security.redact_patterns (src/redact: the --redact-patterns syntax) as a
 * checkbox per pattern; the hidden input the form reads keeps the text as
 * it is while the set it means is unchanged, else lists the checked ones. */
const PATTERNS = ['keys', 'bearer', 'url', 'email', 'phone', 'cn_id'] as const;
const PATTERN_DEFAULT = ['keys', 'bearer', 'url', 'cn_id'];
function redactSet(spec: string | null): Set<string> {
  let set = new Set<string>();
  let rel = false, any = false;
  for (const raw of (spec || 'default').split(',')) {
    const w = raw.trim();
    if (!w) continue;
    const sign = w[0] === '+' ? 1 : w[0] === '-' ? -1 : 0;
    const name = sign ? w.slice(1) : w;
    const bits = name === 'all' ? [...PATTERNS] : name === 'none' ? [] : name === 'default' ? PATTERN_DEFAULT : [name];
    if (sign) {
      if (!rel && !any) set = new Set(PATTERN_DEFAULT);
      rel = true;
      for (const b of bits) sign > 0 ? set.add(b) : set.delete(b);
    } else {
      if (name === 'none') set.clear();
      for (const b of bits) set.add(b);
    }
    any = true;
  }
  return set;
}
const PATTERN_LABEL: Record<string, Key> = {
  keys: 'set.redact.keys', bearer: 'set.redact.bearer', url: 'set.redact.url',
  email: 'set.redact.email', phone: 'set.redact.phone', cn_id: 'set.redact.cnid',
};
function RedactField({ name, value, disabled }: { name: string; value: string | null; disabled: boolean }) {
  const [on, setOn] = useState(() => redactSet(value));
  const same = [...PATTERNS].every((p) => on.has(p) === redactSet(value).has(p));
  const text = same ? (value ?? '') : (PATTERNS.filter((p) => on.has(p)).join(',') || 'none');
  return (
    <div class="checks" role="group" aria-label={name} data-testid="redact-patterns">
      <input type="hidden" name={name} value={text} />
      {PATTERNS.map((p) => (
        <label key={p} class="check">
          <input type="checkbox" data-pattern={p} checked={on.has(p)} disabled={disabled}
            onChange={(e) => { const n = new Set(on); (e.currentTarget as HTMLInputElement).checked ? n.add(p) : n.delete(p); setOn(n); }} />
          <span>{t(PATTERN_LABEL[p])}</span>
        </label>
      ))}
    </div>
  );
}

const SOURCE_KEY: Record<string, Key> = { flag: 'set.source.flag', stored: 'set.source.stored', default: 'set.source.default' };

function Secrets() {
  const list = useLoad<{ secrets: any[] }>('/config/runtime');
  const admin = can('admin', 'system');
  const pend = useLoad<{ pending: any[] }>(admin ? '/config/runtime/pending' : null);
  const [edit, setEdit] = useState<{ name: string; scope: string; purpose: string; rotate: boolean } | null>(null);
  const [msg, setMsg] = useState('');
  const [err, setErr] = useState('');
  const both = () => { list.reload(); pend.reload(); };
  const done = (r: any) => { setMsg(r && r.pending ? t('sec.pending.made') : t('sec.saved')); both(); };

  const put = async (e: Event) => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    setErr(''); setMsg('');
    const name = val(f, 'name').trim();
    const body: any = { value: val(f, 'value'), purpose: val(f, 'purpose'), scope: val(f, 'scope').trim() || 'system' };
    try { const r = await api('PUT', `/config/runtime/${encodeURIComponent(name)}`, body); setEdit(null); done(r); }
    catch (x: any) { setErr(x.message); }
  };
  const del = async (name: string) => {
    if (!confirm(t('sec.delete.confirm', { name }))) return;
    setErr(''); setMsg('');
    try { done(await api('DELETE', `/config/runtime/${encodeURIComponent(name)}`)); } catch (x: any) { setErr(x.message); }
  };
  const decide = async (id: string, how: 'approve' | 'reject') => {
    setErr(''); setMsg('');
    try { await api('POST', `/config/runtime/pending/${encodeURIComponent(id)}/${how}`); setMsg(t(how === 'approve' ? 'sec.approved' : 'sec.rejected')); both(); }
    catch (x: any) { setErr(x.message); }
  };

  return (
    <div class="stack">
      <section class="panel">
        <header class="row"><h2>{t('sec.title')}</h2><span class="spacer" />
          {admin && <button type="button" class="primary" data-testid="secret-add" onClick={() => setEdit({ name: '', scope: 'system', purpose: '', rotate: false })}>{t('sec.add')}</button>}
        </header>
        <p class="muted small">{t('sec.help')}</p>
        {!list.data ? <p>{t('common.loading')}</p> : list.data.secrets.length === 0 ? <p class="muted">{t('common.none')}</p> : (
          <table data-testid="secrets">
            <thead><tr><th>{t('sec.name')}</th><th>{t('sec.scope')}</th><th>{t('sec.purpose')}</th><th>{t('sec.created')}</th><th>{t('sec.rotated')}</th><th /></tr></thead>
            <tbody>
              {list.data.secrets.map((s) => (
                <tr key={s.name} data-secret={s.name}>
                  <td class="mono">{s.name}</td><td>{s.scope}</td><td>{s.purpose}</td>
                  <td class="small">{when(s.created_at)} {s.created_by && <span class="muted">{s.created_by}</span>}</td>
                  <td class="small">{when(s.rotated_at ?? s.updated_at)}</td>
                  <td class="row">{admin && <>
                    <button type="button" data-testid={`rotate-${s.name}`} onClick={() => setEdit({ name: s.name, scope: s.scope, purpose: s.purpose || '', rotate: true })}>{t('sec.rotate')}</button>
                    <button type="button" class="danger" data-testid={`delsecret-${s.name}`} onClick={() => del(s.name)}>{t('common.delete')}</button>
                  </>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {msg && <p role="status" data-testid="secret-msg">{msg}</p>}
        <Err msg={list.err || err} />
      </section>
      {principal()?.role === 'owner' && (
        <section class="panel">
          <h2>{t('sec.master')}</h2>
          <p class="muted small">{t('sec.master.help')}</p>
          <button type="button" class="danger" data-testid="rotate-master" onClick={async () => {
            if (!confirm(t('sec.master.confirm'))) return;
            setErr(''); setMsg('');
            try { const r = await api('POST', '/config/runtime/rotate-master-key'); setMsg(t('sec.master.done', { n: r?.resealed?.secrets ?? 0 })); }
            catch (x: any) { setErr(x.message); }
          }}>{t('sec.master.rotate')}</button>
        </section>
      )}
      {admin && (
        <section class="panel">
          <h2>{t('sec.pending')}</h2>
          <p class="muted small">{t('sec.pending.help')}</p>
          {!pend.data ? <Err msg={pend.err} /> : pend.data.pending.length === 0 ? <p class="muted">{t('common.none')}</p> : (
            <table data-testid="pending">
              <thead><tr><th>{t('sec.op')}</th><th>{t('sec.name')}</th><th>{t('sec.scope')}</th><th>{t('sec.requested')}</th><th /></tr></thead>
              <tbody>
                {pend.data.pending.map((p) => (
                  <tr key={p.id} data-pending={p.name}>
                    <td>{p.op}</td><td class="mono">{p.name}</td><td>{p.scope}</td>
                    <td class="small">{p.requested_by || p.requester || ''} {when(p.created_at)}</td>
                    <td class="row">
                      <button type="button" onClick={() => decide(p.id, 'approve')} data-testid={`approve-${p.name}`}>{t('sec.approve')}</button>
                      <button type="button" class="danger" onClick={() => decide(p.id, 'reject')}>{t('sec.reject')}</button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      )}
      {edit && (
        <Modal title={edit.rotate ? t('sec.rotate.title', { name: edit.name }) : t('sec.add')} onClose={() => setEdit(null)}>
          <form onSubmit={put} data-testid="secret-form">
            <label>{t('sec.name')}<input name="name" required class="mono" pattern="[A-Za-z_][A-Za-z0-9_.\-]*" defaultValue={edit.name} readOnly={edit.rotate} data-testid="secret-name" /></label>
            <label>{t('sec.value')}<input name="value" type="password" required autocomplete="off" data-testid="secret-value" /></label>
            <label>{t('sec.purpose')}<input name="purpose" defaultValue={edit.purpose} data-testid="secret-purpose" /></label>
            <label>{t('sec.scope')}<input name="scope" class="mono" defaultValue={edit.scope} readOnly={edit.rotate} placeholder="system | project:ID" /></label>
            <div class="row">
              <button type="submit" class="primary" data-testid="secret-submit">{t('common.save')}</button>
              <button type="button" onClick={() => setEdit(null)}>{t('common.cancel')}</button>
            </div>
          </form>
        </Modal>
      )}
    </div>
  );
}

const ROLES = ['viewer', 'operator', 'admin', 'owner'];

/* A role picker: the built-in roles, and the custom ones where a grant
 * may name them (custom: their names). */
function RoleSelect({ name, value, custom = [] }: { name: string; value?: string; custom?: string[] }) {
  return (
    <select name={name} defaultValue={value || 'viewer'}>
      {['none', ...ROLES].map((r) => <option key={r} value={r}>{r}</option>)}
      {custom.length > 0 && <optgroup label={t('acc.roles.custom')}>{custom.map((r) => <option key={r} value={r}>{r}</option>)}</optgroup>}
    </select>
  );
}

/* "operator tool:files__*" a line -> [{role, resource}] */
function parseRoleGrants(text: string) {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
    const [role, resource = 'system'] = l.split(/\s+/);
    return { role, resource };
  });
}

function Access() {
  const users = useLoad<{ users: any[] }>('/auth/users');
  const tokens = useLoad<{ tokens: any[] }>('/auth/tokens');
  const grants = useLoad<{ grants: any[] }>('/rbac/grants');
  const roles = useLoad<any>('/rbac/roles');
  const [shown, setShown] = useState<{ name: string; token: string } | null>(null);
  const [err, setErr] = useState('');
  const run = async (f: () => Promise<any>, after: () => void) => {
    setErr('');
    try { await f(); after(); } catch (x: any) { setErr(x.message); }
  };
  const addUser = (e: Event) => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    run(() => api('POST', '/auth/users', { name: val(f, 'name').trim(), password: val(f, 'password'), role: val(f, 'role') }), () => { f.reset(); users.reload(); });
  };
  const addToken = (e: Event) => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    const body: any = { name: val(f, 'name').trim(), role: val(f, 'role') };
    const days = Number(val(f, 'days'));
    if (days > 0) body.expires_in_s = Math.round(days * 86400);
    run(async () => { const r = await api('POST', '/auth/tokens', body); setShown({ name: r.name, token: r.token }); }, () => { f.reset(); tokens.reload(); });
  };
  const addGrant = (e: Event) => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    run(() => api('POST', '/rbac/grants', { principal: val(f, 'principal').trim(), role: val(f, 'role'), resource: val(f, 'resource').trim() }), () => { f.reset(); grants.reload(); });
  };
  const roleList: any[] = Array.isArray(roles.data) ? roles.data : roles.data?.roles || [];
  const custom = roleList.filter((r) => !r.builtin).map((r) => r.name as string);
  // the role being changed (PATCH) instead of made, or null
  const [editing, setEditing] = useState<any>(null);
  const addRole = (e: Event) => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    const body: any = { grants: parseRoleGrants(val(f, 'grants')) };
    const d = val(f, 'description').trim();
    if (d || editing) body.description = d;
    const done = () => { f.reset(); setEditing(null); roles.reload(); };
    if (editing) run(() => api('PATCH', `/rbac/roles/${encodeURIComponent(editing.name)}`, body), done);
    else run(() => api('POST', '/rbac/roles', { name: val(f, 'name').trim(), ...body }), done);
  };

  return (
    <div class="stack">
      <Err msg={err} />
      <section class="panel">
        <h2>{t('acc.users')}</h2>
        {!users.data ? <Err msg={users.err} /> : (
          <table data-testid="users">
            <thead><tr><th>{t('sec.name')}</th><th>{t('acc.role')}</th><th>{t('acc.state')}</th><th>{t('acc.totp')}</th><th>{t('sec.created')}</th><th /></tr></thead>
            <tbody>
              {users.data.users.map((u) => (
                <tr key={u.id} data-user={u.name}>
                  <td>{u.name}</td>
                  <td><select aria-label={t('acc.role')} value={u.role} onChange={(e) => run(() => api('PATCH', `/auth/users/${u.id}`, { role: (e.target as HTMLSelectElement).value }), users.reload)}>
                    {['none', ...ROLES].map((r) => <option key={r} value={r}>{r}</option>)}</select></td>
                  <td><label class="check"><input type="checkbox" checked={!u.disabled} onChange={() => run(() => api('PATCH', `/auth/users/${u.id}`, { disabled: !u.disabled }), users.reload)} />{u.disabled ? t('acc.disabled') : t('acc.enabled')}</label></td>
                  <td>{u.totp_enabled ? t('acc.yes') : t('acc.no')}</td>
                  <td class="small">{when(u.created_at)}</td>
                  <td><button type="button" class="danger" onClick={() => confirm(t('acc.user.delete', { name: u.name })) && run(() => api('DELETE', `/auth/users/${u.id}`), users.reload)}>{t('common.delete')}</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <form class="row inline-form" onSubmit={addUser} data-testid="user-form">
          <label>{t('sec.name')}<input name="name" required autocomplete="off" /></label>
          <label>{t('login.password')}<input name="password" type="password" required minLength={12} autocomplete="new-password" /></label>
          <label>{t('acc.role')}<RoleSelect name="role" /></label>
          <button type="submit">{t('acc.user.add')}</button>
        </form>
      </section>
      <section class="panel">
        <h2>{t('acc.tokens')}</h2>
        {!tokens.data ? <Err msg={tokens.err} /> : (
          <table data-testid="tokens">
            <thead><tr><th>{t('sec.name')}</th><th>{t('acc.prefix')}</th><th>{t('acc.role')}</th><th>{t('acc.lastused')}</th><th>{t('acc.expires')}</th><th /></tr></thead>
            <tbody>
              {tokens.data.tokens.map((k) => (
                <tr key={k.id} data-token={k.name} class={k.revoked ? 'muted' : ''}>
                  <td>{k.name}</td><td class="mono">{k.prefix}</td><td>{k.role}{k.grants?.length ? ` +${k.grants.length}` : ''}</td>
                  <td class="small">{when(k.last_used_at)}</td><td class="small">{when(k.expires_at)}</td>
                  <td>{k.revoked ? t('acc.revoked') : <button type="button" class="danger" data-testid={`revoke-${k.name}`}
                    onClick={() => confirm(t('acc.token.revoke', { name: k.name })) && run(() => api('DELETE', `/auth/tokens/${k.id}`), tokens.reload)}>{t('acc.revoke')}</button>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <form class="row inline-form" onSubmit={addToken} data-testid="token-form">
          <label>{t('sec.name')}<input name="name" required autocomplete="off" /></label>
          <label>{t('acc.role')}<RoleSelect name="role" /></label>
          <label>{t('acc.days')}<input name="days" type="number" min="0" step="any" /></label>
          <button type="submit">{t('acc.token.add')}</button>
        </form>
      </section>
      <section class="panel">
        <h2>{t('acc.grants')}</h2>
        {!grants.data ? <Err msg={grants.err} /> : grants.data.grants.length === 0 ? <p class="muted">{t('common.none')}</p> : (
          <table data-testid="grants">
            <thead><tr><th>{t('acc.principal')}</th><th>{t('acc.role')}</th><th>{t('acc.resource')}</th><th /></tr></thead>
            <tbody>
              {grants.data.grants.map((g) => (
                <tr key={g.id} data-grant={g.resource}>
                  <td class="mono">{g.principal}</td><td>{g.role}</td><td class="mono">{g.resource}</td>
                  <td><button type="button" class="danger" onClick={() => run(() => api('DELETE', `/rbac/grants/${g.id}`), grants.reload)}>{t('common.delete')}</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <form class="row inline-form" onSubmit={addGrant} data-testid="grant-form">
          <label>{t('acc.principal')}<input name="principal" required class="mono" placeholder="token:ID | user:ID" /></label>
          <label>{t('acc.role')}<RoleSelect name="role" custom={custom} /></label>
          <label>{t('acc.resource')}<input name="resource" required class="mono" placeholder="tool:files__*" /></label>
          <button type="submit">{t('acc.grant.add')}</button>
        </form>
      </section>
      <section class="panel">
        <h2>{t('acc.roles')}</h2>
        {!roles.data ? <Err msg={roles.err} /> : (
          <table data-testid="roles">
            <thead><tr><th>{t('sec.name')}</th><th>{t('acc.roles.rights')}</th><th>{t('acc.roles.desc')}</th><th /></tr></thead>
            <tbody>{roleList.map((r) => (
              <tr key={r.name} data-role={r.name}>
                <td>{r.name}{!r.builtin && <> <span class="badge">{t('acc.roles.custom')}</span></>}</td>
                <td class="mono small">{r.builtin ? (r.permissions || []).join(', ') : (r.grants || []).map((g: any) => `${g.role} ${g.resource}`).join('; ')}</td>
                <td class="small" lang={r.builtin ? 'en' : undefined}>{r.description}{!r.builtin && r.holders != null && <span class="muted"> ({t('acc.roles.holders', { n: r.holders })})</span>}</td>
                <td>{!r.builtin && <div class="row">
                  <button type="button" data-testid={`role-edit-${r.name}`} onClick={() => setEditing(r)}>{t('acc.roles.edit')}</button>
                  <button type="button" class="danger" data-testid={`role-delete-${r.name}`}
                    onClick={() => confirm(t('acc.roles.delete', { name: r.name })) && run(() => api('DELETE', `/rbac/roles/${encodeURIComponent(r.name)}`), roles.reload)}>{t('common.delete')}</button>
                </div>}</td>
              </tr>
            ))}</tbody>
          </table>
        )}
        <form class="stack inline-form" onSubmit={addRole} data-testid="role-form" key={editing ? editing.name : ''}>
          <label>{t('sec.name')}<input name="name" required autocomplete="off" pattern="[a-z][a-z0-9._\-]{0,63}" placeholder="data-analyst"
            defaultValue={editing?.name} readOnly={!!editing} /></label>
          <label>{t('acc.roles.desc')}<input name="description" autocomplete="off" defaultValue={editing?.description || ''} /></label>
          <label>{t('acc.roles.grants')}<textarea name="grants" rows={3} required class="mono" placeholder={'operator tool:files__*\nviewer project:p1'}
            defaultValue={editing ? (editing.grants || []).map((g: any) => `${g.role} ${g.resource}`).join('\n') : ''} /></label>
          <p class="muted small">{t('acc.roles.grants.help')}</p>
          <div class="row">
            <button type="submit">{editing ? t('acc.roles.save') : t('acc.roles.add')}</button>
            {editing && <button type="button" onClick={() => setEditing(null)}>{t('common.cancel')}</button>}
          </div>
        </form>
      </section>
      {shown && (
        <Modal title={t('acc.token.shown', { name: shown.name })} onClose={() => setShown(null)}>
          <p class="warn">{t('acc.token.once')}</p>
          <pre class="mono" data-testid="new-token">{shown.token}</pre>
          <button type="button" class="primary" onClick={() => setShown(null)}>{t('common.close')}</button>
        </Modal>
      )}
    </div>
  );
}

function Audit() {
  const [q, setQ] = useState('');
  const { data, err } = useLoad<{ items: any[]; next_cursor: string | null }>(`/audit/logs?limit=50${q}`);
  const [more, setMore] = useState<{ items: any[]; next_cursor: string | null }[]>([]);
  const [verify, setVerify] = useState<any>(null);
  const [e2, setE2] = useState('');
  const filter = (e: Event) => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    const p = new URLSearchParams();
    for (const k of ['actor', 'action', 'resource']) { const v = val(f, k).trim(); if (v) p.set(k, v); }
    for (const [k, q] of [['since', 'from'], ['until', 'to']]) { const v = val(f, k); if (v) p.set(q, new Date(v).toISOString()); }
    setMore([]);
    setQ(p.toString() ? '&' + p.toString() : '');
  };
  const last = more.length ? more[more.length - 1] : data;
  const loadMore = async () => {
    if (!last?.next_cursor) return;
    try { const r = await api('GET', `/audit/logs?limit=50${q}&cursor=${encodeURIComponent(last.next_cursor)}`); setMore([...more, r]); }
    catch (x: any) { setE2(x.message); }
  };
  const check = async () => {
    setVerify(null); setE2('');
    try { setVerify(await api('GET', '/audit/verify')); } catch (x: any) { setE2(x.message); }
  };
  const items = [...(data?.items || []), ...more.flatMap((m) => m.items)];
  return (
    <div class="stack">
      <section class="panel">
        <header class="row"><h2>{t('aud.title')}</h2><span class="spacer" />
          <button type="button" onClick={check} data-testid="audit-verify">{t('aud.verify')}</button></header>
        {verify && (
          <p role="status" data-testid="verify-result" class={verify.ok ? 'ok' : 'error'}>
            {verify.ok ? t('aud.verify.ok', { n: verify.checked ?? verify.rows ?? '' }) : t('aud.verify.bad', { id: verify.first_bad?.id ?? verify.bad_id ?? '?' })}
            {verify.head?.hash && <span class="mono small"> {t('aud.head', { hash: String(verify.head.hash).slice(0, 16) })}</span>}
          </p>
        )}
        <form class="row inline-form" onSubmit={filter} data-testid="audit-filter">
          <label>{t('aud.actor')}<input name="actor" class="mono" placeholder="token:owner" /></label>
          <label>{t('aud.action')}<input name="action" class="mono" placeholder="secret.*" /></label>
          <label>{t('acc.resource')}<input name="resource" class="mono" /></label>
          <label>{t('aud.since')}<input name="since" type="datetime-local" /></label>
          <label>{t('aud.until')}<input name="until" type="datetime-local" /></label>
          <button type="submit">{t('aud.filter')}</button>
        </form>
        <Err msg={err || e2} />
        {!data ? <p>{t('common.loading')}</p> : items.length === 0 ? <p class="muted">{t('common.none')}</p> : (
          <Scroll label={t('aud.title')}>
            <table data-testid="audit">
              <thead><tr><th>#</th><th>{t('aud.time')}</th><th>{t('aud.actor')}</th><th>{t('aud.action')}</th><th>{t('acc.resource')}</th><th>{t('aud.diff')}</th></tr></thead>
              <tbody>
                {items.map((i) => (
                  <tr key={i.id} data-action={i.action}>
                    <td>{i.id}</td><td class="small">{when(i.ts ?? i.created_at ?? i.time)}</td><td class="mono small">{i.actor}</td>
                    <td class="mono small">{i.action}</td><td class="mono small">{i.resource}</td>
                    <td class="mono small diffcell">{i.diff == null ? '' : typeof i.diff === 'string' ? i.diff : JSON.stringify(i.diff)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
        {last?.next_cursor && <button type="button" onClick={loadMore} data-testid="audit-more">{t('chat.seemore')}</button>}
      </section>
    </div>
  );
}

/* The signed-in user's own account (a cookie session): a new password
 * (every session of the user ends, this one too) and two-factor sign-in
 * (TOTP: the secret shown once, confirmed with a code; or turned off -
 * whichever GET /auth/me's totp_enabled calls for). */
function Account() {
  const me = principal();
  const live = useLoad<{ totp_enabled?: boolean }>('/auth/me');
  const on = !!live.data?.totp_enabled;
  const [err, setErr] = useState('');
  const [msg, setMsg] = useState('');
  const [enrol, setEnrol] = useState<{ secret: string; uri: string } | null>(null);
  const id = encodeURIComponent(me?.id || '');
  const run = async (f: () => Promise<void>) => { setErr(''); setMsg(''); try { await f(); } catch (x: any) { setErr(x.message); } };
  const password = (e: Event) => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    if (val(f, 'password') !== val(f, 'again')) { setErr(t('acc.pw.mismatch')); return; }
    run(async () => {
      await api('POST', '/auth/password', { current: val(f, 'current'), password: val(f, 'password') });
      alert(t('acc.pw.done'));
      sessionEnded();
    });
  };
  const confirmTotp = (e: Event) => {
    e.preventDefault();
    const code = val(e.currentTarget as HTMLFormElement, 'code').trim();
    run(async () => { await api('POST', `/auth/users/${id}/totp/confirm`, { code }); setEnrol(null); setMsg(t('acc.totp.on')); live.reload(); });
  };
  return (
    <div class="stack">
      <section class="panel">
        <h2>{t('acc.account', { name: me?.name || '' })}</h2>
        <form onSubmit={password} data-testid="password-form">
          <label>{t('acc.pw.current')}<input name="current" type="password" required autocomplete="current-password" /></label>
          <label>{t('acc.pw.new')}<input name="password" type="password" required minLength={12} autocomplete="new-password" /></label>
          <label>{t('acc.pw.again')}<input name="again" type="password" required minLength={12} autocomplete="new-password" /></label>
          <p class="muted small">{t('acc.pw.help')}</p>
          <button type="submit">{t('acc.pw.change')}</button>
        </form>
      </section>
      <section class="panel">
        <h2>{t('acc.totp')}</h2>
        {live.data && <p data-testid="totp-state">{on ? t('acc.totp.is.on') : t('acc.totp.is.off')}</p>}
        <div class="row">
          {live.data && !on && <button type="button" data-testid="totp-enrol" onClick={() => run(async () => setEnrol(await api('POST', `/auth/users/${id}/totp`)))}>{t('acc.totp.enrol')}</button>}
          {live.data && on && <button type="button" class="danger" data-testid="totp-off" onClick={() => run(async () => { await api('DELETE', `/auth/users/${id}/totp`); setMsg(t('acc.totp.off')); live.reload(); })}>{t('acc.totp.disable')}</button>}
        </div>
        {enrol && (
          <form onSubmit={confirmTotp} data-testid="totp-form">
            <p class="warn small">{t('acc.totp.once')}</p>
            <p>{t('acc.totp.secret')} <code data-testid="totp-secret">{enrol.secret}</code></p>
            <p class="small"><a href={enrol.uri}>{t('acc.totp.uri')}</a></p>
            <label>{t('acc.totp.code')}<input name="code" inputMode="numeric" autocomplete="one-time-code" required pattern="[0-9]{6}" data-testid="totp-code" /></label>
            <button type="submit" class="primary" data-testid="totp-confirm">{t('acc.totp.confirm')}</button>
          </form>
        )}
      </section>
      {msg && <p role="status" data-testid="account-msg">{msg}</p>}
      <Err msg={err} />
    </div>
  );
}
