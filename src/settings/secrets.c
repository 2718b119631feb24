/* secrets.c - the routes of runtime secrets, their two-person changes,
 * the master-key rotation and project variables; see settings.h.
 *
 * Every change is one store job: its writes and its audit row in one
 * transaction, then the secrets and pending changes read back, which the
 * done callback puts in memory (so memory follows the store). Values are
 * sealed on the loop before the job (bound to name and scope; a pending
 * value to its change's id too) and opened only to reseal them (approve,
 * rotation) or for a task's tool call. The audit diff names the secret,
 * its scope and purpose, never the value.
 *
 * The rotation writes the new key to master.key.next, reseals every value
 * in one transaction, renames the file over master.key and swaps the key
 * in the shared box, all in its job; a crash in between is settled at the
 * next start (settings.c: recover_rotation). While it runs, other secret
 * changes are refused (409) so that none is sealed with the retiring key. */
#include "settings/internal.h"

#include "auth/auth.h"
#include "file/file.h"
#include "log/log.h"

#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VALUE_MAX   (64 * 1024)
#define PURPOSE_MAX 200

enum op {
    OP_PUT,
    OP_DELETE,
    OP_REQUEST,
    OP_APPROVE,
    OP_REJECT,
    OP_ROTATE,
    OP_VAR_PUT,
    OP_VAR_DELETE
};

struct sec_job {
    aos_settings_t *s;
    aos_http_req_t *req;
    enum op op;
    unsigned status; /* of the answer */
    char actor[64];
    json_t *in;     /* what to write: sealed values only */
    json_t *answer; /* on success */
    json_t *secrets, *changes;
    aos_secret_box_t *nb; /* OP_ROTATE: the new key */
    char *forget;         /* a deleted value, for on_secret(.., 0); guarded */
    char path[PATH_MAX];  /* OP_ROTATE: master.key */
    int counts[3];        /* OP_ROTATE: secrets, pending, registry values resealed */
};

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void job_closed(aos_http_req_t *req, int aborted, void *data)
{
    (void)req;
    (void)aborted;
    ((struct sec_job *)data)->req = NULL;
}

static json_t *audit_diff(const json_t *in)
{
    json_t *d = json_object();
    static const char *const keep[] = {"name",         "scope",      "purpose",    "id", "op",
                                       "requested_by", "project_id", "secret_ref", NULL};
    for (const char *const *k = keep; *k; k++) {
        const json_t *v = json_object_get(in, *k);
        if (v && !(json_is_string(v) && !json_string_length(v)))
            json_object_set(d, *k, (json_t *)v);
    }
    return d;
}

