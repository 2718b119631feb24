/* map.h - a hash map from string or 64-bit integer keys to pointers.
 *
 * Chained buckets, doubling at load 1. Keys of a string map are copied and
 * owned by the map; values are borrowed (the map never frees them). Not
 * thread-safe: each map belongs to one thread. */
#ifndef AOS_MAP_H
#define AOS_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct aos_map_entry_s aos_map_entry_t;

typedef struct {
    aos_map_entry_t **buckets;
    size_t nbuckets;
    size_t count;
} aos_map_t;

void aos_map_init(aos_map_t *m);
/* Frees the map's own memory; values are not touched. */
void aos_map_release(aos_map_t *m);

/* String keys. put replaces an existing value (returns 0) or adds. */
int aos_map_put(aos_map_t *m, const char *key, void *value);
void *aos_map_get(const aos_map_t *m, const char *key);
/* Removes key; returns its value or NULL. */
void *aos_map_del(aos_map_t *m, const char *key);

/* Integer keys (a map uses one kind of key only). */
int aos_map_put_u64(aos_map_t *m, uint64_t key, void *value);
void *aos_map_get_u64(const aos_map_t *m, uint64_t key);
void *aos_map_del_u64(aos_map_t *m, uint64_t key);

size_t aos_map_count(const aos_map_t *m);

/* Iteration: aos_map_iter_init(&it); while (aos_map_iter_next(m, &it, &k, NULL, &v)) ...
 * The map must not change during iteration, except for deleting the
 * current key with aos_map_del*, which is allowed. */
typedef struct {
    size_t bucket;
    aos_map_entry_t *next;
} aos_map_iter_t;
void aos_map_iter_init(aos_map_iter_t *it);
/* Returns 0 at the end; key is NULL for integer maps (see ikey). */
int aos_map_iter_next(const aos_map_t *m, aos_map_iter_t *it, const char **key, uint64_t *ikey,
                      void **value);

#endif
