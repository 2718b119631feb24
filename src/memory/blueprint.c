/* blueprint.c - R2 blueprints: reusable TaskSpec templates of a project
 * with parameters, versioned with diffs, instantiated into a TaskSpec.
 *
 *   GET  /api/memory/blueprints?project_id=      the current versions
 *   POST /api/memory/blueprints                  create (version 1)
 *   GET  /api/memory/blueprints/:id              the current version
 *   PUT  /api/memory/blueprints/:id              a new version, with its diff
 *   GET  /api/memory/blueprints/:id/versions     every version, oldest first
 *   POST /api/memory/blueprints/:id/instantiate  {params, version}: the TaskSpec
 *
 * A blueprint is {project_id, name, description, spec, params}: spec is a
 * TaskSpec whose strings may hold ${params.NAME}; params declares each
 * NAME as {description, default, required}. Instantiating replaces a
 * string that is exactly one reference by the value itself (any JSON) and
 * a reference inside a longer string by the value's text; an unknown
 * reference, an undeclared or a missing required parameter is a 400. The
 * result is a TaskSpec to submit with POST /api/run (which checks it, and
 * the submitter's rights, as any other).
 *
 * Rights as for items: Viewer on project:<id> reads and instantiates,
 * Operator creates and changes; a blueprint of a project the caller may not
 * read does not exist for it (404). Writes are one transaction each with
 * their audit row (memory.blueprint.create | update). A PUT reads the
 * current version, is authorized, then writes version + 1 only if the
 * current version is still the one it read (else 409). */
#include "memory/internal.h"

#include "log/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BP_SPEC_MAX   (256 << 10) /* bytes of spec as compact JSON */
#define BP_NAME_MAX   128
#define BP_DESC_MAX   2048
#define BP_PARAMS_MAX 64

enum bp_kind { BP_LIST, BP_CREATE, BP_GET, BP_UPDATE, BP_VERSIONS, BP_INSTANTIATE };

struct bp_job {
    aos_memory_t *m;
    aos_http_req_t *req; /* NULL once the client left */
    const aos_principal_t *who;
    enum bp_kind kind;
    char actor[80];
    int64_t id, version;
    char project[MEM_PROJECT_MAX + 1];
    json_t *in;  /* the checked body */
    json_t *row; /* read in a job */
    int phase;   /* BP_UPDATE: 1 once authorized */
};

static int may(const struct bp_job *j, aos_perm_t perm, const char *project)
{
    char res[MEM_PROJECT_MAX + 16];
    snprintf(res, sizeof(res), "project:%s", project ? project : "");
    return project && aos_auth_check(j->who, perm, res) == 0;
}

static void bp_closed(aos_http_req_t *req, int aborted, void *data)
{
    (void)req;
    (void)aborted;
    ((struct bp_job *)data)->req = NULL;
}

static void bp_free(struct bp_job *j)
{
    if (j->req)
        aos_http_on_close(j->req, NULL, NULL);
    json_decref(j->in);
    json_decref(j->row);
    free(j);
}

static void bp_answer(struct bp_job *j, unsigned status, json_t *body)
{
    if (j->req)
        aos_http_respond_json(j->req, status, body);
    else
        json_decref(body);
    bp_free(j);
}

static void bp_fail(struct bp_job *j, int code, const char *fmt, const char *arg)
{
    if (j->req)
        aos_http_respond_error(j->req, code, fmt, arg);
    bp_free(j);
}

/* ---- checks ----------------------------------------------------------------- */

static int name_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("._-", s[i])))
            return 0;
    return 1;
}

static int param_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* body: {project_id, name, description, spec, params} (create) or
 * {description, spec, params} (update). */