/* OP_ROTATE: reseals every value into j->nb. */
static int rotate_tx(aos_store_t *st, struct sec_job *j, aos_err_t *err)
{
    aos_secret_box_t *from = j->s->cfg.secrets;
    json_t *rows = NULL;
    size_t i;
    json_t *row;
    int rc = aos_store_secret_list(st, &rows, err);
    json_array_foreach(rows, i, row)
    {
        if (rc)
            break;
        char ad[160];
        size_t n = settings_ad(ad, sizeof(ad), str(row, "name"), str(row, "scope"));
        char *again = aos_secret_reseal(from, j->nb, str(row, "sealed"), ad, n);
        if (!again)
            rc = aos_err_set(err, AOS_EINTERNAL,
                             "runtime secret '%.64s' does not open; nothing was rotated",
                             str(row, "name"));
        else
            rc = aos_store_secret_reseal(st, str(row, "name"), again, err);
        free(again);
        j->counts[0]++;
    }
    json_decref(rows);
    rows = NULL;
    if (!rc)
        rc = aos_store_secret_change_list(st, &rows, err);
    json_array_foreach(rows, i, row)
    {
        if (rc)
            break;
        if (!str(row, "sealed"))
            continue;
        char ad[240];
        size_t n =
            settings_change_ad(ad, sizeof(ad), str(row, "id"), str(row, "name"), str(row, "scope"));
        char *again = aos_secret_reseal(from, j->nb, str(row, "sealed"), ad, n);
        if (!again)
            rc = aos_err_set(err, AOS_EINTERNAL,
                             "pending change '%.64s' does not open; nothing was rotated",
                             str(row, "id"));
        else
            rc = aos_store_secret_change_reseal(st, str(row, "id"), again, err);
        free(again);
        j->counts[1]++;
    }
    json_decref(rows);
    rows = NULL;
    /* the registry's sealed values: auth_token, config.env, config.headers */
    if (!rc)
        rc = aos_store_registry_list(st, &rows, err);
    json_array_foreach(rows, i, row)
    {
        if (rc)
            break;
        int changed = 0;
        const char *tok = str(row, "auth_token");
        if (tok && *tok) {
            char *again = aos_secret_reseal(from, j->nb, tok, NULL, 0);
            if (!again) {
                rc = aos_err_set(err, AOS_EINTERNAL,
                                 "the auth token of registry entry '%.64s' does not open; "
                                 "nothing was rotated",
                                 str(row, "name"));
                break;
            }
            json_object_set_new(row, "auth_token", json_string(again));
            free(again);
            changed = 1;
            j->counts[2]++;
        }
        static const char *const maps[] = {"env", "headers"};
        for (size_t m = 0; m < 2 && !rc; m++) {
            json_t *obj = json_object_get(json_object_get(row, "config"), maps[m]);
            const char *k;
            json_t *v;
            json_object_foreach(obj, k, v)
            {
                if (!json_is_string(v) || strncmp(json_string_value(v), "v1:", 3))
                    continue;
                char *again = aos_secret_reseal(from, j->nb, json_string_value(v), NULL, 0);
                if (!again) {
                    rc = aos_err_set(err, AOS_EINTERNAL,
                                     "'%s.%s' of registry entry '%.64s' does not open; nothing "
                                     "was rotated",
                                     maps[m], k, str(row, "name"));
                    break;
                }
                json_object_set_new(obj, k, json_string(again));
                free(again);
                changed = 1;
                j->counts[2]++;
            }
        }
        if (!rc && changed)
            rc = aos_store_registry_put(st, row, err);
    }
    json_decref(rows);
    return rc;
}

static int job_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct sec_job *j = arg;
    const json_t *in = j->in;
    int rc = 0;
    char res[128];
    const char *action = "";
    snprintf(res, sizeof(res), "secret:%s", str(in, "name") ? str(in, "name") : "");
    switch (j->op) {
    case OP_PUT:
        action = json_is_true(json_object_get(in, "exists")) ? "secret.rotate" : "secret.create";
        rc = aos_store_secret_put(st, str(in, "name"), str(in, "scope"), str(in, "purpose"),
                                  str(in, "sealed"), j->actor, err);
        break;
    case OP_DELETE:
        action = "secret.delete";
        rc = aos_store_secret_delete(st, str(in, "name"), err);
        break;
    case OP_REQUEST:
        action = "secret.change.request";
        rc = aos_store_secret_change_put(st, str(in, "id"), str(in, "op"), str(in, "name"),
                                         str(in, "scope"), str(in, "purpose"), str(in, "sealed"),
                                         j->actor, err);
        break;
    case OP_APPROVE:
        action = "secret.change.approve";
        if (!strcmp(str(in, "op"), "put"))
            rc = aos_store_secret_put(st, str(in, "name"), str(in, "scope"), str(in, "purpose"),
                                      str(in, "sealed"), str(in, "requested_by"), err);
        else if ((rc = aos_store_secret_delete(st, str(in, "name"), err)) == AOS_ENOTFOUND)
            rc = 0; /* gone meanwhile: nothing left to delete */
        if (!rc)
            rc = aos_store_secret_change_delete(st, str(in, "id"), err);
        break;
    case OP_REJECT:
        action = "secret.change.reject";
        rc = aos_store_secret_change_delete(st, str(in, "id"), err);
        break;
    case OP_ROTATE:
        action = "secret.master_key.rotate";
        snprintf(res, sizeof(res), "secret:*");
        rc = rotate_tx(st, j, err);
        break;
    case OP_VAR_PUT:
        action = "project.var.put";
        snprintf(res, sizeof(res), "project:%s", str(in, "project_id"));
        rc = aos_store_project_var_put(st, str(in, "id"), str(in, "project_id"), str(in, "name"),
                                       str(in, "scope"), str(in, "purpose"), str(in, "secret_ref"),
                                       err);
        break;
    case OP_VAR_DELETE:
        action = "project.var.delete";
        snprintf(res, sizeof(res), "project:%s", str(in, "project_id"));
        rc = aos_store_project_var_delete(st, str(in, "project_id"), str(in, "name"), err);
        break;
    }
    if (rc)
        return rc;
    json_t *diff = audit_diff(in);
    if (j->op == OP_ROTATE)
        json_object_set_new(diff, "resealed",
                            json_pack("{s:i, s:i, s:i}", "secrets", j->counts[0], "pending",
                                      j->counts[1], "registry_values", j->counts[2]));
    rc = aos_store_audit_append(st, j->actor, action, res, diff, err);
    json_decref(diff);
    return rc;
}

