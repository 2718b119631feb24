// app.tsx - the shell: sign-in gate, navigation in SPEC §2's order, the
// language and theme switches, the connection state, and the page.
import { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { t, lang, setLang, Lang, Key } from './i18n';
import { whoami, logout, setUnauthorizedHandler } from './api';
import { PAGES, Page, pageOf, navigate } from './router';
import { Login } from './login';
import { ChatHub } from './pages/chat';
import { Integrations } from './pages/integrations';
import { Settings } from './pages/settings';
import { Memory } from './pages/memory';
import { Agents } from './pages/agents';
import { Projects } from './pages/projects';
import { ConnState } from './events';
import { feed, useFeed } from './feed';
import { setPrincipal, can } from './perm';

type Theme = 'light' | 'dark';

function initialTheme(): Theme {
  const s = localStorage.getItem('aos.theme');
  if (s === 'light' || s === 'dark') return s;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

const NAV_KEY: Record<Page, Key> = {
  chat: 'nav.chat', monitor: 'nav.monitor', projects: 'nav.projects', memory: 'nav.memory',
  settings: 'nav.settings', integrations: 'nav.integrations', agents: 'nav.agents',
};

export function App() {
  const [, setL] = useState<Lang>(lang());
  const [theme, setTheme] = useState<Theme>(initialTheme());
  const [me, setMe] = useState<any | null | undefined>(undefined); // undefined: checking
  const [page, setPage] = useState<Page>(pageOf(location.pathname));
  const [menu, setMenu] = useState(false);

  useEffect(() => { document.documentElement.lang = lang(); }, []);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  useEffect(() => {
    const on = () => { setPage(pageOf(location.pathname)); setMenu(false); };
    window.addEventListener('popstate', on);
    setUnauthorizedHandler(() => { feed.stop(); setMe(null); });
    whoami().then(setMe);
    return () => window.removeEventListener('popstate', on);
  }, []);
  setPrincipal(me);
  // the value-event stream needs read on system; a principal with narrower
  // grants only would get a 403 on every page
  useEffect(() => { if (me && can('read', 'system')) feed.start(); }, [me]);
  useEffect(() => {
    document.title = `${t(NAV_KEY[page])} · AOS`;
  });

  const switchLang = (l: Lang) => { setLang(l); setL(l); };
  const toggleTheme = () => {
    const n = theme === 'dark' ? 'light' : 'dark';
    localStorage.setItem('aos.theme', n);
    setTheme(n);
  };

  const controls = (
    <div class="controls">
      <label class="sr-only" for="lang">{t('shell.lang')}</label>
      <select id="lang" data-testid="lang" value={lang()} title={t('shell.lang')}
        onChange={(e) => switchLang((e.target as HTMLSelectElement).value as Lang)}>
        <option value="en">English</option>
        <option value="zh-CN">简体中文</option>
      </select>
      <button type="button" data-testid="theme" onClick={toggleTheme} aria-pressed={theme === 'dark'}
        title={t('shell.theme')}>
        {theme === 'dark' ? `☾ ${t('shell.theme.dark')}` : `☀ ${t('shell.theme.light')}`}
      </button>
    </div>
  );

  if (me === undefined) return <div class="center" aria-busy="true">{t('common.loading')}</div>;
  if (me === null) {
    return (
      <div class="login-wrap">
        <header class="login-top">{controls}</header>
        <Login onDone={setMe} />
      </div>
    );
  }

  const who = me?.name || me?.principal?.name || me?.token?.name || me?.id || '';
  return (
    <div class={`shell ${menu ? 'menu-open' : ''}`}>
      <a class="skip" href="#main">{t('app.skip')}</a>
      <header class="top">
        <button type="button" class="menu-btn" aria-expanded={menu} aria-controls="nav"
          onClick={() => setMenu(!menu)}>☰ <span class="sr-only">{t('shell.menu')}</span></button>
        <span class="brand">{t('app.name')}</span>
        <ConnBadge />
        <span class="spacer" />
        {controls}
        {who && <span class="who">{t('shell.user', { name: String(who) })}</span>}
        <button type="button" onClick={() => { feed.stop(); logout().then(() => setMe(null)); }}>{t('shell.logout')}</button>
      </header>
      <nav id="nav" aria-label={t('nav.label')}>
        <ul>
          {PAGES.map((p) => (
            <li key={p.page}>
              <a href={p.path} aria-current={p.page === page ? 'page' : undefined} data-page={p.page}
                onClick={(e) => { if (e.ctrlKey || e.metaKey || e.shiftKey) return; e.preventDefault(); navigate(p.path); }}>
                {t(NAV_KEY[p.page])}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" tabIndex={-1}>
        {page === 'chat' && <ChatHub />}
        {page === 'integrations' && <Integrations />}
        {page === 'monitor' && <Monitor />}
        {page === 'projects' && <Projects />}
        {page === 'memory' && <Memory />}
        {page === 'settings' && <Settings />}
        {page === 'agents' && <Agents />}
      </main>
    </div>
  );
}

/* A page in a chunk of its own (build.mjs splits them), fetched the first
 * time it is shown: the Monitor's charts cost the other pages nothing. */
function lazyPage(load: () => Promise<ComponentType>): ComponentType {
  let Page: ComponentType | null = null;
  return function Lazy() {
    const [, setReady] = useState(false);
    const [err, setErr] = useState('');
    useEffect(() => {
      if (!Page) load().then((c) => { Page = c; setReady(true); }).catch((e) => setErr(String(e?.message || e)));
    }, []);
    if (err) return <p class="error" role="alert">{t('common.error', { message: err })}</p>;
    return Page ? <Page /> : <div aria-busy="true">{t('common.loading')}</div>;
  };
}
const Monitor = lazyPage(() => import('./pages/monitor').then((m) => m.Monitor));

const CONN_KEY: Record<ConnState, Key> = {
  live: 'conn.live', connecting: 'conn.connecting', reconnecting: 'conn.reconnecting', offline: 'conn.offline',
};

/* The state of the event stream; only this re-renders on the feed's events. */
function ConnBadge() {
  const { conn } = useFeed();
  return (
    <span class={`conn conn-${conn}`} data-testid="conn" role="status" title={t('conn.label')}>
      <span class="dot" aria-hidden="true" />{t(CONN_KEY[conn])}
    </span>
  );
}
