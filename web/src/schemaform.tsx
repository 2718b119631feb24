// schemaform.tsx - the fields of a form generated from a JSON Schema's
// top-level properties, shared by the Integrations page's "try a tool" and
// the Projects page's SOP editor (a step's arguments).
//
// Controlled: `value` is the arguments object, `onChange` gets the next
// one. A field only ever changes its own key: a key never touched keeps
// its value exactly (the SOP editor's round trip), a field emptied removes
// its key. Widgets: a boolean a checkbox, an enum a select, a number or an
// integer a number box, a string a text box; anything else (objects,
// arrays, an untyped property with properties) JSON text, as is a value
// that does not fit its widget (a "${...}" reference in a boolean). With
// `refs` (the SOP editor) numbers are typed in a text box, so that a
// "${params.n}" reference may stand for one; arguments the schema does not
// declare are shown as JSON fields and more may be added by name.
import { useState } from 'preact/hooks';
import { t } from './i18n';

export type Args = Record<string, unknown>;

const typeOf = (p: any): string | undefined => (Array.isArray(p?.type) ? p.type.find((x: string) => x !== 'null') : p?.type);

/* The arguments a fresh form starts with: the schema's defaults. */
export function schemaDefaults(schema: any): Args {
  const out: Args = {};
  for (const [k, p] of Object.entries<any>(schema?.properties || {})) if (p && p.default !== undefined) out[k] = p.default;
  return out;
}

/* Does v fit the widget of property p (else it is shown as JSON)? */
function fits(p: any, v: unknown, refs: boolean): boolean {
  if (v === undefined) return true;
  const ty = typeOf(p);
  if (Array.isArray(p?.enum)) return p.enum.some((x: unknown) => x === v);
  if (ty === 'boolean') return typeof v === 'boolean';
  if (ty === 'number' || ty === 'integer') return typeof v === 'number' || (refs && typeof v === 'string' && v.includes('${'));
  if (ty === 'string' || (!ty && !p?.properties)) return typeof v === 'string';
  return false;
}

export function SchemaFields({ schema, value, onChange, idp, refs = false, readOnly = false, suggest }: {
  schema: any; value: Args; onChange: (v: Args) => void; idp: string; refs?: boolean; readOnly?: boolean;
  suggest?: string[]; // offered in text fields (the SOP editor: the references in scope)
}) {
  const props: Record<string, any> = schema?.properties || {};
  const required: string[] = Array.isArray(schema?.required) ? schema.required : [];
  const set = (k: string, v: unknown) => {
    const n: Args = { ...value };
    if (v === undefined) delete n[k]; else n[k] = v;
    onChange(n);
  };
  const extra = Object.keys(value).filter((k) => !(k in props));
  const [adding, setAdding] = useState('');
  const list = suggest?.length ? `${idp}-suggest` : undefined;
  return (
    <div class="schema-fields stack" data-testid={`${idp}-fields`}>
      {list && <datalist id={list}>{suggest!.map((x) => <option key={x} value={x} />)}</datalist>}
      {Object.entries(props).map(([k, p]) => (
        <Field key={k} name={k} p={p} required={required.includes(k)} v={value[k]} set={(v) => set(k, v)} id={`${idp}-${k}`} refs={refs} readOnly={readOnly} list={list} />
      ))}
      {extra.map((k) => (
        <div key={k} class="row">
          <Field name={k} p={{}} json required={false} v={value[k]} set={(v) => set(k, v)} id={`${idp}-${k}`} refs={refs} readOnly={readOnly} />
          {!readOnly && <button type="button" onClick={() => set(k, undefined)} aria-label={t('sf.remove', { name: k })}>{t('common.delete')}</button>}
        </div>
      ))}
      {refs && !readOnly && (
        <div class="row">
          <label>{t('sf.addarg')}<input value={adding} class="mono" onInput={(e) => setAdding((e.target as HTMLInputElement).value.trim())} data-testid={`${idp}-addname`} /></label>
          <button type="button" disabled={!adding || adding in value} onClick={() => { set(adding, ''); setAdding(''); }} data-testid={`${idp}-addarg`}>{t('sf.add')}</button>
        </div>
      )}
    </div>
  );
}

