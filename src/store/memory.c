/* memory.c - the rows of memory items (migration 0018; store.h has the
 * contract, src/memory what the rows mean).
 *
 * An item is its mem_items row, one mem_tags row per tag, its terms in the
 * FTS5 table mem_fts (rowid = the item's id) and its vector in
 * mem_embeddings (id = the item's id as text). Writes replace all of them
 * in the caller's transaction. Keyword queries are built here because
 * their MATCH syntax is the backend's: each term becomes an FTS5 string
 * ("..."; terms hold no '"' or space, src/memory makes them of letters,
 * digits and non-ASCII bytes only) and the strings are joined by OR, so
 * any term may match and bm25 ranks items with more and rarer terms
 * first. */
#include "store/internal.h"
#include "isotime/isotime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITEM_COLS                                                                                  \
    "id, project_id, subject, text, tags, meta, source, created_at, updated_at, deleted_at, "      \
    "version"

static const col_t item_cols[] = {
    {"id", COL_INT},          {"project_id", COL_TEXT}, {"subject", COL_TEXT},
    {"text", COL_TEXT},       {"tags", COL_JSON},       {"meta", COL_JSON},
    {"source", COL_TEXT},     {"created_at", COL_TEXT}, {"updated_at", COL_TEXT},
    {"deleted_at", COL_TEXT}, {"version", COL_INT},
};

static int write_parts(aos_store_t *st, aos_store_mem_t *m, int fresh, aos_err_t *err)
{
    aos__sql_val_t id = aos__sql_int(m->id);
    int rc = 0;
    if (!fresh) {
        rc = aos__store_exec(st, "DELETE FROM mem_tags WHERE item_id = ?", &id, 1, NULL, err);
        if (rc == 0)
            rc = aos__store_exec(st, "DELETE FROM mem_fts WHERE rowid = ?", &id, 1, NULL, err);
        if (rc < 0)
            return aos__store_fail(err, rc, "unable to update memory item %lld", (long long)m->id);
    }
    json_t *tags = json_loads(m->tags, 0, NULL);
    if (!json_is_array(tags)) {
        json_decref(tags);
        return aos_err_set(err, AOS_EINVAL, "unable to write memory item: tags must be an array");
    }
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t)
    {
        aos__sql_val_t p[] = {id, aos__sql_text(json_string_value(t))};
        if ((rc = aos__store_exec(st, "INSERT INTO mem_tags (item_id, tag) VALUES (?, ?)", p, 2,
                                  NULL, err)) < 0)
            break;
    }
    json_decref(tags);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to write the tags of memory item %lld",
                               (long long)m->id);
    aos__sql_val_t f[] = {id, aos__sql_text(m->terms ? m->terms : "")};
    rc = aos__store_exec(st, "INSERT INTO mem_fts (rowid, terms) VALUES (?, ?)", f, 2, NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to index memory item %lld", (long long)m->id);
    if (m->vec) {
        char sid[24], meta[160];
        snprintf(sid, sizeof(sid), "%lld", (long long)m->id);
        snprintf(meta, sizeof(meta), "{\"model\":\"%.120s\"}", m->model ? m->model : "");
        aos__sql_val_t e[] = {aos__sql_text(sid),
                              aos__sql_text(m->subject),
                              aos__sql_text(m->project_id),
                              aos__sql_int(m->dims),
                              aos__sql_blob(m->vec, (size_t)m->dims * sizeof(float)),
                              aos__sql_text(meta),
                              aos__sql_text(m->updated_at),
                              aos__sql_text(m->model ? m->model : "")};
        rc = aos__store_exec(
            st,
            "INSERT INTO mem_embeddings (id, subject, project_id, dims, embedding, meta, "
            "updated_at, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "subject = excluded.subject, project_id = excluded.project_id, dims = excluded.dims, "
            "embedding = excluded.embedding, meta = excluded.meta, updated_at = "
            "excluded.updated_at, model = excluded.model",
            e, NCOLS(e), NULL, err);
        if (rc < 0)
            return aos__store_fail(err, rc, "unable to store the vector of memory item %lld",
                                   (long long)m->id);
    }
    return 0;
}

