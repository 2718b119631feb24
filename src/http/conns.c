/* conns.c - admission of the HTTP server's connections; see conns.h.
 *
 * Idle connections sit on two lists in the order they became idle, one
 * for new connections and one for kept-alive ones: as each list has one
 * timeout, its head has the earliest deadline, so the sweep and the
 * choice of the longest-idle connection are O(1). Each address group also
 * lists its idle connections (both kinds, same order) for the per-group
 * choice. */
#include "http/conns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct aos__conn_group_s {
    unsigned count; /* its connections not closing */
    aos__conn_t *idle_head, *idle_tail;
    char key[AOS__CONNS_KEY_MAX];
};

void aos__conns_group_key(const struct sockaddr *sa, char *buf, size_t size)
{
    char text[INET6_ADDRSTRLEN];
    const unsigned char *v4 = NULL;
    if (sa && sa->sa_family == AF_INET) {
        v4 = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) {
            snprintf(buf, size, "lo");
            return;
        }
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            v4 = a->s6_addr + 12;
        } else {
            /* one /64: what one host, or one customer, usually gets */
            struct in6_addr net = *a;
            memset(net.s6_addr + 8, 0, 8);
            inet_ntop(AF_INET6, &net, text, sizeof(text));
            snprintf(buf, size, "6:%s/64", text);
            return;
        }
    } else {
        snprintf(buf, size, "other");
        return;
    }
    if (v4[0] == 127) {
        snprintf(buf, size, "lo");
        return;
    }
    inet_ntop(AF_INET, v4, text, sizeof(text));
    snprintf(buf, size, "4:%s", text);
}

void aos__conns_init(aos__conns_t *cs, const aos__conns_cfg_t *cfg)
{
    memset(cs, 0, sizeof(*cs));
    cs->cfg = *cfg;
    if (!cs->cfg.max_conns)
        cs->cfg.max_conns = 1;
    aos_map_init(&cs->groups);
}

/* ---- the lists ------------------------------------------------------------ */

static void idle_link(aos__conns_t *cs, aos__conn_t *c)
{
    aos__conn_t **head = c->state == AOS__CONN_NEW ? &cs->new_head : &cs->kept_head;
    aos__conn_t **tail = c->state == AOS__CONN_NEW ? &cs->new_tail : &cs->kept_tail;
    c->next = NULL;
    c->prev = *tail;
    if (*tail)
        (*tail)->next = c;
    else
        *head = c;
    *tail = c;
    aos__conn_group_t *g = c->group;
    c->gnext = NULL;
    c->gprev = g->idle_tail;
    if (g->idle_tail)
        g->idle_tail->gnext = c;
    else
        g->idle_head = c;
    g->idle_tail = c;
}

static void idle_unlink(aos__conns_t *cs, aos__conn_t *c)
{
    aos__conn_t **head = c->state == AOS__CONN_NEW ? &cs->new_head : &cs->kept_head;
    aos__conn_t **tail = c->state == AOS__CONN_NEW ? &cs->new_tail : &cs->kept_tail;
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        *tail = c->prev;
    c->prev = c->next = NULL;
    aos__conn_group_t *g = c->group;
    if (c->gprev)
        c->gprev->gnext = c->gnext;
    else
        g->idle_head = c->gnext;
    if (c->gnext)
        c->gnext->gprev = c->gprev;
    else
        g->idle_tail = c->gprev;
    c->gprev = c->gnext = NULL;
}

static int is_idle(const aos__conn_t *c)
{
    return c->state == AOS__CONN_NEW || c->state == AOS__CONN_KEPT;
}

/* c stops counting: off the lists and out of its group. */
static void detach(aos__conns_t *cs, aos__conn_t *c)
{
    if (is_idle(c))
        idle_unlink(cs, c);
    aos__conn_group_t *g = c->group;
    c->group = NULL;
    cs->count--;
    if (--g->count == 0)
        free(aos_map_del(&cs->groups, g->key));
}

static void close_conn(aos__conns_t *cs, aos__conn_t *c)
{
    detach(cs, c);
    c->state = AOS__CONN_CLOSING;
    cs->cfg.close(c, cs->cfg.data);
}