static int job_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct sec_job *j = arg;
    char next[PATH_MAX + 8];
    int rc;
    if (j->op == OP_ROTATE) {
        snprintf(next, sizeof(next), "%s.next", j->path);
        if ((rc = aos_secret_box_save(j->nb, next, err)))
            return rc;
    }
    rc = aos_store_tx(st, job_tx, arg, err);
    if (j->op == OP_ROTATE) {
        if (rc) {
            unlink(next);
            return rc;
        }
        aos_err_t rerr = {0, ""};
        if (aos_file_rename(next, j->path, &rerr) != 0)
            /* the store holds the new key's values: the next start finishes */
            aos_log_error("settings", "%s; the next start will", aos_err_msg(&rerr));
        /* swapped here, right after the commit, so that whatever is sealed
         * from now on uses the new key */
        aos_secret_box_swap(j->s->cfg.secrets, j->nb);
        j->nb = NULL;
    }
    if (!rc)
        rc = aos_store_secret_list(st, &j->secrets, err);
    if (!rc)
        rc = aos_store_secret_change_list(st, &j->changes, err);
    return rc;
}

static void job_free(struct sec_job *j)
{
    if (j->req)
        aos_http_on_close(j->req, NULL, NULL);
    json_decref(j->in);
    json_decref(j->answer);
    json_decref(j->secrets);
    json_decref(j->changes);
    aos_secret_box_free(j->nb);
    aos_secret_wipe(j->forget);
    free(j);
}

static void job_done(int status, const aos_err_t *err, void *arg)
{
    struct sec_job *j = arg;
    aos_settings_t *s = j->s;
    if (j->op == OP_ROTATE)
        s->rotating = 0;
    if (status) {
        if (status != AOS_ENOTFOUND)
            aos_log_error("settings", "%s", aos_err_msg(err));
        if (j->req)
            aos_http_respond_err(j->req, err);
        job_free(j);
        return;
    }
    if (j->secrets) {
        settings_load_rows(s, j->secrets, j->changes);
        j->secrets = j->changes = NULL;
    }
    if (j->forget && s->cfg.on_secret)
        s->cfg.on_secret(j->forget, 0, s->cfg.data);
    if ((j->op == OP_PUT || j->op == OP_DELETE || j->op == OP_APPROVE) && str(j->in, "name") &&
        s->cfg.on_secret_change) {
        int deleted =
            j->op == OP_DELETE ||
            (j->op == OP_APPROVE && !strcmp(str(j->in, "op") ? str(j->in, "op") : "", "delete"));
        s->cfg.on_secret_change(str(j->in, "name"), deleted, s->cfg.data);
    }
    /* a new value of the LLM's key reaches the client at once */
    const char *key = json_string_value(json_object_get(s->effective, "llm.api_key_secret"));
    if ((j->op == OP_PUT || j->op == OP_APPROVE) && key && str(j->in, "name") &&
        !strcmp(key, str(j->in, "name")) && s->cfg.apply)
        s->cfg.apply("llm", 0, s->cfg.data);
    if (j->op == OP_ROTATE) {
        json_object_set_new(j->answer, "resealed",
                            json_pack("{s:i, s:i, s:i}", "secrets", j->counts[0], "pending",
                                      j->counts[1], "registry_values", j->counts[2]));
        aos_log_info("settings",
                     "master key rotated by %s: %d secret(s), %d pending, %d registry "
                     "value(s) resealed",
                     j->actor, j->counts[0], j->counts[1], j->counts[2]);
    }
    if (j->req)
        aos_http_respond_json(j->req, j->status, json_incref(j->answer));
    job_free(j);
}