static int bp_check(const json_t *body, int create, json_t **out, aos_err_t *err)
{
    *out = NULL;
    if (!json_is_object(body))
        return aos_err_set(err, AOS_EINVAL, "the body must be a JSON object");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)body, k, v)
    {
        int ok = !strcmp(k, "description") || !strcmp(k, "spec") || !strcmp(k, "params") ||
                 (create && (!strcmp(k, "project_id") || !strcmp(k, "name")));
        if (!ok)
            return aos_err_set(err, AOS_EINVAL, "unknown field '%.64s' (fields: %s)", k,
                               create ? "project_id, name, description, spec, params"
                                      : "description, spec, params");
    }
    if (create) {
        if (!mem_project_ok(json_string_value(json_object_get(body, "project_id"))))
            return aos_err_set(
                err, AOS_EINVAL,
                "'project_id' must be 1..%d of A-Z a-z 0-9 . _ - @ / :", MEM_PROJECT_MAX);
        if (!name_ok(json_string_value(json_object_get(body, "name")), BP_NAME_MAX))
            return aos_err_set(err, AOS_EINVAL, "'name' must be 1..%d of A-Z a-z 0-9 . _ -",
                               BP_NAME_MAX);
    }
    v = json_object_get(body, "description");
    if (v && !json_is_null(v) && (!json_is_string(v) || json_string_length(v) > BP_DESC_MAX))
        return aos_err_set(err, AOS_EINVAL, "'description' must be a string of at most %d bytes",
                           BP_DESC_MAX);
    const json_t *spec = json_object_get(body, "spec");
    if (!json_is_object(spec))
        return aos_err_set(err, AOS_EINVAL, "'spec' must be an object: a TaskSpec template");
    char *text = json_dumps(spec, JSON_COMPACT);
    size_t n = text ? strlen(text) : 0;
    free(text);
    if (n > BP_SPEC_MAX)
        return aos_err_set(err, AOS_EINVAL, "'spec' is larger than %d bytes", BP_SPEC_MAX);
    const json_t *params = json_object_get(body, "params");
    if (params && !json_is_object(params))
        return aos_err_set(err, AOS_EINVAL,
                           "'params' must be an object: name -> {description, "
                           "default, required}");
    if (json_object_size(params) > BP_PARAMS_MAX)
        return aos_err_set(err, AOS_EINVAL, "at most %d params", BP_PARAMS_MAX);
    json_object_foreach((json_t *)params, k, v)
    {
        if (!param_name_ok(k, strlen(k)))
            return aos_err_set(err, AOS_EINVAL,
                               "params: '%.64s' is not a name (A-Z a-z 0-9 _, not starting with a "
                               "digit)",
                               k);
        if (!json_is_object(v))
            return aos_err_set(err, AOS_EINVAL, "params.%s must be an object", k);
        const char *pk;
        const json_t *pv;
        json_object_foreach((json_t *)v, pk, pv)
        {
            if (strcmp(pk, "description") && strcmp(pk, "default") && strcmp(pk, "required"))
                return aos_err_set(err, AOS_EINVAL, "params.%s: unknown member '%.64s'", k, pk);
        }
        const json_t *req = json_object_get(v, "required");
        if (req && !json_is_boolean(req))
            return aos_err_set(err, AOS_EINVAL, "params.%s.required must be true or false", k);
    }
    json_t *o = json_deep_copy(body);
    if (!o)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    if (!params)
        json_object_set_new(o, "params", json_object());
    *out = o;
    return 0;
}

/* ---- diff ---------------------------------------------------------------------- */

static void diff_into(json_t *ops, const char *path, const json_t *a, const json_t *b)
{
    if (a && b && json_equal(a, b))
        return;
    if (json_is_object(a) && json_is_object(b)) {
        const char *k;
        const json_t *v;
        char sub[512];
        json_object_foreach((json_t *)a, k, v)
        {
            snprintf(sub, sizeof(sub), "%s/%s", path, k);
            diff_into(ops, sub, v, json_object_get(b, k));
        }
        json_object_foreach((json_t *)b, k, v)
        {
            if (!json_object_get(a, k)) {
                snprintf(sub, sizeof(sub), "%s/%s", path, k);
                diff_into(ops, sub, NULL, v);
            }
        }
        return;
    }
    json_t *op = json_pack("{s:s, s:s}", "op",
                           !a   ? "add"
                           : !b ? "remove"
                                : "replace",
                           "path", path);
    if (a)
        json_object_set(op, "from", (json_t *)a);
    if (b)
        json_object_set(op, "to", (json_t *)b);
    json_array_append_new(ops, op);
}

/* ---- instantiation ------------------------------------------------------------------ */

/* The value of ${params.NAME} at s (which starts with "${params."): its
 * length in *len, or NULL (err set) when it is malformed or unknown. */
