/* audit_verify.c - how long GET /audit/verify's work takes on 1,000,000
 * audit rows (issue 16: target <= 2 s).
 *
 * Fills a fresh SQLite store in a temporary directory with N rows through
 * aos_store_audit_append (the real append: chain head, hash, insert), in
 * transactions of 10,000 appends, timing that too; rows look like aosd's
 * (actor "token:tok_<hex>", an action, a resource, a diff of ~120 bytes).
 * Then verifies the whole chain with aos_store_audit_verify_step in chunks
 * of AOS_AUDIT_VERIFY_CHUNK rows, as the route's store jobs do (the route
 * adds one loop turn per chunk, 50 for 1,000,000 rows), three times, and
 * prints each and the best:
 *   audit_verify: N rows appended in X s (Y appends/s)
 *   audit_verify: round R: N rows verified in X s (Y rows/s)
 * Finally it edits one row in the middle and checks that verification names
 * it (a benchmark of a check that is not done is worth nothing).
 * Usage: audit_verify [--rows N] [--dir D] (default 1,000,000; a new
 * directory under /tmp, removed afterwards). */
#include "../args.h"
#include "audit/audit.h"
#include "store/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct fill {
    long from, n;
};

static int fill_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct fill *f = arg;
    static const char *const actions[] = {"auth.token.create", "mcp.registry.put", "task.submit",
                                          "task.approve", "rbac.grant.create"};
    for (long i = f->from; i < f->from + f->n; i++) {
        char actor[40], res[64];
        snprintf(actor, sizeof(actor), "token:tok_%016lx", (unsigned long)(i % 97) * 0x9e3779b1ul);
        snprintf(res, sizeof(res), "api_tokens/tok_%016lx", (unsigned long)i * 0x85ebca6bul);
        json_t *diff =
            json_pack("{s:s, s:s, s:s, s:i}", "name", "nightly build of the docs site", "role",
                      "operator", "expires_at", "2027-01-31T00:00:00.000Z", "grants", (int)(i % 7));
        int rc = aos_store_audit_append(st, actor, actions[i % 5], res, diff, err);
        json_decref(diff);
        if (rc)
            return rc;
    }
    return 0;
}

static int verify(aos_store_t *st, aos_store_audit_verify_t *v)
{
    aos_err_t err = {0};
    aos_store_audit_verify_init(v, 0, 0);
    while (!v->done)
        if (aos_store_audit_verify_step(st, v, AOS_AUDIT_VERIFY_CHUNK, &err)) {
            fprintf(stderr, "verify: %s\n", aos_err_msg(&err));
            return -1;
        }
    return 0;
}

int main(int argc, char **argv)
{
    long rows = 1000000;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            rows = bench_num("--rows", argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "usage: audit_verify [--rows N] [--dir D]\n");
            return 2;
        }
    }
    if (rows < 10) {
        fprintf(stderr, "--rows must be at least 10\n");
        return 2;
    }
    char tmp[] = "/tmp/aos-bench-audit-XXXXXX";
    if (!dir && !(dir = mkdtemp(tmp))) {
        perror("mkdtemp");
        return 1;
    }
    char path[4200], url[4300];
    snprintf(path, sizeof(path), "%s/aos.db", dir);
    snprintf(url, sizeof(url), "sqlite:%s", path);
    aos_store_t *st = NULL;
    aos_err_t err = {0};
    int rc = 1;
    if (aos_store_open(&st, NULL, url, &err)) {
        fprintf(stderr, "open: %s\n", aos_err_msg(&err));
        goto out;
    }
    double t0 = now_s();
    for (long i = 0; i < rows; i += 10000) {
        struct fill f = {i, rows - i < 10000 ? rows - i : 10000};
        if (aos_store_tx(st, fill_tx, &f, &err)) {
            fprintf(stderr, "append: %s\n", aos_err_msg(&err));
            goto out;
        }
    }
    double t = now_s() - t0;
    printf("audit_verify: %ld rows appended in %.2f s (%.0f appends/s)\n", rows, t,
           (double)rows / t);
    fflush(stdout);
    double best = 1e9;
    for (int r = 1; r <= 3; r++) {
        aos_store_audit_verify_t v;
        t0 = now_s();
        if (verify(st, &v))
            goto out;
        t = now_s() - t0;
        if (v.broken_id || v.checked != rows) {
            fprintf(stderr, "verify: %lld rows checked, broken at %lld: %s\n", (long long)v.checked,
                    (long long)v.broken_id, v.reason);
            goto out;
        }
        printf("audit_verify: round %d: %ld rows verified in %.3f s (%.0f rows/s)\n", r, rows, t,
               (double)rows / t);
        fflush(stdout);
        if (t < best)
            best = t;
    }
    printf("audit_verify: best %.3f s for %ld rows (target <= 2 s for 1,000,000)\n", best, rows);
    /* the check must still find a change */
    sqlite3 *db;
    char q[160];
    long mid = rows / 2;
    snprintf(q, sizeof(q), "UPDATE audit_logs SET actor = 'mallory' WHERE id = %ld", mid);
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, q, NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "unable to edit a row\n");
        goto out;
    }
    sqlite3_close(db);
    aos_store_audit_verify_t v;
    if (verify(st, &v))
        goto out;
    if (v.broken_id != mid) {
        fprintf(stderr, "the edited row %ld was not found (broken: %lld)\n", mid,
                (long long)v.broken_id);
        goto out;
    }
    printf("audit_verify: an edited row %ld is named: %s\n", mid, v.reason);
    rc = 0;
out:
    aos_store_close(st);
    if (dir == tmp) {
        char f[4300];
        const char *sfx[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            snprintf(f, sizeof(f), "%s%s", path, sfx[i]);
            unlink(f);
        }
        rmdir(tmp);
    }
    return rc;
}