static struct sec_job *job_new(aos_settings_t *s, aos_http_req_t *req, enum op op)
{
    struct sec_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->s = s;
    j->req = req;
    j->op = op;
    j->status = 200;
    settings_actor(req, j->actor, sizeof(j->actor));
    return j;
}

static int job_submit(struct sec_job *j)
{
    aos_http_on_close(j->req, job_closed, j);
    int rc = aos_store_submit(j->s->cfg.store, job_run, job_done, j);
    if (rc) {
        aos_http_req_t *req = j->req;
        if (j->op == OP_ROTATE)
            j->s->rotating = 0;
        job_free(j);
        return aos_http_respond_error(req, rc, "unable to save the change");
    }
    return 0;
}

static json_t *secret_view(const char *name, const json_t *row)
{
    return json_pack("{s:s, s:O, s:O, s:O, s:O, s:O}", "name", name, "scope",
                     json_object_get(row, "scope"), "purpose", json_object_get(row, "purpose"),
                     "created_by", json_object_get(row, "created_by"), "created_at",
                     json_object_get(row, "created_at"), "last_rotated",
                     json_object_get(row, "last_rotated"));
}

static json_t *change_view(const char *id, const json_t *row)
{
    return json_pack("{s:s, s:O, s:O, s:O, s:O, s:O, s:O}", "id", id, "op",
                     json_object_get(row, "op"), "name", json_object_get(row, "name"), "scope",
                     json_object_get(row, "scope"), "purpose", json_object_get(row, "purpose"),
                     "requested_by", json_object_get(row, "requested_by"), "created_at",
                     json_object_get(row, "created_at"));
}

static int route_list(aos_http_req_t *req, void *data)
{
    aos_settings_t *s = data;
    json_t *list = json_array();
    const char *name;
    json_t *row;
    json_object_foreach(s->secrets, name, row) json_array_append_new(list, secret_view(name, row));
    return aos_http_respond_json(req, 200,
                                 json_pack("{s:o, s:b, s:i}", "secrets", list, "two_person",
                                           s->two_person, "pending",
                                           (int)json_object_size(s->changes)));
}

/* "system" or "project:<id>" */
static int scope_ok(const char *scope)
{
    if (!scope)
        return 0;
    if (!strcmp(scope, "system"))
        return 1;
    return !strncmp(scope, "project:", 8) && aos_settings_name_ok(scope + 8);
}

static int refuse_while_rotating(aos_settings_t *s, aos_http_req_t *req)
{
    if (!s->rotating)
        return 0;
    aos_http_respond_error(req, AOS_ECONFLICT,
                           "a master-key rotation is in progress; retry in a moment");
    return 1;
}

/* Checks {value, purpose, scope}; *value borrowed from body. */
static int put_body(const json_t *body, const char **value, size_t *len, const char **purpose,
                    const char **scope, aos_err_t *err)
{
    static const char *const known[] = {"value", "purpose", "scope", NULL};
    if (!json_is_object(body))
        return aos_err_set(err, AOS_EINVAL,
                           "the body must be a JSON object {value, purpose, scope}");
    int rc = settings_only_fields(body, known, "the secret", err);
    if (rc)
        return rc;
    const json_t *v = json_object_get(body, "value"), *p = json_object_get(body, "purpose"),
                 *sc = json_object_get(body, "scope");
    if (!json_is_string(v) || json_string_length(v) < 1 || json_string_length(v) > VALUE_MAX ||
        strlen(json_string_value(v)) != json_string_length(v))
        return aos_err_set(err, AOS_EINVAL,
                           "'value' must be a string of 1 to %d bytes without NUL (it is "
                           "write-only: never shown again)",
                           VALUE_MAX);
    if (p && !json_is_null(p) &&
        (!json_is_string(p) || json_string_length(p) > PURPOSE_MAX ||
         strlen(json_string_value(p)) != json_string_length(p)))
        return aos_err_set(err, AOS_EINVAL, "'purpose' must be a string of at most %d bytes",
                           PURPOSE_MAX);
    if (sc && !json_is_null(sc) && !scope_ok(json_string_value(sc)))
        return aos_err_set(err, AOS_EINVAL,
                           "'scope' must be \"system\" or \"project:<id>\" (id: 1 to 64 of "
                           "A-Z a-z 0-9 _ . -)");
    *value = json_string_value(v);
    *len = json_string_length(v);
    *purpose = json_string_value(p);
    *scope = sc && !json_is_null(sc) ? json_string_value(sc) : "system";
    return 0;
}

