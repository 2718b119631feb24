/* embed.c - vectors from a model server (--memory-embed llm): the texts of
 * writes and the queries of searches are embedded on the loop through the
 * llm client (an OpenAI-compatible POST /embeddings, libcurl multi under
 * httpc) before their store job runs, and the items whose vector is of
 * another model are re-embedded in the background.
 *
 * An operation that needs a vector (a create, an update of the text, a
 * vector or hybrid search) starts one embeddings call and is suspended
 * until it answers: nothing blocks, the request waits. The answer is
 * checked (mem_embed_check: one vector per text, a sane dimension) and
 * L2-normalised, so that the index's inner product is the cosine; a
 * failure ends the operation with the llm client's error code (the one
 * table: upstream_error, upstream_auth, rate_limited, timeout) and a
 * message naming the model - never the key, which only the client holds
 * - and nothing is stored. The dimension is checked against the index in
 * the store job (mem_index_ready), which creates the index from the
 * model's first vector: a vector of another dimension is refused with an
 * error naming both.
 *
 * Re-embedding: the vectors loaded at start are the configured model's
 * only; the live items whose vector is missing or of another model (the
 * model was switched, or an item was written before) are re-embedded in
 * passes over the item ids: a store job reads a batch (at most RE_BATCH
 * texts and RE_BYTES bytes), the loop embeds it in one call, a store job
 * writes the vectors whose item has not changed since (a write since then
 * embedded itself) and adds them to the index. A pass that wrote or
 * skipped something is followed by another from the start; a pass finding
 * nothing ends the work. With the built-in embedding a batch is embedded
 * in the job that read it. A failed call is tried again after a back-off
 * (5 s doubling to 5 min, and at once when another call succeeds), except
 * a refusal of the request itself (a 4xx other than 408 and 429: a text
 * the model does not take): then the pass goes on one text a call, and a
 * text refused alone is logged and left without a vector (found by
 * keyword; tried again at the next pass, or at the next start).
 * Meanwhile keyword search finds every item, vector search those
 * embedded so far. */
#include "memory/internal.h"

#include "log/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RE_BATCH       64        /* texts in one embeddings call */
#define RE_BYTES       (1 << 18) /* bytes of text in one call */
#define RE_BATCH_LOCAL 512       /* items of one job with the built-in embedding */
#define RE_BACKOFF_MIN 5000
#define RE_BACKOFF_MAX 300000

/* ---- checks ---------------------------------------------------------------------- */

int mem_embed_check(aos_llm_result_t *r, size_t n, const char *model, aos_err_t *err)
{
    if (r->status)
        return aos_err_set(err, r->status, "embedding with model '%.120s' failed: %s", model,
                           r->errmsg[0] ? r->errmsg : aos_strerror(r->status));
    if (!r->vectors || r->nvectors != n)
        return aos_err_set(err, AOS_EUPSTREAM,
                           "embedding with model '%.120s' failed: %zu vectors for %zu texts", model,
                           r->nvectors, n);
    if (r->dim < 1 || r->dim > MEM_EMBED_DIMS_MAX)
        return aos_err_set(err, AOS_EUPSTREAM,
                           "embedding with model '%.120s' failed: %zu dimensions (1..%d taken)",
                           model, r->dim, MEM_EMBED_DIMS_MAX);
    for (size_t i = 0; i < n; i++) {
        float *v = r->vectors + i * r->dim;
        double ss = 0; /* in double: the reader took floats, whose squares fit */
        for (size_t k = 0; k < r->dim; k++)
            ss += (double)v[k] * v[k];
        if (ss > 0) {
            float inv = (float)(1.0 / sqrt(ss));
            for (size_t k = 0; k < r->dim; k++)
                v[k] *= inv;
        }
    }
    return 0;
}

int mem_index_ready(aos_memory_t *m, int dims, aos_err_t *err)
{
    if (m->index) {
        if (m->dims == dims)
            return 0;
        return aos_err_set(err, AOS_EUPSTREAM,
                           "the embedding model '%.120s' gave %d dimensions; the memory index "
                           "holds vectors of %d",
                           m->model, dims, m->dims);
    }
    int rc = aos_memory_index_new(&m->index, dims, 1);
    if (!rc && m->graph_path) /* its vectors' hashes tell whether the file's graph is theirs */
        rc = aos_memory_index_hnsw_file(m->index, m->graph_path, 1);
    if (rc) {
        aos_memory_index_free(m->index);
        m->index = NULL;
        return aos_err_set(err, rc, "unable to create the vector index");
    }
    m->dims = dims;
    return 0;
}