int aos_store_mem_insert(aos_store_t *st, aos_store_mem_t *m, aos_err_t *err)
{
    aos_isotime_now(m->updated_at);
    aos__sql_val_t p[] = {aos__sql_text(m->project_id), aos__sql_text(m->subject),
                          aos__sql_text(m->text),       aos__sql_text(m->tags),
                          aos__sql_text(m->meta),       aos__sql_text(m->source),
                          aos__sql_text(m->updated_at), aos__sql_text(m->updated_at)};
    int rc = aos__store_exec(st,
                             "INSERT INTO mem_items (project_id, subject, text, tags, meta, "
                             "source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to insert memory item");
    m->id = aos__store_last_insert_id(st);
    return write_parts(st, m, 1, err);
}

int aos_store_mem_update(aos_store_t *st, aos_store_mem_t *m, aos_err_t *err)
{
    aos_isotime_now(m->updated_at);
    aos__sql_val_t p[] = {aos__sql_text(m->project_id), aos__sql_text(m->subject),
                          aos__sql_text(m->text),       aos__sql_text(m->tags),
                          aos__sql_text(m->meta),       aos__sql_text(m->updated_at),
                          aos__sql_int(m->id)};
    int64_t changes = 0;
    int rc = aos__store_exec(st,
                             "UPDATE mem_items SET project_id = ?, subject = ?, text = ?, "
                             "tags = ?, meta = ?, updated_at = ?, version = version + 1 "
                             "WHERE id = ?",
                             p, NCOLS(p), &changes, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to update memory item %lld", (long long)m->id);
    if (changes == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "no memory item %lld", (long long)m->id);
    return write_parts(st, m, 0, err);
}

int aos_store_mem_get(aos_store_t *st, int64_t id, json_t **out, aos_err_t *err)
{
    json_t *rows;
    aos__sql_val_t p = aos__sql_int(id);
    *out = NULL;
    int rc = aos__store_select(st, "SELECT " ITEM_COLS " FROM mem_items WHERE id = ?", &p, 1,
                               item_cols, NCOLS(item_cols), &rows, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read memory item %lld", (long long)id);
    if (json_array_size(rows) == 0)
        rc = aos_err_set(err, AOS_ENOTFOUND, "no memory item %lld", (long long)id);
    else
        *out = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return rc;
}

int aos_store_mem_set_deleted(aos_store_t *st, int64_t id, int deleted, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    int64_t changes = 0;
    aos__sql_val_t p[] = {deleted ? aos__sql_text(now) : aos__sql_null(), aos__sql_text(now),
                          aos__sql_int(id)};
    int rc = aos__store_exec(st,
                             deleted ? "UPDATE mem_items SET deleted_at = ?, updated_at = ?, "
                                       "version = version + 1 WHERE id = ? AND deleted_at IS NULL"
                                     : "UPDATE mem_items SET deleted_at = ?, updated_at = ?, "
                                       "version = version + 1 WHERE id = ? AND deleted_at IS NOT "
                                       "NULL",
                             p, NCOLS(p), &changes, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to %s memory item %lld",
                               deleted ? "delete" : "restore", (long long)id);
    if (changes)
        return 0;
    json_t *row = NULL;
    rc = aos_store_mem_get(st, id, &row, err);
    json_decref(row);
    if (rc < 0)
        return rc;
    return aos_err_set(err, AOS_ECONFLICT, "memory item %lld is %s", (long long)id,
                       deleted ? "deleted already" : "not deleted");
}

/* ---- queries ------------------------------------------------------------------ */

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap + n + 1) * 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(sbuf_t *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

struct kw {
    int64_t *ids;
    double *scores;
    int n, max;
};

static int kw_row(const aos__sql_val_t *cols, int ncols, void *arg, aos_err_t *err)
{
    struct kw *k = arg;
    if (ncols != 2 || cols[0].type != AOS__SQL_INT || k->n >= k->max)
        return aos_err_set(err, AOS_ESTORE, "unexpected row from the keyword query");
    k->ids[k->n] = cols[0].i;
    k->scores[k->n] = cols[1].type == AOS__SQL_REAL  ? cols[1].r
                      : cols[1].type == AOS__SQL_INT ? (double)cols[1].i
                                                     : 0;
    k->n++;
    return 0;
}

/* The filters the keyword search and the list share, on items aliased i:
 * " AND i.project_id IN (...)" (projects NULL: every project) and one
 * " AND EXISTS (...)" per tag, their values appended at params[*k]. */
static void where_projects_tags(sbuf_t *sql, aos__sql_val_t *params, int *k,
                                const char *const *projects, size_t nprojects,
                                const char *const *tags, size_t ntags)
{
    if (projects) {
        sb_str(sql, " AND i.project_id IN (");
        for (size_t i = 0; i < nprojects; i++) {
            sb_str(sql, i ? ", ?" : "?");
            params[(*k)++] = aos__sql_text(projects[i]);
        }
        sb_str(sql, ")");
    }
    for (size_t i = 0; i < ntags; i++) {
        sb_str(sql, " AND EXISTS (SELECT 1 FROM mem_tags t WHERE t.item_id = i.id AND t.tag = ?)");
        params[(*k)++] = aos__sql_text(tags[i]);
    }
}

int aos_store_mem_keyword(aos_store_t *st, const char *terms, const char *const *projects,
                          size_t nprojects, const char *const *tags, size_t ntags, int limit,
                          int64_t *ids, double *scores, int *n, aos_err_t *err)
{
    *n = 0;
    if (limit < 1 || limit > AOS_STORE_LIST_MAX)
        return aos_err_set(err, AOS_EINVAL, "keyword search: limit must be 1..%d",
                           AOS_STORE_LIST_MAX);
    if ((projects && nprojects > 500) || ntags > 32)
        return aos_err_set(err, AOS_EINVAL, "keyword search: too many projects or tags");
    if (projects && nprojects == 0)
        return 0;
    /* the MATCH expression: "t1" OR "t2" ... */
    sbuf_t q = {0}, sql = {0};
    for (const char *p = terms; *p;) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ' ' && *e != '"')
            e++;
        if (e > p) {
            if (q.len)
                sb_str(&q, " OR ");
            sb_str(&q, "\"");
            sb_add(&q, p, (size_t)(e - p));
            sb_str(&q, "\"");
        }
        p = *e ? e + 1 : e;
    }
    if (!q.len && !q.oom) {
        free(q.s);
        return 0; /* nothing to look for */
    }
    size_t np = 2 + (projects ? nprojects : 0) + ntags;
    aos__sql_val_t *params = calloc(np, sizeof(*params));
    sb_str(&sql, "SELECT i.id, bm25(mem_fts) FROM mem_fts JOIN mem_items i ON i.id = mem_fts.rowid "
                 "WHERE mem_fts MATCH ? AND i.deleted_at IS NULL");
    int k = 0;
    if (params)
        params[k++] = aos__sql_text(q.s);
    if (params)
        where_projects_tags(&sql, params, &k, projects, nprojects, tags, ntags);
    sb_str(&sql, " ORDER BY bm25(mem_fts), i.id LIMIT ?");
    int rc;
    if (!params || q.oom || sql.oom) {
        rc = aos_err_set(err, AOS_ENOMEM, "keyword search: out of memory");
    } else {
        params[k++] = aos__sql_int(limit);
        struct kw kw = {ids, scores, 0, limit};
        rc = aos__store_query(st, sql.s, params, k, kw_row, &kw, err);
        if (rc < 0)
            rc = aos__store_fail(err, rc, "unable to search memory");
        else
            *n = kw.n;
    }
    free(params);
    free(q.s);
    free(sql.s);
    return rc < 0 ? rc : 0;
}