/* The llm.api_key_secret setting names it: its scope must stay system and
 * it must not be deleted. */
static int in_use(aos_settings_t *s, const char *name)
{
    const char *k = json_string_value(json_object_get(s->effective, "llm.api_key_secret"));
    const char *st = json_string_value(json_object_get(s->stored, "llm.api_key_secret"));
    return (k && !strcmp(k, name)) || (st && !strcmp(st, name));
}

static int route_put(aos_http_req_t *req, void *data)
{
    aos_settings_t *s = data;
    const char *name = aos_http_param(req, "name");
    aos_err_t err = {0, ""};
    if (!aos_settings_name_ok(name))
        return aos_http_respond_error(req, AOS_EINVAL,
                                      "a secret's name is 1 to 64 of A-Z a-z 0-9 _ . -");
    if (refuse_while_rotating(s, req))
        return 0;
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    const char *value = NULL, *purpose = NULL, *scope = "system";
    size_t len = 0;
    int rc = put_body(body, &value, &len, &purpose, &scope, &err);
    if (!rc && in_use(s, name) && strcmp(scope, "system"))
        rc = aos_err_set(&err, AOS_ECONFLICT,
                         "'%s' is llm.api_key_secret: its scope must stay system", name);
    struct sec_job *j = NULL;
    if (!rc && !(j = job_new(s, req, s->two_person ? OP_REQUEST : OP_PUT)))
        rc = aos_err_set(&err, AOS_ENOMEM, NULL);
    if (rc) {
        json_decref(body);
        return aos_http_respond_err(req, &err);
    }
    if (s->cfg.on_secret) /* known to the redactor before anything could print it */
        s->cfg.on_secret(value, 1, s->cfg.data);
    char ad[240], id[40] = "";
    size_t adn;
    if (j->op == OP_REQUEST) {
        settings_random_id(id, sizeof(id), "chg_");
        adn = settings_change_ad(ad, sizeof(ad), id, name, scope);
    } else {
        adn = settings_ad(ad, sizeof(ad), name, scope);
    }
    char *sealed = aos_secret_seal_ad(s->cfg.secrets, value, len, ad, adn);
    int exists = json_object_get(s->secrets, name) != NULL;
    j->in =
        json_pack("{s:s, s:s, s:s?, s:s?, s:b, s:s, s:s}", "name", name, "scope", scope, "purpose",
                  purpose, "sealed", sealed, "exists", exists, "op", "put", "id", id);
    free(sealed);
    if (!json_object_get(j->in, "sealed")) {
        json_decref(body);
        job_free(j);
        return aos_http_respond_error(req, AOS_EINTERNAL, "unable to seal the value");
    }
    if (j->op == OP_REQUEST) {
        j->status = 202;
        j->answer = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s}", "pending", id, "op", "put", "name",
                              name, "scope", scope, "purpose", purpose, "message",
                              "two-person rule: another Admin or Owner must approve this change "
                              "(POST /config/runtime/pending/<id>/approve)");
    } else {
        j->status = exists ? 200 : 201;
        j->answer = json_pack("{s:s, s:s, s:s?, s:b}", "name", name, "scope", scope, "purpose",
                              purpose, "created", !exists);
    }
    /* the plaintext's last copy in aosd's JSON, zeroed */
    sodium_memzero((char *)value, len);
    json_decref(body);
    return job_submit(j);
}