/* ---- an operation's vector ------------------------------------------------------------ */

struct op_embed {
    mem_op_t *op;
    mem_next_fn next;
};

static void op_embedded(aos_llm_result_t *res, void *data)
{
    struct op_embed *e = data;
    mem_op_t *op = e->op;
    mem_next_fn next = e->next;
    free(e);
    aos_err_t err = {0, ""};
    int rc = mem_embed_check(res, 1, op->m->model, &err);
    if (!rc) {
        op->vec = res->vectors;
        op->dims = (int)res->dim;
        res->vectors = NULL;
    }
    aos_llm_result_free(res);
    if (rc) {
        if (rc != AOS_ECANCELED)
            aos_log_warn("memory", "%s", aos_err_msg(&err));
        mem_op_fail(op, &err);
        return;
    }
    mem_reembed_resume(op->m); /* the endpoint answers: a waiting pass may go on */
    next(op);
}

void mem_embed_then(mem_op_t *op, const char *text, mem_next_fn next)
{
    aos_memory_t *m = op->m;
    struct op_embed *e = calloc(1, sizeof(*e));
    aos_err_t err = {0, ""};
    if (!e) {
        aos_err_set(&err, AOS_ENOMEM, "out of memory");
        mem_op_fail(op, &err);
        return;
    }
    e->op = op;
    e->next = next;
    const char *texts[] = {text};
    aos_llm_embed_t req = {.texts = texts, .ntexts = 1, .model = m->model};
    int rc = aos_llm_embed(m->cfg.llm, &req, op_embedded, e, NULL, &err);
    if (rc) {
        free(e);
        char why[sizeof(err.msg)];
        snprintf(why, sizeof(why), "%s", aos_err_msg(&err));
        aos_err_set(&err, rc, "embedding with model '%.120s' failed: %s", m->model, why);
        mem_op_fail(op, &err);
    }
}

/* ---- re-embedding ------------------------------------------------------------------- */

struct re_batch {
    aos_memory_t *m;
    int64_t after;  /* read: ids above */
    int limit;      /* read: at most this many */
    json_t *rows;   /* [{id, text, version}] */
    float *vectors; /* llm: the answer, nrows * dims */
    int dims;
    int written, skipped, failed;
    int64_t last; /* the largest id read */
};

static void re_next(aos_memory_t *m);

static void re_schedule(aos_memory_t *m);

static void re_timer_fire(uv_timer_t *t)
{
    aos_memory_t *m = t->data;
    m->re.waiting = 0;
    re_next(m);
}

static void re_timer_closed(uv_handle_t *h)
{
    free(h);
}

/* Writes the batch's vectors (store job): those whose item is unchanged. */
static int re_write(aos_store_t *st, struct re_batch *b, aos_err_t *err)
{
    aos_memory_t *m = b->m;
    size_t n = json_array_size(b->rows);
    int rc = mem_index_ready(m, b->dims, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        const json_t *row = json_array_get(b->rows, i);
        int64_t id = json_integer_value(json_object_get(row, "id"));
        char project[MEM_PROJECT_MAX + 1];
        int written = 0;
        const float *v = b->vectors + i * (size_t)b->dims;
        rc =
            aos_store_mem_set_vector(st, id, json_integer_value(json_object_get(row, "version")),
                                     m->model, v, b->dims, project, sizeof(project), &written, err);
        if (rc)
            break;
        if (!written) {
            b->skipped++;
            continue;
        }
        b->written++;
        uint32_t g = mem_proj_intern(m, project);
        if (g == UINT32_MAX || aos_memory_index_add(m->index, id, g, v))
            aos_log_error("memory", "item %lld: its new vector is not in the index", (long long)id);
    }
    if (!rc)
        mem_maybe_build(m);
    return rc;
}

static int re_write_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    return re_write(st, arg, err);
}

