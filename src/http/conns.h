/* conns.h - admission of the HTTP server's connections (internal to http/).
 *
 * A connection is either busy (a request head arrived and its request is
 * not over: an upload, a handler waiting for an upstream, a stream) or idle
 * (accepted and no complete request head yet, or kept alive between two
 * requests). Idle connections cost a socket and a slot and do nothing, so
 * a flood of them is what takes a server's slots from real clients. This
 * module keeps the rules that stop it:
 *
 * - limits: at most max_conns connections in all and max_per_ip from one
 *   address group (an IPv4 address, an IPv6 /64, and every loopback address
 *   together: a local client can bind any of 127.0.0.0/8);
 * - room for new clients: a new connection past a limit closes the idle
 *   connection of its group (or of all, for the total) that has been idle
 *   longest, so that the newest connection always gets its chance to send
 *   a request; only when every connection of the group (or of all) is busy
 *   is the new one refused, at once, instead of waiting in the backlog;
 * - deadlines: a new connection must complete its first request head
 *   within head_timeout, a kept-alive one its next head within
 *   idle_timeout, whatever it trickles meanwhile (a deadline from the
 *   moment it became idle, not an inactivity timer). Busy connections have
 *   no deadline here (libmicrohttpd's inactivity timeout covers a stalled
 *   upload or download; a stream is never cut).
 *
 * Closing is the owner's callback (the server shuts the socket down and
 * libmicrohttpd cleans up on its next run); a closed connection stops
 * counting at once and its record waits for aos__conns_remove.
 *
 * Threading: one thread (the loop); no I/O here, so it is unit-tested with
 * a fake clock (tests/unit/test_http_conns.c). */
#ifndef AOS_HTTP_CONNS_H
#define AOS_HTTP_CONNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "map/map.h"

typedef struct aos__conn_s aos__conn_t;
typedef struct aos__conn_group_s aos__conn_group_t;

typedef enum { AOS__CONN_NEW, AOS__CONN_BUSY, AOS__CONN_KEPT, AOS__CONN_CLOSING } aos__conn_state_t;

/* Closes c (asynchronously); c stays valid until aos__conns_remove. */
typedef void (*aos__conns_close_fn)(aos__conn_t *c, void *data);

typedef struct {
    unsigned max_conns;        /* >= 1 */
    unsigned max_per_ip;       /* 0: no limit per address group */
    uint64_t head_timeout_ms;  /* a new connection: its first request head */
    uint64_t idle_timeout_ms;  /* a kept-alive connection: its next head */
    aos__conns_close_fn close; /* required */
    void *data;
} aos__conns_cfg_t;

struct aos__conn_s {
    aos__conn_state_t state;
    uint64_t since_ms;          /* accepted, or its last request ended */
    aos__conn_group_t *group;   /* NULL once closing */
    aos__conn_t *prev, *next;   /* the idle list of its state (new or kept) */
    aos__conn_t *gprev, *gnext; /* its group's idle list */
    void *owner;                /* the server's connection */
    void *slot;                 /* the server's per-connection slot, or NULL */
};

typedef struct {
    aos__conns_cfg_t cfg;
    aos_map_t groups;                   /* key -> aos__conn_group_t */
    unsigned count;                     /* connections not closing */
    aos__conn_t *new_head, *new_tail;   /* idle, no request yet; oldest first */
    aos__conn_t *kept_head, *kept_tail; /* idle between requests; oldest first */
    /* counters for the logs and tests */
    uint64_t evicted, refused, timed_out;
} aos__conns_t;

void aos__conns_init(aos__conns_t *cs, const aos__conns_cfg_t *cfg);
/* Frees what is left of the groups; every record must have been removed
 * (aos__conns_remove) before. */
void aos__conns_release(aos__conns_t *cs);

/* A connection from sa is about to be accepted: 1 to accept it (an idle
 * connection may have been closed to make room), 0 to refuse it. */
int aos__conns_admit(aos__conns_t *cs, const struct sockaddr *sa, uint64_t now_ms);
/* The accepted connection: a new record (state NEW) or NULL on ENOMEM. */
aos__conn_t *aos__conns_add(aos__conns_t *cs, const struct sockaddr *sa, uint64_t now_ms,
                            void *owner);
/* A request head arrived: c is busy until aos__conns_idle. */
void aos__conns_busy(aos__conns_t *cs, aos__conn_t *c);
/* Its request ended and the connection is kept alive. */
void aos__conns_idle(aos__conns_t *cs, aos__conn_t *c, uint64_t now_ms);
/* The connection is gone: frees c. */
void aos__conns_remove(aos__conns_t *cs, aos__conn_t *c);
/* Closes the idle connections past their deadline; returns the next
 * deadline (ms, same clock) or 0 when no connection is idle. */
uint64_t aos__conns_sweep(aos__conns_t *cs, uint64_t now_ms);

/* The group key of sa ("lo", "4:1.2.3.4", "6:2001:db8:1:2::/64") in buf,
 * which holds AOS__CONNS_KEY_MAX bytes: "6:", the longest address text
 * (INET6_ADDRSTRLEN with its NUL) and "/64". */
#define AOS__CONNS_KEY_MAX (2 + 46 + 3)
void aos__conns_group_key(const struct sockaddr *sa, char *buf, size_t size);

#endif
