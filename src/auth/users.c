/* users.c - users, logins and browser sessions: GET/POST /auth/users,
 * PATCH/DELETE /auth/users/:id, POST /auth/login, POST /auth/logout, the
 * TOTP routes under /auth/users/:id/totp, and the session cookie that the
 * authorizer (auth.c) accepts; see auth.h and docs/RBAC.md.
 *
 * Passwords are hashed and checked with crypto_pwhash_str (Argon2id,
 * interactive limits: ~64 MiB and tens of ms) on libuv's thread pool,
 * never on the loop; at most HASH_RUNNING run at once and HASH_WAITING
 * wait (past that, 503). A login for a name nobody has, or a disabled
 * user, hashes the password all the same, so the answer and its timing
 * are those of a wrong password.
 *
 * A change is validated on the loop, hashed if it sets a password, then
 * written by a store job in one transaction with its audit row; the job
 * reads users, tokens and grants back and the done callback applies them
 * (memory follows the store), then ends the sessions it must (logout, a
 * user disabled, deleted or given a new password), closing their open
 * streams at once.
 *
 * Sessions: the cookie holds a random secret (32 bytes, base64url); the
 * store and memory hold its BLAKE2b only. Each session has a principal of
 * its own (the user's role and grants), so ending one session closes its
 * streams and no other's. An ended session stays in memory until no
 * request holds its principal (checked when the sessions are swept, at
 * most once a SWEEP_MS, from the authorizer). Failed logins back off per
 * name and per client address (IPv6: its /64) with src/login's state
 * machine. Secrets (passwords, session secrets, CSRF tokens, TOTP
 * secrets and codes) are never logged, audited or put in an error. */
#include "auth/internal.h"
#include "isotime/isotime.h"
#include "log/log.h"
#include "login/login.h"
#include "secret/secret.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <sodium.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

#define HASH_RUNNING   2
#define HASH_WAITING   32
#define SWEEP_MS       60000
#define TOUCH_EVERY_MS 60000
#define BACKOFF_KEYS   100000
#define PASSWORD_MIN   8
#define PASSWORD_MAX   1024
#define USER_NAME_MAX  64
#define TOTP_KEY_LEN   20

typedef struct auth_session_s {
    char id[24]; /* "ses_" + 16 hex: names it in logs and the audit log */
    char hash[65];
    char user_id[40];
    int64_t created_ms, expires_ms, last_ms, saved_ms;
    int ended;
    aos_principal_t p;
} auth_session_t;

struct ujob;

typedef struct auth_users_s {
    uv_loop_t *loop;
    aos_secret_box_t *box;
    int64_t idle_ms, max_age_ms;
    int cookie_secure;
    aos_login_policy_t policy;
    json_t *rows;      /* the stored users, password hashes included: never answered */
    aos_map_t by_hash; /* session hash -> auth_session_t (ended ones too, until swept) */
    aos_map_t backoff; /* "u:<name>" / "a:<address>" -> aos_login_backoff_t */
    int64_t swept_ms;
    uint64_t freed;                     /* sweeps that freed sessions: a kept-alive slot's check */
    unsigned hashing;                   /* hash jobs on the thread pool */
    struct ujob *wait_head, *wait_tail; /* hash jobs waiting for a slot */
    unsigned waiting;
} auth_users_t;

/* ---- users in memory ------------------------------------------------------ */

static const json_t *user_by_id(const aos_auth_t *a, const char *id)
{
    size_t i;
    json_t *u;
    json_array_foreach(a->users ? a->users->rows : NULL, i, u)
    {
        if (!strcmp(json_string_value(json_object_get(u, "id")) ?: "", id))
            return u;
    }
    return NULL;
}

static const json_t *user_by_name(const aos_auth_t *a, const char *name)
{
    size_t i;
    json_t *u;
    json_array_foreach(a->users ? a->users->rows : NULL, i, u)
    {
        if (!strcmp(json_string_value(json_object_get(u, "name")) ?: "", name))
            return u;
    }
    return NULL;
}

static const char *ustr(const json_t *u, const char *k)
{
    return json_string_value(json_object_get(u, k));
}

static int ubool(const json_t *u, const char *k)
{
    return json_is_true(json_object_get(u, k));
}

static aos_role_t urole(const json_t *u)
{
    return aos_role_parse(ustr(u, "role"));
}

int auth_user_exists(const aos_auth_t *a, const char *id)
{
    return user_by_id(a, id) != NULL;
}

size_t auth_owner_users(const aos_auth_t *a, const char *except_id)
{
    size_t n = 0, i;
    json_t *u;
    json_array_foreach(a->users ? a->users->rows : NULL, i, u)
    {
        n += urole(u) == AOS_ROLE_OWNER && !ubool(u, "disabled") &&
             (!except_id || strcmp(ustr(u, "id") ?: "", except_id));
    }
    return n;
}

/* ---- sessions in memory ----------------------------------------------------- */

static void session_end(aos_auth_t *a, auth_session_t *s, const char *why)
{
    if (s->ended)
        return;
    s->ended = 1;
    size_t n = a->http ? aos_http_close_streams_of(a->http, &s->p) : 0;
    aos_log_info("auth", "session %s of user %s ended (%s); %zu open stream(s) closed", s->id,
                 s->user_id, why, n);
}

/* Builds s's principal from its user's row and grants. */
static void session_build(aos_auth_t *a, auth_session_t *s, const json_t *u)
{
    aos_principal_t *p = &s->p;
    aos_auth_principal_release(p);
    snprintf(p->id, sizeof(p->id), "%s", s->user_id);
    snprintf(p->kind, sizeof(p->kind), "user");
    snprintf(p->name, sizeof(p->name), "%s", ustr(u, "name") ?: "");
    p->base_role = p->role = urole(u);
    p->expires_ms = s->expires_ms;
    char who[48];
    snprintf(who, sizeof(who), "user:%s", s->user_id);
    size_t i;
    json_t *g;
    json_array_foreach(a->grants, i, g)
    {
        if (!strcmp(ustr(g, "principal") ?: "", who))
            auth_principal_apply(a, p, g);
    }
}

void auth_users_rebuild(aos_auth_t *a)
{
    auth_users_t *U = a->users;
    if (!U)
        return;
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&U->by_hash, &it, NULL, NULL, &v)) {
        auth_session_t *s = v;
        if (s->ended)
            continue;
        const json_t *u = user_by_id(a, s->user_id);
        if (!u)
            session_end(a, s, "user deleted");
        else if (ubool(u, "disabled"))
            session_end(a, s, "user disabled");
        else
            session_build(a, s, u);
    }
}

static void session_free(auth_session_t *s)
{
    aos_auth_principal_release(&s->p);
    free(s);
}

static auth_session_t *session_add(aos_auth_t *a, const char *id, const char *user_id,
                                   const char *hash, int64_t created_ms, int64_t expires_ms,
                                   int64_t last_ms)
{
    auth_users_t *U = a->users;
    const json_t *u = user_by_id(a, user_id);
    auth_session_t *s = calloc(1, sizeof(*s));
    if (!s || !u)
        return free(s), NULL;
    snprintf(s->id, sizeof(s->id), "%s", id);
    snprintf(s->hash, sizeof(s->hash), "%s", hash);
    snprintf(s->user_id, sizeof(s->user_id), "%s", user_id);
    s->created_ms = created_ms;
    s->expires_ms = expires_ms;
    s->last_ms = s->saved_ms = last_ms;
    if (aos_map_put(&U->by_hash, s->hash, s)) {
        free(s);
        return NULL;
    }
    session_build(a, s, u);
    return s;
}

/* Forgets ended and expired sessions no request holds, and back-off keys
 * with nothing to keep; purges old session rows. At most once a SWEEP_MS. */
static int purge_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    return aos_store_session_purge(st, arg, err);
}

static void purge_done(int status, const aos_err_t *err, void *arg)
{
    if (status)
        aos_log_warn("auth", "unable to purge old sessions: %s", aos_err_msg(err));
    free(arg);
}

