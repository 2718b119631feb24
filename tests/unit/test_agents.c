/* test_agents.c - the supervisor's decisions (src/agents/supervise.c): the
 * status the replicas make, which replica takes a call (least in flight,
 * equals in turn, never a draining one), the steps of a scale and of a
 * rolling release (a new replica ready before an old one is drained, never
 * without a ready one), and when crashes are an anomaly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "agents/agents.h"

static aos_agent_rep_t rep(int64_t version, int ready, unsigned in_flight)
{
    return (aos_agent_rep_t){
        .version = version, .ready = ready, .starting = !ready, .in_flight = in_flight};
}

static void test_status(void **state)
{
    (void)state;
    int ever = 0;
    aos_agent_rep_t r[2] = {rep(1, 0, 0), rep(1, 0, 0)};
    assert_string_equal(aos_agents_status(r, 2, 0, 2, &ever), "stopped");
    assert_string_equal(aos_agents_status(r, 2, 1, 2, &ever), "starting");
    r[0].ready = 1;
    assert_string_equal(aos_agents_status(r, 2, 1, 2, &ever), "starting");
    r[1].ready = 1;
    assert_string_equal(aos_agents_status(r, 2, 1, 2, &ever), "running");
    assert_int_equal(ever, 1);
    r[1].ready = 0;
    r[1].down = 1;
    assert_string_equal(aos_agents_status(r, 2, 1, 2, &ever), "degraded");
    r[0].ready = 0;
    r[0].down = 1;
    assert_string_equal(aos_agents_status(r, 2, 1, 2, &ever), "crashed");
    /* a crash before it ever ran counts too */
    int never = 0;
    assert_string_equal(aos_agents_status(r, 2, 1, 2, &never), "crashed");
    /* a draining replica is not counted as ready */
    aos_agent_rep_t d[1] = {rep(1, 1, 0)};
    d[0].draining = 1;
    int e2 = 0;
    assert_string_equal(aos_agents_status(d, 1, 1, 1, &e2), "starting");
}

static void test_pick(void **state)
{
    (void)state;
    aos_agent_rep_t r[3] = {rep(1, 1, 3), rep(1, 1, 1), rep(1, 1, 2)};
    assert_int_equal(aos_agents_pick(r, 3, 0), 1);
    r[1].draining = 1;
    assert_int_equal(aos_agents_pick(r, 3, 0), 2);
    /* equals take turns */
    aos_agent_rep_t e[2] = {rep(1, 1, 0), rep(1, 1, 0)};
    int seen[2] = {0, 0};
    for (unsigned t = 0; t < 10; t++)
        seen[aos_agents_pick(e, 2, t)]++;
    assert_true(seen[0] > 0 && seen[1] > 0);
    /* ready first, then a starting one (its queue), never a down one */
    aos_agent_rep_t s[2] = {rep(1, 0, 0), rep(1, 1, 5)};
    assert_int_equal(aos_agents_pick(s, 2, 0), 1);
    s[1].draining = 1;
    assert_int_equal(aos_agents_pick(s, 2, 0), 0);
    s[0].starting = 0; /* in back-off */
    assert_int_equal(aos_agents_pick(s, 2, 0), -1);
    assert_int_equal(aos_agents_pick(NULL, 0, 0), -1);
}

static void test_scale(void **state)
{
    (void)state;
    aos_agents_step_t st;
    aos_agents_step(NULL, 0, 1, 2, 1, &st);
    assert_int_equal(st.spawn, 2);
    assert_int_equal(st.ndrain, 0);
    aos_agents_step(NULL, 0, 1, 2, 0, &st); /* no token yet */
    assert_int_equal(st.spawn, 0);
    /* down to 1: the one not ready goes, else the least busy */
    aos_agent_rep_t r[3] = {rep(1, 1, 4), rep(1, 0, 0), rep(1, 1, 1)};
    aos_agents_step(r, 3, 1, 1, 1, &st);
    assert_int_equal(st.spawn, 0);
    assert_int_equal(st.ndrain, 2);
    assert_int_equal(st.drain[0], 1);
    assert_int_equal(st.drain[1], 2);
    /* a draining replica is not counted */
    r[1].draining = 1;
    aos_agents_step(r, 3, 1, 3, 1, &st);
    assert_int_equal(st.spawn, 1);
}

