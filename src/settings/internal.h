/* internal.h - what the files of src/settings share. */
#ifndef AOS_SETTINGS_INTERNAL_H
#define AOS_SETTINGS_INTERNAL_H

#include "settings/settings.h"

#include "cidr/cidr.h"

#include <stddef.h>

enum kind { K_STR, K_URL, K_BOOL, K_UINT, K_NUM, K_CIDRS, K_SECRET, K_HEADERS, K_DB };
enum cfield { CF_NONE, CF_S, CF_U, CF_D, CF_B };

typedef struct {
    const char *key;   /* "llm.model" */
    const char *group; /* live: the group cfg.apply is called with ("llm",
                          "security": applied here); NULL: next start */
    const char *flag;  /* the flag that sets that field */
    const char *help;
    size_t off;      /* the aos_config_t field's offset */
    double min, max; /* numbers: the range; strings: the length */
    enum kind kind;
    enum cfield cf; /* the field's type, CF_NONE: none */
} set_key_t;

extern const set_key_t settings_keys[];
extern const size_t settings_nkeys;

/* The index of key, or -1. */
int settings_key_find(const char *key);
/* Validates one value (null: back to the default) of key k. */
int settings_key_check(const set_key_t *k, const json_t *v, aos_err_t *err);
/* The value of k in cfg as JSON (a new reference; null when unset), or
 * NULL for a key without a field. */
json_t *settings_key_from_config(const set_key_t *k, const aos_config_t *cfg);
/* Sets k's field in cfg from v (null: dflt's value). */
int settings_key_to_config(const set_key_t *k, const json_t *v, aos_config_t *cfg,
                           const aos_config_t *dflt, aos_err_t *err);
/* The default of a key without a config field (a new reference). */
json_t *settings_key_default(const set_key_t *k);
/* The JSON description of the schema: [{key, type, min, max, live, flag, help}]. */
json_t *settings_schema_json(void);

struct aos_settings_s {
    aos_settings_cfg_t cfg;
    aos_http_t *http;
    aos_config_t defaults;
    unsigned char *pinned; /* [settings_nkeys] */
    json_t *stored;        /* {key: value} in the settings table */
    json_t *effective;     /* {key: value} running now */
    json_t *restart;       /* {key: true}: stored, waiting for a restart */
    aos_cidr_list_t allow; /* the effective IP allowlist */
    int two_person;
    json_t *secrets; /* {name: {scope, purpose, sealed, created_by, created_at, last_rotated}} */
    json_t *changes; /* {id: {op, name, scope, purpose, sealed, requested_by, created_at}} */
    int rotating;    /* a rotation job is in flight */
    int busy;        /* a system PUT is in flight */
};

/* Associated data of a runtime secret / a pending change, into buf;
 * returns its length. */
size_t settings_ad(char *buf, size_t cap, const char *name, const char *scope);
size_t settings_change_ad(char *buf, size_t cap, const char *id, const char *name,
                          const char *scope);
/* Opens the stored value of secret name (its row in memory): guarded
 * memory (aos_secret_wipe) or NULL. */
char *settings_open_row(aos_settings_t *s, const char *name, const json_t *row, size_t *len);
/* Replaces the in-memory secrets and changes by rows read from the store. */
void settings_load_rows(aos_settings_t *s, json_t *secrets, json_t *changes);
int settings_add_secret_routes(aos_settings_t *s, aos_http_t *http);
/* Fields of obj not in known: AOS_EINVAL naming the first. */
int settings_only_fields(const json_t *obj, const char *const *known, const char *what,
                         aos_err_t *err);
void settings_random_id(char *out, size_t cap, const char *prefix);
/* "token:<id>" of the caller */
void settings_actor(aos_http_req_t *req, char *out, size_t cap);

#endif