static int job_re_read(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct re_batch *b = arg;
    aos_memory_t *m = b->m;
    int local = !m->cfg.llm;
    int rc = aos_store_mem_stale(st, m->model, m->dims, b->after, b->limit, &b->rows, err);
    if (rc)
        return rc;
    size_t n = json_array_size(b->rows);
    if (!local) { /* at most RE_BYTES of text (the first always) */
        size_t bytes = 0, keep = 0;
        for (; keep < n; keep++) {
            bytes +=
                strlen(json_string_value(json_object_get(json_array_get(b->rows, keep), "text")));
            if (keep > 0 && bytes > RE_BYTES)
                break;
        }
        while (json_array_size(b->rows) > keep)
            json_array_remove(b->rows, json_array_size(b->rows) - 1);
        n = keep;
    }
    if (n)
        b->last = json_integer_value(json_object_get(json_array_get(b->rows, n - 1), "id"));
    if (!local || n == 0)
        return 0;
    b->dims = AOS_MEMORY_DIMS;
    b->vectors = malloc(n * AOS_MEMORY_DIMS * sizeof(float));
    if (!b->vectors)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *t = json_string_value(json_object_get(json_array_get(b->rows, i), "text"));
        aos_memory_embed(t, strlen(t), b->vectors + i * AOS_MEMORY_DIMS);
    }
    return aos_store_tx(st, re_write_tx, b, err);
}

static int job_re_write(aos_store_t *st, void *arg, aos_err_t *err)
{
    return aos_store_tx(st, re_write_tx, arg, err);
}

static void re_batch_free(struct re_batch *b)
{
    json_decref(b->rows);
    free(b->vectors);
    free(b);
}

/* The batch was written (or the built-in one read and written). */
static void re_written(int status, const aos_err_t *err, void *arg)
{
    struct re_batch *b = arg;
    aos_memory_t *m = b->m;
    m->re.busy = 0;
    if (status) {
        aos_log_error("memory", "re-embedding: %s", aos_err_msg(err));
        re_batch_free(b);
        re_schedule(m);
        return;
    }
    size_t n = json_array_size(b->rows);
    m->re.written += (size_t)b->written;
    if (b->written || b->skipped)
        m->re.dirty = 1;
    if (n == 0) { /* the pass is over */
        if (m->re.dirty) {
            m->re.dirty = 0;
            m->re.after = 0;
            m->re.single = 0;
            re_batch_free(b);
            re_next(m);
            return;
        }
        m->re.running = 0;
        m->re.backoff_ms = 0;
        if (m->re.written)
            aos_log_info("memory", "re-embedded %zu item(s) with model %s", m->re.written,
                         m->model);
        m->re.written = 0;
        re_batch_free(b);
        return;
    }
    m->re.after = b->last;
    m->re.backoff_ms = 0;
    re_batch_free(b);
    re_next(m);
}

static void re_embedded(aos_llm_result_t *res, void *data)
{
    struct re_batch *b = data;
    aos_memory_t *m = b->m;
    m->re.call = NULL;
    aos_err_t err = {0, ""};
    size_t n = json_array_size(b->rows);
    /* the server refused the request itself: a text it does not take */
    int refused = res->status == AOS_EUPSTREAM && res->http_status >= 400 &&
                  res->http_status < 500 && res->http_status != 408 && res->http_status != 429;
    int rc = mem_embed_check(res, n, m->model, &err);
    if (!rc) {
        b->vectors = res->vectors;
        b->dims = (int)res->dim;
        res->vectors = NULL;
    }
    aos_llm_result_free(res);
    if (rc) {
        m->re.busy = 0;
        if (rc == AOS_ECANCELED || m->stopping) {
            re_batch_free(b);
            return;
        }
        if (refused && n > 1) { /* find the text: one a call */
            m->re.single = 1;
            re_batch_free(b);
            re_next(m);
            return;
        }
        if (refused) {
            aos_log_error("memory",
                          "re-embedding: item %lld has no vector of model %s (found by keyword "
                          "only): %s",
                          (long long)b->last, m->model, aos_err_msg(&err));
            m->re.after = b->last;
            re_batch_free(b);
            re_next(m);
            return;
        }
        re_batch_free(b);
        aos_log_warn("memory", "re-embedding: %s", aos_err_msg(&err));
        re_schedule(m);
        return;
    }
    if (aos_store_submit(m->cfg.store, job_re_write, re_written, b)) {
        m->re.busy = 0; /* the store is closing */
        m->re.running = 0;
        re_batch_free(b);
    }
}

