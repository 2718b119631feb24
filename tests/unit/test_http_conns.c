/* test_http_conns.c - admission of the HTTP server's connections, with a
 * fake clock and a close callback that records: address groups (loopback
 * as one, IPv6 by /64, IPv4-mapped as IPv4), the longest-idle connection
 * making room per group and in all, busy connections never closed and a
 * new one refused when all are busy, head and keep-alive deadlines that
 * trickling cannot extend, and records that stop counting once closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "http/conns.h"

typedef struct {
    aos__conn_t *closed[64];
    int nclosed;
} rec_t;

static void on_close(aos__conn_t *c, void *data)
{
    rec_t *r = data;
    r->closed[r->nclosed++] = c;
}

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *in = (struct sockaddr_in6 *)&ss;
    in->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &in->sin6_addr), 1);
    return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void init(aos__conns_t *cs, rec_t *r, unsigned max, unsigned per_ip)
{
    memset(r, 0, sizeof(*r));
    aos__conns_cfg_t cfg = {.max_conns = max,
                            .max_per_ip = per_ip,
                            .head_timeout_ms = 10000,
                            .idle_timeout_ms = 120000,
                            .close = on_close,
                            .data = r};
    aos__conns_init(cs, &cfg);
}

/* admit + add, as the server does for one accepted connection */
static aos__conn_t *accept_one(aos__conns_t *cs, struct sockaddr_storage ss, uint64_t now)
{
    if (!aos__conns_admit(cs, SA(ss), now))
        return NULL;
    aos__conn_t *c = aos__conns_add(cs, SA(ss), now, NULL);
    assert_non_null(c);
    return c;
}

/* the server removes a record once MHD has cleaned the connection up */
static void reap(aos__conns_t *cs, rec_t *r)
{
    for (int i = 0; i < r->nclosed; i++)
        aos__conns_remove(cs, r->closed[i]);
    r->nclosed = 0;
}