static const json_t *ref_at(const char *s, const json_t *values, size_t *len, aos_err_t *err)
{
    const char *name = s + 9, *end = strchr(name, '}');
    if (!end || !param_name_ok(name, (size_t)(end - name))) {
        aos_err_set(err, AOS_EINVAL, "a malformed ${params...} reference in the blueprint");
        return NULL;
    }
    char key[65];
    snprintf(key, sizeof(key), "%.*s", (int)(end - name), name);
    const json_t *v = json_object_get(values, key);
    if (!v)
        aos_err_set(err, AOS_EINVAL, "the blueprint uses ${params.%s}, which it does not declare",
                    key);
    *len = (size_t)(end - s) + 1;
    return v;
}

static json_t *substitute(const json_t *x, const json_t *values, aos_err_t *err)
{
    if (json_is_object(x)) {
        json_t *o = json_object();
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)x, k, v)
        {
            json_t *s = substitute(v, values, err);
            if (!s) {
                json_decref(o);
                return NULL;
            }
            json_object_set_new(o, k, s);
        }
        return o;
    }
    if (json_is_array(x)) {
        json_t *a = json_array();
        size_t i;
        const json_t *v;
        json_array_foreach(x, i, v)
        {
            json_t *s = substitute(v, values, err);
            if (!s) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, s);
        }
        return a;
    }
    if (!json_is_string(x))
        return json_deep_copy(x);
    const char *s = json_string_value(x);
    const char *r = strstr(s, "${params.");
    if (!r)
        return json_deep_copy(x);
    size_t len = 0;
    if (r == s) {
        const json_t *v = ref_at(s, values, &len, err);
        if (!v)
            return NULL;
        if (len == strlen(s))
            return json_deep_copy(v); /* the whole string: the value itself */
    }
    /* references inside text: each replaced by its value's text */
    size_t cap = strlen(s) + 256, n = 0;
    char *out = malloc(cap);
    while (out && *s) {
        r = strstr(s, "${params.");
        size_t lit = r ? (size_t)(r - s) : strlen(s);
        const char *piece = s;
        size_t plen = lit;
        char *dumped = NULL;
        for (int pass = 0; pass < 2 && out; pass++) {
            if (n + plen + 1 > cap) {
                cap = (n + plen + 1) * 2;
                char *o2 = realloc(out, cap);
                if (!o2) {
                    free(out);
                    out = NULL;
                    break;
                }
                out = o2;
            }
            memcpy(out + n, piece, plen);
            n += plen;
            if (pass == 0) {
                if (!r)
                    break;
                const json_t *v = ref_at(r, values, &len, err);
                if (!v) {
                    free(out);
                    return NULL;
                }
                dumped = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                piece = json_is_string(v) ? json_string_value(v) : dumped ? dumped : "";
                plen = strlen(piece);
            }
        }
        free(dumped);
        s = r ? r + len : s + lit;
    }
    if (!out) {
        aos_err_set(err, AOS_ENOMEM, NULL);
        return NULL;
    }
    out[n] = '\0';
    json_t *res = json_stringn(out, n);
    free(out);
    return res;
}

/* The TaskSpec of blueprint row with the given parameter values. */
static json_t *instantiate(const json_t *row, const json_t *given, aos_err_t *err)
{
    const json_t *decl = json_object_get(row, "params");
    if (given && !json_is_object(given)) {
        aos_err_set(err, AOS_EINVAL, "'params' must be an object");
        return NULL;
    }
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)given, k, v)
    {
        if (!json_object_get(decl, k)) {
            aos_err_set(err, AOS_EINVAL, "this blueprint has no parameter '%.64s'", k);
            return NULL;
        }
    }
    json_t *values = json_object();
    json_object_foreach((json_t *)decl, k, v)
    {
        const json_t *val = json_object_get(given, k);
        if (!val)
            val = json_object_get(v, "default");
        if (!val && json_is_true(json_object_get(v, "required"))) {
            json_decref(values);
            aos_err_set(err, AOS_EINVAL, "parameter '%s' is required", k);
            return NULL;
        }
        json_object_set(values, k, val ? (json_t *)val : json_null());
    }
    json_t *spec = substitute(json_object_get(row, "spec"), values, err);
    json_decref(values);
    return spec;
}

/* ---- jobs ------------------------------------------------------------------------ */

