/* service.c - the memory service: operations on items (create, get,
 * update, delete, restore, search) shared by REST and MCP, the store jobs
 * that carry them out, and the REST routes. See memory.h.
 *
 * An operation is checked on the loop (fields, types, limits), then
 * authorized there too, because a principal is a loop-thread object: a
 * create on the project its body names; a read or a change on the
 * project of the item, which only the store knows, so those first read
 * the item (one job), are authorized when it is back, and then write (a
 * second job, which re-reads the item in its transaction and fails with
 * a conflict if its project changed in between). Each write is one
 * transaction with its audit row; the index follows it in the same job,
 * after the commit. Jobs run in submission order, so the index changes in
 * commit order. Terms and vectors are computed in the jobs too: never on
 * the loop.
 *
 * A search: the projects the caller may read are worked out on the loop
 * (all of them for a role on system or a grant on project:*, else each
 * project seen so far checked with aos_auth_check), then one job runs the
 * keyword query (SQL, filtered by project and tags), the vector search
 * (the index, filtered by project; tags checked on the rows, so it asks
 * for more candidates when tags are given), fuses the two lists when the
 * mode is hybrid, and reads the rows of the winners. */
#include "memory/internal.h"

#include "log/log.h"
#include "utf8/utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- projects ------------------------------------------------------------- */

/* The number of project name, interned if new; UINT32_MAX without memory.
 * Any thread. */
uint32_t mem_proj_intern(aos_memory_t *m, const char *name)
{
    uint32_t g = UINT32_MAX;
    uv_mutex_lock(&m->proj_lock);
    for (size_t i = 0; i < m->nprojects; i++)
        if (!strcmp(m->projects[i], name)) {
            g = (uint32_t)i;
            goto out;
        }
    if (m->nprojects == m->proj_cap) {
        size_t cap = m->proj_cap ? m->proj_cap * 2 : 16;
        char **p = realloc(m->projects, cap * sizeof(*p));
        if (!p)
            goto out;
        m->projects = p;
        m->proj_cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        goto out;
    m->projects[m->nprojects] = copy;
    g = (uint32_t)m->nprojects++;
out:
    uv_mutex_unlock(&m->proj_lock);
    return g;
}

/* ---- checks ----------------------------------------------------------------- */

int mem_project_ok(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    if (n == 0 || n > MEM_PROJECT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("._-@/:", c)))
            return 0;
    }
    return 1;
}

static int tag_ok(const char *t, size_t n)
{
    if (n == 0 || n > MEM_TAG_MAX || !aos_utf8_valid(t, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] < 0x20 || t[i] == ',' || t[i] == 0x7f)
            return 0;
    return 1;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* tags (a JSON array) checked, sorted and deduplicated into a new array. */
static int check_tags(const json_t *tags, json_t **out, aos_err_t *err)
{
    if (!json_is_array(tags))
        return aos_err_set(err, AOS_EINVAL, "'tags' must be an array of strings");
    size_t n = json_array_size(tags);
    if (n > MEM_TAGS_MAX)
        return aos_err_set(err, AOS_EINVAL, "at most %d tags", MEM_TAGS_MAX);
    const char *v[MEM_TAGS_MAX];
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(tags, i);
        if (!json_is_string(t) || !tag_ok(json_string_value(t), json_string_length(t)))
            return aos_err_set(err, AOS_EINVAL,
                               "tags[%zu] must be a string of 1..%d bytes without control "
                               "characters or commas",
                               i, MEM_TAG_MAX);
        v[i] = json_string_value(t);
    }
    qsort(v, n, sizeof(*v), str_cmp);
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if ((i == 0 || strcmp(v[i], v[i - 1])) && json_array_append_new(a, json_string(v[i])))
            break;
    if (!a)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    *out = a;
    return 0;
}

int mem_check_fields(const json_t *body, int partial, json_t **out, aos_err_t *err)
{
    *out = NULL;
    if (!json_is_object(body))
        return aos_err_set(err, AOS_EINVAL, "the body must be a JSON object");
    static const char *const known[] = {"text", "subject", "project_id", "tags", "meta", NULL};
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++)
            ok = !strcmp(*k, key);
        if (!ok)
            return aos_err_set(err, AOS_EINVAL,
                               "unknown field '%.64s' (fields: text, subject, project_id, tags, "
                               "meta)",
                               key);
    }
    if (partial && json_object_size(body) == 0)
        return aos_err_set(err, AOS_EINVAL, "nothing to change");
    json_t *f = json_object();
    if (!f)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    int rc = 0;
    if ((v = json_object_get(body, "text")) || !partial) {
        if (!json_is_string(v) || json_string_length(v) == 0)
            rc = aos_err_set(err, AOS_EINVAL, "'text' must be a non-empty string");
        else if (json_string_length(v) > MEM_TEXT_MAX)
            rc = aos_err_set(err, AOS_EINVAL, "'text' is longer than %d bytes", MEM_TEXT_MAX);
        else if (memchr(json_string_value(v), 0, json_string_length(v)))
            rc = aos_err_set(err, AOS_EINVAL, "'text' must not contain NUL");
        else
            json_object_set(f, "text", (json_t *)v);
    }
    if (!rc && ((v = json_object_get(body, "project_id")) || !partial)) {
        if (!json_is_string(v) || !mem_project_ok(json_string_value(v)))
            rc = aos_err_set(
                err, AOS_EINVAL,
                "'project_id' must be 1..%d of A-Z a-z 0-9 . _ - @ / :", MEM_PROJECT_MAX);
        else
            json_object_set(f, "project_id", (json_t *)v);
    }
    if (!rc && (v = json_object_get(body, "subject"))) {
        if (!json_is_null(v) && (!json_is_string(v) || json_string_length(v) > MEM_SUBJECT_MAX ||
                                 memchr(json_string_value(v), 0, json_string_length(v))))
            rc = aos_err_set(err, AOS_EINVAL, "'subject' must be a string of at most %d bytes",
                             MEM_SUBJECT_MAX);
        else
            json_object_set(f, "subject", (json_t *)v);
    }
    if (!rc && (v = json_object_get(body, "tags"))) {
        json_t *tags = NULL;
        if ((rc = check_tags(v, &tags, err)) == 0)
            json_object_set_new(f, "tags", tags);
    } else if (!rc && !partial) {
        json_object_set_new(f, "tags", json_array());
    }
    if (!rc && (v = json_object_get(body, "meta"))) {
        char *text = json_is_object(v) ? json_dumps(v, JSON_COMPACT) : NULL;
        if (!json_is_null(v) && !json_is_object(v))
            rc = aos_err_set(err, AOS_EINVAL, "'meta' must be an object or null");
        else if (text && strlen(text) > MEM_META_MAX)
            rc = aos_err_set(err, AOS_EINVAL, "'meta' is larger than %d bytes", MEM_META_MAX);
        else
            json_object_set(f, "meta", (json_t *)v);
        free(text);
    }
    if (rc) {
        json_decref(f);
        return rc;
    }
    *out = f;
    return 0;
}

