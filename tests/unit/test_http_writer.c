/* test_http_writer.c - the stream writer threads of the HTTP server, on
 * socketpairs: data arrives framed and in order, a close flushes first and
 * hands the socket back, a peer that hangs up is noticed without a write, a
 * full socket keeps bytes pending until the peer reads, the loop sends
 * itself while nothing is pending, and stopping the writers hands back
 * every stream still attached. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/writer.h"

typedef struct {
    uv_loop_t loop;
    aos__writers_t *ws;
    int released;     /* callbacks seen */
    int last_broken;  /* d->broken of the last one */
    int broken;       /* how many came back broken */
    int writers_gone; /* the on_closed callback of aos__writers_free */
} fixture_t;

static void on_released(aos__dstream_t *d, void *data)
{
    fixture_t *f = data;
    f->released++;
    f->last_broken = d->broken;
    f->broken += d->broken != 0;
}

static void on_gone(void *data)
{
    ((fixture_t *)data)->writers_gone = 1;
}

/* Runs the loop until cond holds or 5 s pass. */
#define RUN_UNTIL(f, cond)                                                                         \
    do {                                                                                           \
        for (int i_ = 0; i_ < 5000 && !(cond); i_++) {                                             \
            uv_run(&(f)->loop, UV_RUN_NOWAIT);                                                     \
            usleep(1000);                                                                          \
        }                                                                                          \
        assert_true(cond);                                                                         \
    } while (0)

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(aos__writers_new(&f->ws, &f->loop, 2, on_released, f), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->ws)
        aos__writers_free(f->ws, on_gone, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(f->writers_gone);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
}