static void sweep(aos_auth_t *a, int64_t now)
{
    auth_users_t *U = a->users;
    /* when the back-off keys are at their cap, once a second */
    if (now - U->swept_ms < (aos_map_count(&U->backoff) < BACKOFF_KEYS ? SWEEP_MS : 1000))
        return;
    U->swept_ms = now;
    size_t n = aos_map_count(&U->by_hash) + aos_map_count(&U->backoff), k = 0;
    char **gone = calloc(n ? n : 1, sizeof(*gone));
    if (!gone)
        return;
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    const char *key;
    void *v;
    while (aos_map_iter_next(&U->by_hash, &it, &key, NULL, &v)) {
        auth_session_t *s = v;
        if (!s->ended && (now >= s->expires_ms || now - s->last_ms >= U->idle_ms))
            session_end(a, s, "expired");
        if (s->ended && !(a->http && aos_http_principal_in_use(a->http, &s->p)))
            gone[k++] = s->hash;
    }
    if (k)
        U->freed++;
    for (size_t i = 0; i < k; i++)
        session_free(aos_map_del(&U->by_hash, gone[i]));
    k = 0;
    aos_map_iter_init(&it);
    while (aos_map_iter_next(&U->backoff, &it, &key, NULL, &v))
        if (aos_login_backoff_idle(v, &U->policy, (uint64_t)now))
            gone[k++] = (char *)key;
    for (size_t i = 0; i < k; i++)
        free(aos_map_del(&U->backoff, gone[i]));
    free(gone);
    char *before = malloc(32);
    if (!before)
        return;
    aos_isotime_fmt(now - 24 * 3600 * 1000LL, before);
    if (aos_store_submit(a->store, purge_run, purge_done, before))
        free(before);
}

/* ---- the session cookie ------------------------------------------------------ */

struct touch {
    char id[24];
    char at[32];
};

static int touch_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct touch *t = arg;
    return aos_store_session_touch(st, t->id, t->at, err);
}

static void touch_done(int status, const aos_err_t *err, void *arg)
{
    if (status)
        aos_log_warn("auth", "unable to record a session's last use: %s", aos_err_msg(err));
    free(arg);
}

static int session_secret(aos_http_req_t *req, char secret[AOS_LOGIN_SECRET_LEN + 2])
{
    return aos_login_cookie_get(aos_http_header(req, "Cookie"), AOS_LOGIN_COOKIE, secret,
                                AOS_LOGIN_SECRET_LEN + 2);
}

/* What a kept-alive connection's last session cookie was: its secret (to
 * compare in constant time) and its session, so that the next request
 * with the same cookie skips hashing it and looking the hash up, as the
 * bearer token's slot does (auth.c). The session is checked on every
 * request all the same (ended by logout, its user disabled or deleted,
 * idle, expired: at once); the pointer is trusted only while no sweep has
 * freed sessions since it was taken. Wiped when the connection closes. */
typedef struct {
    aos_http_conn_slot_t base;
    auth_session_t *s;
    uint64_t freed;
    char secret[AOS_LOGIN_SECRET_LEN];
} session_slot_t;

static void session_slot_release(aos_http_conn_slot_t *slot)
{
    sodium_memzero(slot, sizeof(session_slot_t));
    free(slot);
}

/* The session of secret (AOS_LOGIN_SECRET_LEN bytes), or NULL. */
static auth_session_t *session_lookup(auth_users_t *U, aos_http_req_t *req, const char *secret)
{
    aos_http_conn_slot_t *slot = aos_http_conn_slot(req);
    session_slot_t *ss =
        slot && slot->release == session_slot_release ? (session_slot_t *)slot : NULL;
    if (ss && ss->freed == U->freed && sodium_memcmp(ss->secret, secret, AOS_LOGIN_SECRET_LEN) == 0)
        return ss->s;
    char hash[65];
    aos_secret_token_hash(secret, hash);
    auth_session_t *s = aos_map_get(&U->by_hash, hash);
    if (!s)
        return NULL;
    if (!ss && (ss = malloc(sizeof(*ss)))) {
        ss->base.release = session_slot_release;
        if (aos_http_set_conn_slot(req, &ss->base)) {
            free(ss);
            ss = NULL;
        }
    }
    if (ss) {
        ss->s = s;
        ss->freed = U->freed;
        memcpy(ss->secret, secret, AOS_LOGIN_SECRET_LEN);
    }
    return s;
}

int auth_session_principal(aos_auth_t *a, aos_http_req_t *req, aos_principal_t **out,
                           aos_err_t *err)
{
    auth_users_t *U = a->users;
    char secret[AOS_LOGIN_SECRET_LEN + 2];
    int r = U ? session_secret(req, secret) : 0;
    if (r == 0)
        return 1;
    int64_t now = aos_isotime_now_ms();
    sweep(a, now);
    int rc = 0;
    auth_session_t *s = NULL;
    if (r < 0 || strlen(secret) != AOS_LOGIN_SECRET_LEN) {
        rc = aos_err_set(err, AOS_EUNAUTH, "malformed session cookie: log in again");
        goto out;
    }
    s = session_lookup(U, req, secret);
    if (s && !s->ended && (now >= s->expires_ms || now - s->last_ms >= U->idle_ms))
        session_end(a, s, "expired");
    if (!s || s->ended) {
        rc = aos_err_set(err, AOS_EUNAUTH, "no session or the session has ended: log in again");
        goto out;
    }
    if (aos_login_method_unsafe(aos_http_method(req))) {
        const char *origin = aos_http_header(req, "Origin");
        if (!aos_login_origin_ok(origin, aos_http_header(req, "Host"),
                                 a->http && aos_http_is_tls(a->http))) {
            rc = aos_err_set(err, AOS_ECSRF,
                             "a request with the session cookie from another origin is refused");
            goto out;
        }
        if (aos_login_csrf_check(secret, aos_http_header(req, "X-CSRF-Token"))) {
            rc = aos_err_set(err, AOS_ECSRF,
                             "missing or wrong X-CSRF-Token header: send the csrf_token that "
                             "POST /auth/login and GET /auth/me give");
            goto out;
        }
    }
    s->last_ms = now;
    if (now - s->saved_ms >= TOUCH_EVERY_MS) {
        struct touch *t = calloc(1, sizeof(*t));
        if (t) {
            s->saved_ms = now;
            snprintf(t->id, sizeof(t->id), "%s", s->id);
            aos_isotime_fmt(now, t->at);
            if (aos_store_submit(a->store, touch_run, touch_done, t))
                free(t);
        }
    }
    *out = &s->p;
out:
    sodium_memzero(secret, sizeof(secret));
    return rc;
}

static auth_session_t *session_of(const aos_principal_t *p)
{
    if (!p || strcmp(p->kind, "user"))
        return NULL;
    return (auth_session_t *)(void *)((char *)p - offsetof(auth_session_t, p));
}

const aos_principal_t *auth_users_find(aos_auth_t *a, const char *user_id)
{
    auth_users_t *U = a->users;
    if (!U || !user_id)
        return NULL;
    int64_t now = aos_isotime_now_ms();
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&U->by_hash, &it, NULL, NULL, &v)) {
        const auth_session_t *s = v;
        if (!s->ended && now < s->expires_ms && now - s->last_ms < U->idle_ms &&
            !strcmp(s->user_id, user_id))
            return &s->p;
    }
    return NULL;
}

void auth_me_session(aos_auth_t *a, aos_http_req_t *req, json_t *me)
{
    auth_session_t *s = session_of(aos_auth_principal(req));
    char secret[AOS_LOGIN_SECRET_LEN + 2], csrf[AOS_LOGIN_CSRF_LEN + 1];
    if (!s || session_secret(req, secret) != 1)
        return;
    aos_login_csrf_token(secret, csrf);
    sodium_memzero(secret, sizeof(secret));
    const json_t *u = user_by_id(a, s->user_id);
    json_object_set_new(me, "csrf_token", json_string(csrf));
    json_object_set_new(me, "session",
                        json_pack("{s:s, s:o, s:o, s:b}", "id", s->id, "expires_at",
                                  auth_iso_or_null(s->expires_ms), "idle_expires_at",
                                  auth_iso_or_null(s->last_ms + a->users->idle_ms), "totp",
                                  u && ubool(u, "totp_enabled")));
    /* whether the user's two-factor is on: "My account" offers setting it
     * up or turning it off */
    json_object_set_new(me, "totp_enabled", json_boolean(u && ubool(u, "totp_enabled")));
    sodium_memzero(csrf, sizeof(csrf));
}

/* ---- jobs: hashing, then the store ------------------------------------------ */