static void test_group_keys(void **state)
{
    char k[48];
    struct sockaddr_storage ss;
    const char *cases[][2] = {
        {"127.0.0.1", "lo"},
        {"127.45.3.2", "lo"},
        {"::1", "lo"},
        {"::ffff:127.0.0.9", "lo"},
        {"10.1.2.3", "4:10.1.2.3"},
        {"::ffff:10.1.2.3", "4:10.1.2.3"},
        {"2001:db8:1:2:aa::1", "6:2001:db8:1:2::/64"},
        {"2001:db8:1:2:ffff:ffff:ffff:ffff", "6:2001:db8:1:2::/64"},
        {"2001:db8:1:3::1", "6:2001:db8:1:3::/64"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ss = strchr(cases[i][0], ':') ? v6(cases[i][0]) : v4(cases[i][0]);
        aos__conns_group_key(SA(ss), k, sizeof(k));
        assert_string_equal(k, cases[i][1]);
    }
}

static void test_per_ip_makes_room(void **state)
{
    aos__conns_t cs;
    rec_t r;
    init(&cs, &r, 100, 3);
    aos__conn_t *a = accept_one(&cs, v4("127.0.0.1"), 1);
    aos__conn_t *b = accept_one(&cs, v4("127.0.0.2"), 2); /* same group: loopback */
    aos__conn_t *c = accept_one(&cs, v6("::1"), 3);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    aos__conns_busy(&cs, a); /* a stream, say */
    /* a fourth: the group is full, b is the longest idle */
    aos__conn_t *d = accept_one(&cs, v4("127.0.0.3"), 4);
    assert_non_null(d);
    assert_int_equal(r.nclosed, 1);
    assert_ptr_equal(r.closed[0], b);
    assert_int_equal(b->state, AOS__CONN_CLOSING);
    assert_int_equal(cs.count, 3);
    reap(&cs, &r);
    /* another address is not touched by it */
    aos__conn_t *x = accept_one(&cs, v4("10.0.0.1"), 5);
    assert_non_null(x);
    assert_int_equal(r.nclosed, 0);
    /* all of the group busy: refused, nobody closed */
    aos__conns_busy(&cs, c);
    aos__conns_busy(&cs, d);
    assert_null(accept_one(&cs, v4("127.0.0.1"), 6));
    assert_int_equal(r.nclosed, 0);
    assert_int_equal(cs.refused, 1);
    /* one request ends: kept alive, idle again, it makes room */
    aos__conns_idle(&cs, c, 7);
    aos__conn_t *e = accept_one(&cs, v4("127.0.0.1"), 8);
    assert_non_null(e);
    assert_ptr_equal(r.closed[0], c);
    assert_int_equal(cs.evicted, 2);
    reap(&cs, &r);
    aos__conns_remove(&cs, a);
    aos__conns_remove(&cs, d);
    aos__conns_remove(&cs, x);
    assert_int_equal(cs.count, 1);
    aos__conns_remove(&cs, e);
    assert_int_equal(cs.count, 0);
    aos__conns_release(&cs);
}

static void test_total_makes_room(void **state)
{
    aos__conns_t cs;
    rec_t r;
    init(&cs, &r, 3, 0);
    aos__conn_t *a = accept_one(&cs, v4("10.0.0.1"), 10);
    aos__conn_t *b = accept_one(&cs, v4("10.0.0.2"), 20);
    aos__conn_t *c = accept_one(&cs, v4("10.0.0.3"), 30);
    /* a served a request and is kept since 40: b (new since 20) is idle longest */
    aos__conns_busy(&cs, a);
    aos__conns_idle(&cs, a, 40);
    assert_non_null(accept_one(&cs, v4("10.0.0.4"), 50));
    assert_ptr_equal(r.closed[0], b);
    reap(&cs, &r);
    assert_non_null(accept_one(&cs, v4("10.0.0.5"), 60));
    assert_ptr_equal(r.closed[0], c);
    reap(&cs, &r);
    assert_non_null(accept_one(&cs, v4("10.0.0.6"), 70));
    assert_ptr_equal(r.closed[0], a);
    reap(&cs, &r);
    assert_int_equal(cs.count, 3);
    /* a closed record stops counting before it is removed */
    aos__conn_t *all[3];
    int n = 0;
    for (aos__conn_t *p = cs.new_head; p; p = p->next)
        all[n++] = p;
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        aos__conns_busy(&cs, all[i]);
    assert_null(accept_one(&cs, v6("2001:db8::1"), 80));
    for (int i = 0; i < 3; i++)
        aos__conns_remove(&cs, all[i]);
    assert_int_equal(cs.count, 0);
    aos__conns_release(&cs);
}

static void test_deadlines(void **state)
{
    aos__conns_t cs;
    rec_t r;
    init(&cs, &r, 100, 0);
    aos__conn_t *a = accept_one(&cs, v4("10.0.0.1"), 1000);
    aos__conn_t *b = accept_one(&cs, v4("10.0.0.2"), 2000);
    aos__conn_t *k = accept_one(&cs, v4("10.0.0.3"), 3000);
    aos__conn_t *s = accept_one(&cs, v4("10.0.0.4"), 3000);
    aos__conns_busy(&cs, k);
    aos__conns_idle(&cs, k, 4000); /* kept alive from 4 s: until 124 s */
    aos__conns_busy(&cs, s);       /* a stream: no deadline */
    assert_int_equal(aos__conns_sweep(&cs, 5000), 11000);
    assert_int_equal(r.nclosed, 0);
    /* whatever a or b trickle meanwhile, nothing here moves */
    assert_int_equal(aos__conns_sweep(&cs, 11000), 12000);
    assert_int_equal(r.nclosed, 1);
    assert_ptr_equal(r.closed[0], a);
    assert_int_equal(aos__conns_sweep(&cs, 12500), 124000);
    assert_ptr_equal(r.closed[1], b);
    assert_int_equal(cs.timed_out, 2);
    reap(&cs, &r);
    assert_int_equal(aos__conns_sweep(&cs, 124000), 0);
    assert_ptr_equal(r.closed[0], k);
    reap(&cs, &r);
    assert_int_equal(aos__conns_sweep(&cs, 10000000), 0);
    assert_int_equal(s->state, AOS__CONN_BUSY);
    /* once the stream ends and the connection is kept, its deadline runs */
    aos__conns_idle(&cs, s, 10000000);
    assert_int_equal(aos__conns_sweep(&cs, 10000001), 10120000);
    aos__conns_remove(&cs, s);
    assert_int_equal(aos__conns_sweep(&cs, 10000002), 0);
    assert_int_equal(cs.count, 0);
    aos__conns_release(&cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_keys),
        cmocka_unit_test(test_per_ip_makes_room),
        cmocka_unit_test(test_total_makes_room),
        cmocka_unit_test(test_deadlines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