int mem_check_profile(const json_t *body, json_t **out, aos_err_t *err)
{
    *out = NULL;
    if (!json_is_object(body))
        return aos_err_set(err, AOS_EINVAL, "the profile must be a JSON object");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        if (!strcmp(key, "language") || !strcmp(key, "timezone")) {
            size_t n = json_string_length(v);
            const char *sv = json_string_value(v);
            int ok = sv && n >= 1 && n <= 64;
            for (size_t i = 0; ok && i < n; i++)
                ok = (sv[i] >= 'a' && sv[i] <= 'z') || (sv[i] >= 'A' && sv[i] <= 'Z') ||
                     (sv[i] >= '0' && sv[i] <= '9') || strchr("-_/+", sv[i]);
            if (!ok)
                return aos_err_set(err, AOS_EINVAL,
                                   "'%s' must be 1..64 of A-Z a-z 0-9 - _ / + (e.g. zh-CN, "
                                   "Asia/Shanghai)",
                                   key);
        } else if (!strcmp(key, "task_defaults") || !strcmp(key, "notifications") ||
                   !strcmp(key, "preferences")) {
            if (!json_is_object(v))
                return aos_err_set(err, AOS_EINVAL, "'%s' must be an object", key);
        } else {
            return aos_err_set(err, AOS_EINVAL,
                               "unknown field '%.64s' (fields: language, timezone, "
                               "task_defaults, notifications, preferences)",
                               key);
        }
    }
    char *text = json_dumps(body, JSON_COMPACT);
    size_t n = text ? strlen(text) : 0;
    free(text);
    if (!text)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    if (n > MEM_META_MAX)
        return aos_err_set(err, AOS_EINVAL, "the profile is larger than %d bytes", MEM_META_MAX);
    *out = json_deep_copy(body);
    return *out ? 0 : aos_err_set(err, AOS_ENOMEM, NULL);
}

static int parse_k(const char *s, int *k)
{
    if (!s || !*s || strlen(s) > 4)
        return -1;
    int v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > MEM_K_MAX)
        return -1;
    *k = v;
    return 0;
}

static int set_mode(mem_op_t *op, const char *mode, aos_err_t *err)
{
    if (!mode || !strcmp(mode, "hybrid"))
        op->mode = MODE_HYBRID;
    else if (!strcmp(mode, "keyword"))
        op->mode = MODE_KEYWORD;
    else if (!strcmp(mode, "vector"))
        op->mode = MODE_VECTOR;
    else
        return aos_err_set(err, AOS_EINVAL, "'mode' must be keyword, vector or hybrid");
    return 0;
}

static int set_q(mem_op_t *op, const char *q, size_t n, aos_err_t *err)
{
    if (!q || n == 0)
        return aos_err_set(err, AOS_EINVAL, "'q' is required");
    if (n > MEM_Q_MAX)
        return aos_err_set(err, AOS_EINVAL, "'q' is longer than %d bytes", MEM_Q_MAX);
    if (!aos_utf8_valid(q, n) || memchr(q, 0, n))
        return aos_err_set(err, AOS_EINVAL, "'q' must be UTF-8 text");
    op->q = strndup(q, n);
    return op->q ? 0 : aos_err_set(err, AOS_ENOMEM, NULL);
}

static int set_project(mem_op_t *op, const char *p, aos_err_t *err)
{
    if (!p)
        return 0;
    if (!mem_project_ok(p))
        return aos_err_set(err, AOS_EINVAL, "'project_id' must be 1..%d of A-Z a-z 0-9 . _ - @ / :",
                           MEM_PROJECT_MAX);
    snprintf(op->project, sizeof(op->project), "%s", p);
    return 0;
}

/* "a,b" -> op->tags, checked and sorted; NULL: no filter. */
static int set_tags_csv(mem_op_t *op, const char *tags, aos_err_t *err)
{
    int rc = 0;
    if (tags) {
        json_t *a = json_array();
        for (const char *p = tags; a && *p;) {
            const char *e = strchr(p, ',');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            json_array_append_new(a, json_stringn(p, n));
            if (!e)
                break;
            p = e + 1;
            if (!*p)
                json_array_append_new(a, json_string("")); /* a trailing comma: an empty tag */
        }
        if (!a)
            return aos_err_set(err, AOS_ENOMEM, NULL);
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_string_value(json_array_get(a, i))) {
                json_decref(a);
                return aos_err_set(err, AOS_EINVAL, "'tags' must be UTF-8");
            }
        rc = check_tags(a, &op->tags, err);
        json_decref(a);
    }
    return rc;
}

int mem_check_search(mem_op_t *op, const char *q, const char *mode, const char *k, const char *tags,
                     const char *project_id, aos_err_t *err)
{
    int rc;
    if ((rc = set_q(op, q, q ? strlen(q) : 0, err)) || (rc = set_mode(op, mode, err)))
        return rc;
    op->k = 10;
    if (k && parse_k(k, &op->k))
        return aos_err_set(err, AOS_EINVAL, "'k' must be an integer 1..%d", MEM_K_MAX);
    if ((rc = set_tags_csv(op, tags, err)))
        return rc;
    return set_project(op, project_id, err);
}

int mem_check_list(mem_op_t *op, const char *project_id, const char *tags, const char *deleted,
                   const char *before, const char *limit, aos_err_t *err)
{
    int rc;
    op->k = 50;
    if (limit) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (!*limit || *end || v < 1 || v > AOS_STORE_LIST_MAX)
            return aos_err_set(err, AOS_EINVAL, "'limit' must be an integer 1..%d",
                               AOS_STORE_LIST_MAX);
        op->k = (int)v;
    }
    if (before) {
        char *end;
        long long v = strtoll(before, &end, 10);
        if (!*before || *end || v < 1)
            return aos_err_set(err, AOS_EINVAL, "'before' must be an item id");
        op->before = v;
    }
    if (deleted && strcmp(deleted, "true") && strcmp(deleted, "false"))
        return aos_err_set(err, AOS_EINVAL, "'deleted' must be true or false");
    op->deleted = deleted && !strcmp(deleted, "true");
    if ((rc = set_tags_csv(op, tags, err)))
        return rc;
    return set_project(op, project_id, err);
}

int mem_check_search_json(mem_op_t *op, const json_t *args, aos_err_t *err)
{
    static const char *const known[] = {"q", "mode", "k", "tags", "project_id", NULL};
    const char *key;
    const json_t *v;
    if (!json_is_object(args))
        return aos_err_set(err, AOS_EINVAL, "arguments must be an object");
    json_object_foreach((json_t *)args, key, v)
    {
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++)
            ok = !strcmp(*k, key);
        if (!ok)
            return aos_err_set(err, AOS_EINVAL, "unknown argument '%.64s'", key);
    }
    const json_t *q = json_object_get(args, "q"), *mode = json_object_get(args, "mode"),
                 *k = json_object_get(args, "k"), *tags = json_object_get(args, "tags"),
                 *p = json_object_get(args, "project_id");
    int rc;
    if (!json_is_string(q))
        return aos_err_set(err, AOS_EINVAL, "'q' must be a string");
    if ((rc = set_q(op, json_string_value(q), json_string_length(q), err)))
        return rc;
    if (mode && !json_is_string(mode))
        return aos_err_set(err, AOS_EINVAL, "'mode' must be keyword, vector or hybrid");
    if ((rc = set_mode(op, mode ? json_string_value(mode) : NULL, err)))
        return rc;
    op->k = 10;
    if (k &&
        (!json_is_integer(k) || json_integer_value(k) < 1 || json_integer_value(k) > MEM_K_MAX))
        return aos_err_set(err, AOS_EINVAL, "'k' must be an integer 1..%d", MEM_K_MAX);
    if (k)
        op->k = (int)json_integer_value(k);
    if (tags && (rc = check_tags(tags, &op->tags, err)))
        return rc;
    if (p && !json_is_string(p))
        return aos_err_set(err, AOS_EINVAL, "'project_id' must be a string");
    return set_project(op, p ? json_string_value(p) : NULL, err);
}