static int bp_create_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct bp_job *j = arg;
    char *spec = json_dumps(json_object_get(j->in, "spec"), JSON_COMPACT);
    char *params = json_dumps(json_object_get(j->in, "params"), JSON_COMPACT);
    int rc = spec && params ? 0 : aos_err_set(err, AOS_ENOMEM, NULL);
    if (!rc)
        rc = aos_store_mem_blueprint_create(
            st, j->project, json_string_value(json_object_get(j->in, "name")),
            json_string_value(json_object_get(j->in, "description")), spec, params, j->actor,
            &j->id, err);
    free(spec);
    free(params);
    if (!rc)
        rc = aos_store_mem_blueprint_get(st, j->id, 0, &j->row, err);
    if (!rc) {
        char res[48];
        snprintf(res, sizeof(res), "mem_blueprints/%lld", (long long)j->id);
        json_t *diff = json_pack("{s:s, s:O, s:i}", "project_id", j->project, "name",
                                 json_object_get(j->in, "name"), "version", 1);
        rc = aos_store_audit_append(st, j->actor, "memory.blueprint.create", res, diff, err);
        json_decref(diff);
    }
    return rc;
}

static int bp_update_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct bp_job *j = arg;
    json_t *cur = NULL;
    int rc = aos_store_mem_blueprint_get(st, j->id, 0, &cur, err);
    if (rc)
        return rc;
    int64_t v = json_integer_value(json_object_get(cur, "version"));
    if (v != j->version) {
        json_decref(cur);
        return aos_err_set(err, AOS_ECONFLICT, "blueprint %lld changed meanwhile; read it again",
                           (long long)j->id);
    }
    json_t *before =
        json_pack("{s:O, s:O, s:O}", "description", json_object_get(cur, "description"), "spec",
                  json_object_get(cur, "spec"), "params", json_object_get(cur, "params"));
    json_t *after = json_pack(
        "{s:O, s:O, s:O}", "description",
        json_object_get(j->in, "description") ? json_object_get(j->in, "description") : json_null(),
        "spec", json_object_get(j->in, "spec"), "params", json_object_get(j->in, "params"));
    json_t *ops = json_array();
    diff_into(ops, "", before, after);
    char *spec = json_dumps(json_object_get(j->in, "spec"), JSON_COMPACT);
    char *params = json_dumps(json_object_get(j->in, "params"), JSON_COMPACT);
    char *diff = json_dumps(ops, JSON_COMPACT);
    rc = spec && params && diff ? 0 : aos_err_set(err, AOS_ENOMEM, NULL);
    if (!rc)
        rc = aos_store_mem_blueprint_version_add(
            st, j->id, v + 1, json_string_value(json_object_get(j->in, "description")), spec,
            params, diff, j->actor, err);
    if (!rc)
        rc = aos_store_mem_blueprint_get(st, j->id, 0, &j->row, err);
    if (!rc) {
        char res[48];
        snprintf(res, sizeof(res), "mem_blueprints/%lld", (long long)j->id);
        json_t *ad = json_pack("{s:s, s:I, s:O}", "project_id", j->project, "version",
                               (json_int_t)v + 1, "diff", ops);
        rc = aos_store_audit_append(st, j->actor, "memory.blueprint.update", res, ad, err);
        json_decref(ad);
    }
    free(spec);
    free(params);
    free(diff);
    json_decref(ops);
    json_decref(before);
    json_decref(after);
    json_decref(cur);
    return rc;
}

static int bp_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct bp_job *j = arg;
    json_decref(j->row);
    j->row = NULL;
    switch (j->kind) {
    case BP_LIST:
        return aos_store_mem_blueprint_list(st, j->project[0] ? j->project : NULL, &j->row, err);
    case BP_CREATE:
        return aos_store_tx(st, bp_create_tx, j, err);
    case BP_UPDATE:
        if (j->phase)
            return aos_store_tx(st, bp_update_tx, j, err);
        return aos_store_mem_blueprint_get(st, j->id, 0, &j->row, err);
    case BP_VERSIONS: {
        int rc = aos_store_mem_blueprint_versions(st, j->id, &j->row, err);
        if (!rc && json_array_size(j->row) == 0)
            rc = aos_err_set(err, AOS_ENOTFOUND, "no blueprint %lld", (long long)j->id);
        return rc;
    }
    default:
        return aos_store_mem_blueprint_get(st, j->id, j->version, &j->row, err);
    }
}

static void bp_done(int status, const aos_err_t *err, void *arg);

