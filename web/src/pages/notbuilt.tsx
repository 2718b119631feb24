// notbuilt.tsx - the honest panel of a page not built yet (issue 19):
// the issue whose API it waits for, if any, and what it will hold. No
// made-up data.
import { t } from '../i18n';

export function NotBuilt({ title, issue, items }: { title: string; issue?: number; items: string }) {
  return (
    <section class="panel notbuilt" aria-labelledby="nb-title">
      <h1 id="nb-title">{t('todo.title', { page: title })}</h1>
      <p>{t('todo.body')}</p>
      {issue && <p>{t('todo.api', { issue })}</p>}
      <p>{t('todo.items')} {items}</p>
    </section>
  );
}
