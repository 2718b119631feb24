// api.ts - the UI's client of aosd's REST API, in one of two modes:
//   bearer  an API token typed on the login page, sent as
//           "Authorization: Bearer"; kept in sessionStorage (this tab only,
//           never localStorage), so closing the tab forgets it.
//   cookie  POST /auth/login {name, password[, totp]} sets an HttpOnly
//           session cookie and answers {csrf_token, user}; every
//           state-changing request (POST, PUT, PATCH, DELETE) then carries
//           X-CSRF-Token. The cookie itself is never visible to script.
// A 401 from any request signs the UI out (onUnauthorized).
export type Mode = 'bearer' | 'cookie';

export class ApiError extends Error {
  status: number;
  code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const KEY = 'aos.session';
type Session = { mode: Mode; token?: string; csrf?: string };

let session: Session | null = load();
let onUnauthorized: () => void = () => {};

function load(): Session | null {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) || 'null');
    return s && (s.mode === 'bearer' || s.mode === 'cookie') ? s : null;
  } catch {
    return null;
  }
}

function save(s: Session | null) {
  session = s;
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

export function mode(): Mode | null { return session ? session.mode : null; }
export function bearer(): string | null { return session?.mode === 'bearer' ? session.token ?? null : null; }
export function setUnauthorizedHandler(fn: () => void) { onUnauthorized = fn; }

/* The headers that authenticate a request of method m. */
export function authHeaders(m = 'GET'): Record<string, string> {
  const h: Record<string, string> = {};
  if (session?.mode === 'bearer' && session.token) h.Authorization = `Bearer ${session.token}`;
  if (session?.mode === 'cookie' && session.csrf && m !== 'GET' && m !== 'HEAD') h['X-CSRF-Token'] = session.csrf;
  return h;
}

async function errorOf(r: Response): Promise<ApiError> {
  let code = 'http_' + r.status, message = r.statusText || String(r.status);
  try {
    const b = await r.json();
    if (b?.error) { code = b.error.code || code; message = b.error.message || message; }
  } catch { /* not JSON */ }
  return new ApiError(r.status, code, message);
}

/* One request; body is JSON unless it is FormData. Resolves to the parsed
 * JSON answer (null for an empty one); rejects with an ApiError. */
export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...authHeaders(method) };
  let payload: BodyInit | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) { headers['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
  const r = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  if (!r.ok) {
    const e = await errorOf(r);
    if (r.status === 401 && !path.startsWith('/auth/login')) { save(null); onUnauthorized(); }
    throw e;
  }
  const text = await r.text();
  return (text ? JSON.parse(text) : null) as T;
}

/* Bearer mode: checks the token with GET /auth/me before keeping it. */
export async function loginToken(token: string) {
  save({ mode: 'bearer', token });
  try {
    return await api('GET', '/auth/me');
  } catch (e) {
    save(null);
    throw e;
  }
}

/* Cookie mode (the users' sessions of issue 16). */
export async function loginPassword(name: string, password: string, totp?: string) {
  const body: Record<string, string> = { name, password };
  if (totp) body.totp = totp;
  const r = await api<{ csrf_token: string; user?: unknown }>('POST', '/auth/login', body);
  save({ mode: 'cookie', csrf: r.csrf_token });
  localStorage.setItem('aos.cookie', '1'); // a flag, not the session
  return r.user ?? (await api('GET', '/auth/me'));
}

export async function logout() {
  if (session?.mode === 'cookie') await api('POST', '/auth/logout').catch(() => {});
  localStorage.removeItem('aos.cookie');
  save(null);
}

/* The server ended this session (a password change ends them all):
 * forget it and sign the UI out, with no request that would fail. */
export function sessionEnded() {
  localStorage.removeItem('aos.cookie');
  save(null);
  onUnauthorized();
}

/* Who is signed in, or null (no session, or it expired). */
export async function whoami(): Promise<any | null> {
  // A cookie session outlives the tab: with none here, ask only when this
  // browser signed in with a password before (a 401 would be a console
  // error on every visit otherwise).
  if (!session && localStorage.getItem('aos.cookie') !== '1') return null;
  try {
    const me = await api('GET', '/auth/me');
    if (!session) save({ mode: 'cookie', csrf: me?.csrf_token });
    return me;
  } catch {
    return null;
  }
}