static void bp_submit(struct bp_job *j)
{
    int rc = aos_store_submit(j->m->cfg.store, bp_run, bp_done, j);
    if (rc)
        bp_fail(j, rc, "%s", "the store is not accepting work");
}

static void bp_done(int status, const aos_err_t *err, void *arg)
{
    struct bp_job *j = arg;
    if (status) {
        if (status != AOS_ENOTFOUND && status != AOS_ECONFLICT && status != AOS_EINVAL)
            aos_log_error("memory", "%s", aos_err_msg(err));
        if (j->req)
            aos_http_respond_err(j->req, err);
        bp_free(j);
        return;
    }
    const json_t *row = json_is_array(j->row) ? json_array_get(j->row, 0) : j->row;
    const char *proj = json_string_value(json_object_get(row, "project_id"));
    switch (j->kind) {
    case BP_LIST: {
        json_t *out = json_array();
        size_t i;
        json_t *r;
        json_array_foreach(
            j->row, i,
            r) if (may(j, AOS_PERM_READ, json_string_value(json_object_get(r, "project_id"))))
            json_array_append(out, r);
        bp_answer(j, 200, json_pack("{s:o}", "blueprints", out));
        return;
    }
    case BP_CREATE:
        bp_answer(j, 201, json_incref(j->row));
        return;
    default:
        break;
    }
    if (!may(j, AOS_PERM_READ, proj)) {
        bp_fail(j, AOS_ENOTFOUND, "no blueprint %s", "with this id");
        return;
    }
    if (j->kind == BP_GET) {
        bp_answer(j, 200, json_incref(j->row));
    } else if (j->kind == BP_VERSIONS) {
        bp_answer(j, 200, json_pack("{s:O}", "versions", j->row));
    } else if (j->kind == BP_INSTANTIATE) {
        aos_err_t e2 = {0, ""};
        json_t *spec = instantiate(j->row, json_object_get(j->in, "params"), &e2);
        if (!spec) {
            if (j->req)
                aos_http_respond_err(j->req, &e2);
            bp_free(j);
            return;
        }
        bp_answer(j, 200,
                  json_pack("{s:I, s:O, s:o}", "blueprint_id", (json_int_t)j->id, "version",
                            json_object_get(j->row, "version"), "spec", spec));
    } else if (j->phase) { /* BP_UPDATE, written */
        bp_answer(j, 200, json_incref(j->row));
    } else { /* BP_UPDATE, read: authorize, then write */
        if (!may(j, AOS_PERM_OPERATE, proj)) {
            bp_fail(j, AOS_EFORBIDDEN, "operator role on project '%.128s' needed", proj);
            return;
        }
        snprintf(j->project, sizeof(j->project), "%s", proj);
        j->version = json_integer_value(json_object_get(j->row, "version"));
        j->phase = 1;
        bp_submit(j);
    }
}

/* ---- routes ------------------------------------------------------------------------ */

static struct bp_job *bp_new(aos_memory_t *m, aos_http_req_t *req, enum bp_kind kind)
{
    struct bp_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->m = m;
    j->req = req;
    j->who = aos_auth_principal(req);
    j->kind = kind;
    snprintf(j->actor, sizeof(j->actor), "token:%s", j->who ? j->who->id : "unknown");
    return j;
}

static int bp_start(struct bp_job *j)
{
    aos_http_on_close(j->req, bp_closed, j);
    bp_submit(j);
    return 0;
}

static int parse_pos(const char *s, int64_t *out)
{
    if (!s || !*s || strlen(s) > 18)
        return -1;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return v > 0 ? 0 : -1;
}

static int route_bp_list(aos_http_req_t *req, void *data)
{
    const char *p = aos_http_query(req, "project_id");
    if (p && (strlen(p) == 0 || strlen(p) > MEM_PROJECT_MAX))
        return aos_http_respond_error(req, AOS_EINVAL, "'project_id' must be 1..%d bytes",
                                      MEM_PROJECT_MAX);
    struct bp_job *j = bp_new(data, req, BP_LIST);
    if (!j)
        return AOS_ENOMEM;
    if (p)
        snprintf(j->project, sizeof(j->project), "%s", p);
    return bp_start(j);
}