/* A batch was read: embed it (llm), or it is written already (built-in). */
static void re_read(int status, const aos_err_t *err, void *arg)
{
    struct re_batch *b = arg;
    aos_memory_t *m = b->m;
    if (status || !m->cfg.llm || json_array_size(b->rows) == 0 || m->stopping) {
        if (m->stopping) {
            m->re.busy = 0;
            re_batch_free(b);
            return;
        }
        re_written(status, err, arg);
        return;
    }
    size_t n = json_array_size(b->rows);
    const char **texts = calloc(n, sizeof(*texts));
    aos_err_t e2 = {0, ""};
    int rc = texts ? 0 : AOS_ENOMEM;
    for (size_t i = 0; texts && i < n; i++)
        texts[i] = json_string_value(json_object_get(json_array_get(b->rows, i), "text"));
    if (!rc) {
        aos_llm_embed_t req = {.texts = texts, .ntexts = n, .model = m->model};
        rc = aos_llm_embed(m->cfg.llm, &req, re_embedded, b, &m->re.call, &e2);
    }
    free(texts);
    if (rc) {
        m->re.busy = 0;
        aos_log_error("memory", "re-embedding: %s",
                      rc == AOS_ENOMEM ? "out of memory" : aos_err_msg(&e2));
        re_batch_free(b);
        re_schedule(m);
    }
}

static void re_next(aos_memory_t *m)
{
    if (m->stopping || m->re.busy || m->re.waiting)
        return;
    struct re_batch *b = calloc(1, sizeof(*b));
    if (!b) {
        re_schedule(m);
        return;
    }
    b->m = m;
    b->after = m->re.after;
    b->limit = !m->cfg.llm ? RE_BATCH_LOCAL : m->re.single ? 1 : RE_BATCH;
    m->re.busy = 1;
    if (aos_store_submit(m->cfg.store, job_re_read, re_read, b)) {
        m->re.busy = 0;
        free(b);
        m->re.running = 0; /* the store is closing */
    }
}

/* Waits before the next try: back-off. */
static void re_schedule(aos_memory_t *m)
{
    if (m->stopping)
        return;
    if (!m->re.timer) {
        m->re.timer = malloc(sizeof(*m->re.timer));
        if (!m->re.timer || uv_timer_init(m->cfg.loop, m->re.timer)) {
            free(m->re.timer);
            m->re.timer = NULL;
            m->re.running = 0;
            return;
        }
        m->re.timer->data = m;
        uv_unref((uv_handle_t *)m->re.timer);
    }
    unsigned ms = m->re.backoff_ms ? m->re.backoff_ms * 2 : RE_BACKOFF_MIN;
    m->re.backoff_ms = ms > RE_BACKOFF_MAX ? RE_BACKOFF_MAX : ms;
    m->re.waiting = 1;
    uv_timer_start(m->re.timer, re_timer_fire, m->re.backoff_ms, 0);
}

void mem_reembed_kick(aos_memory_t *m)
{
    if (m->stopping || !m->loaded || m->load_failed)
        return;
    if (!m->re.running) {
        m->re.running = 1;
        m->re.after = 0;
        m->re.dirty = 0;
        m->re.single = 0;
        m->re.backoff_ms = 0;
        re_next(m);
    } else if (m->re.waiting) { /* the endpoint answers again: go on now */
        uv_timer_stop(m->re.timer);
        m->re.waiting = 0;
        re_next(m);
    }
}

void mem_reembed_resume(aos_memory_t *m)
{
    if (m->re.running && m->re.waiting && !m->stopping)
        mem_reembed_kick(m);
}

void aos_memory_stop(aos_memory_t *m)
{
    if (!m || m->stopping)
        return;
    m->stopping = 1;
    if (m->re.call)
        aos_llm_cancel(m->re.call);
    if (m->re.timer) {
        uv_close((uv_handle_t *)m->re.timer, re_timer_closed);
        m->re.timer = NULL;
    }
}
