// blueprints.tsx - the list of R2 blueprints (/api/memory/blueprints): a
// project filter, one line per blueprint (name, project, current version)
// and a "new" button for an operator. Two pages show it: Memory's
// Blueprints tab (each edited as JSON) and the Projects page's SOP editor
// (sop.tsx, edited step by step); each page loads the list itself (it
// reloads it after a save) and says what opening one does. The test ids
// are the page's own (`ids`), so each page's tests find its list.
import { t } from './i18n';
import { can } from './perm';
import { Err } from './ui';

export type BlueprintRow = { id: number; project_id: string; name: string; version: number; current_version?: number };

export function BlueprintList({ title, project, setProject, list, err, open, onOpen, onNew, ids }: {
  title?: string;
  project: string;
  setProject: (p: string) => void;
  list: BlueprintRow[] | undefined;
  err: string;
  open: number | 'new' | null;
  onOpen: (id: number) => void;
  onNew: () => void;
  ids: { list: string; add: string; project?: string };
}) {
  return (
    <section class="panel">
      {title && <h2>{title}</h2>}
      <label>{t('mem.project')}<input class="mono" value={project} placeholder={t('mem.project.all')}
        onChange={(e) => setProject((e.target as HTMLInputElement).value.trim())} data-testid={ids.project} /></label>
      <Err msg={err} />
      {list && (list.length === 0 ? <p class="muted">{t('common.none')}</p> : (
        <ul class="list" data-testid={ids.list}>
          {list.map((b) => (
            <li key={b.id} class={open === b.id ? 'active' : ''} data-blueprint={b.name}>
              <button type="button" class="link" onClick={() => onOpen(b.id)} aria-current={open === b.id}>{b.name}</button>
              <div class="small muted">{b.project_id} · v{b.current_version ?? b.version}</div>
            </li>
          ))}
        </ul>
      ))}
      {can('operate') && <button type="button" onClick={onNew} data-testid={ids.add}>{t('mem.bp.new')}</button>}
    </section>
  );
}
