/* supervise.c - the decisions of the agent supervisor (agents.h), as pure
 * functions over a snapshot of the replicas: the agent's status, which
 * replica takes a call, the next step toward the wanted replicas (a scale
 * or a rolling release), and when crashes are an anomaly. live.c applies
 * them; tests/unit/test_agents.c checks them. */
#include "agents/agents.h"

#include <string.h>

const char *aos_agents_status(const aos_agent_rep_t *reps, size_t n, int running, int want,
                              int *ever_ready)
{
    if (!running)
        return "stopped";
    int ready = 0, down = 0;
    for (size_t i = 0; i < n; i++) {
        ready += reps[i].ready && !reps[i].draining;
        down |= reps[i].down;
    }
    if (ready >= want) {
        *ever_ready = 1;
        return "running";
    }
    if (ready == 0)
        return down || *ever_ready ? "crashed" : "starting";
    return down || *ever_ready ? "degraded" : "starting";
}

long aos_agents_pick(const aos_agent_rep_t *reps, size_t n, unsigned turn)
{
    for (int want_ready = 1; want_ready >= 0; want_ready--) {
        long best = -1;
        unsigned ties = 0;
        for (size_t i = 0; i < n; i++) {
            const aos_agent_rep_t *r = &reps[i];
            if (r->draining || (want_ready ? !r->ready : !r->starting))
                continue;
            if (best < 0 || r->in_flight < reps[best].in_flight) {
                best = (long)i;
                ties = 1;
            } else if (r->in_flight == reps[best].in_flight) {
                /* equals take calls in turn: the (turn mod ties)th of them */
                if (turn % ++ties == 0)
                    best = (long)i;
            }
        }
        if (best >= 0)
            return best;
    }
    return -1;
}

/* The replica to drain among those of (same ? version : another version):
 * one not ready first, then the one with the fewest calls in flight. */
static long victim(const aos_agent_rep_t *reps, size_t n, const int *drained, int64_t version,
                   int same)
{
    long v = -1;
    for (size_t i = 0; i < n; i++) {
        const aos_agent_rep_t *r = &reps[i];
        if (r->draining || drained[i] || (r->version == version) != same)
            continue;
        if (v < 0 || (!r->ready && reps[v].ready) ||
            (r->ready == reps[v].ready && r->in_flight < reps[v].in_flight))
            v = (long)i;
    }
    return v;
}

void aos_agents_step(const aos_agent_rep_t *reps, size_t n, int64_t version, int want,
                     int can_spawn, aos_agents_step_t *out)
{
    memset(out, 0, sizeof(*out));
    int drained[AOS_AGENTS_REPS_MAX] = {0};
    if (n > AOS_AGENTS_REPS_MAX)
        n = AOS_AGENTS_REPS_MAX;
    int cur = 0, cur_ready = 0, old = 0;
    for (size_t i = 0; i < n; i++) {
        if (reps[i].draining)
            continue;
        if (reps[i].version == version) {
            cur++;
            cur_ready += reps[i].ready;
        } else {
            old++;
        }
    }
    if (old) {
        /* a release: an old replica goes for each new one ready beyond
         * what is wanted, and a new one is started only when the ones
         * before it are ready - one at a time, never without a ready one */
        while (old && cur_ready >= 1 && cur_ready + old > want) {
            long v = victim(reps, n, drained, version, 0);
            if (v < 0)
                break;
            drained[v] = 1;
            out->drain[out->ndrain++] = (size_t)v;
            old--;
        }
        if (can_spawn && cur == cur_ready && cur < want)
            out->spawn = 1;
        return;
    }
    if (can_spawn && cur < want)
        out->spawn = want - cur;
    while (cur > want) {
        long v = victim(reps, n, drained, version, 1);
        if (v < 0)
            break;
        drained[v] = 1;
        out->drain[out->ndrain++] = (size_t)v;
        cur--;
    }
}

int aos_agents_crash(aos_agents_crashes_t *c, uint64_t now_ms)
{
    c->at[c->n++ % AOS_AGENTS_ANOMALY_CRASHES] = now_ms;
    if (c->n < AOS_AGENTS_ANOMALY_CRASHES)
        return 0;
    uint64_t oldest = c->at[c->n % AOS_AGENTS_ANOMALY_CRASHES];
    if (now_ms - oldest > AOS_AGENTS_ANOMALY_WINDOW_MS)
        return 0;
    if (c->anomaly_ms && now_ms - c->anomaly_ms <= AOS_AGENTS_ANOMALY_WINDOW_MS)
        return 0; /* once a window */
    c->anomaly_ms = now_ms;
    return 1;
}
