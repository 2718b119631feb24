/* map.c - chained hash map; see map.h. */
#include "map/map.h"
#include "err/err.h"

#include <stdlib.h>
#include <string.h>

struct aos_map_entry_s {
    aos_map_entry_t *next;
    uint64_t hash;
    uint64_t ikey;
    char *key; /* NULL for integer keys */
    void *value;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

void aos_map_init(aos_map_t *m)
{
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

void aos_map_release(aos_map_t *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (aos_map_entry_t *e = m->buckets[i], *n; e; e = n) {
            n = e->next;
            free(e->key);
            free(e);
        }
    }
    free(m->buckets);
    aos_map_init(m);
}

static int grow(aos_map_t *m)
{
    size_t nb = m->nbuckets ? m->nbuckets * 2 : 16;
    aos_map_entry_t **b = calloc(nb, sizeof(*b));
    if (!b)
        return AOS_ENOMEM;
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (aos_map_entry_t *e = m->buckets[i], *n; e; e = n) {
            n = e->next;
            size_t j = e->hash & (nb - 1);
            e->next = b[j];
            b[j] = e;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
    return 0;
}

static aos_map_entry_t **find(const aos_map_t *m, uint64_t h, const char *key, uint64_t ikey)
{
    if (!m->nbuckets)
        return NULL;
    aos_map_entry_t **p = &m->buckets[h & (m->nbuckets - 1)];
    for (; *p; p = &(*p)->next) {
        if ((*p)->hash != h)
            continue;
        if (key ? ((*p)->key && strcmp((*p)->key, key) == 0) : (!(*p)->key && (*p)->ikey == ikey))
            return p;
    }
    return NULL;
}

static int put(aos_map_t *m, uint64_t h, const char *key, uint64_t ikey, void *value)
{
    aos_map_entry_t **p = find(m, h, key, ikey);
    if (p) {
        (*p)->value = value;
        return 0;
    }
    if (m->count >= m->nbuckets && grow(m))
        return AOS_ENOMEM;
    aos_map_entry_t *e = calloc(1, sizeof(*e));
    if (!e)
        return AOS_ENOMEM;
    if (key && !(e->key = strdup(key))) {
        free(e);
        return AOS_ENOMEM;
    }
    e->hash = h;
    e->ikey = ikey;
    e->value = value;
    size_t j = h & (m->nbuckets - 1);
    e->next = m->buckets[j];
    m->buckets[j] = e;
    m->count++;
    return 0;
}

static void *del(aos_map_t *m, uint64_t h, const char *key, uint64_t ikey)
{
    aos_map_entry_t **p = find(m, h, key, ikey);
    if (!p)
        return NULL;
    aos_map_entry_t *e = *p;
    void *v = e->value;
    *p = e->next;
    free(e->key);
    free(e);
    m->count--;
    return v;
}

int aos_map_put(aos_map_t *m, const char *key, void *value)
{
    return put(m, hash_str(key), key, 0, value);
}

void *aos_map_get(const aos_map_t *m, const char *key)
{
    aos_map_entry_t **p = find(m, hash_str(key), key, 0);
    return p ? (*p)->value : NULL;
}

void *aos_map_del(aos_map_t *m, const char *key)
{
    return del(m, hash_str(key), key, 0);
}

int aos_map_put_u64(aos_map_t *m, uint64_t key, void *value)
{
    return put(m, hash_u64(key), NULL, key, value);
}

void *aos_map_get_u64(const aos_map_t *m, uint64_t key)
{
    aos_map_entry_t **p = find(m, hash_u64(key), NULL, key);
    return p ? (*p)->value : NULL;
}

void *aos_map_del_u64(aos_map_t *m, uint64_t key)
{
    return del(m, hash_u64(key), NULL, key);
}

size_t aos_map_count(const aos_map_t *m)
{
    return m->count;
}

void aos_map_iter_init(aos_map_iter_t *it)
{
    it->bucket = 0;
    it->next = NULL;
}

int aos_map_iter_next(const aos_map_t *m, aos_map_iter_t *it, const char **key, uint64_t *ikey,
                      void **value)
{
    aos_map_entry_t *e = it->next;
    while (!e) {
        if (it->bucket >= m->nbuckets)
            return 0;
        e = m->buckets[it->bucket++];
    }
    it->next = e->next; /* taken before the caller may delete e */
    if (key)
        *key = e->key;
    if (ikey)
        *ikey = e->ikey;
    if (value)
        *value = e->value;
    return 1;
}