function Field({ name, p, required, v, set, id, refs, readOnly, json, list }: {
  name: string; p: any; required: boolean; v: unknown; set: (v: unknown) => void; id: string; refs: boolean; readOnly: boolean; json?: boolean; list?: string;
}) {
  const ty = typeOf(p);
  const label = `${name}${required ? ' *' : ''}`;
  const title = p?.description || undefined;
  if (!json && fits(p, v, refs)) {
    if (Array.isArray(p.enum)) {
      const i = p.enum.findIndex((x: unknown) => x === v);
      return (
        <label>{label}<select name={name} id={id} title={title} disabled={readOnly} value={i < 0 ? '' : String(i)}
          onChange={(e) => { const s = (e.target as HTMLSelectElement).value; set(s === '' ? undefined : p.enum[Number(s)]); }}>
          {(!required || i < 0) && <option value="">{t('sf.unset')}</option>}
          {p.enum.map((x: unknown, j: number) => <option key={j} value={String(j)}>{String(x)}</option>)}
        </select></label>
      );
    }
    if (ty === 'boolean') {
      return <label class="check"><input type="checkbox" name={name} id={id} title={title} disabled={readOnly} checked={v === true}
        onChange={(e) => set((e.target as HTMLInputElement).checked)} />{label}</label>;
    }
    if (ty === 'number' || ty === 'integer') {
      return <NumberBox name={name} label={label} id={id} title={title} v={v as number | string | undefined} set={set} integer={ty === 'integer'} refs={refs} required={required} readOnly={readOnly} />;
    }
    return <label>{label}<input name={name} id={id} title={title} required={required} readOnly={readOnly} class={refs ? 'mono' : ''} list={list}
      value={(v as string) ?? ''} onInput={(e) => { const s = (e.target as HTMLInputElement).value; set(s === '' ? undefined : s); }} /></label>;
  }
  return <JsonBox name={name} label={`${label} (${t('sf.json')})`} id={id} title={title} v={v} set={set} required={required} readOnly={readOnly} />;
}

/* A number, or with refs a "${...}" reference standing for one. */
export function NumberBox({ name, label, id, title, v, set, integer, refs, required, readOnly }: {
  name: string; label: string; id: string; title?: string; v: number | string | undefined; set: (v: unknown) => void; integer: boolean; refs: boolean; required: boolean; readOnly: boolean;
}) {
  const [text, setText] = useState(v === undefined ? '' : String(v));
  const bad = text.trim() !== '' && !Number.isFinite(Number(text)) && !(refs && text.includes('${'));
  const onInput = (e: Event) => {
    const s = (e.target as HTMLInputElement).value;
    setText(s);
    const x = s.trim();
    if (x === '') set(undefined);
    else if (Number.isFinite(Number(x))) set(Number(x));
    else if (refs && x.includes('${')) set(x);
  };
  if (!refs) {
    return <label>{label}<input type="number" name={name} id={id} title={title} step={integer ? 1 : 'any'} required={required} readOnly={readOnly} value={text} onInput={onInput} /></label>;
  }
  return (
    <label>{label}<input name={name} id={id} title={title} inputMode="decimal" class="mono" required={required} readOnly={readOnly} value={text} onInput={onInput} aria-invalid={bad} />
      {bad && <span class="error small">{t('sf.badnumber')}</span>}</label>
  );
}

/* Any JSON value as text; the value changes only when the text parses. */
export function JsonBox({ name, label, id, title, v, set, required = false, readOnly = false, rows = 3 }: {
  name: string; label: string; id: string; title?: string; v: unknown; set: (v: unknown) => void; required?: boolean; readOnly?: boolean; rows?: number;
}) {
  const [text, setText] = useState(v === undefined ? '' : JSON.stringify(v, null, 2));
  const [bad, setBad] = useState('');
  const onInput = (e: Event) => {
    const s = (e.target as HTMLTextAreaElement).value;
    setText(s);
    if (s.trim() === '') { setBad(''); set(undefined); return; }
    try { const x = JSON.parse(s); setBad(''); set(x); } catch (x: any) { setBad(x.message); }
  };
  return (
    <label>{label}<textarea name={name} id={id} title={title} rows={rows} class="mono" required={required} readOnly={readOnly} value={text} onInput={onInput} aria-invalid={!!bad} />
      {bad && <span class="error small" role="alert">{t('mcp.try.badjson', { message: bad })}</span>}</label>
  );
}
