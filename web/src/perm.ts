// perm.ts - what the signed-in principal may do, for hiding or disabling
// what it may not (the API refuses it anyway). Roles are a ladder (viewer
// < operator < admin < owner, docs/RBAC.md); a principal may also hold
// grants: a role on a resource pattern (`tool:ev__*`, `project:p1`, `*`),
// or a custom role (a named set of those: /auth/me's effective_grants).
// can(level, resource) is true when the ladder role reaches the level, or
// a grant of a high enough role has a pattern matching the resource; with
// no resource named, any grant of that role counts (the API decides which
// resources). Patterns: `*` matches any run of characters, as on the server.
export type Level = 'read' | 'operate' | 'admin';

const RANK: Record<string, number> = { none: 0, viewer: 1, operator: 2, admin: 3, owner: 4 };
const NEED: Record<Level, number> = { read: 1, operate: 2, admin: 3 };

let me: any = null;

export function setPrincipal(p: any) { me = p; }
export function principal(): any { return me; }

function glob(pattern: string, s: string): boolean {
  const re = new RegExp('^' + pattern.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
  return re.test(s);
}

export function can(level: Level, resource?: string): boolean {
  if (!me) return false;
  const role = typeof me.role === 'string' ? me.role : 'none';
  if ((RANK[role] ?? 0) >= NEED[level]) return true;
  // effective_grants: the grants' rights with custom roles expanded (/auth/me)
  const grants: any[] = Array.isArray(me.effective_grants) ? me.effective_grants
    : Array.isArray(me.grants) ? me.grants : [];
  return grants.some((g) => (RANK[g?.role] ?? 0) >= NEED[level]
    && (resource === undefined || typeof g?.resource !== 'string' || glob(g.resource, resource)));
}