/* ---- operations ---------------------------------------------------------------- */

mem_op_t *mem_op_new(aos_memory_t *m, mem_op_kind_t kind, const aos_principal_t *who,
                     mem_finish_fn finish, void *ctx)
{
    mem_op_t *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->m = m;
    op->kind = kind;
    op->who = who;
    op->finish = finish;
    op->ctx = ctx;
    aos_auth_actor(who, op->actor, sizeof(op->actor));
    return op;
}

void mem_op_free(mem_op_t *op)
{
    if (!op)
        return;
    json_decref(op->fields);
    json_decref(op->tags);
    json_decref(op->row);
    json_decref(op->result);
    free(op->q);
    for (size_t i = 0; i < op->nallowed; i++)
        free(op->allowed[i]);
    free(op->allowed);
    free(op->groups_ok);
    free(op->vec);
    free(op);
}

static void op_fail(mem_op_t *op, const aos_err_t *err)
{
    op->finish(op, err->code ? err->code : AOS_EINTERNAL, NULL, err);
}

void mem_op_fail(mem_op_t *op, const aos_err_t *err)
{
    op_fail(op, err);
}

static void op_fail_code(mem_op_t *op, int code, const char *fmt, const char *arg)
{
    aos_err_t err = {0, ""};
    aos_err_set(&err, code, fmt, arg);
    op_fail(op, &err);
}

/* The terms and vector of text, for a write: the vector is the built-in
 * embedding's, or (llm) the one op got on the loop. */
struct derived {
    char *terms;
    const float *vec; /* builtin or op->vec; NULL: keep the stored one */
    int dims;
    float builtin[AOS_MEMORY_DIMS];
};

static int derive(const mem_op_t *op, const char *text, struct derived *d, aos_err_t *err)
{
    size_t n = strlen(text);
    if (aos_memory_terms_join(text, n, &d->terms, NULL))
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    if (op->m->cfg.llm) {
        d->vec = op->vec;
        d->dims = op->dims;
        return d->vec ? mem_index_ready(op->m, d->dims, err) : 0;
    }
    if (aos_memory_embed(text, n, d->builtin))
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    d->vec = d->builtin;
    d->dims = AOS_MEMORY_DIMS;
    return 0;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static char *jdump(const json_t *v)
{
    return v && !json_is_null(v) ? json_dumps(v, JSON_COMPACT) : NULL;
}

static int vec_zero(const float *v, int dims)
{
    for (int i = 0; i < dims; i++)
        if (v[i] != 0.0f)
            return 0;
    return 1;
}

/* The audit diff of a write: what changed, never the text itself (items
 * may hold what their writers would not log): its length instead. */
static json_t *audit_diff(const json_t *row, const json_t *fields)
{
    json_t *d =
        json_pack("{s:O, s:O, s:O, s:I}", "project_id", json_object_get(row, "project_id"),
                  "subject", json_object_get(row, "subject"), "tags", json_object_get(row, "tags"),
                  "text_bytes", (json_int_t)strlen(jstr(row, "text") ? jstr(row, "text") : ""));
    if (d && fields) {
        json_t *changed = json_array();
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)fields, k, v) json_array_append_new(changed, json_string(k));
        json_object_set_new(d, "changed", changed);
    }
    return d;
}

struct tx_arg {
    mem_op_t *op;
    aos_store_mem_t rec;
    struct derived der;
    int live;                          /* the item is not deleted (after the write) */
    char project[MEM_PROJECT_MAX + 1]; /* its project after the write */
};

static int create_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct tx_arg *a = arg;
    mem_op_t *op = a->op;
    int rc = aos_store_mem_insert(st, &a->rec, err);
    if (rc)
        return rc;
    if ((rc = aos_store_mem_get(st, a->rec.id, &op->row, err)))
        return rc;
    json_t *diff = audit_diff(op->row, NULL);
    char res[48];
    snprintf(res, sizeof(res), "mem_items/%lld", (long long)a->rec.id);
    rc = aos_store_audit_append(st, op->actor, "memory.item.create", res, diff, err);
    json_decref(diff);
    return rc;
}

/* Store jobs, after an add or a search: past cfg.hnsw_min_items vectors,
 * starts the HNSW graph's build in threads of the index (they return at
 * once: they read the graph's file first, else build; the scans answer
 * until the graph is in use). A build that failed (out of memory) is
 * started again by a later job, 1 minute after the last start at first,
 * doubling up to an hour. */
#define HNSW_RETRY_NS     (60ull * 1000000000ull)
#define HNSW_RETRY_MAX_NS (3600ull * 1000000000ull)
void mem_maybe_build(aos_memory_t *m)
{
    size_t min = m->cfg.hnsw_min_items;
    if (!min || !m->index || aos_memory_index_count(m->index) < min)
        return;
    aos_memory_hnsw_state_t st = aos_memory_index_hnsw_state(m->index);
    uint64_t now = uv_hrtime();
    if (st == AOS_MEMORY_HNSW_BUILDING || st == AOS_MEMORY_HNSW_READY ||
        (m->hnsw_started && now < m->hnsw_retry_at))
        return;
    if (m->hnsw_started)
        aos_log_warn("memory", "the HNSW graph's last build failed; trying again");
    m->hnsw_started = 1;
    m->hnsw_retry_ns = !m->hnsw_retry_ns                          ? HNSW_RETRY_NS
                       : m->hnsw_retry_ns * 2 > HNSW_RETRY_MAX_NS ? HNSW_RETRY_MAX_NS
                                                                  : m->hnsw_retry_ns * 2;
    m->hnsw_retry_at = now + m->hnsw_retry_ns;
    int threads = m->cfg.hnsw_threads > 0 ? m->cfg.hnsw_threads : 1;
    int rc = aos_memory_index_hnsw_start(m->index, m->cfg.hnsw_m, m->cfg.hnsw_efc, threads, 10);
    if (rc)
        aos_log_error("memory", "unable to start building the HNSW graph: %s", aos_strerror(rc));
    else
        aos_log_info("memory",
                     "building the HNSW graph of %zu vectors in %d thread(s) (M %d, "
                     "efConstruction %d%s); exact/int8 scans answer meanwhile",
                     aos_memory_index_count(m->index), threads,
                     m->cfg.hnsw_m > 0 ? m->cfg.hnsw_m : 16,
                     m->cfg.hnsw_efc > 0 ? m->cfg.hnsw_efc : 200,
                     m->graph_path ? ", reading its file first" : "");
}