int aos_store_mem_rows(aos_store_t *st, const int64_t *ids, int n, json_t **out, aos_err_t *err)
{
    *out = NULL;
    if (n < 0 || n > AOS_STORE_LIST_MAX)
        return aos_err_set(err, AOS_EINVAL, "memory rows: 0..%d ids", AOS_STORE_LIST_MAX);
    if (n == 0)
        return (*out = json_array()) ? 0 : aos_err_set(err, AOS_ENOMEM, "out of memory");
    sbuf_t sql = {0};
    aos__sql_val_t *params = calloc((size_t)n, sizeof(*params));
    sb_str(&sql, "SELECT " ITEM_COLS " FROM mem_items WHERE deleted_at IS NULL AND id IN (");
    for (int i = 0; i < n && params; i++) {
        sb_str(&sql, i ? ", ?" : "?");
        params[i] = aos__sql_int(ids[i]);
    }
    sb_str(&sql, ")");
    int rc;
    if (!params || sql.oom)
        rc = aos_err_set(err, AOS_ENOMEM, "memory rows: out of memory");
    else if ((rc = aos__store_select(st, sql.s, params, n, item_cols, NCOLS(item_cols), out, err)) <
             0)
        rc = aos__store_fail(err, rc, "unable to read memory items");
    free(params);
    free(sql.s);
    return rc;
}