static int route_delete(aos_http_req_t *req, void *data)
{
    aos_settings_t *s = data;
    const char *name = aos_http_param(req, "name");
    const json_t *row = json_object_get(s->secrets, name);
    if (!row)
        return aos_http_respond_error(req, AOS_ENOTFOUND, "runtime secret '%.64s' not found", name);
    if (refuse_while_rotating(s, req))
        return 0;
    if (in_use(s, name))
        return aos_http_respond_error(
            req, AOS_ECONFLICT, "'%s' is llm.api_key_secret; change that setting first", name);
    struct sec_job *j = job_new(s, req, s->two_person ? OP_REQUEST : OP_DELETE);
    if (!j)
        return AOS_ENOMEM;
    char id[40] = "";
    if (j->op == OP_REQUEST)
        settings_random_id(id, sizeof(id), "chg_");
    j->in = json_pack("{s:s, s:O, s:s, s:s}", "name", name, "scope", json_object_get(row, "scope"),
                      "op", "delete", "id", id);
    if (j->op == OP_REQUEST) {
        j->status = 202;
        j->answer = json_pack("{s:s, s:s, s:s, s:s}", "pending", id, "op", "delete", "name", name,
                              "message",
                              "two-person rule: another Admin or Owner must approve this change "
                              "(POST /config/runtime/pending/<id>/approve)");
    } else {
        j->forget = settings_open_row(s, name, row, NULL);
        j->answer = json_pack("{s:s}", "deleted", name);
    }
    return job_submit(j);
}

static int route_pending(aos_http_req_t *req, void *data)
{
    aos_settings_t *s = data;
    json_t *list = json_array();
    const char *id;
    json_t *row;
    json_object_foreach(s->changes, id, row) json_array_append_new(list, change_view(id, row));
    return aos_http_respond_json(req, 200, json_pack("{s:o}", "pending", list));
}

static int decide(aos_http_req_t *req, aos_settings_t *s, int approve)
{
    const char *id = aos_http_param(req, "id");
    const json_t *row = json_object_get(s->changes, id);
    if (!row)
        return aos_http_respond_error(req, AOS_ENOTFOUND, "pending change '%.64s' not found", id);
    if (refuse_while_rotating(s, req))
        return 0;
    char actor[64];
    settings_actor(req, actor, sizeof(actor));
    const char *by = str(row, "requested_by");
    if (approve && by && !strcmp(by, actor))
        return aos_http_respond_error(req, AOS_EFORBIDDEN,
                                      "you requested this change: another Admin or Owner must "
                                      "approve it");
    struct sec_job *j = job_new(s, req, approve ? OP_APPROVE : OP_REJECT);
    if (!j)
        return AOS_ENOMEM;
    const char *op = str(row, "op"), *name = str(row, "name"), *scope = str(row, "scope");
    j->in =
        json_pack("{s:s, s:s, s:s, s:s?, s:O, s:s}", "id", id, "op", op, "name", name, "scope",
                  scope, "purpose", json_object_get(row, "purpose"), "requested_by", by ? by : "");
    if (approve && !strcmp(op, "put")) {
        char ad[240];
        size_t n = settings_change_ad(ad, sizeof(ad), id, name, scope);
        size_t len = 0;
        char *plain = aos_secret_open_ad(s->cfg.secrets, str(row, "sealed"), ad, n, &len);
        if (!plain) {
            job_free(j);
            return aos_http_respond_error(req, AOS_EINTERNAL,
                                          "pending change '%.64s' does not open (sealed for "
                                          "another row or key)",
                                          id);
        }
        n = settings_ad(ad, sizeof(ad), name, scope);
        char *sealed = aos_secret_seal_ad(s->cfg.secrets, plain, len, ad, n);
        if (s->cfg.on_secret)
            s->cfg.on_secret(plain, 1, s->cfg.data);
        aos_secret_wipe(plain);
        json_object_set_new(j->in, "sealed", sealed ? json_string(sealed) : json_null());
        free(sealed);
    } else if (approve) {
        const json_t *cur = json_object_get(s->secrets, name);
        if (cur)
            j->forget = settings_open_row(s, name, cur, NULL);
    }
    j->answer = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", id, "decision",
                          approve ? "approved" : "rejected", "op", op, "name", name, "requested_by",
                          by ? by : "", "decided_by", actor);
    return job_submit(j);
}

static int route_approve(aos_http_req_t *req, void *data)
{
    return decide(req, data, 1);
}

static int route_reject(aos_http_req_t *req, void *data)
{
    return decide(req, data, 0);
}