static int route_bp_create(aos_http_req_t *req, void *data)
{
    aos_err_t err = {0, ""};
    json_t *body = aos_http_body_json(req, &err), *in = NULL;
    if (!body)
        return aos_http_respond_err(req, &err);
    int rc = bp_check(body, 1, &in, &err);
    json_decref(body);
    if (rc)
        return aos_http_respond_err(req, &err);
    struct bp_job *j = bp_new(data, req, BP_CREATE);
    if (!j) {
        json_decref(in);
        return AOS_ENOMEM;
    }
    j->in = in;
    snprintf(j->project, sizeof(j->project), "%s",
             json_string_value(json_object_get(in, "project_id")));
    if (!may(j, AOS_PERM_OPERATE, j->project)) {
        aos_http_respond_error(req, AOS_EFORBIDDEN, "operator role on project '%.128s' needed",
                               j->project);
        j->req = NULL;
        bp_free(j);
        return 0;
    }
    return bp_start(j);
}

static int route_bp_item(aos_http_req_t *req, void *data, enum bp_kind kind)
{
    aos_err_t err = {0, ""};
    int64_t id;
    if (parse_pos(aos_http_param(req, "id"), &id))
        return aos_http_respond_error(req, AOS_EINVAL, "the id must be a positive integer");
    json_t *in = NULL;
    if (kind == BP_UPDATE || kind == BP_INSTANTIATE) {
        json_t *body = aos_http_body_json(req, &err);
        if (!body)
            return aos_http_respond_err(req, &err);
        int rc = 0;
        if (kind == BP_UPDATE) {
            rc = bp_check(body, 0, &in, &err);
        } else {
            const char *k;
            const json_t *v;
            if (!json_is_object(body))
                rc = aos_err_set(&err, AOS_EINVAL, "the body must be a JSON object");
            json_object_foreach(body, k, v)
            {
                if (!rc && strcmp(k, "params") && strcmp(k, "version"))
                    rc = aos_err_set(&err, AOS_EINVAL,
                                     "unknown field '%.64s' (fields: params, version)", k);
            }
            const json_t *ver = json_object_get(body, "version");
            if (!rc && ver && (!json_is_integer(ver) || json_integer_value(ver) < 1))
                rc = aos_err_set(&err, AOS_EINVAL, "'version' must be a positive integer");
            in = rc ? NULL : json_incref(body);
        }
        json_decref(body);
        if (rc)
            return aos_http_respond_err(req, &err);
    }
    struct bp_job *j = bp_new(data, req, kind);
    if (!j) {
        json_decref(in);
        return AOS_ENOMEM;
    }
    j->id = id;
    j->in = in;
    if (kind == BP_INSTANTIATE)
        j->version = json_integer_value(json_object_get(in, "version"));
    return bp_start(j);
}

static int route_bp_get(aos_http_req_t *req, void *data)
{
    return route_bp_item(req, data, BP_GET);
}

static int route_bp_update(aos_http_req_t *req, void *data)
{
    return route_bp_item(req, data, BP_UPDATE);
}

static int route_bp_versions(aos_http_req_t *req, void *data)
{
    return route_bp_item(req, data, BP_VERSIONS);
}

static int route_bp_instantiate(aos_http_req_t *req, void *data)
{
    return route_bp_item(req, data, BP_INSTANTIATE);
}

static const aos_http_route_t bp_routes[] = {
    {"GET", "/api/memory/blueprints", AOS_PERM_ANY, route_bp_list, 0, NULL},
    {"POST", "/api/memory/blueprints", AOS_PERM_ANY, route_bp_create, BP_SPEC_MAX + (64 << 10),
     NULL},
    {"GET", "/api/memory/blueprints/:id", AOS_PERM_ANY, route_bp_get, 0, NULL},
    {"PUT", "/api/memory/blueprints/:id", AOS_PERM_ANY, route_bp_update, BP_SPEC_MAX + (64 << 10),
     NULL},
    {"GET", "/api/memory/blueprints/:id/versions", AOS_PERM_ANY, route_bp_versions, 0, NULL},
    {"POST", "/api/memory/blueprints/:id/instantiate", AOS_PERM_ANY, route_bp_instantiate, 64 << 10,
     NULL},
};

int mem_blueprint_add_routes(aos_memory_t *m, aos_http_t *http)
{
    return aos_http_add_routes(http, bp_routes, sizeof(bp_routes) / sizeof(bp_routes[0]), m);
}
