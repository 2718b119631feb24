// login.tsx - sign in with a user name and password (a cookie session) or
// with an API token (bearer, kept in this tab's sessionStorage).
import { useState } from 'preact/hooks';
import { t } from './i18n';
import { loginPassword, loginToken } from './api';

export function Login({ onDone }: { onDone: (me: any) => void }) {
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const run = async (f: () => Promise<any>) => {
    setBusy(true);
    setErr('');
    try { onDone((await f()) ?? {}); } catch (e: any) { setErr(t('login.failed', { message: e.message })); }
    setBusy(false);
  };
  const val = (f: HTMLFormElement, n: string) => (f.elements.namedItem(n) as HTMLInputElement).value;
  return (
    <main class="login panel" id="main">
      <h1>{t('login.title')}</h1>
      <form onSubmit={(e) => { e.preventDefault(); const f = e.currentTarget; run(() => loginPassword(val(f, 'name'), val(f, 'password'), val(f, 'totp'))); }}>
        <label>{t('login.name')}<input name="name" autocomplete="username" required /></label>
        <label>{t('login.password')}<input name="password" type="password" autocomplete="current-password" required /></label>
        <label>{t('login.totp')}<input name="totp" inputMode="numeric" autocomplete="one-time-code" /></label>
        <button type="submit" disabled={busy}>{t('login.submit')}</button>
      </form>
      <p class="or">{t('login.or')}</p>
      <form onSubmit={(e) => { e.preventDefault(); const f = e.currentTarget; run(() => loginToken(val(f, 'token').trim())); }}>
        <label>{t('login.token')}<input name="token" type="password" autocomplete="off" required data-testid="token" /></label>
        <p class="hint">{t('login.token.hint')}</p>
        <button type="submit" disabled={busy} data-testid="token-submit">{t('login.token.submit')}</button>
      </form>
      {err && <p class="error" role="alert">{err}</p>}
    </main>
  );
}