enum uop {
    U_CREATE,
    U_UPDATE,
    U_DELETE,
    U_LOGIN,
    U_LOGOUT,
    U_TOTP_BEGIN,
    U_TOTP_CONFIRM,
    U_TOTP_DELETE,
    U_PASSWORD
};

struct ujob {
    aos_auth_t *a;
    aos_http_req_t *req; /* NULL once the client went away */
    enum uop op;
    char actor[64];
    char id[40]; /* the user's */
    char name[USER_NAME_MAX + 1];
    char role[16];
    int disabled; /* -1: keep */
    int end_sessions;
    char *password; /* wiped and freed once hashed or checked */
    size_t plen;
    char *new_password; /* U_PASSWORD: the new one (password is the current one) */
    size_t nlen;
    char *pw_hash; /* U_CREATE/U_UPDATE: the new hash; U_LOGIN: the stored one (NULL: none) */
    int verified;  /* U_LOGIN: the password matched */
    json_t *grants_add, *grants_del; /* [{id, principal, role, resource}], [id] */
    /* U_LOGIN */
    char client[64];
    char code[8]; /* the TOTP code sent, if any */
    char secret[AOS_LOGIN_SECRET_LEN + 1];
    char ses_id[24], ses_hash[65];
    int64_t expires_ms;
    int64_t totp_step;
    char *sealed; /* U_TOTP_BEGIN: the new secret, sealed */
    json_t *diff;
    json_t *answer;
    json_t *users_now;
    auth_rows_t now; /* tokens, grants and roles read back */
    uv_work_t work;
    struct ujob *next;
};

static void ujob_closed(aos_http_req_t *req, int aborted, void *data)
{
    (void)req;
    (void)aborted;
    ((struct ujob *)data)->req = NULL;
}

static void wipe_password(struct ujob *j)
{
    if (j->password) {
        sodium_memzero(j->password, j->plen);
        free(j->password);
        j->password = NULL;
    }
    if (j->new_password) {
        sodium_memzero(j->new_password, j->nlen);
        free(j->new_password);
        j->new_password = NULL;
    }
}

static void ujob_free(struct ujob *j)
{
    if (j->req)
        aos_http_on_close(j->req, NULL, NULL);
    wipe_password(j);
    free(j->pw_hash);
    free(j->sealed);
    sodium_memzero(j->secret, sizeof(j->secret));
    sodium_memzero(j->code, sizeof(j->code));
    json_decref(j->grants_add);
    json_decref(j->grants_del);
    json_decref(j->diff);
    json_decref(j->answer);
    json_decref(j->users_now);
    auth_rows_release(&j->now);
    free(j);
}

static struct ujob *ujob_new(aos_auth_t *a, aos_http_req_t *req, enum uop op)
{
    struct ujob *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->a = a;
    j->req = req;
    j->op = op;
    j->disabled = -1;
    aos_auth_actor(aos_auth_principal(req), j->actor, sizeof(j->actor));
    aos_http_on_close(req, ujob_closed, j);
    return j;
}

static void respond_err(struct ujob *j, int code, const char *fmt, const char *arg)
{
    if (j->req)
        aos_http_respond_error(j->req, code, fmt, arg);
}

static int ujob_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct ujob *j = arg;
    int rc = 0;
    char res[96];
    const char *action = "";
    snprintf(res, sizeof(res), "users/%s", j->id);
    switch (j->op) {
    case U_CREATE:
        action = "auth.user.create";
        rc = aos_store_user_create(st, j->id, j->name, j->role, j->pw_hash, j->actor, err);
        break;
    case U_UPDATE:
        action = "auth.user.update";
        rc = aos_store_user_update(st, j->id, j->name[0] ? j->name : NULL,
                                   j->role[0] ? j->role : NULL, j->disabled, j->pw_hash, err);
        break;
    case U_DELETE:
        action = "auth.user.delete";
        rc = aos_store_user_delete(st, j->id, err);
        break;
    case U_LOGIN:
        action = "auth.login";
        snprintf(res, sizeof(res), "auth_sessions/%s", j->ses_id);
        char exp[32];
        aos_isotime_fmt(j->expires_ms, exp);
        if (j->totp_step > 0)
            rc = aos_store_user_totp_step(st, j->id, j->totp_step, err);
        if (rc == 0)
            rc = aos_store_session_create(st, j->ses_id, j->id, j->ses_hash, exp, j->client, err);
        break;
    case U_LOGOUT:
        action = "auth.logout";
        snprintf(res, sizeof(res), "auth_sessions/%s", j->ses_id);
        rc = aos_store_session_end(st, j->ses_id, NULL, err);
        break;
    case U_TOTP_BEGIN:
        action = "auth.totp.begin";
        rc = aos_store_user_totp(st, j->id, j->sealed, 0, 0, err);
        break;
    case U_TOTP_CONFIRM:
        action = "auth.totp.enable";
        rc = aos_store_user_totp(st, j->id, j->sealed, 1, j->totp_step, err);
        break;
    case U_TOTP_DELETE:
        action = "auth.totp.disable";
        rc = aos_store_user_totp(st, j->id, NULL, 0, 0, err);
        break;
    case U_PASSWORD:
        action = "auth.password.change";
        rc = aos_store_user_update(st, j->id, NULL, NULL, -1, j->pw_hash, err);
        break;
    }
    if (rc == 0 && j->end_sessions && j->op != U_DELETE)
        rc = aos_store_session_end(st, NULL, j->id, err);
    size_t i;
    json_t *g;
    json_array_foreach(j->grants_del, i, g)
    {
        if (rc)
            break;
        rc = aos_store_grant_delete(st, json_string_value(g), err);
    }
    json_array_foreach(j->grants_add, i, g)
    {
        if (rc)
            break;
        rc = auth_store_grant_put(st, g, j->actor, err);
    }
    if (rc == 0)
        rc = aos_store_audit_append(st, j->actor, action, res, j->diff, err);
    return rc;
}

static int ujob_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct ujob *j = arg;
    int rc = aos_store_tx(st, ujob_tx, arg, err);
    if (j->op == U_LOGIN || j->op == U_LOGOUT)
        return rc; /* users, tokens and grants are as they were */
    if (rc == 0)
        rc = aos_store_user_list(st, &j->users_now, err);
    if (rc == 0)
        rc = auth_load_rows(st, &j->now, err);
    return rc;
}

static void apply_now(struct ujob *j)
{
    aos_auth_t *a = j->a;
    json_decref(a->users->rows);
    a->users->rows = j->users_now;
    j->users_now = NULL;
    auth_apply_rows(a, &j->now); /* rebuilds the sessions too */
}

static void end_user_sessions(aos_auth_t *a, const char *user_id, const char *why)
{
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&a->users->by_hash, &it, NULL, NULL, &v)) {
        auth_session_t *s = v;
        if (!strcmp(s->user_id, user_id))
            session_end(a, s, why);
    }
}

static void set_cookie(struct ujob *j, const char *value, long long max_age)
{
    if (!j->req)
        return;
    char c[256];
    int secure = j->a->users->cookie_secure || (j->a->http && aos_http_is_tls(j->a->http));
    if (aos_login_cookie_set(c, sizeof(c), AOS_LOGIN_COOKIE, value, max_age, secure) > 0)
        aos_http_add_header(j->req, "Set-Cookie", c);
    sodium_memzero(c, sizeof(c));
}

