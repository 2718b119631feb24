/* registry.h - what an MCP server entry of the registry is: validation of
 * the JSON a client sends, the stored form, the public form, and the import
 * of the {"mcpServers":{...}} files used by Claude Desktop and IDEs.
 *
 * Pure functions over jansson values; the gateway owns the live servers and
 * the store persists entries. Secret values (auth_token, env values, header
 * values) are sealed with the secret box before they are stored and never
 * appear in the public form. */
#ifndef AOS_REGISTRY_H
#define AOS_REGISTRY_H

#include <jansson.h>

#include "err/err.h"
#include "secret/secret.h"

#define AOS_REGISTRY_NAME_MAX           64
#define AOS_REGISTRY_DEFAULT_TIMEOUT_MS 30000

/* 1 if name is a valid server name: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}, no "__". */
int aos_registry_name_ok(const char *name);

/* Validates a client's entry and returns the stored form (new reference):
 * {"name","transport","base_url","description","capabilities","config",
 *  "auth_token","timeout_ms","enabled"} with config holding command, args,
 * env, cwd (stdio) or url, headers (HTTP), and every secret value sealed.
 * prev (may be NULL): the stored entry being updated; a secret the client
 * leaves out is kept from it. */
json_t *aos_registry_normalize(const json_t *in, const json_t *prev, aos_secret_box_t *box,
                               aos_err_t *err);

/* The public form of a stored entry (new reference): secrets replaced by
 * "has_auth_token" and the names of env variables and headers. */
json_t *aos_registry_public(const json_t *stored);

/* Turns {"mcpServers":{"name":{...}}} into an array of client entries, ready
 * for aos_registry_normalize (new reference). */
json_t *aos_registry_import(const json_t *doc, aos_err_t *err);

#endif