static int job_create(aos_store_t *st, void *arg, aos_err_t *err)
{
    mem_op_t *op = arg;
    struct tx_arg a = {.op = op};
    const json_t *f = op->fields;
    int rc = derive(op, jstr(f, "text"), &a.der, err);
    char *tags = jdump(json_object_get(f, "tags")), *meta = jdump(json_object_get(f, "meta"));
    if (!rc && !tags)
        rc = aos_err_set(err, AOS_ENOMEM, NULL);
    if (!rc) {
        a.rec = (aos_store_mem_t){.project_id = jstr(f, "project_id"),
                                  .subject = jstr(f, "subject"),
                                  .text = jstr(f, "text"),
                                  .tags = tags,
                                  .meta = meta,
                                  .source = op->actor,
                                  .terms = a.der.terms,
                                  .vec = a.der.vec,
                                  .dims = a.der.dims,
                                  .model = op->m->model};
        rc = aos_store_tx(st, create_tx, &a, err);
    }
    if (!rc) {
        uint32_t g = mem_proj_intern(op->m, a.rec.project_id);
        if (g == UINT32_MAX || aos_memory_index_add(op->m->index, a.rec.id, g, a.der.vec))
            aos_log_error("memory",
                          "item %lld is stored but not in the vector index (out of "
                          "memory); it is found by keyword only until a restart",
                          (long long)a.rec.id);
        else
            mem_maybe_build(op->m);
    }
    free(a.der.terms);
    free(tags);
    free(meta);
    return rc;
}

static int job_read(aos_store_t *st, void *arg, aos_err_t *err)
{
    mem_op_t *op = arg;
    json_decref(op->row);
    op->row = NULL;
    return aos_store_mem_get(st, op->id, &op->row, err);
}

static int write_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct tx_arg *a = arg;
    mem_op_t *op = a->op;
    json_t *row = NULL;
    int rc = aos_store_mem_get(st, op->id, &row, err);
    if (rc)
        return rc;
    if (strcmp(jstr(row, "project_id"), op->project)) {
        json_decref(row);
        return aos_err_set(err, AOS_ECONFLICT,
                           "memory item %lld moved to another project meanwhile; try again",
                           (long long)op->id);
    }
    const char *action;
    char *tags = NULL, *meta = NULL;
    if (op->kind == MEM_OP_UPDATE) {
        action = "memory.item.update";
        json_t *next = json_deep_copy(row);
        if (!next || json_object_update(next, op->fields)) {
            json_decref(next);
            json_decref(row);
            return aos_err_set(err, AOS_ENOMEM, NULL);
        }
        rc = derive(op, jstr(next, "text"), &a->der, err);
        tags = jdump(json_object_get(next, "tags"));
        meta = jdump(json_object_get(next, "meta"));
        if (!rc && !tags)
            rc = aos_err_set(err, AOS_ENOMEM, NULL);
        if (!rc) {
            a->rec = (aos_store_mem_t){.id = op->id,
                                       .project_id = jstr(next, "project_id"),
                                       .subject = jstr(next, "subject"),
                                       .text = jstr(next, "text"),
                                       .tags = tags,
                                       .meta = meta,
                                       .terms = a->der.terms,
                                       .vec = a->der.vec,
                                       .dims = a->der.dims,
                                       .model = op->m->model};
            rc = aos_store_mem_update(st, &a->rec, err);
            snprintf(a->project, sizeof(a->project), "%s", a->rec.project_id);
        }
        a->rec.project_id = a->rec.subject = a->rec.text = NULL; /* they were next's */
        json_decref(next);
    } else {
        int del = op->kind == MEM_OP_DELETE;
        action = del ? "memory.item.delete" : "memory.item.restore";
        rc = aos_store_mem_set_deleted(st, op->id, del, err);
    }
    json_decref(row);
    free(tags);
    free(meta);
    if (!rc) {
        json_decref(op->row);
        op->row = NULL;
        rc = aos_store_mem_get(st, op->id, &op->row, err);
    }
    if (!rc) {
        json_t *diff = audit_diff(op->row, op->kind == MEM_OP_UPDATE ? op->fields : NULL);
        char res[48];
        snprintf(res, sizeof(res), "mem_items/%lld", (long long)op->id);
        rc = aos_store_audit_append(st, op->actor, action, res, diff, err);
        json_decref(diff);
    }
    if (!rc)
        a->live = json_is_null(json_object_get(op->row, "deleted_at"));
    return rc;
}

static int restore_vec(int64_t id, const char *project_id, const float *vec, int dims, void *arg,
                       aos_err_t *err)
{
    aos_memory_t *m = arg;
    uint32_t g = mem_proj_intern(m, project_id);
    if (!m->index || dims != m->dims || g == UINT32_MAX ||
        aos_memory_index_add(m->index, id, g, vec))
        aos_log_warn("memory", "item %lld: its vector (%d dims) is not searchable", (long long)id,
                     dims);
    return 0;
}

static int job_write(aos_store_t *st, void *arg, aos_err_t *err)
{
    mem_op_t *op = arg;
    struct tx_arg a = {.op = op};
    int rc = aos_store_tx(st, write_tx, &a, err);
    if (!rc) {
        aos_memory_t *m = op->m;
        if (op->kind == MEM_OP_UPDATE && a.live && a.der.vec) {
            uint32_t g = mem_proj_intern(m, a.project);
            if (g == UINT32_MAX || aos_memory_index_add(m->index, op->id, g, a.der.vec))
                aos_log_error("memory", "item %lld: its new vector is not in the index",
                              (long long)op->id);
        } else if (op->kind == MEM_OP_DELETE) {
            if (m->index)
                aos_memory_index_remove(m->index, op->id);
        } else if (op->kind == MEM_OP_RESTORE || (op->kind == MEM_OP_UPDATE && a.live)) {
            /* a restore, or (llm) an update keeping the text: the stored
             * vector of the model, under the item's project now */
            aos_err_t e2 = {0, ""};
            if (m->index)
                aos_memory_index_remove(m->index, op->id);
            if (aos_store_mem_vectors(st, op->id, m->model, restore_vec, m, &e2))
                aos_log_error("memory", "item %lld: %s", (long long)op->id, aos_err_msg(&e2));
        }
    }
    free(a.der.terms);
    return rc;
}

/* ---- profiles ------------------------------------------------------------------ */

static int job_profile_get(aos_store_t *st, void *arg, aos_err_t *err)
{
    mem_op_t *op = arg;
    int rc = aos_store_mem_profile_get(st, op->actor, &op->row, err);
    if (rc == AOS_ENOTFOUND) {
        op->row = json_pack("{s:s, s:{}, s:n, s:i}", "principal", op->actor, "profile",
                            "updated_at", "version", 0);
        rc = op->row ? 0 : aos_err_set(err, AOS_ENOMEM, NULL);
    }
    return rc;
}

