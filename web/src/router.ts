// router.ts - client-side routes on the History API. aosd answers each
// page's path with index.html (src/api/api.c), so a reload or a shared link
// lands on the same page.
export type Page = 'chat' | 'monitor' | 'projects' | 'memory' | 'settings' | 'integrations' | 'agents';

// In the order of SPEC §2's navigation.
export const PAGES: { page: Page; path: string }[] = [
  { page: 'chat', path: '/' },
  { page: 'monitor', path: '/telemetry' },
  { page: 'projects', path: '/projects' },
  { page: 'memory', path: '/memory' },
  { page: 'settings', path: '/settings' },
  { page: 'integrations', path: '/integrations' },
  { page: 'agents', path: '/agents' },
];

export function pageOf(path: string): Page {
  const p = PAGES.find((x) => x.path === path.replace(/\/+$/, '') || (x.path === '/' && path === '/'));
  return p ? p.page : 'chat';
}

export function navigate(path: string) {
  if (location.pathname + location.search === path) return;
  history.pushState(null, '', path);
  window.dispatchEvent(new PopStateEvent('popstate'));
}