/* Runs a release of want replicas from version 1 to 2, step by step, as
 * live.c does: every new replica becomes ready after the step that started
 * it, every drained one is gone at once. There is always a ready replica
 * that is not draining, and at most want + 1 run. */
static void test_release(void **state)
{
    (void)state;
    for (int want = 1; want <= 4; want++) {
        aos_agent_rep_t r[AOS_AGENTS_REPS_MAX];
        size_t n = 0;
        for (int i = 0; i < want; i++)
            r[n++] = rep(1, 1, 1);
        int steps = 0;
        for (;;) {
            assert_true(++steps < 100);
            aos_agents_step_t st;
            aos_agents_step(r, n, 2, want, 1, &st);
            /* drain (remove) */
            int gone[AOS_AGENTS_REPS_MAX] = {0};
            for (size_t i = 0; i < st.ndrain; i++) {
                assert_int_equal(r[st.drain[i]].version, 1); /* only old ones */
                gone[st.drain[i]] = 1;
            }
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                if (!gone[i])
                    r[m++] = r[i];
            n = m;
            int ready = 0;
            for (size_t i = 0; i < n; i++)
                ready += r[i].ready;
            assert_true(ready >= 1);
            assert_true(st.spawn <= 1);
            for (int i = 0; i < st.spawn; i++)
                r[n++] = rep(2, 0, 0);
            assert_true((int)n <= want + 1);
            int done = (int)n == want;
            for (size_t i = 0; i < n; i++)
                done &= r[i].version == 2 && r[i].ready;
            if (done)
                break;
            if (!st.spawn && !st.ndrain) {
                /* waiting for the new one to be ready */
                for (size_t i = 0; i < n; i++)
                    r[i].ready = 1;
            }
        }
        assert_true(steps >= want);
    }
    /* a release waits for the version's token */
    aos_agent_rep_t o[1] = {rep(1, 1, 0)};
    aos_agents_step_t st;
    aos_agents_step(o, 1, 2, 1, 0, &st);
    assert_int_equal(st.spawn, 0);
    assert_int_equal(st.ndrain, 0);
    /* old replicas all down: a new one starts, none is drained for nothing */
    o[0].ready = 0;
    aos_agents_step(o, 1, 2, 1, 1, &st);
    assert_int_equal(st.spawn, 1);
    assert_int_equal(st.ndrain, 0);
}

static void test_crashes(void **state)
{
    (void)state;
    aos_agents_crashes_t c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(aos_agents_crash(&c, 1000), 0);
    assert_int_equal(aos_agents_crash(&c, 2000), 0);
    assert_int_equal(aos_agents_crash(&c, 3000), 1);
    /* once a window */
    assert_int_equal(aos_agents_crash(&c, 4000), 0);
    assert_int_equal(aos_agents_crash(&c, 5000), 0);
    /* crashes spread out are no anomaly */
    memset(&c, 0, sizeof(c));
    assert_int_equal(aos_agents_crash(&c, 0), 0);
    assert_int_equal(aos_agents_crash(&c, 40000), 0);
    assert_int_equal(aos_agents_crash(&c, 80000), 0);
    assert_int_equal(aos_agents_crash(&c, 120000), 0);
    /* the next window raises again */
    memset(&c, 0, sizeof(c));
    assert_int_equal(aos_agents_crash(&c, 1), 0);
    assert_int_equal(aos_agents_crash(&c, 2), 0);
    assert_int_equal(aos_agents_crash(&c, 3), 1);
    assert_int_equal(aos_agents_crash(&c, 70000), 0);
    assert_int_equal(aos_agents_crash(&c, 70001), 0);
    assert_int_equal(aos_agents_crash(&c, 70002), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status),  cmocka_unit_test(test_pick),
        cmocka_unit_test(test_scale),   cmocka_unit_test(test_release),
        cmocka_unit_test(test_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