static int profile_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    mem_op_t *op = arg;
    char *text = json_dumps(op->fields, JSON_COMPACT);
    if (!text)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    int rc = aos_store_mem_profile_put(st, op->actor, text, err);
    free(text);
    if (!rc)
        rc = aos_store_mem_profile_get(st, op->actor, &op->row, err);
    if (!rc) {
        json_t *fields = json_array();
        const char *k;
        const json_t *v;
        json_object_foreach(op->fields, k, v) json_array_append_new(fields, json_string(k));
        json_t *diff = json_pack("{s:o}", "fields", fields);
        char res[120];
        snprintf(res, sizeof(res), "mem_profiles/%s", op->actor);
        rc = aos_store_audit_append(st, op->actor, "memory.profile.put", res, diff, err);
        json_decref(diff);
    }
    return rc;
}

static int job_profile_put(aos_store_t *st, void *arg, aos_err_t *err)
{
    return aos_store_tx(st, profile_tx, arg, err);
}

/* ---- search ------------------------------------------------------------------ */

static int group_filter(int64_t id, uint32_t group, void *arg)
{
    const mem_op_t *op = arg;
    (void)id;
    return op->all_projects || (group < op->ngroups && op->groups_ok[group]);
}

static int row_has_tags(const json_t *row, const json_t *tags)
{
    const json_t *have = json_object_get(row, "tags");
    size_t i, j;
    json_t *t, *h;
    json_array_foreach(tags, i, t)
    {
        int found = 0;
        json_array_foreach(have, j, h) found = found || json_equal(t, h);
        if (!found)
            return 0;
    }
    return 1;
}

static json_t *find_row(json_t *rows, int64_t id)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) if (json_integer_value(json_object_get(r, "id")) == id) return r;
    return NULL;
}

static int job_search(aos_store_t *st, void *arg, aos_err_t *err)
{
    mem_op_t *op = arg;
    int n_list = op->mode == MODE_HYBRID ? (op->k * 3 > 50 ? op->k * 3 : 50) : op->k;
    int n_vec = op->tags ? (op->k * 20 > 200 ? op->k * 20 : 200) : n_list;
    if (n_list + n_vec > AOS_STORE_LIST_MAX) /* the rows of both lists are read at once */
        n_vec = AOS_STORE_LIST_MAX - n_list;
    int64_t *kw_ids = calloc((size_t)n_list, sizeof(int64_t)), *v_ids = NULL, *all = NULL;
    double *kw_sc = calloc((size_t)n_list, sizeof(double));
    aos_memory_hit_t *hits = calloc((size_t)n_vec, sizeof(*hits));
    aos_memory_fused_t *fused = NULL;
    char *terms = NULL;
    json_t *rows = NULL;
    int nkw = 0, nhits = 0, rc = 0;
    aos_memory_method_t used = AOS_MEMORY_SEARCH_AUTO; /* none ran */
    const char **tags = NULL;
    size_t ntags = json_array_size(op->tags);
    if (!kw_ids || !kw_sc || !hits || (ntags && !(tags = calloc(ntags, sizeof(*tags))))) {
        rc = aos_err_set(err, AOS_ENOMEM, NULL);
        goto out;
    }
    for (size_t i = 0; i < ntags; i++)
        tags[i] = json_string_value(json_array_get(op->tags, i));
    if (op->mode != MODE_VECTOR) {
        if ((rc = aos_memory_terms_join(op->q, strlen(op->q), &terms, NULL)))
            goto out;
        rc = aos_store_mem_keyword(st, terms, op->all_projects ? NULL : (const char **)op->allowed,
                                   op->nallowed, tags, ntags, n_list, kw_ids, kw_sc, &nkw, err);
        if (rc)
            goto out;
    }
    if (op->mode != MODE_KEYWORD) {
        float builtin[AOS_MEMORY_DIMS];
        const float *qv = op->vec;
        int dims = op->dims;
        if (!qv) {
            if ((rc = aos_memory_embed(op->q, strlen(op->q), builtin)))
                goto out;
            qv = builtin;
            dims = AOS_MEMORY_DIMS;
        }
        if (op->m->index && dims != op->m->dims) {
            rc = mem_index_ready(op->m, dims, err); /* the error naming both */
            goto out;
        }
        if (op->m->index && !vec_zero(qv, dims)) {
            nhits = aos_memory_index_search_by(op->m->index, qv, n_vec, AOS_MEMORY_SEARCH_AUTO,
                                               op->m->cfg.hnsw_ef, group_filter, op, hits, &used);
            mem_maybe_build(op->m); /* a failed build is tried again later */
            if (nhits < 0) {
                rc = aos_err_set(err, nhits, "vector search failed");
                goto out;
            }
        }
    }
    /* the rows of every candidate */
    all = calloc((size_t)(nkw + nhits) + 1, sizeof(int64_t));
    if (!all) {
        rc = aos_err_set(err, AOS_ENOMEM, NULL);
        goto out;
    }
    int nall = 0;
    for (int i = 0; i < nkw; i++)
        all[nall++] = kw_ids[i];
    for (int i = 0; i < nhits; i++)
        all[nall++] = hits[i].id;
    if ((rc = aos_store_mem_rows(st, all, nall, &rows, err)))
        goto out;
    /* the vector list: hits whose row is live and has the tags */
    v_ids = calloc((size_t)nhits + 1, sizeof(int64_t));
    float *v_sc = calloc((size_t)nhits + 1, sizeof(float));
    int nv = 0;
    for (int i = 0; v_ids && v_sc && i < nhits && nv < n_list; i++) {
        json_t *r = find_row(rows, hits[i].id);
        /* a cosine <= 0 shares nothing with the query: not a match */
        if (r && hits[i].score > 0 && (!ntags || row_has_tags(r, op->tags))) {
            v_sc[nv] = hits[i].score;
            v_ids[nv++] = hits[i].id;
        }
    }
    fused = calloc((size_t)(nkw + nv) + 1, sizeof(*fused));
    if (!v_ids || !v_sc || !fused) {
        free(v_sc);
        rc = aos_err_set(err, AOS_ENOMEM, NULL);
        goto out;
    }
    int nf = aos_memory_rrf(kw_ids, nkw, v_ids, nv, AOS_MEMORY_RRF_K, fused);
    json_t *results = json_array();
    for (int i = 0; results && i < nf && (int)json_array_size(results) < op->k; i++) {
        const aos_memory_fused_t *f = &fused[i];
        json_t *r = find_row(rows, f->id);
        if (!r)
            continue;
        json_t *item = json_deep_copy(r);
        json_t *kw = f->rank_a ? json_real(-kw_sc[f->rank_a - 1]) : json_null();
        json_t *vs = f->rank_b ? json_real(v_sc[f->rank_b - 1]) : json_null();
        double score = op->mode == MODE_HYBRID    ? f->rrf
                       : op->mode == MODE_KEYWORD ? -kw_sc[f->rank_a - 1]
                                                  : v_sc[f->rank_b - 1];
        json_object_set_new(item, "score", json_real(score));
        json_object_set_new(item, "scores",
                            json_pack("{s:o, s:o, s:o}", "keyword", kw, "vector", vs, "rrf",
                                      op->mode == MODE_HYBRID ? json_real(f->rrf) : json_null()));
        json_object_set_new(item, "ranks",
                            json_pack("{s:o, s:o}", "keyword",
                                      f->rank_a ? json_integer(f->rank_a) : json_null(), "vector",
                                      f->rank_b ? json_integer(f->rank_b) : json_null()));
        json_array_append_new(results, item);
    }
    free(v_sc);
    static const char *const modes[] = {"keyword", "vector", "hybrid"};
    /* the vector index's method that answered (null: none ran) */
    static const char *const methods[] = {NULL, "exact", "int8", "hnsw", "hnsw_int8"};
    op->result = json_pack("{s:s, s:i, s:o, s:s?, s:s?}", "mode", modes[op->mode], "k", op->k,
                           "results", results ? results : json_array(), "index", methods[used],
                           "model", op->mode == MODE_KEYWORD ? NULL : op->m->model);
    if (!op->result)
        rc = aos_err_set(err, AOS_ENOMEM, NULL);
out:
    free(kw_ids);
    free(kw_sc);
    free(hits);
    free(v_ids);
    free(all);
    free(fused);
    free(terms);
    free(tags);
    json_decref(rows);
    return rc;
}