static void ujob_done(int status, const aos_err_t *err, void *arg)
{
    struct ujob *j = arg;
    aos_auth_t *a = j->a;
    if (status) {
        if (status != AOS_ENOTFOUND && status != AOS_ECONFLICT)
            aos_log_error("auth", "%s", aos_err_msg(err));
        if (j->req) {
            if (j->op == U_LOGIN && status == AOS_ECONFLICT)
                aos_http_respond_error(j->req, AOS_EUNAUTH, "wrong name, password or code");
            else
                aos_http_respond_err(j->req, err);
        }
        ujob_free(j);
        return;
    }
    if (j->op != U_LOGIN && j->op != U_LOGOUT)
        apply_now(j);
    switch (j->op) {
    case U_LOGIN: {
        json_t *u = (json_t *)user_by_id(a, j->id);
        if (u && j->totp_step > 0)
            json_object_set_new(u, "totp_last_step", json_integer(j->totp_step));
        int64_t now = aos_isotime_now_ms();
        auth_session_t *s = session_add(a, j->ses_id, j->id, j->ses_hash, now, j->expires_ms, now);
        if (!s) { /* the user was deleted meanwhile, or no memory */
            respond_err(j, u ? AOS_ENOMEM : AOS_EUNAUTH, "%s",
                        u ? "unable to start the session" : "wrong name or password");
            break;
        }
        aos_log_info("auth", "user %s logged in from %s (session %s)", j->id, j->client, s->id);
        set_cookie(j, j->secret, (a->users->max_age_ms + 999) / 1000);
        break;
    }
    case U_LOGOUT: {
        aos_map_iter_t it;
        aos_map_iter_init(&it);
        void *v;
        while (aos_map_iter_next(&a->users->by_hash, &it, NULL, NULL, &v))
            if (!strcmp(((auth_session_t *)v)->id, j->ses_id))
                session_end(a, v, "logged out");
        set_cookie(j, "", 0);
        break;
    }
    case U_PASSWORD:
        end_user_sessions(a, j->id, "password changed");
        set_cookie(j, "", 0);
        break;
    default:
        if (j->end_sessions)
            end_user_sessions(a, j->id,
                              j->op == U_DELETE  ? "user deleted"
                              : j->disabled == 1 ? "user disabled"
                                                 : "password changed");
        break;
    }
    if (j->req && !aos_http_answered(j->req))
        aos_http_respond_json(j->req, j->op == U_CREATE ? 201 : 200, json_incref(j->answer));
    ujob_free(j);
}

static void ujob_store(struct ujob *j)
{
    aos_err_t err = {0, ""};
    if (aos_store_submit(j->a->store, ujob_run, ujob_done, j)) {
        aos_err_set(&err, AOS_EUNAVAIL, "unable to save: aosd is stopping");
        ujob_done(AOS_EUNAVAIL, &err, j);
    }
}

/* -- hashing on the thread pool -- */

static void login_checked(struct ujob *j);
static void login_failed(struct ujob *j, int code, const char *msg);
static void hash_next(auth_users_t *U);

static void hash_work(uv_work_t *w)
{
    struct ujob *j = w->data;
    if (j->op == U_LOGIN) {
        if (j->pw_hash) {
            j->verified = crypto_pwhash_str_verify(j->pw_hash, j->password, j->plen) == 0;
        } else {
            /* nobody to check against: the same work, for the same timing */
            char dummy[crypto_pwhash_STRBYTES];
            if (crypto_pwhash_str(dummy, j->password, j->plen, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                  crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0)
                sodium_memzero(dummy, sizeof(dummy));
            j->verified = 0;
        }
        return;
    }
    const char *pw = j->password;
    size_t plen = j->plen;
    if (j->op == U_PASSWORD) {
        /* the current password first; then the new one is hashed */
        j->verified = j->pw_hash && crypto_pwhash_str_verify(j->pw_hash, pw, plen) == 0;
        if (!j->verified)
            return;
        free(j->pw_hash);
        j->pw_hash = NULL;
        pw = j->new_password;
        plen = j->nlen;
    }
    char *h = malloc(crypto_pwhash_STRBYTES);
    if (h && crypto_pwhash_str(h, pw, plen, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                               crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0)
        j->pw_hash = h;
    else
        free(h);
}

static void hash_after(uv_work_t *w, int status)
{
    struct ujob *j = w->data;
    auth_users_t *U = j->a->users;
    U->hashing--;
    wipe_password(j);
    hash_next(U);
    if (j->op == U_LOGIN) {
        if (status)
            j->verified = 0;
        login_checked(j);
        return;
    }
    if (j->op == U_PASSWORD && (status || !j->verified)) {
        login_failed(j, AOS_EFORBIDDEN, "the current password is wrong");
        return;
    }
    if (status || !j->pw_hash) {
        respond_err(j, AOS_ENOMEM, "%s", "unable to hash the password");
        ujob_free(j);
        return;
    }
    ujob_store(j);
}

static void hash_next(auth_users_t *U)
{
    while (U->hashing < HASH_RUNNING && U->wait_head) {
        struct ujob *j = U->wait_head;
        U->wait_head = j->next;
        if (!U->wait_head)
            U->wait_tail = NULL;
        U->waiting--;
        j->work.data = j;
        U->hashing++;
        if (uv_queue_work(U->loop, &j->work, hash_work, hash_after)) {
            U->hashing--;
            respond_err(j, AOS_EUNAVAIL, "%s", "unable to hash the password now");
            ujob_free(j);
        }
    }
}

/* Queues j for hashing: 0, or AOS_EUNAVAIL (answered, j freed) when too
 * many wait already. */
static int hash_submit(struct ujob *j)
{
    auth_users_t *U = j->a->users;
    if (U->waiting >= HASH_WAITING) {
        if (j->req) {
            aos_http_add_header(j->req, "Retry-After", "1");
            aos_http_respond_error(j->req, AOS_EUNAVAIL, "too many logins at once: try again");
        }
        ujob_free(j);
        return AOS_EUNAVAIL;
    }
    j->next = NULL;
    if (U->wait_tail)
        U->wait_tail->next = j;
    else
        U->wait_head = j;
    U->wait_tail = j;
    U->waiting++;
    hash_next(U);
    return 0;
}

/* ---- request bodies ----------------------------------------------------------- */

/* A user name: 1 to 64 of a-z 0-9 . _ - @ (lowercased). */
static int name_field(const json_t *v, char out[USER_NAME_MAX + 1], aos_err_t *err)
{
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    if (!s || n == 0 || n > USER_NAME_MAX || n != json_string_length(v))
        return aos_err_set(err, AOS_EINVAL, "'name' must be a string of 1 to %d characters",
                           USER_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = (char)tolower((unsigned char)s[i]);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '@'))
            return aos_err_set(err, AOS_EINVAL,
                               "'name' may have letters, digits, '.', '_', '-' and '@' only");
        out[i] = c;
    }
    out[n] = '\0';
    return 0;
}

static int password_field(const json_t *v, struct ujob *j, aos_err_t *err)
{
    const char *s = json_string_value(v);
    size_t n = s ? json_string_length(v) : 0;
    if (!s || n < PASSWORD_MIN || n > PASSWORD_MAX || strlen(s) != n)
        return aos_err_set(err, AOS_EINVAL, "'password' must be a string of %d to %d bytes",
                           PASSWORD_MIN, PASSWORD_MAX);
    if (!(j->password = malloc(n + 1)))
        return aos_err_set(err, AOS_ENOMEM, NULL);
    memcpy(j->password, s, n + 1);
    j->plen = n;
    return 0;
}

/* Wipes the password strings in a parsed body before it is freed. */
static void body_free(json_t *body)
{
    json_t *pw = json_object_get(body, "password");
    if (json_is_string(pw))
        sodium_memzero((char *)json_string_value(pw), json_string_length(pw));
    json_decref(body);
}

/* The grants of a request for principal who: checked, with new ids, into
 * j->grants_add; answer_out gets [{id, role, resource}]. */
static int grants_field(const aos_auth_t *a, const aos_principal_t *caller, const json_t *grants,
                        const char *who, struct ujob *j, json_t **answer_out, aos_err_t *err)
{
    *answer_out = json_array();
    if (!j->grants_add)
        j->grants_add = json_array();
    if (!json_is_array(grants) || json_array_size(grants) > AOS_AUTH_TOKEN_GRANTS_MAX)
        return aos_err_set(err, AOS_EINVAL,
                           "'grants' must be an array of at most %d {role, resource}",
                           AOS_AUTH_TOKEN_GRANTS_MAX);
    size_t i;
    json_t *g;
    json_array_foreach(grants, i, g)
    {
        const char *gr = NULL, *res = NULL;
        int rc = auth_grant_field(a, caller, g, i, &gr, &res, err);
        if (rc)
            return rc;
        char gid[40];
        auth_random_id(gid, sizeof(gid), "grt_");
        json_array_append_new(j->grants_add,
                              json_pack("{s:s, s:s, s:s, s:s}", "id", gid, "principal", who, "role",
                                        gr, "resource", res));
        json_array_append_new(*answer_out,
                              json_pack("{s:s, s:s, s:s}", "id", gid, "role", gr, "resource", res));
    }
    return 0;
}