int aos_store_mem_list(aos_store_t *st, const char *const *projects, size_t nprojects,
                       const char *const *tags, size_t ntags, int deleted, int64_t before_id,
                       int limit, json_t **out, aos_err_t *err)
{
    *out = NULL;
    if ((projects && nprojects > 500) || ntags > 32 || limit < 1 || limit > AOS_STORE_LIST_MAX)
        return aos_err_set(err, AOS_EINVAL, "memory list: too many projects or tags, or limit");
    if (projects && nprojects == 0)
        return (*out = json_array()) ? 0 : aos_err_set(err, AOS_ENOMEM, "out of memory");
    sbuf_t sql = {0};
    size_t np = 2 + (projects ? nprojects : 0) + ntags;
    int k = 0;
    aos__sql_val_t *params = calloc(np, sizeof(*params));
    sb_str(&sql, "SELECT " ITEM_COLS " FROM mem_items i WHERE i.deleted_at IS ");
    sb_str(&sql, deleted ? "NOT NULL" : "NULL");
    if (before_id > 0 && params) {
        sb_str(&sql, " AND i.id < ?");
        params[k++] = aos__sql_int(before_id);
    }
    if (params)
        where_projects_tags(&sql, params, &k, projects, nprojects, tags, ntags);
    sb_str(&sql, " ORDER BY i.id DESC LIMIT ?");
    if (params)
        params[k++] = aos__sql_int(limit);
    int rc;
    if (!params || sql.oom)
        rc = aos_err_set(err, AOS_ENOMEM, "memory list: out of memory");
    else if ((rc = aos__store_select(st, sql.s, params, k, item_cols, NCOLS(item_cols), out, err)) <
             0)
        rc = aos__store_fail(err, rc, "unable to list memory items");
    free(params);
    free(sql.s);
    return rc;
}

struct vecs {
    aos_store_mem_vec_fn fn;
    void *arg;
    float *buf;
    int cap;
};