/* ---- running an operation ------------------------------------------------------- */

static int may(const mem_op_t *op, aos_perm_t perm, const char *project)
{
    char res[MEM_PROJECT_MAX + 16];
    snprintf(res, sizeof(res), "project:%s", project);
    return aos_auth_check(op->who, perm, res) == 0;
}

static void job_done(int status, const aos_err_t *err, void *arg);

static int job_list(aos_store_t *st, void *arg, aos_err_t *err)
{
    mem_op_t *op = arg;
    size_t ntags = json_array_size(op->tags);
    const char *tags[32];
    for (size_t i = 0; i < ntags && i < 32; i++)
        tags[i] = json_string_value(json_array_get(op->tags, i));
    json_t *rows = NULL;
    int rc =
        aos_store_mem_list(st, op->all_projects ? NULL : (const char *const *)op->allowed,
                           op->nallowed, tags, ntags, op->deleted, op->before, op->k, &rows, err);
    if (rc)
        return rc;
    size_t n = json_array_size(rows);
    json_t *last = n == (size_t)op->k ? json_array_get(rows, n - 1) : NULL;
    op->result = json_pack("{s:o, s:o}", "items", rows, "next_before",
                           last ? json_incref(json_object_get(last, "id")) : json_null());
    return op->result ? 0 : aos_err_set(err, AOS_ENOMEM, NULL);
}

static void submit(mem_op_t *op, aos_store_job_fn fn)
{
    int rc = aos_store_submit(op->m->cfg.store, fn, job_done, op);
    if (rc)
        op_fail_code(op, rc, "%s", "the store is not accepting work");
}

static void submit_write(mem_op_t *op)
{
    submit(op, job_write);
}

static void submit_create(mem_op_t *op)
{
    submit(op, job_create);
}

static void submit_search(mem_op_t *op)
{
    submit(op, job_search);
}

static void job_done(int status, const aos_err_t *err, void *arg)
{
    mem_op_t *op = arg;
    if (status) {
        if (status != AOS_ENOTFOUND && status != AOS_ECONFLICT && status != AOS_EINVAL)
            aos_log_error("memory", "%s", aos_err_msg(err));
        op_fail(op, err);
        return;
    }
    switch (op->kind) {
    case MEM_OP_CREATE:
    case MEM_OP_PROFILE_GET:
    case MEM_OP_PROFILE_PUT:
        op->finish(op, 0, json_incref(op->row), NULL);
        return;
    case MEM_OP_SEARCH:
    case MEM_OP_LIST:
        op->finish(op, 0, json_incref(op->result), NULL);
        return;
    case MEM_OP_GET:
        /* a reader of another project learns nothing, not even that it exists */
        if (!may(op, AOS_PERM_READ, jstr(op->row, "project_id")))
            op_fail_code(op, AOS_ENOTFOUND, "no memory item %s", "with this id");
        else
            op->finish(op, 0, json_incref(op->row), NULL);
        return;
    default:
        break;
    }
    if (op->write_phase) {
        if (op->kind == MEM_OP_RESTORE) /* its vector may be of an older model */
            mem_reembed_kick(op->m);
        op->finish(op, 0, json_incref(op->row), NULL);
        return;
    }
    const char *proj = jstr(op->row, "project_id");
    if (!may(op, AOS_PERM_READ, proj)) {
        op_fail_code(op, AOS_ENOTFOUND, "no memory item %s", "with this id");
        return;
    }
    const char *to = op->fields ? jstr(op->fields, "project_id") : NULL;
    if (!may(op, AOS_PERM_OPERATE, proj) || (to && !may(op, AOS_PERM_OPERATE, to))) {
        op_fail_code(op, AOS_EFORBIDDEN, "operator role on project '%.128s' needed",
                     may(op, AOS_PERM_OPERATE, proj) ? to : proj);
        return;
    }
    snprintf(op->project, sizeof(op->project), "%s", proj);
    op->write_phase = 1;
    if (op->kind == MEM_OP_UPDATE && op->m->cfg.llm && jstr(op->fields, "text"))
        mem_embed_then(op, jstr(op->fields, "text"), submit_write);
    else
        submit(op, job_write);
}

static int search_prepare(mem_op_t *op)
{
    aos_memory_t *m = op->m;
    if (op->project[0]) {
        if (!may(op, AOS_PERM_READ, op->project))
            return AOS_EFORBIDDEN;
        op->allowed = calloc(1, sizeof(char *));
        if (!op->allowed || !(op->allowed[0] = strdup(op->project)))
            return AOS_ENOMEM;
        op->nallowed = 1;
    } else if (aos_auth_check(op->who, AOS_PERM_READ, "project:*") == 0) {
        op->all_projects = 1;
        return 0;
    }
    uv_mutex_lock(&m->proj_lock);
    size_t n = m->nprojects;
    op->groups_ok = calloc(n + 1, 1);
    if (!op->project[0])
        op->allowed = calloc(n + 1, sizeof(char *));
    int rc = op->groups_ok && op->allowed ? 0 : AOS_ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        int ok = op->project[0] ? !strcmp(m->projects[i], op->project)
                                : may(op, AOS_PERM_READ, m->projects[i]);
        op->groups_ok[i] = (uint8_t)ok;
        if (ok && !op->project[0]) {
            if (!(op->allowed[op->nallowed] = strdup(m->projects[i])))
                rc = AOS_ENOMEM;
            else
                op->nallowed++;
        }
    }
    op->ngroups = n;
    uv_mutex_unlock(&m->proj_lock);
    if (!rc && op->nallowed > 500)
        rc = AOS_EINVAL;
    return rc;
}