static int route_rotate(aos_http_req_t *req, void *data)
{
    aos_settings_t *s = data;
    if (s->cfg.master_key_from_flag)
        return aos_http_respond_error(req, AOS_ECONFLICT,
                                      "the master key comes from --master-key or AOS_MASTER_KEY: "
                                      "rotate it there (aosd cannot rewrite it)");
    if (s->rotating)
        return aos_http_respond_error(req, AOS_ECONFLICT, "a rotation is already in progress");
    struct sec_job *j = job_new(s, req, OP_ROTATE);
    aos_err_t err = {0, ""};
    if (!j)
        return AOS_ENOMEM;
    if (aos_secret_box_new(&j->nb, &err)) {
        job_free(j);
        return aos_http_respond_err(req, &err);
    }
    snprintf(j->path, sizeof(j->path), "%s/%s", s->cfg.data_dir, AOS_SECRET_KEY_FILE);
    j->in = json_object();
    j->answer = json_pack("{s:b}", "rotated", 1);
    s->rotating = 1;
    return job_submit(j);
}

/* ---- project variables ------------------------------------------------- */

struct var_list {
    aos_settings_t *s;
    aos_http_req_t *req;
    char project[80];
    json_t *rows;
};

static void var_list_closed(aos_http_req_t *req, int aborted, void *data)
{
    (void)req;
    (void)aborted;
    ((struct var_list *)data)->req = NULL;
}

static int var_list_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct var_list *v = arg;
    return aos_store_project_var_list(st, v->project, &v->rows, err);
}

static void var_list_done(int status, const aos_err_t *err, void *arg)
{
    struct var_list *v = arg;
    if (v->req) {
        aos_http_on_close(v->req, NULL, NULL);
        if (status) {
            aos_http_respond_err(v->req, err);
        } else {
            json_t *out = json_array();
            size_t i;
            json_t *r;
            json_array_foreach(v->rows, i, r) json_array_append_new(
                out,
                json_pack("{s:O, s:O, s:O, s:O, s:O}", "name", json_object_get(r, "name"), "scope",
                          json_object_get(r, "scope"), "purpose", json_object_get(r, "usage"),
                          "secret", json_object_get(r, "secret_ref"), "last_rotated",
                          json_object_get(r, "last_rotated")));
            aos_http_respond_json(v->req, 200,
                                  json_pack("{s:s, s:o}", "project_id", v->project, "vars", out));
        }
    }
    json_decref(v->rows);
    free(v);
}

static int route_vars_list(aos_http_req_t *req, void *data)
{
    aos_settings_t *s = data;
    const char *project = aos_http_param(req, "id");
    if (!aos_settings_name_ok(project))
        return aos_http_respond_error(req, AOS_EINVAL,
                                      "a project id is 1 to 64 of A-Z a-z 0-9 _ . -");
    struct var_list *v = calloc(1, sizeof(*v));
    if (!v)
        return AOS_ENOMEM;
    v->s = s;
    v->req = req;
    snprintf(v->project, sizeof(v->project), "%s", project);
    aos_http_on_close(req, var_list_closed, v);
    int rc = aos_store_submit(s->cfg.store, var_list_run, var_list_done, v);
    if (rc) {
        aos_http_on_close(req, NULL, NULL);
        free(v);
        return aos_http_respond_error(req, rc, "unable to list the variables");
    }
    return 0;
}