static int vec_row(const aos__sql_val_t *cols, int ncols, void *arg, aos_err_t *err)
{
    struct vecs *v = arg;
    if (ncols != 4 || cols[0].type != AOS__SQL_INT || cols[1].type != AOS__SQL_TEXT ||
        cols[2].type != AOS__SQL_INT || cols[3].type != AOS__SQL_BLOB || cols[2].i <= 0 ||
        cols[2].i > 65536 || cols[3].len != (size_t)cols[2].i * sizeof(float))
        return aos_err_set(err, AOS_ESTORE, "unreadable memory vector");
    int dims = (int)cols[2].i;
    if (dims > v->cap) {
        float *b = realloc(v->buf, (size_t)dims * sizeof(float));
        if (!b)
            return aos_err_set(err, AOS_ENOMEM, "out of memory");
        v->buf = b;
        v->cap = dims;
    }
    /* the blob need not be aligned for floats */
    memcpy(v->buf, cols[3].p, cols[3].len);
    char project[256];
    size_t pl = cols[1].len < sizeof(project) - 1 ? cols[1].len : sizeof(project) - 1;
    memcpy(project, cols[1].p, pl);
    project[pl] = '\0';
    return v->fn(cols[0].i, project, v->buf, dims, v->arg, err);
}

int aos_store_mem_vectors(aos_store_t *st, int64_t only_id, const char *model,
                          aos_store_mem_vec_fn fn, void *arg, aos_err_t *err)
{
    struct vecs v = {fn, arg, NULL, 0};
    aos__sql_val_t p[2];
    int np = 0;
    char sql[320];
    snprintf(sql, sizeof(sql),
             "SELECT i.id, i.project_id, e.dims, e.embedding FROM mem_items i JOIN "
             "mem_embeddings e ON e.id = CAST(i.id AS TEXT) WHERE i.deleted_at IS NULL%s%s%s",
             model ? " AND e.model = ?" : "", only_id > 0 ? " AND i.id = ?" : "",
             only_id > 0 ? "" : " ORDER BY i.id");
    if (model)
        p[np++] = aos__sql_text(model);
    if (only_id > 0)
        p[np++] = aos__sql_int(only_id);
    int rc = aos__store_query(st, sql, np ? p : NULL, np, vec_row, &v, err);
    free(v.buf);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read memory vectors");
    return 0;
}

static const col_t stale_cols[] = {
    {"id", COL_INT},
    {"text", COL_TEXT},
    {"version", COL_INT},
};

