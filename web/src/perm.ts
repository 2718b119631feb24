// perm.ts - what the signed-in principal may do, for hiding or disabling
// what it may not (the API refuses it anyway). Roles are a ladder (viewer
// < operator < admin < owner, docs/RBAC.md); a principal with grants on
// resource patterns may be allowed a narrower action on some resources,
// so then nothing is disabled and the API decides.
export type Level = 'read' | 'operate' | 'admin';

const RANK: Record<string, number> = { none: 0, viewer: 1, operator: 2, admin: 3, owner: 4 };
const NEED: Record<Level, number> = { read: 1, operate: 2, admin: 3 };

let me: any = null;

export function setPrincipal(p: any) { me = p; }

export function can(level: Level): boolean {
  if (!me) return false;
  if (Array.isArray(me.grants) && me.grants.length > 0) return true;
  const role = typeof me.role === 'string' ? me.role : 'none';
  return (RANK[role] ?? 0) >= NEED[level];
}