static json_t *user_view(const aos_auth_t *a, const json_t *u)
{
    char who[48];
    snprintf(who, sizeof(who), "user:%s", ustr(u, "id"));
    size_t sessions = 0;
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&a->users->by_hash, &it, NULL, NULL, &v))
        sessions += !((auth_session_t *)v)->ended &&
                    !strcmp(((auth_session_t *)v)->user_id, ustr(u, "id") ?: "");
    return json_pack("{s:O, s:O, s:O, s:o, s:b, s:b, s:b, s:O, s:O, s:O, s:O, s:I}", "id",
                     json_object_get(u, "id"), "name", json_object_get(u, "name"), "role",
                     json_object_get(u, "role"), "grants", auth_grants_of(a, who), "disabled",
                     ubool(u, "disabled"), "has_password", ustr(u, "password_hash") != NULL,
                     "totp_enabled", ubool(u, "totp_enabled"), "created_by",
                     json_object_get(u, "created_by"), "created_at",
                     json_object_get(u, "created_at"), "updated_at",
                     json_object_get(u, "updated_at"), "password_changed_at",
                     json_object_get(u, "password_changed_at"), "sessions", (json_int_t)sessions);
}

/* ---- routes: users -------------------------------------------------------------- */

static int route_users_list(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    json_t *list = json_array();
    size_t i;
    json_t *u;
    json_array_foreach(a->users->rows, i, u) json_array_append_new(list, user_view(a, u));
    return aos_http_respond_json(req, 200, json_pack("{s:o}", "users", list));
}

static int route_users_create(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    const aos_principal_t *caller = aos_auth_principal(req);
    aos_err_t err = {0, ""};
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    static const char *const known[] = {"name", "password", "role", "grants", "disabled", NULL};
    int rc = 0;
    aos_role_t role = AOS_ROLE_NONE;
    struct ujob *j = ujob_new(a, req, U_CREATE);
    json_t *answer_grants = NULL;
    const json_t *dis = json_object_get(body, "disabled");
    if (!j)
        rc = aos_err_set(&err, AOS_ENOMEM, NULL);
    else if (!json_is_object(body))
        rc = aos_err_set(&err, AOS_EINVAL, "the body must be a JSON object");
    else if ((rc = auth_only_fields(body, known, "the user", &err)))
        ;
    else if ((rc = name_field(json_object_get(body, "name"), j->name, &err)))
        ;
    else if (user_by_name(a, j->name))
        rc = aos_err_set(&err, AOS_ECONFLICT, "a user named '%s' exists already", j->name);
    else if (json_object_get(body, "role") &&
             (rc = auth_role_field(json_object_get(body, "role"), 1, "'role'", &role, &err)))
        ;
    else if (dis && !json_is_boolean(dis))
        rc = aos_err_set(&err, AOS_EINVAL, "'disabled' must be true or false");
    else if (!json_object_get(body, "password"))
        rc = aos_err_set(&err, AOS_EINVAL, "'password' is required");
    else if ((rc = password_field(json_object_get(body, "password"), j, &err)))
        ;
    else if (role != AOS_ROLE_NONE && aos_auth_check(caller, auth_perm_of_role(role), "system"))
        rc = aos_err_set(&err, AOS_EFORBIDDEN,
                         "you may not create a user with role '%s': it is more than yours",
                         aos_role_name(role));
    if (rc == 0) {
        auth_random_id(j->id, sizeof(j->id), "usr_");
        char who[48];
        snprintf(who, sizeof(who), "user:%s", j->id);
        const json_t *grants = json_object_get(body, "grants");
        if (grants)
            rc = grants_field(a, caller, grants, who, j, &answer_grants, &err);
        else
            answer_grants = json_array(), j->grants_add = json_array();
    }
    if (rc) {
        json_decref(answer_grants);
        if (j)
            ujob_free(j);
        body_free(body);
        return aos_http_respond_err(req, &err);
    }
    snprintf(j->role, sizeof(j->role), "%s", aos_role_name(role));
    j->disabled = json_is_true(dis);
    j->diff = json_pack("{s:s, s:s, s:O, s:b}", "name", j->name, "role", j->role, "grants",
                        j->grants_add, "disabled", j->disabled);
    j->answer =
        json_pack("{s:s, s:s, s:s, s:o, s:b, s:s}", "id", j->id, "name", j->name, "role", j->role,
                  "grants", answer_grants, "disabled", j->disabled, "created_by", j->actor);
    body_free(body);
    hash_submit(j);
    return 0;
}

/* Owners that stay if user id goes: enabled Owner users and Owner tokens
 * neither revoked nor expired. */
static size_t owners_besides(const aos_auth_t *a, const char *id)
{
    size_t n = auth_owner_users(a, id);
    int64_t now = aos_isotime_now_ms();
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&a->by_id, &it, NULL, NULL, &v)) {
        const aos_principal_t *p = v;
        n += !p->revoked && p->role == AOS_ROLE_OWNER && (!p->expires_ms || p->expires_ms > now);
    }
    return n;
}

/* May caller manage user u (not one above its own role)? */
static int may_manage(const aos_principal_t *caller, const json_t *u)
{
    return urole(u) <= caller->role;
}

static int route_users_update(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    const aos_principal_t *caller = aos_auth_principal(req);
    const char *id = aos_http_param(req, "id");
    const json_t *u = user_by_id(a, id);
    if (!u)
        return aos_http_respond_error(req, AOS_ENOTFOUND, "user '%.64s' not found", id);
    if (!may_manage(caller, u))
        return aos_http_respond_error(req, AOS_EFORBIDDEN,
                                      "you may not change a user with role '%s': it is more "
                                      "than yours",
                                      ustr(u, "role"));
    aos_err_t err = {0, ""};
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    static const char *const known[] = {"name", "password", "role", "grants", "disabled", NULL};
    int rc = 0;
    aos_role_t role = urole(u);
    struct ujob *j = ujob_new(a, req, U_UPDATE);
    json_t *answer_grants = NULL;
    const json_t *dis = json_object_get(body, "disabled"),
                 *grants = json_object_get(body, "grants");
    char who[48];
    snprintf(who, sizeof(who), "user:%s", id);
    if (!j)
        rc = aos_err_set(&err, AOS_ENOMEM, NULL);
    else if (!json_is_object(body))
        rc = aos_err_set(&err, AOS_EINVAL, "the body must be a JSON object");
    else if ((rc = auth_only_fields(body, known, "the user", &err)))
        ;
    else if (json_object_size(body) == 0)
        rc = aos_err_set(&err, AOS_EINVAL,
                         "nothing to change: send name, password, role, grants "
                         "or disabled");
    else if (json_object_get(body, "name") &&
             (rc = name_field(json_object_get(body, "name"), j->name, &err)))
        ;
    else if (j->name[0] && user_by_name(a, j->name) && user_by_name(a, j->name) != u)
        rc = aos_err_set(&err, AOS_ECONFLICT, "a user named '%s' exists already", j->name);
    else if (json_object_get(body, "role") &&
             (rc = auth_role_field(json_object_get(body, "role"), 1, "'role'", &role, &err)))
        ;
    else if (dis && !json_is_boolean(dis))
        rc = aos_err_set(&err, AOS_EINVAL, "'disabled' must be true or false");
    else if (json_object_get(body, "password") &&
             (rc = password_field(json_object_get(body, "password"), j, &err)))
        ;
    else if (role != AOS_ROLE_NONE && aos_auth_check(caller, auth_perm_of_role(role), "system"))
        rc = aos_err_set(&err, AOS_EFORBIDDEN, "you may not give role '%s': it is more than yours",
                         aos_role_name(role));
    if (rc == 0 && urole(u) == AOS_ROLE_OWNER && !ubool(u, "disabled") &&
        (role != AOS_ROLE_OWNER || json_is_true(dis)) && !owners_besides(a, id))
        rc = aos_err_set(&err, AOS_ECONFLICT,
                         "the last Owner cannot be demoted or disabled: make another first");
    if (rc == 0 && grants) {
        /* the new list replaces the old: the caller must hold both */
        j->grants_del = json_array();
        size_t i;
        json_t *g;
        json_array_foreach(a->grants, i, g)
        {
            if (strcmp(ustr(g, "principal") ?: "", who))
                continue;
            if (auth_may_give(a, caller, ustr(g, "role"), ustr(g, "resource"), "grants", &err) ==
                AOS_EFORBIDDEN) {
                rc = AOS_EFORBIDDEN;
                break;
            }
            json_array_append(j->grants_del, json_object_get(g, "id"));
        }
        if (rc == 0)
            rc = grants_field(a, caller, grants, who, j, &answer_grants, &err);
    }
    if (rc) {
        json_decref(answer_grants);
        if (j)
            ujob_free(j);
        body_free(body);
        return aos_http_respond_err(req, &err);
    }
    snprintf(j->id, sizeof(j->id), "%s", id);
    if (json_object_get(body, "role"))
        snprintf(j->role, sizeof(j->role), "%s", aos_role_name(role));
    if (dis)
        j->disabled = json_is_true(dis);
    j->end_sessions = j->password != NULL || j->disabled == 1;
    j->diff = json_object();
    if (j->name[0])
        json_object_set_new(j->diff, "name", json_string(j->name));
    if (j->role[0])
        json_object_set_new(j->diff, "role", json_string(j->role));
    if (dis)
        json_object_set_new(j->diff, "disabled", json_boolean(j->disabled));
    if (j->password)
        json_object_set_new(j->diff, "password", json_string("changed"));
    if (grants)
        json_object_set(j->diff, "grants", j->grants_add);
    j->answer = json_pack("{s:s, s:b}", "id", id, "updated", 1);
    if (answer_grants)
        json_object_set_new(j->answer, "grants", answer_grants);
    body_free(body);
    if (j->password)
        hash_submit(j);
    else
        ujob_store(j);
    return 0;
}