/* Reads from fd until want bytes came or 5 s passed. */
static size_t read_all(int fd, char *buf, size_t want)
{
    size_t got = 0;
    while (got < want) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
            break;
        ssize_t n = read(fd, buf + got, want - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

static void test_chunked_in_order_then_close(void **state)
{
    fixture_t *f = *state;
    int sv[2];
    pair(sv);
    aos__dstream_t d = {0};
    assert_int_equal(aos__writers_attach(f->ws, &d, sv[0], 1), 0);
    assert_int_equal(aos__writers_write(&d, "hello", 5), 0);
    assert_int_equal(aos__writers_write(&d, "", 0), 0); /* no empty chunk: it would end */
    assert_int_equal(aos__writers_write(&d, "data: 0123456789abcdef\n\n", 24), 0);
    aos__writers_close(&d);
    assert_int_not_equal(aos__writers_write(&d, "late", 4), 0); /* after close: refused */
    const char want[] = "5\r\nhello\r\n18\r\ndata: 0123456789abcdef\n\n\r\n";
    char got[128] = {0};
    assert_int_equal(read_all(sv[1], got, sizeof(want) - 1), sizeof(want) - 1);
    assert_string_equal(got, want);
    RUN_UNTIL(f, f->released == 1);
    assert_int_equal(f->last_broken, 0);
    assert_int_equal(aos__writers_pending(&d), 0);
    aos__writers_dispose(&d);
    close(sv[0]);
    close(sv[1]);
}

/* n raw streams, each written `events` lines "eNNNNN\n" (a pause after
 * every pause_every events, 0: none); each must read them all, in order,
 * and come back unbroken once closed. */
static void many_streams(fixture_t *f, int n, int events, int pause_every)
{
    enum { LINE = 7 };
    int(*sv)[2] = calloc((size_t)n, sizeof(*sv));
    aos__dstream_t *d = calloc((size_t)n, sizeof(*d));
    char *got = calloc((size_t)events * LINE + 1, 1);
    assert_non_null(sv);
    assert_non_null(d);
    assert_non_null(got);
    for (int i = 0; i < n; i++) {
        pair(sv[i]);
        assert_int_equal(aos__writers_attach(f->ws, &d[i], sv[i][0], 0), 0);
    }
    char line[16];
    for (int e = 0; e < events; e++) {
        snprintf(line, sizeof(line), "e%05d\n", e);
        for (int i = 0; i < n; i++)
            assert_int_equal(aos__writers_write(&d[i], line, LINE), 0);
        if (pause_every && e % pause_every == 0)
            usleep(200); /* let some batches start in the middle of an event */
    }
    for (int i = 0; i < n; i++) {
        size_t want = (size_t)events * LINE;
        assert_int_equal(read_all(sv[i][1], got, want), want);
        for (int e = 0; e < events; e++) {
            snprintf(line, sizeof(line), "e%05d\n", e);
            assert_memory_equal(got + (size_t)e * LINE, line, LINE);
        }
        aos__writers_close(&d[i]);
    }
    RUN_UNTIL(f, f->released == n);
    assert_int_equal(f->broken, 0);
    for (int i = 0; i < n; i++) {
        aos__writers_dispose(&d[i]);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    free(got);
    free(d);
    free(sv);
}

static int watched(aos__dstream_t *d)
{
    uv_mutex_lock(&d->mu);
    int w = d->watched;
    uv_mutex_unlock(&d->mu);
    return w;
}

/* While nothing of a stream is pending the loop sends a write itself: it
 * is on the socket when the call returns, with no writer woken. A write
 * that finds the socket full leaves its rest to the writer, and what is
 * written after it keeps its place. */
static void test_inline_when_idle(void **state)
{
    fixture_t *f = *state;
    int sv[2];
    pair(sv);
    aos__dstream_t d = {0};
    assert_int_equal(aos__writers_attach(f->ws, &d, sv[0], 1), 0);
    RUN_UNTIL(f, watched(&d)); /* the writer watches for a hang-up */
    uv_update_time(&f->loop);
    assert_int_equal(aos__writers_write(&d, "hello", 5), 0);
    char got[64];
    ssize_t n = recv(sv[1], got, sizeof(got), MSG_DONTWAIT);
    assert_int_equal(n, 10);
    assert_memory_equal(got, "5\r\nhello\r\n", 10);
    uv_mutex_lock(&d.mu);
    assert_int_equal(d.queued, 0);
    uv_mutex_unlock(&d.mu);

    /* 4 MiB does not fit the socket: part goes at once, the rest and the
     * write after it through the writer, in order */
    size_t big = 4u << 20;
    char *payload = malloc(big);
    assert_non_null(payload);
    for (size_t i = 0; i < big; i++)
        payload[i] = (char)('a' + i % 26);
    uv_update_time(&f->loop);
    assert_int_equal(aos__writers_write(&d, payload, big), 0);
    assert_int_equal(aos__writers_write(&d, "tail", 4), 0);
    const char *hdr = "400000\r\n";
    size_t want = strlen(hdr) + big + 2 + 9;
    char *all = malloc(want);
    assert_non_null(all);
    assert_int_equal(read_all(sv[1], all, want), want);
    assert_memory_equal(all, hdr, strlen(hdr));
    assert_memory_equal(all + strlen(hdr), payload, big);
    assert_memory_equal(all + strlen(hdr) + big, "\r\n4\r\ntail\r\n", 11);
    aos__writers_close(&d);
    RUN_UNTIL(f, f->released == 1);
    assert_int_equal(f->last_broken, 0);
    aos__writers_dispose(&d);
    free(all);
    free(payload);
    close(sv[0]);
    close(sv[1]);
}

static void test_raw_many_streams(void **state)
{
    many_streams(*state, 50, 40, 0);
}

/* Writes that land while the writers' batches are out: each must go in a
 * later batch (or a send of its own), in order, none stuck. */
static void test_writes_race_the_batches(void **state)
{
    many_streams(*state, 200, 300, 50);
}

static void test_peer_hangup_is_noticed(void **state)
{
    fixture_t *f = *state;
    int sv[2];
    pair(sv);
    aos__dstream_t d = {0};
    assert_int_equal(aos__writers_attach(f->ws, &d, sv[0], 1), 0);
    assert_int_equal(aos__writers_write(&d, "x", 1), 0);
    char got[8];
    assert_int_equal(read_all(sv[1], got, 6), 6);
    close(sv[1]); /* no further write from us: the writer must see it alone */
    RUN_UNTIL(f, f->released == 1);
    assert_int_equal(f->last_broken, 1);
    assert_int_not_equal(aos__writers_write(&d, "y", 1), 0);
    aos__writers_dispose(&d);
    close(sv[0]);
}

static void test_full_socket_keeps_pending(void **state)
{
    fixture_t *f = *state;
    int sv[2];
    pair(sv);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    aos__dstream_t d = {0};
    assert_int_equal(aos__writers_attach(f->ws, &d, sv[0], 0), 0);
    static char block[64 * 1024];
    memset(block, 'z', sizeof(block));
    assert_int_equal(aos__writers_write(&d, block, sizeof(block)), 0);
    usleep(100 * 1000); /* the writer sends what fits and waits */
    size_t pending = aos__writers_pending(&d);
    assert_true(pending > 0 && pending < sizeof(block));
    /* the peer reads: the writer is woken by writability and sends the rest */
    static char got[sizeof(block)];
    assert_int_equal(read_all(sv[1], got, sizeof(got)), sizeof(got));
    assert_memory_equal(got, block, sizeof(block));
    for (int i = 0; i < 500 && aos__writers_pending(&d); i++)
        usleep(1000);
    assert_int_equal(aos__writers_pending(&d), 0);
    aos__writers_close(&d);
    RUN_UNTIL(f, f->released == 1);
    aos__writers_dispose(&d);
    close(sv[0]);
    close(sv[1]);
}

static void test_free_hands_back_attached(void **state)
{
    fixture_t *f = *state;
    int sv[3][2];
    aos__dstream_t d[3];
    memset(d, 0, sizeof(d));
    for (int i = 0; i < 3; i++) {
        pair(sv[i]);
        assert_int_equal(aos__writers_attach(f->ws, &d[i], sv[i][0], 1), 0);
    }
    assert_int_equal(aos__writers_write(&d[0], "a", 1), 0);
    /* every stream is handed back before free returns, closed or not */
    aos__writers_free(f->ws, on_gone, f);
    f->ws = NULL;
    assert_int_equal(f->released, 3);
    for (int i = 0; i < 3; i++) {
        aos__writers_dispose(&d[i]);
        close(sv[i][0]);
        close(sv[i][1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chunked_in_order_then_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inline_when_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_many_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writes_race_the_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_hangup_is_noticed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_socket_keeps_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_hands_back_attached, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
