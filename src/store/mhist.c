/* mhist.c - the rows of the metric history (store.h, migration 0026): an
 * upsert of chunks and the deletion of the old ones in one transaction,
 * and a read of what is left. What a series or a chunk means is
 * src/monitor's business; this file only moves them. */
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const aos_store_mhist_row_t *rows;
    size_t n;
    const int64_t *keep_from;
    int nrings;
} put_t;

static int put_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    put_t *p = arg;
    for (size_t i = 0; i < p->n; i++) {
        const aos_store_mhist_row_t *r = &p->rows[i];
        aos__sql_val_t v[] = {aos__sql_text(r->series), aos__sql_int(r->ring),
                              aos__sql_int(r->chunk), aos__sql_blob(r->slots, r->len)};
        int rc = aos__store_exec(st,
                                 "INSERT INTO metric_history (series, ring, chunk, slots) "
                                 "VALUES (?, ?, ?, ?) ON CONFLICT (series, ring, chunk) "
                                 "DO UPDATE SET slots = excluded.slots",
                                 v, NCOLS(v), NULL, err);
        if (rc < 0)
            return rc;
    }
    for (int r = 0; r < p->nrings; r++) {
        aos__sql_val_t v[] = {aos__sql_int(r), aos__sql_int(p->keep_from[r])};
        int rc = aos__store_exec(st, "DELETE FROM metric_history WHERE ring = ? AND chunk < ?", v,
                                 NCOLS(v), NULL, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int aos_store_mhist_put(aos_store_t *st, const aos_store_mhist_row_t *rows, size_t n,
                        const int64_t *keep_from, int nrings, aos_err_t *err)
{
    for (size_t i = 0; i < n; i++)
        if (!rows[i].series || !*rows[i].series || rows[i].ring < 0 || rows[i].ring >= nrings ||
            !rows[i].slots || !rows[i].len)
            return aos_err_set(err, AOS_EINVAL, "unable to save the metric history: a bad row");
    put_t p = {rows, n, keep_from, nrings};
    int rc = aos__store_in_tx(st, put_tx, &p, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save the metric history");
    return 0;
}

typedef struct {
    aos_store_mhist_fn fn;
    void *arg;
    char *text;
    size_t cap;
} load_t;

static int load_row(const aos__sql_val_t *c, int nc, void *arg, aos_err_t *err)
{
    load_t *l = arg;
    if (nc != 4 || c[0].type != AOS__SQL_TEXT || c[1].type != AOS__SQL_INT ||
        c[2].type != AOS__SQL_INT || (c[3].type != AOS__SQL_BLOB && c[3].type != AOS__SQL_TEXT))
        return aos_err_set(err, AOS_ESTORE, "an unreadable row of metric_history");
    if (c[0].len + 1 > l->cap) {
        char *p = realloc(l->text, c[0].len + 1);
        if (!p)
            return aos_err_set(err, AOS_ENOMEM, NULL);
        l->text = p;
        l->cap = c[0].len + 1;
    }
    memcpy(l->text, c[0].p, c[0].len);
    l->text[c[0].len] = '\0';
    aos_store_mhist_row_t row = {l->text, (int)c[1].i, c[2].i, c[3].p, c[3].len};
    l->fn(&row, l->arg);
    return 0;
}

int aos_store_mhist_load(aos_store_t *st, const int64_t *keep_from, int nrings,
                         aos_store_mhist_fn fn, void *arg, aos_err_t *err)
{
    load_t l = {fn, arg, NULL, 0};
    int rc = 0;
    for (int r = 0; r < nrings && !rc; r++) {
        aos__sql_val_t v[] = {aos__sql_int(r), aos__sql_int(keep_from[r])};
        rc = aos__store_query(st,
                              "SELECT series, ring, chunk, slots FROM metric_history "
                              "WHERE ring = ? AND chunk >= ? ORDER BY series, chunk",
                              v, NCOLS(v), load_row, &l, err);
    }
    free(l.text);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read the metric history");
    return 0;
}