static int route_users_delete(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    const aos_principal_t *caller = aos_auth_principal(req);
    const char *id = aos_http_param(req, "id");
    const json_t *u = user_by_id(a, id);
    if (!u)
        return aos_http_respond_error(req, AOS_ENOTFOUND, "user '%.64s' not found", id);
    if (!may_manage(caller, u))
        return aos_http_respond_error(req, AOS_EFORBIDDEN,
                                      "you may not delete a user with role '%s': it is more "
                                      "than yours",
                                      ustr(u, "role"));
    if (urole(u) == AOS_ROLE_OWNER && !ubool(u, "disabled") && !owners_besides(a, id))
        return aos_http_respond_error(req, AOS_ECONFLICT,
                                      "the last Owner cannot be deleted: make another first");
    struct ujob *j = ujob_new(a, req, U_DELETE);
    if (!j)
        return AOS_ENOMEM;
    snprintf(j->id, sizeof(j->id), "%s", id);
    j->end_sessions = 1;
    j->diff = json_pack("{s:O}", "name", json_object_get(u, "name"));
    j->answer = json_pack("{s:s}", "deleted", id);
    ujob_store(j);
    return 0;
}

/* ---- routes: login, logout ------------------------------------------------------ */

/* The back-off key of a client address: the address, an IPv6 one as its /64. */
static void addr_key(const char *peer, char *out, size_t cap)
{
    unsigned char b[16];
    if (peer && inet_pton(AF_INET6, peer, b) == 1 &&
        !(b[0] == 0 && b[10] == 0xff && b[11] == 0xff)) {
        memset(b + 8, 0, 8);
        char txt[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, b, txt, sizeof(txt));
        snprintf(out, cap, "a:%s/64", txt);
        return;
    }
    snprintf(out, cap, "a:%s", peer ? peer : "?");
}

static aos_login_backoff_t *backoff_get(auth_users_t *U, const char *key, int create)
{
    aos_login_backoff_t *b = aos_map_get(&U->backoff, key);
    if (b || !create || aos_map_count(&U->backoff) >= BACKOFF_KEYS)
        return b;
    if (!(b = calloc(1, sizeof(*b))))
        return NULL;
    if (aos_map_put(&U->backoff, key, b)) {
        free(b);
        return NULL;
    }
    return b;
}

static void login_failed(struct ujob *j, int code, const char *msg)
{
    auth_users_t *U = j->a->users;
    uint64_t now = (uint64_t)aos_isotime_now_ms();
    char ukey[USER_NAME_MAX + 4], akey[96];
    snprintf(ukey, sizeof(ukey), "u:%s", j->name);
    addr_key(j->client, akey, sizeof(akey));
    const char *keys[] = {ukey, akey};
    for (int i = 0; i < 2; i++) {
        aos_login_backoff_t *b = backoff_get(U, keys[i], 1);
        if (b && aos_login_backoff_fail(b, &U->policy, now))
            aos_log_warn("auth", "login: %s locked for %llu s after %u failed logins",
                         i ? "the address" : "a user name",
                         (unsigned long long)U->policy.lock_ms / 1000, b->failures);
    }
    aos_log_warn("auth", "failed %s from %s", j->op == U_LOGIN ? "login" : "password check",
                 j->client);
    respond_err(j, code, "%s", msg);
    ujob_free(j);
}