/* The connection idle longest of all, or NULL. */
static aos__conn_t *oldest_idle(aos__conns_t *cs)
{
    aos__conn_t *a = cs->new_head, *b = cs->kept_head;
    if (!a || !b)
        return a ? a : b;
    return a->since_ms <= b->since_ms ? a : b;
}

/* ---- the entry points ----------------------------------------------------- */

int aos__conns_admit(aos__conns_t *cs, const struct sockaddr *sa, uint64_t now_ms)
{
    (void)now_ms;
    char key[AOS__CONNS_KEY_MAX];
    aos__conns_group_key(sa, key, sizeof(key));
    aos__conn_group_t *g = aos_map_get(&cs->groups, key);
    if (cs->cfg.max_per_ip && g && g->count >= cs->cfg.max_per_ip) {
        if (!g->idle_head) {
            cs->refused++;
            return 0;
        }
        cs->evicted++;
        close_conn(cs, g->idle_head); /* g may be gone now */
    }
    if (cs->count >= cs->cfg.max_conns) {
        aos__conn_t *victim = oldest_idle(cs);
        if (!victim) {
            cs->refused++;
            return 0;
        }
        cs->evicted++;
        close_conn(cs, victim);
    }
    return 1;
}

aos__conn_t *aos__conns_add(aos__conns_t *cs, const struct sockaddr *sa, uint64_t now_ms,
                            void *owner)
{
    char key[AOS__CONNS_KEY_MAX];
    aos__conns_group_key(sa, key, sizeof(key));
    aos__conn_group_t *g = aos_map_get(&cs->groups, key);
    if (!g) {
        g = calloc(1, sizeof(*g));
        if (!g)
            return NULL;
        snprintf(g->key, sizeof(g->key), "%s", key);
        if (aos_map_put(&cs->groups, g->key, g)) {
            free(g);
            return NULL;
        }
    }
    aos__conn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        if (g->count == 0)
            free(aos_map_del(&cs->groups, g->key));
        return NULL;
    }
    c->owner = owner;
    c->group = g;
    c->state = AOS__CONN_NEW;
    c->since_ms = now_ms;
    g->count++;
    cs->count++;
    idle_link(cs, c);
    return c;
}

void aos__conns_busy(aos__conns_t *cs, aos__conn_t *c)
{
    if (!is_idle(c))
        return;
    idle_unlink(cs, c);
    c->state = AOS__CONN_BUSY;
}

void aos__conns_idle(aos__conns_t *cs, aos__conn_t *c, uint64_t now_ms)
{
    if (c->state != AOS__CONN_BUSY)
        return;
    c->state = AOS__CONN_KEPT;
    c->since_ms = now_ms;
    idle_link(cs, c);
}

void aos__conns_remove(aos__conns_t *cs, aos__conn_t *c)
{
    if (c->state != AOS__CONN_CLOSING)
        detach(cs, c);
    free(c);
}

uint64_t aos__conns_sweep(aos__conns_t *cs, uint64_t now_ms)
{
    const uint64_t head = cs->cfg.head_timeout_ms, idle = cs->cfg.idle_timeout_ms;
    while (cs->new_head && cs->new_head->since_ms + head <= now_ms) {
        cs->timed_out++;
        close_conn(cs, cs->new_head);
    }
    while (cs->kept_head && cs->kept_head->since_ms + idle <= now_ms) {
        cs->timed_out++;
        close_conn(cs, cs->kept_head);
    }
    uint64_t next = 0;
    if (cs->new_head)
        next = cs->new_head->since_ms + head;
    if (cs->kept_head && (!next || cs->kept_head->since_ms + idle < next))
        next = cs->kept_head->since_ms + idle;
    return next;
}

void aos__conns_release(aos__conns_t *cs)
{
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&cs->groups, &it, NULL, NULL, &v))
        free(v);
    aos_map_release(&cs->groups);
    cs->new_head = cs->new_tail = cs->kept_head = cs->kept_tail = NULL;
    cs->count = 0;
}