void mem_op_start(mem_op_t *op)
{
    if (!op->who) {
        op_fail_code(op, AOS_EFORBIDDEN, "%s", "unknown caller");
        return;
    }
    switch (op->kind) {
    case MEM_OP_CREATE: {
        const char *p = jstr(op->fields, "project_id");
        if (!may(op, AOS_PERM_OPERATE, p)) {
            op_fail_code(op, AOS_EFORBIDDEN, "operator role on project '%.128s' needed", p);
            return;
        }
        if (op->m->cfg.llm)
            mem_embed_then(op, jstr(op->fields, "text"), submit_create);
        else
            submit(op, job_create);
        return;
    }
    case MEM_OP_PROFILE_GET:
        submit(op, job_profile_get);
        return;
    case MEM_OP_PROFILE_PUT:
        /* one profile per principal: the shared anonymous client has none */
        if (!strcmp(op->actor, "anonymous"))
            op_fail_code(op, AOS_EFORBIDDEN, "%s", "the anonymous client has no profile");
        else
            submit(op, job_profile_put);
        return;
    case MEM_OP_SEARCH:
    case MEM_OP_LIST: {
        int rc = search_prepare(op);
        if (rc == AOS_EFORBIDDEN)
            op_fail_code(op, rc, "viewer role on project '%.128s' needed", op->project);
        else if (rc == AOS_EINVAL)
            op_fail_code(op, rc, "%s",
                         "the caller may read more than 500 projects: pass project_id");
        else if (rc)
            op_fail_code(op, rc, "%s", "out of memory");
        else if (op->kind == MEM_OP_LIST)
            submit(op, job_list);
        else if (op->m->cfg.llm && op->mode != MODE_KEYWORD)
            mem_embed_then(op, op->q, submit_search);
        else
            submit(op, job_search);
        return;
    }
    default:
        submit(op, job_read);
        return;
    }
}

/* ---- REST ------------------------------------------------------------------------ */

struct rest_wait {
    aos_http_req_t *req; /* NULL once the client left */
    unsigned ok_status;
};

static void rest_closed(aos_http_req_t *req, int aborted, void *data)
{
    (void)req;
    (void)aborted;
    ((struct rest_wait *)data)->req = NULL;
}

static void rest_finish(mem_op_t *op, int status, json_t *result, const aos_err_t *err)
{
    struct rest_wait *w = op->ctx;
    if (w->req) {
        aos_http_on_close(w->req, NULL, NULL);
        if (status) {
            aos_http_respond_err(w->req, err);
        } else {
            aos_http_respond_json(w->req, w->ok_status, result);
            result = NULL;
        }
    }
    json_decref(result);
    free(w);
    mem_op_free(op);
}

static int rest_start(aos_memory_t *m, aos_http_req_t *req, mem_op_kind_t kind, unsigned ok,
                      mem_op_t **out)
{
    struct rest_wait *w = calloc(1, sizeof(*w));
    mem_op_t *op = w ? mem_op_new(m, kind, aos_auth_principal(req), rest_finish, w) : NULL;
    if (!op) {
        free(w);
        return AOS_ENOMEM;
    }
    w->req = req;
    w->ok_status = ok;
    *out = op;
    return 0;
}

/* Starts op, answering req when it ends. */
static int rest_run(mem_op_t *op)
{
    struct rest_wait *w = op->ctx;
    aos_http_on_close(w->req, rest_closed, w);
    mem_op_start(op);
    return 0;
}

/* Fails op before it started: answers req and frees op. */
static int rest_refuse(mem_op_t *op, const aos_err_t *err)
{
    struct rest_wait *w = op->ctx;
    aos_http_respond_err(w->req, err);
    free(w);
    mem_op_free(op);
    return 0;
}

static int parse_id(const char *s, int64_t *id)
{
    if (!s || !*s || strlen(s) > 18)
        return -1;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v <= 0)
        return -1;
    *id = v;
    return 0;
}

static int route_create(aos_http_req_t *req, void *data)
{
    aos_err_t err = {0, ""};
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    mem_op_t *op;
    int rc = rest_start(data, req, MEM_OP_CREATE, 201, &op);
    if (rc) {
        json_decref(body);
        return rc;
    }
    rc = mem_check_fields(body, 0, &op->fields, &err);
    json_decref(body);
    return rc ? rest_refuse(op, &err) : rest_run(op);
}

static int route_item(aos_http_req_t *req, void *data, mem_op_kind_t kind)
{
    aos_err_t err = {0, ""};
    int64_t id;
    if (parse_id(aos_http_param(req, "id"), &id))
        return aos_http_respond_error(req, AOS_EINVAL, "the id must be a positive integer");
    json_t *body = NULL;
    if (kind == MEM_OP_UPDATE && !(body = aos_http_body_json(req, &err)))
        return aos_http_respond_err(req, &err);
    mem_op_t *op;
    int rc = rest_start(data, req, kind, 200, &op);
    if (rc) {
        json_decref(body);
        return rc;
    }
    op->id = id;
    if (body) {
        rc = mem_check_fields(body, 1, &op->fields, &err);
        json_decref(body);
        if (rc)
            return rest_refuse(op, &err);
    }
    return rest_run(op);
}

static int route_get(aos_http_req_t *req, void *data)
{
    return route_item(req, data, MEM_OP_GET);
}

static int route_update(aos_http_req_t *req, void *data)
{
    return route_item(req, data, MEM_OP_UPDATE);
}

static int route_delete(aos_http_req_t *req, void *data)
{
    return route_item(req, data, MEM_OP_DELETE);
}

static int route_restore(aos_http_req_t *req, void *data)
{
    return route_item(req, data, MEM_OP_RESTORE);
}

static int route_search(aos_http_req_t *req, void *data)
{
    aos_err_t err = {0, ""};
    mem_op_t *op;
    int rc = rest_start(data, req, MEM_OP_SEARCH, 200, &op);
    if (rc)
        return rc;
    if (mem_check_search(op, aos_http_query(req, "q"), aos_http_query(req, "mode"),
                         aos_http_query(req, "k"), aos_http_query(req, "tags"),
                         aos_http_query(req, "project_id"), &err))
        return rest_refuse(op, &err);
    return rest_run(op);
}

static int route_list(aos_http_req_t *req, void *data)
{
    aos_err_t err = {0, ""};
    mem_op_t *op;
    int rc = rest_start(data, req, MEM_OP_LIST, 200, &op);
    if (rc)
        return rc;
    if (mem_check_list(op, aos_http_query(req, "project_id"), aos_http_query(req, "tags"),
                       aos_http_query(req, "deleted"), aos_http_query(req, "before"),
                       aos_http_query(req, "limit"), &err))
        return rest_refuse(op, &err);
    return rest_run(op);
}

static int route_profile_get(aos_http_req_t *req, void *data)
{
    mem_op_t *op;
    int rc = rest_start(data, req, MEM_OP_PROFILE_GET, 200, &op);
    return rc ? rc : rest_run(op);
}

static int route_profile_put(aos_http_req_t *req, void *data)
{
    aos_err_t err = {0, ""};
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    mem_op_t *op;
    int rc = rest_start(data, req, MEM_OP_PROFILE_PUT, 200, &op);
    if (rc) {
        json_decref(body);
        return rc;
    }
    rc = mem_check_profile(body, &op->fields, &err);
    json_decref(body);
    return rc ? rest_refuse(op, &err) : rest_run(op);
}