static int route_var_put(aos_http_req_t *req, void *data)
{
    aos_settings_t *s = data;
    const char *project = aos_http_param(req, "id"), *name = aos_http_param(req, "name");
    aos_err_t err = {0, ""};
    if (!aos_settings_name_ok(project))
        return aos_http_respond_error(req, AOS_EINVAL,
                                      "a project id is 1 to 64 of A-Z a-z 0-9 _ . -");
    json_t *env = json_pack("{s:{s:s}}", name, "secret", "x");
    int bad = aos_settings_env_check(env, &err);
    json_decref(env);
    if (bad)
        return aos_http_respond_error(req, AOS_EINVAL,
                                      "a variable's name is [A-Za-z_][A-Za-z0-9_]*, 1 to 128");
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    static const char *const known[] = {"secret", "purpose", "scope", NULL};
    const char *secret = str(body, "secret"), *purpose = str(body, "purpose"),
               *scope = str(body, "scope") ? str(body, "scope") : "project";
    const json_t *p = json_object_get(body, "purpose"), *sc = json_object_get(body, "scope");
    const json_t *row = secret ? json_object_get(s->secrets, secret) : NULL;
    char want[80];
    snprintf(want, sizeof(want), "project:%s", project);
    int rc = 0;
    if (!json_is_object(body))
        rc = aos_err_set(&err, AOS_EINVAL,
                         "the body must be a JSON object {secret, purpose, "
                         "scope}");
    else if ((rc = settings_only_fields(body, known, "the variable", &err)))
        ;
    else if (!aos_settings_name_ok(secret))
        rc = aos_err_set(&err, AOS_EINVAL, "'secret' must name a runtime secret");
    else if (!row || (strcmp(str(row, "scope"), "system") && strcmp(str(row, "scope"), want)))
        rc = aos_err_set(&err, AOS_EINVAL,
                         "'secret': no runtime secret '%.64s' of scope system or %s", secret, want);
    else if (p && !json_is_null(p) && (!json_is_string(p) || json_string_length(p) > PURPOSE_MAX))
        rc = aos_err_set(&err, AOS_EINVAL, "'purpose' must be a string of at most %d bytes",
                         PURPOSE_MAX);
    else if (sc && (!json_is_string(sc) || (strcmp(scope, "project") && strcmp(scope, "task"))))
        rc = aos_err_set(&err, AOS_EINVAL, "'scope' must be \"project\" or \"task\"");
    struct sec_job *j = NULL;
    if (!rc && !(j = job_new(s, req, OP_VAR_PUT)))
        rc = aos_err_set(&err, AOS_ENOMEM, NULL);
    if (rc) {
        json_decref(body);
        return aos_http_respond_err(req, &err);
    }
    char id[40];
    settings_random_id(id, sizeof(id), "var_");
    j->in = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s}", "id", id, "project_id", project, "name",
                      name, "scope", scope, "purpose", purpose, "secret_ref", secret);
    j->answer = json_pack("{s:s, s:s, s:s, s:s?, s:s}", "project_id", project, "name", name,
                          "scope", scope, "purpose", purpose, "secret", secret);
    json_decref(body);
    return job_submit(j);
}

static int route_var_delete(aos_http_req_t *req, void *data)
{
    aos_settings_t *s = data;
    const char *project = aos_http_param(req, "id"), *name = aos_http_param(req, "name");
    struct sec_job *j = job_new(s, req, OP_VAR_DELETE);
    if (!j)
        return AOS_ENOMEM;
    j->in = json_pack("{s:s, s:s}", "project_id", project, "name", name);
    j->answer = json_pack("{s:s, s:s}", "project_id", project, "deleted", name);
    return job_submit(j);
}

static const aos_http_route_t secret_routes[] = {
    {"GET", "/config/runtime", AOS_PERM_READ, route_list, 0, NULL},
    {"GET", "/config/runtime/pending", AOS_PERM_ADMIN, route_pending, 0, NULL},
    {"POST", "/config/runtime/rotate-master-key", AOS_PERM_OWNER, route_rotate, 0, NULL},
    {"POST", "/config/runtime/pending/:id/approve", AOS_PERM_ADMIN, route_approve, 0, NULL},
    {"POST", "/config/runtime/pending/:id/reject", AOS_PERM_ADMIN, route_reject, 0, NULL},
    {"PUT", "/config/runtime/:name", AOS_PERM_ADMIN, route_put, 128 << 10, "secret:{name}"},
    {"DELETE", "/config/runtime/:name", AOS_PERM_ADMIN, route_delete, 0, "secret:{name}"},
    {"GET", "/projects/:id/vars", AOS_PERM_READ, route_vars_list, 0, "project:{id}"},
    {"PUT", "/projects/:id/vars/:name", AOS_PERM_ADMIN, route_var_put, 16 << 10, "project:{id}"},
    {"DELETE", "/projects/:id/vars/:name", AOS_PERM_ADMIN, route_var_delete, 0, "project:{id}"},
};

int settings_add_secret_routes(aos_settings_t *s, aos_http_t *http)
{
    return aos_http_add_routes(http, secret_routes,
                               sizeof(secret_routes) / sizeof(secret_routes[0]), s);
}