int aos_store_mem_stale(aos_store_t *st, const char *model, int dims, int64_t after_id, int limit,
                        json_t **out, aos_err_t *err)
{
    *out = NULL;
    if (limit < 1 || limit > AOS_STORE_LIST_MAX)
        return aos_err_set(err, AOS_EINVAL, "limit must be 1..%d", AOS_STORE_LIST_MAX);
    aos__sql_val_t p[] = {aos__sql_int(after_id), aos__sql_text(model), aos__sql_int(dims),
                          aos__sql_int(dims), aos__sql_int(limit)};
    int rc = aos__store_select(
        st,
        "SELECT i.id, i.text, i.version FROM mem_items i LEFT JOIN mem_embeddings e ON e.id = "
        "CAST(i.id AS TEXT) WHERE i.deleted_at IS NULL AND i.id > ? AND (e.model IS NULL OR "
        "e.model <> ? OR (? > 0 AND e.dims <> ?)) ORDER BY i.id LIMIT ?",
        p, NCOLS(p), stale_cols, NCOLS(stale_cols), out, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to list the memory items to re-embed");
    return 0;
}

int aos_store_mem_set_vector(aos_store_t *st, int64_t id, int64_t version, const char *model,
                             const float *vec, int dims, char *project, size_t project_size,
                             int *written, aos_err_t *err)
{
    json_t *row = NULL;
    *written = 0;
    int rc = aos_store_mem_get(st, id, &row, err);
    if (rc == AOS_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (json_integer_value(json_object_get(row, "version")) != version ||
        !json_is_null(json_object_get(row, "deleted_at"))) {
        json_decref(row); /* changed or deleted meanwhile: its own write embedded it */
        return 0;
    }
    char sid[24], meta[160], now[32];
    snprintf(sid, sizeof(sid), "%lld", (long long)id);
    snprintf(meta, sizeof(meta), "{\"model\":\"%.120s\"}", model);
    aos_isotime_now(now);
    aos__sql_val_t e[] = {aos__sql_text(sid),
                          aos__sql_text(json_string_value(json_object_get(row, "subject"))),
                          aos__sql_text(json_string_value(json_object_get(row, "project_id"))),
                          aos__sql_int(dims),
                          aos__sql_blob(vec, (size_t)dims * sizeof(float)),
                          aos__sql_text(meta),
                          aos__sql_text(now),
                          aos__sql_text(model)};
    rc = aos__store_exec(
        st,
        "INSERT INTO mem_embeddings (id, subject, project_id, dims, embedding, meta, updated_at, "
        "model) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET subject = "
        "excluded.subject, project_id = excluded.project_id, dims = excluded.dims, embedding = "
        "excluded.embedding, meta = excluded.meta, updated_at = excluded.updated_at, model = "
        "excluded.model",
        e, NCOLS(e), NULL, err);
    if (rc < 0) {
        json_decref(row);
        return aos__store_fail(err, rc, "unable to store the vector of memory item %lld",
                               (long long)id);
    }
    if (project && project_size)
        snprintf(project, project_size, "%s",
                 json_string_value(json_object_get(row, "project_id")));
    json_decref(row);
    *written = 1;
    return 0;
}

/* ---- profiles ------------------------------------------------------------------ */

static const col_t profile_cols[] = {
    {"principal", COL_TEXT},
    {"profile", COL_JSON},
    {"updated_at", COL_TEXT},
    {"version", COL_INT},
};

int aos_store_mem_profile_get(aos_store_t *st, const char *principal, json_t **out, aos_err_t *err)
{
    json_t *rows;
    aos__sql_val_t p = aos__sql_text(principal);
    *out = NULL;
    int rc = aos__store_select(
        st, "SELECT principal, profile, updated_at, version FROM mem_profiles WHERE principal = ?",
        &p, 1, profile_cols, NCOLS(profile_cols), &rows, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read a profile");
    if (json_array_size(rows) == 0)
        rc = aos_err_set(err, AOS_ENOTFOUND, "no profile");
    else
        *out = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return rc;
}

int aos_store_mem_profile_put(aos_store_t *st, const char *principal, const char *profile,
                              aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(principal), aos__sql_text(profile), aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "INSERT INTO mem_profiles (principal, profile, updated_at) VALUES (?, "
                             "?, ?) ON CONFLICT (principal) DO UPDATE SET profile = "
                             "excluded.profile, updated_at = excluded.updated_at, version = "
                             "mem_profiles.version + 1",
                             p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to store a profile");
    return 0;
}

/* ---- blueprints ------------------------------------------------------------------ */

#define BP_SELECT                                                                                  \
    "SELECT b.id, b.project_id, b.name, v.version, b.created_at, b.updated_at, v.description, "    \
    "v.spec, v.params, v.diff, v.author, b.version FROM mem_blueprints b JOIN "                    \
    "mem_blueprint_versions v ON v.blueprint_id = b.id "

static const col_t bp_cols[] = {
    {"id", COL_INT},           {"project_id", COL_TEXT}, {"name", COL_TEXT},
    {"version", COL_INT},      {"created_at", COL_TEXT}, {"updated_at", COL_TEXT},
    {"description", COL_TEXT}, {"spec", COL_JSON},       {"params", COL_JSON},
    {"diff", COL_JSON},        {"author", COL_TEXT},     {"current_version", COL_INT},
};

static int bp_version_insert(aos_store_t *st, int64_t id, int64_t version, const char *description,
                             const char *spec, const char *params, const char *diff,
                             const char *author, const char *now, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_int(id),      aos__sql_int(version), aos__sql_text(description),
                          aos__sql_text(spec),   aos__sql_text(params), aos__sql_text(diff),
                          aos__sql_text(author), aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "INSERT INTO mem_blueprint_versions (blueprint_id, version, "
                             "description, spec, params, diff, author, created_at) VALUES (?, ?, "
                             "?, ?, ?, ?, ?, ?)",
                             p, NCOLS(p), NULL, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to store blueprint %lld version %lld",
                                    (long long)id, (long long)version)
                  : 0;
}

int aos_store_mem_blueprint_create(aos_store_t *st, const char *project_id, const char *name,
                                   const char *description, const char *spec, const char *params,
                                   const char *author, int64_t *id, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(project_id), aos__sql_text(name), aos__sql_text(now),
                          aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "INSERT INTO mem_blueprints (project_id, name, version, created_at, "
                             "updated_at) VALUES (?, ?, 1, ?, ?)",
                             p, NCOLS(p), NULL, err);
    if (rc == AOS_ECONFLICT)
        return aos_err_set(err, AOS_ECONFLICT, "project '%.128s' has a blueprint '%.128s' already",
                           project_id, name);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to create a blueprint");
    *id = aos__store_last_insert_id(st);
    return bp_version_insert(st, *id, 1, description, spec, params, NULL, author, now, err);
}

int aos_store_mem_blueprint_version_add(aos_store_t *st, int64_t id, int64_t version,
                                        const char *description, const char *spec,
                                        const char *params, const char *diff, const char *author,
                                        aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    int64_t changes = 0;
    aos__sql_val_t p[] = {aos__sql_int(version), aos__sql_text(now), aos__sql_int(id),
                          aos__sql_int(version - 1)};
    int rc = aos__store_exec(st,
                             "UPDATE mem_blueprints SET version = ?, updated_at = ? WHERE id = ? "
                             "AND version = ?",
                             p, NCOLS(p), &changes, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to update blueprint %lld", (long long)id);
    if (changes == 0)
        return aos_err_set(err, AOS_ECONFLICT,
                           "blueprint %lld changed meanwhile (its version is no longer %lld)",
                           (long long)id, (long long)(version - 1));
    return bp_version_insert(st, id, version, description, spec, params, diff, author, now, err);
}

int aos_store_mem_blueprint_get(aos_store_t *st, int64_t id, int64_t version, json_t **out,
                                aos_err_t *err)
{
    json_t *rows;
    aos__sql_val_t p[] = {aos__sql_int(id), aos__sql_int(version)};
    *out = NULL;
    int rc = aos__store_select(st,
                               version > 0 ? BP_SELECT "WHERE b.id = ? AND v.version = ?"
                                           : BP_SELECT "WHERE b.id = ? AND v.version = b.version",
                               p, version > 0 ? 2 : 1, bp_cols, NCOLS(bp_cols), &rows, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read blueprint %lld", (long long)id);
    if (json_array_size(rows) == 0)
        rc = aos_err_set(err, AOS_ENOTFOUND, "no blueprint %lld%s", (long long)id,
                         version > 0 ? " of that version" : "");
    else
        *out = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return rc;
}

int aos_store_mem_blueprint_versions(aos_store_t *st, int64_t id, json_t **out, aos_err_t *err)
{
    aos__sql_val_t p = aos__sql_int(id);
    int rc = aos__store_select(st, BP_SELECT "WHERE b.id = ? ORDER BY v.version", &p, 1, bp_cols,
                               NCOLS(bp_cols), out, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to read blueprint %lld", (long long)id) : 0;
}

int aos_store_mem_blueprint_list(aos_store_t *st, const char *project_id, json_t **out,
                                 aos_err_t *err)
{
    aos__sql_val_t p = aos__sql_text(project_id);
    int rc = aos__store_select(
        st,
        project_id ? BP_SELECT "WHERE v.version = b.version AND b.project_id = ? ORDER BY b.id"
                   : BP_SELECT "WHERE v.version = b.version ORDER BY b.id LIMIT 1000",
        &p, project_id ? 1 : 0, bp_cols, NCOLS(bp_cols), out, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to list blueprints") : 0;
}