static const aos_http_route_t routes[] = {
    {"GET", "/api/memory/items", AOS_PERM_ANY, route_list, 0, NULL},
    {"POST", "/api/memory/items", AOS_PERM_ANY, route_create, MEM_BODY_MAX, NULL},
    {"GET", "/api/memory/items/:id", AOS_PERM_ANY, route_get, 0, NULL},
    {"PATCH", "/api/memory/items/:id", AOS_PERM_ANY, route_update, MEM_BODY_MAX, NULL},
    {"DELETE", "/api/memory/items/:id", AOS_PERM_ANY, route_delete, 0, NULL},
    {"POST", "/api/memory/items/:id/restore", AOS_PERM_ANY, route_restore, 0, NULL},
    {"GET", "/api/memory/search", AOS_PERM_ANY, route_search, 0, NULL},
    {"GET", "/api/memory/profile", AOS_PERM_ANY, route_profile_get, 0, NULL},
    {"PUT", "/api/memory/profile", AOS_PERM_ANY, route_profile_put, 64 << 10, NULL},
};

int aos_memory_add_routes(aos_memory_t *m, aos_http_t *http)
{
    int rc = aos_http_add_routes(http, routes, sizeof(routes) / sizeof(routes[0]), m);
    return rc ? rc : mem_blueprint_add_routes(m, http);
}

/* ---- for other services ------------------------------------------------------------ */

struct search_wait {
    aos_memory_search_fn done;
    void *data;
};

static void search_finish(mem_op_t *op, int status, json_t *result, const aos_err_t *err)
{
    struct search_wait *w = op->ctx;
    w->done(status, result, err, w->data);
    free(w);
    mem_op_free(op);
}

int aos_memory_search(aos_memory_t *m, const aos_principal_t *who, const json_t *args,
                      aos_memory_search_fn done, void *data, aos_err_t *err)
{
    struct search_wait *w = calloc(1, sizeof(*w));
    mem_op_t *op = w ? mem_op_new(m, MEM_OP_SEARCH, who, search_finish, w) : NULL;
    if (!op) {
        free(w);
        return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    w->done = done;
    w->data = data;
    int rc = mem_check_search_json(op, args, err);
    if (rc) {
        free(w);
        mem_op_free(op);
        return rc;
    }
    mem_op_start(op);
    return 0;
}

/* ---- life ---------------------------------------------------------------------- */

static int load_vec(int64_t id, const char *project_id, const float *vec, int dims, void *arg,
                    aos_err_t *err)
{
    aos_memory_t *m = arg;
    if (m->index && dims != m->dims) {
        m->load_skipped++; /* the model's own but of another size: re-embedded */
        return 0;
    }
    if (!m->index && mem_index_ready(m, dims, err))
        return err->code;
    uint32_t g = mem_proj_intern(m, project_id);
    if (g == UINT32_MAX)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    int rc = aos_memory_index_add(m->index, id, g, vec);
    if (rc == AOS_EINVAL)
        return 0; /* a non-finite value: skipped */
    return rc ? aos_err_set(err, rc, "out of memory") : 0;
}

static int job_load(aos_store_t *st, void *arg, aos_err_t *err)
{
    aos_memory_t *m = arg;
    int rc = aos_store_mem_vectors(st, 0, m->model, load_vec, arg, err);
    if (!rc)
        mem_maybe_build(arg);
    return rc;
}

static void load_done(int status, const aos_err_t *err, void *arg)
{
    aos_memory_t *m = arg;
    m->loaded = 1;
    if (status) {
        m->load_failed = 1;
        aos_log_error("memory", "unable to load the vector index: %s", aos_err_msg(err));
        return;
    }
    aos_log_info("memory", "vector index: %zu item(s) of model %s (%d dimensions), %s",
                 m->index ? aos_memory_index_count(m->index) : 0, m->model, m->dims,
                 aos_memory_index_simd() ? "AVX2" : "no AVX2");
    if (m->load_skipped)
        aos_log_warn("memory",
                     "%zu vector(s) of model %s have another dimension than %d: re-embedded",
                     m->load_skipped, m->model, m->dims);
    mem_reembed_kick(m); /* items without a vector of this model */
}

int aos_memory_new(aos_memory_t **out, const aos_memory_cfg_t *cfg, aos_err_t *err)
{
    *out = NULL;
    aos_memory_t *m = calloc(1, sizeof(*m));
    if (!m)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    m->cfg = *cfg;
    if (cfg->llm && (!cfg->embed_model || !*cfg->embed_model)) {
        free(m);
        return aos_err_set(err, AOS_EINVAL, "the memory service needs an embeddings model");
    }
    m->model = strdup(cfg->llm ? cfg->embed_model : AOS_MEMORY_EMBED_MODEL);
    m->cfg.embed_model = m->model;
    if (!m->model || uv_mutex_init(&m->proj_lock)) {
        free(m->model);
        free(m);
        return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    /* the built-in embedding's dimension is known; a model's comes with
     * its first vector (mem_index_ready, which gives it the graph's file) */
    int rc = cfg->llm ? 0 : aos_memory_index_new(&m->index, AOS_MEMORY_DIMS, 1);
    if (!cfg->llm)
        m->dims = AOS_MEMORY_DIMS;
    /* the graph's file beside the database */
    if (!rc && cfg->data_dir && *cfg->data_dir) {
        size_t len = strlen(cfg->data_dir) + sizeof("/" MEM_GRAPH_FILE);
        if (!(m->graph_path = malloc(len)))
            rc = AOS_ENOMEM;
        else
            snprintf(m->graph_path, len, "%s/" MEM_GRAPH_FILE, cfg->data_dir);
        if (!rc && m->index)
            rc = aos_memory_index_hnsw_file(m->index, m->graph_path, 1);
    }
    if (!rc)
        rc = aos_store_submit(cfg->store, job_load, load_done, m);
    if (rc) {
        free(m->graph_path);
        aos_memory_index_free(m->index);
        uv_mutex_destroy(&m->proj_lock);
        free(m->model);
        free(m);
        return aos_err_set(err, rc, "unable to start the memory service");
    }
    m->builtin = mem_builtin_template;
    m->builtin.data = m;
    *out = m;
    return 0;
}

const aos_builtin_t *aos_memory_builtin(aos_memory_t *m)
{
    return &m->builtin;
}

void aos_memory_free(aos_memory_t *m)
{
    if (!m)
        return;
    /* the graph as it is now, so the next start has fewer changes to apply
     * (the loop has ended: blocking here delays only the exit) */
    if (m->graph_path && m->index && aos_memory_index_hnsw_dirty(m->index)) {
        uint64_t t0 = uv_hrtime();
        if (!aos_memory_index_hnsw_save(m->index, NULL))
            aos_log_info("memory", "HNSW graph saved to %s in %.1f s", m->graph_path,
                         (double)(uv_hrtime() - t0) / 1e9);
    }
    free(m->graph_path);
    aos_memory_index_free(m->index);
    free(m->model);
    if (m->re.timer) /* aos_memory_stop did not run: the loop is gone */
        free(m->re.timer);
    for (size_t i = 0; i < m->nprojects; i++)
        free(m->projects[i]);
    free(m->projects);
    uv_mutex_destroy(&m->proj_lock);
    free(m);
}