/* After the password was checked (loop thread). */
static void login_checked(struct ujob *j)
{
    aos_auth_t *a = j->a;
    const json_t *u = user_by_id(a, j->id);
    /* the user may have changed while the hash ran: the same one or nothing */
    int same = u && j->pw_hash && !strcmp(ustr(u, "password_hash") ?: "", j->pw_hash);
    if (!j->verified || !same || ubool(u, "disabled")) {
        login_failed(j, AOS_EUNAUTH, "wrong name or password");
        return;
    }
    if (ubool(u, "totp_enabled")) {
        if (!j->code[0]) {
            /* the password was right: ask for the code (not a failure) */
            respond_err(j, AOS_EUNAUTH, "%s",
                        "a TOTP code is required: send 'totp' with the password");
            ujob_free(j);
            return;
        }
        size_t klen = 0;
        char *key = aos_secret_open(a->users->box, ustr(u, "totp_secret"), &klen);
        int64_t step = 0;
        int ok = key && aos_login_totp_verify(
                            (const uint8_t *)key, klen, j->code, aos_isotime_now_ms() / 1000,
                            json_integer_value(json_object_get(u, "totp_last_step")), &step) == 0;
        aos_secret_wipe(key);
        if (!ok) {
            login_failed(j, AOS_EUNAUTH, "wrong name, password or code");
            return;
        }
        j->totp_step = step;
    }
    /* a success forgets the name's failures and the address's */
    char ukey[USER_NAME_MAX + 4], akey[96];
    snprintf(ukey, sizeof(ukey), "u:%s", j->name);
    addr_key(j->client, akey, sizeof(akey));
    const char *keys[] = {ukey, akey};
    for (int i = 0; i < 2; i++) {
        aos_login_backoff_t *b = backoff_get(a->users, keys[i], 0);
        if (b)
            aos_login_backoff_ok(b);
    }
    /* the session: a random secret for the cookie, its hash kept */
    unsigned char raw[32];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(j->secret, sizeof(j->secret), raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    aos_secret_token_hash(j->secret, j->ses_hash);
    auth_random_id(j->ses_id, sizeof(j->ses_id), "ses_");
    int64_t now = aos_isotime_now_ms();
    j->expires_ms = now + a->users->max_age_ms;
    char csrf[AOS_LOGIN_CSRF_LEN + 1];
    aos_login_csrf_token(j->secret, csrf);
    snprintf(j->actor, sizeof(j->actor), "user:%s", j->id);
    j->diff = json_pack("{s:s, s:b}", "client", j->client, "totp", j->totp_step > 0);
    j->answer = json_pack("{s:{s:s, s:s, s:s}, s:s, s:o, s:I}", "user", "id", j->id, "name",
                          j->name, "role", ustr(u, "role"), "csrf_token", csrf, "expires_at",
                          auth_iso_or_null(j->expires_ms), "idle_timeout_s",
                          (json_int_t)(a->users->idle_ms / 1000));
    sodium_memzero(csrf, sizeof(csrf));
    ujob_store(j);
}

/* ms the name and the address of a login (or password check) must wait. */
static uint64_t backoff_wait(auth_users_t *U, const char *name, const char *client, uint64_t now)
{
    char ukey[USER_NAME_MAX + 4], akey[96];
    snprintf(ukey, sizeof(ukey), "u:%s", name);
    addr_key(client, akey, sizeof(akey));
    const char *keys[] = {ukey, akey};
    uint64_t wait = 0;
    for (int i = 0; i < 2; i++) {
        aos_login_backoff_t *b = backoff_get(U, keys[i], 0);
        uint64_t w = b ? aos_login_backoff_wait(b, now) : 0;
        wait = w > wait ? w : wait;
    }
    if (wait == 0 && aos_map_count(&U->backoff) >= BACKOFF_KEYS)
        wait = 1000; /* too many keys to track: nobody new may try now */
    return wait;
}

static int respond_wait(aos_http_req_t *req, uint64_t wait)
{
    char ra[24];
    snprintf(ra, sizeof(ra), "%llu", (unsigned long long)((wait + 999) / 1000));
    aos_http_add_header(req, "Retry-After", ra);
    return aos_http_respond_error(req, AOS_ERATE, "too many failed attempts: try again in %s s",
                                  ra);
}

static int route_login(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    auth_users_t *U = a->users;
    aos_err_t err = {0, ""};
    if (!aos_login_origin_ok(aos_http_header(req, "Origin"), aos_http_header(req, "Host"),
                             a->http && aos_http_is_tls(a->http)))
        return aos_http_respond_error(req, AOS_ECSRF, "a login from another origin is refused");
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    static const char *const known[] = {"name", "password", "totp", NULL};
    struct ujob *j = ujob_new(a, req, U_LOGIN);
    int rc = 0;
    const json_t *pw = json_object_get(body, "password"), *code = json_object_get(body, "totp");
    if (!j)
        rc = aos_err_set(&err, AOS_ENOMEM, NULL);
    else if (!json_is_object(body))
        rc = aos_err_set(&err, AOS_EINVAL, "the body must be a JSON object");
    else if ((rc = auth_only_fields(body, known, "the login", &err)))
        ;
    else if ((rc = name_field(json_object_get(body, "name"), j->name, &err)))
        ;
    else if (!json_is_string(pw) || json_string_length(pw) == 0 ||
             json_string_length(pw) > PASSWORD_MAX ||
             strlen(json_string_value(pw)) != json_string_length(pw))
        rc = aos_err_set(&err, AOS_EINVAL, "'password' must be a string of 1 to %d bytes",
                         PASSWORD_MAX);
    else if (code && (!json_is_string(code) || json_string_length(code) != 6))
        rc = aos_err_set(&err, AOS_EINVAL, "'totp' must be a string of 6 digits");
    if (rc) {
        if (j)
            ujob_free(j);
        body_free(body);
        return aos_http_respond_err(req, &err);
    }
    snprintf(j->client, sizeof(j->client), "%s", aos_http_peer(req) ?: "?");
    if (code)
        snprintf(j->code, sizeof(j->code), "%s", json_string_value(code));
    /* back-off: the name's and the address's, whoever asks */
    uint64_t now = (uint64_t)aos_isotime_now_ms();
    sweep(a, (int64_t)now);
    uint64_t wait = backoff_wait(U, j->name, j->client, now);
    if (wait) {
        ujob_free(j);
        body_free(body);
        return respond_wait(req, wait);
    }
    const json_t *u = user_by_name(a, j->name);
    if (u) {
        snprintf(j->id, sizeof(j->id), "%s", ustr(u, "id"));
        if (ustr(u, "password_hash") && !(j->pw_hash = strdup(ustr(u, "password_hash")))) {
            ujob_free(j);
            body_free(body);
            return AOS_ENOMEM;
        }
    }
    size_t n = json_string_length(pw);
    if (!(j->password = malloc(n + 1))) {
        ujob_free(j);
        body_free(body);
        return AOS_ENOMEM;
    }
    memcpy(j->password, json_string_value(pw), n + 1);
    j->plen = n;
    body_free(body);
    hash_submit(j);
    return 0;
}

/* POST /auth/password {current, password}: a logged-in user's own. */
static int route_password(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    auth_session_t *s = session_of(aos_auth_principal(req));
    if (!s)
        return aos_http_respond_error(req, AOS_EINVAL,
                                      "for a browser session: an Admin sets a user's password with "
                                      "PATCH /auth/users/:id");
    const json_t *u = user_by_id(a, s->user_id);
    if (!u)
        return aos_http_respond_error(req, AOS_EUNAUTH, "no such user");
    aos_err_t err = {0, ""};
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    static const char *const known[] = {"current", "password", NULL};
    struct ujob *j = ujob_new(a, req, U_PASSWORD);
    const json_t *cur = json_object_get(body, "current");
    int rc = 0;
    if (!j)
        rc = aos_err_set(&err, AOS_ENOMEM, NULL);
    else if (!json_is_object(body))
        rc = aos_err_set(&err, AOS_EINVAL, "the body must be a JSON object");
    else if ((rc = auth_only_fields(body, known, "the password change", &err)))
        ;
    else if (!json_is_string(cur) || json_string_length(cur) == 0 ||
             json_string_length(cur) > PASSWORD_MAX ||
             strlen(json_string_value(cur)) != json_string_length(cur))
        rc = aos_err_set(&err, AOS_EINVAL, "'current' must be the current password");
    else
        rc = password_field(json_object_get(body, "password"), j, &err);
    if (rc == 0) {
        /* password_field put the new one in j->password: move it over */
        j->new_password = j->password;
        j->nlen = j->plen;
        j->plen = json_string_length(cur);
        if (!(j->password = malloc(j->plen + 1)) ||
            !(j->pw_hash = strdup(ustr(u, "password_hash") ?: "")))
            rc = aos_err_set(&err, AOS_ENOMEM, NULL);
        else
            memcpy(j->password, json_string_value(cur), j->plen + 1);
    }
    if (json_is_string(cur))
        sodium_memzero((char *)json_string_value(cur), json_string_length(cur));
    body_free(body);
    if (rc) {
        if (j)
            ujob_free(j);
        return aos_http_respond_err(req, &err);
    }
    snprintf(j->id, sizeof(j->id), "%s", s->user_id);
    snprintf(j->name, sizeof(j->name), "%s", ustr(u, "name") ?: "");
    snprintf(j->client, sizeof(j->client), "%s", aos_http_peer(req) ?: "?");
    uint64_t now = (uint64_t)aos_isotime_now_ms();
    uint64_t wait = backoff_wait(a->users, j->name, j->client, now);
    if (wait) {
        ujob_free(j);
        return respond_wait(req, wait);
    }
    j->end_sessions = 1;
    j->diff = json_pack("{s:s}", "password", "changed");
    j->answer = json_pack("{s:b}", "changed", 1);
    hash_submit(j);
    return 0;
}

static int route_logout(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    auth_session_t *s = session_of(aos_auth_principal(req));
    if (!s)
        return aos_http_respond_error(req, AOS_EINVAL,
                                      "logout ends a browser session; a token is revoked with "
                                      "DELETE /auth/tokens/:id");
    struct ujob *j = ujob_new(a, req, U_LOGOUT);
    if (!j)
        return AOS_ENOMEM;
    snprintf(j->id, sizeof(j->id), "%s", s->user_id);
    snprintf(j->ses_id, sizeof(j->ses_id), "%s", s->id);
    j->answer = json_pack("{s:b}", "logged_out", 1);
    ujob_store(j);
    return 0;
}

/* ---- routes: TOTP ------------------------------------------------------------------ */

/* The caller's own user (a session of user :id), or an answered error. */
static const json_t *self_user(aos_auth_t *a, aos_http_req_t *req)
{
    const aos_principal_t *p = aos_auth_principal(req);
    const char *id = aos_http_param(req, "id");
    const json_t *u = user_by_id(a, id);
    if (!u) {
        aos_http_respond_error(req, AOS_ENOTFOUND, "user '%.64s' not found", id);
        return NULL;
    }
    if (!session_of(p) || strcmp(p->id, id)) {
        aos_http_respond_error(req, AOS_EFORBIDDEN,
                               "only the user, logged in, may enrol a TOTP authenticator");
        return NULL;
    }
    return u;
}

static int route_totp_begin(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    const json_t *u = self_user(a, req);
    if (!u)
        return 0;
    if (ubool(u, "totp_enabled"))
        return aos_http_respond_error(req, AOS_ECONFLICT,
                                      "TOTP is on already: DELETE it first to enrol again");
    uint8_t key[TOTP_KEY_LEN];
    randombytes_buf(key, sizeof(key));
    char b32[40], uri[256];
    aos_login_base32(key, sizeof(key), b32, sizeof(b32));
    struct ujob *j = ujob_new(a, req, U_TOTP_BEGIN);
    if (!j || !(j->sealed = aos_secret_seal(a->users->box, (const char *)key, sizeof(key)))) {
        sodium_memzero(key, sizeof(key));
        sodium_memzero(b32, sizeof(b32));
        if (j)
            ujob_free(j);
        return AOS_ENOMEM;
    }
    sodium_memzero(key, sizeof(key));
    snprintf(uri, sizeof(uri),
             "otpauth://totp/AOS:%s?secret=%s&issuer=AOS&algorithm=SHA1&digits=6&period=30",
             ustr(u, "name"), b32);
    snprintf(j->id, sizeof(j->id), "%s", ustr(u, "id"));
    /* the secret is in this answer only */
    j->answer = json_pack("{s:s, s:s, s:s}", "secret", b32, "uri", uri, "next",
                          "confirm with POST /auth/users/:id/totp/confirm {code}");
    sodium_memzero(b32, sizeof(b32));
    sodium_memzero(uri, sizeof(uri));
    ujob_store(j);
    return 0;
}

static int route_totp_confirm(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    const json_t *u = self_user(a, req);
    if (!u)
        return 0;
    aos_err_t err = {0, ""};
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    static const char *const known[] = {"code", NULL};
    int rc = 0;
    const char *code = json_string_value(json_object_get(body, "code"));
    if (!json_is_object(body))
        rc = aos_err_set(&err, AOS_EINVAL, "the body must be a JSON object");
    else if ((rc = auth_only_fields(body, known, "the confirmation", &err)))
        ;
    else if (!code || strlen(code) != 6)
        rc = aos_err_set(&err, AOS_EINVAL, "'code' must be a string of 6 digits");
    else if (ubool(u, "totp_enabled"))
        rc = aos_err_set(&err, AOS_ECONFLICT, "TOTP is on already");
    else if (!ustr(u, "totp_secret"))
        rc = aos_err_set(&err, AOS_ECONFLICT,
                         "no enrolment to confirm: POST /auth/users/:id/totp first");
    int64_t step = 0;
    if (rc == 0) {
        size_t klen = 0;
        char *key = aos_secret_open(a->users->box, ustr(u, "totp_secret"), &klen);
        int ok = key && aos_login_totp_verify((const uint8_t *)key, klen, code,
                                              aos_isotime_now_ms() / 1000, 0, &step) == 0;
        aos_secret_wipe(key);
        if (!ok)
            rc = aos_err_set(&err, AOS_EINVAL, "wrong code: check the authenticator's clock");
    }
    struct ujob *j = rc ? NULL : ujob_new(a, req, U_TOTP_CONFIRM);
    if (rc == 0 && (!j || !(j->sealed = strdup(ustr(u, "totp_secret")))))
        rc = aos_err_set(&err, AOS_ENOMEM, NULL);
    json_decref(body);
    if (rc) {
        if (j)
            ujob_free(j);
        return aos_http_respond_err(req, &err);
    }
    snprintf(j->id, sizeof(j->id), "%s", ustr(u, "id"));
    j->totp_step = step;
    j->answer = json_pack("{s:b}", "totp_enabled", 1);
    ujob_store(j);
    return 0;
}

static int route_totp_delete(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    const aos_principal_t *p = aos_auth_principal(req);
    const char *id = aos_http_param(req, "id");
    const json_t *u = user_by_id(a, id);
    if (!u)
        return aos_http_respond_error(req, AOS_ENOTFOUND, "user '%.64s' not found", id);
    int self = session_of(p) && !strcmp(p->id, id);
    if (!self && (aos_auth_check(p, AOS_PERM_ADMIN, "system") || !may_manage(p, u)))
        return aos_http_respond_error(req, AOS_EFORBIDDEN,
                                      "only the user or an Admin (at least the user's role) may "
                                      "turn TOTP off");
    struct ujob *j = ujob_new(a, req, U_TOTP_DELETE);
    if (!j)
        return AOS_ENOMEM;
    snprintf(j->id, sizeof(j->id), "%s", id);
    j->answer = json_pack("{s:b}", "totp_enabled", 0);
    ujob_store(j);
    return 0;
}

static const aos_http_route_t user_routes[] = {
    {"POST", "/auth/login", AOS_PERM_PUBLIC, route_login, 8 << 10, NULL},
    {"POST", "/auth/logout", AOS_PERM_ANY, route_logout, 0, NULL},
    {"POST", "/auth/password", AOS_PERM_ANY, route_password, 8 << 10, NULL},
    {"GET", "/auth/users", AOS_PERM_ADMIN, route_users_list, 0, NULL},
    {"POST", "/auth/users", AOS_PERM_ADMIN, route_users_create, 64 << 10, NULL},
    {"PATCH", "/auth/users/:id", AOS_PERM_ADMIN, route_users_update, 64 << 10, NULL},
    {"DELETE", "/auth/users/:id", AOS_PERM_ADMIN, route_users_delete, 0, NULL},
    {"POST", "/auth/users/:id/totp", AOS_PERM_ANY, route_totp_begin, 0, NULL},
    {"POST", "/auth/users/:id/totp/confirm", AOS_PERM_ANY, route_totp_confirm, 4 << 10, NULL},
    {"DELETE", "/auth/users/:id/totp", AOS_PERM_ANY, route_totp_delete, 0, NULL},
};

int auth_users_add_routes(aos_auth_t *a, aos_http_t *h)
{
    if (!a->users)
        return 0;
    return aos_http_add_routes(h, user_routes, sizeof(user_routes) / sizeof(user_routes[0]), a);
}

/* ---- start and stop ------------------------------------------------------------------ */

int aos_auth_login_start(aos_auth_t *a, const aos_auth_login_cfg_t *cfg, aos_err_t *err)
{
    auth_users_t *U = calloc(1, sizeof(*U));
    if (!U)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    U->loop = cfg->loop;
    U->box = cfg->box;
    U->idle_ms = (int64_t)(cfg->idle_s ? cfg->idle_s : 1800) * 1000;
    U->max_age_ms = (int64_t)(cfg->max_age_s ? cfg->max_age_s : 43200) * 1000;
    U->cookie_secure = cfg->cookie_secure;
    U->policy.free = 2;
    U->policy.lock_after = cfg->lockout_after ? cfg->lockout_after : 10;
    U->policy.lock_ms = (uint64_t)(cfg->lockout_s ? cfg->lockout_s : 900) * 1000;
    aos_map_init(&U->by_hash);
    aos_map_init(&U->backoff);
    a->users = U;
    json_t *sessions = NULL;
    char now[32];
    int64_t now_ms = aos_isotime_now_ms();
    aos_isotime_fmt(now_ms, now);
    int rc = aos_store_user_list(a->store, &U->rows, err);
    if (rc == 0)
        rc = aos_store_session_list(a->store, now, &sessions, err);
    if (rc)
        return rc; /* aos_auth_free releases U */
    size_t i;
    json_t *s;
    json_array_foreach(sessions, i, s)
    {
        int64_t last = auth_iso_ms(ustr(s, "last_seen_at"));
        const json_t *u = user_by_id(a, ustr(s, "user_id") ?: "");
        if (!u || ubool(u, "disabled") || now_ms - last >= U->idle_ms)
            continue;
        session_add(a, ustr(s, "id"), ustr(s, "user_id"), ustr(s, "session_hash"),
                    auth_iso_ms(ustr(s, "created_at")), auth_iso_ms(ustr(s, "expires_at")), last);
    }
    json_decref(sessions);
    aos_log_info("auth",
                 "%zu user(s), %zu open browser session(s); sessions end after %lld s idle "
                 "or %lld s",
                 json_array_size(U->rows), aos_map_count(&U->by_hash), (long long)U->idle_ms / 1000,
                 (long long)U->max_age_ms / 1000);
    return 0;
}

void auth_users_free(aos_auth_t *a)
{
    auth_users_t *U = a->users;
    if (!U)
        return;
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&U->by_hash, &it, NULL, NULL, &v))
        session_free(v);
    aos_map_iter_init(&it);
    while (aos_map_iter_next(&U->backoff, &it, NULL, NULL, &v))
        free(v);
    aos_map_release(&U->by_hash);
    aos_map_release(&U->backoff);
    /* hash jobs still waiting never started: their requests are gone */
    while (U->wait_head) {
        struct ujob *j = U->wait_head;
        U->wait_head = j->next;
        j->req = NULL;
        ujob_free(j);
    }
    json_decref(U->rows);
    free(U);
    a->users = NULL;
}
