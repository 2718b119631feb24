/* secret.h - runtime secrets at rest and API token hashing (libsodium).
 *
 * A secret box holds the 32-byte master key that seals secrets before they
 * are stored (registry auth tokens, project vars). The key comes from the
 * caller (e.g. the content of an environment variable, base64) or from
 * <data_dir>/master.key, which is created on first use. Sealed text is
 * "v1:" + base64(nonce | ciphertext) of XChaCha20-Poly1305, so it can be kept
 * in a TEXT column and later formats can be told apart by their prefix.
 * "v2:" is the same with associated data the caller gives (e.g. a runtime
 * secret's name and scope): such a value opens only with the same
 * associated data, so a sealed value copied into another row does not
 * open there.
 *
 * Rotation: aos_secret_box_new makes a box with a fresh key, values are
 * resealed into it (aos_secret_reseal), the key is saved
 * (aos_secret_box_save) and aos_secret_box_swap makes it the box's
 * current key; the retired key stays in memory (opening only, never
 * sealing) so that sealed copies held in memory still open until exit.
 *
 * API tokens are random, so a fast unkeyed hash is enough to store them:
 * only the hash is kept, and a presented token is hashed and compared.
 *
 * Threads: every function may be called from any thread; a box may be
 * shared (a read-write lock guards its keys for aos_secret_box_swap).
 * Never log a plaintext or a key. */
#ifndef AOS_SECRET_H
#define AOS_SECRET_H

#include "err/err.h"

#include <stddef.h>

typedef struct aos_secret_box_s aos_secret_box_t;

#define AOS_SECRET_KEY_FILE  "master.key"
#define AOS_SECRET_MAX       (1024 * 1024) /* largest plaintext seal accepts */
#define AOS_SECRET_TOKEN_LEN 47            /* "aos_" + 43 */

/* Opens a box. key_b64 (if not NULL and not empty) is the master key as
 * base64 (standard or URL-safe, padding optional) of exactly 32 bytes; then
 * data_dir is not used. Otherwise the key is read from <data_dir>/master.key,
 * or generated and written there (base64, mode 0600, atomically: two
 * processes starting together end up with the same key). data_dir must
 * exist. Errors: AOS_EINVAL (bad key), AOS_EIO (file), AOS_EINTERNAL. */
int aos_secret_box_open(aos_secret_box_t **out, const char *data_dir, const char *key_b64,
                        aos_err_t *err);
/* Wipes the key and frees the box. NULL is ignored. */
void aos_secret_box_free(aos_secret_box_t *b);
/* A box with a new random key (kept in memory only until saved). */
int aos_secret_box_new(aos_secret_box_t **out, aos_err_t *err);
/* Writes b's current key to path (base64, mode 0600) atomically: a
 * temporary file, fsync, rename, fsync of the directory. AOS_EIO. */
int aos_secret_box_save(aos_secret_box_t *b, const char *path, aos_err_t *err);
/* Makes next's key b's current one; b's former key is kept to open (not
 * to seal) until b is freed. next is freed. */
void aos_secret_box_swap(aos_secret_box_t *b, aos_secret_box_t *next);

/* Seals len bytes of plaintext (len <= AOS_SECRET_MAX). Returns a new
 * NUL-terminated "v1:..." string the caller frees with free(), or NULL. */
char *aos_secret_seal(aos_secret_box_t *b, const char *plaintext, size_t len);
/* Opens sealed text. Returns the plaintext, NUL-terminated, in guarded memory
 * that the caller must release with aos_secret_wipe(); *len (if not NULL)
 * receives its length. NULL if sealed is malformed, was tampered with or was
 * sealed with another key. */
char *aos_secret_open(aos_secret_box_t *b, const char *sealed, size_t *len);
/* "v2": the same, bound to ad (ad_len bytes, may be 0): the value opens
 * only with the same ad (aos_secret_open_ad), never with aos_secret_open,
 * and a "v1" value never opens here. */
char *aos_secret_seal_ad(aos_secret_box_t *b, const char *plaintext, size_t len, const void *ad,
                         size_t ad_len);
char *aos_secret_open_ad(aos_secret_box_t *b, const char *sealed, const void *ad, size_t ad_len,
                         size_t *len);
/* Opens sealed ("v1", or "v2" with ad) with from and seals the plaintext
 * again, in the same format, with to; the plaintext is wiped. A new string
 * (free()) or NULL when it does not open. */
char *aos_secret_reseal(aos_secret_box_t *from, aos_secret_box_t *to, const char *sealed,
                        const void *ad, size_t ad_len);
/* Zeroes and frees what aos_secret_open returned. NULL is ignored. */
void aos_secret_wipe(char *plaintext);

/* A new API token: "aos_" + 43 characters of base64url (32 random bytes).
 * The caller shows it once and frees it with free(); NULL on failure. */
char *aos_secret_token_new(void);
/* out_hex: lowercase hex of the BLAKE2b-256 of token (unkeyed). */
void aos_secret_token_hash(const char *token, char out_hex[65]);
/* 1 if the strings are equal, else 0. Constant time for strings of equal
 * length (such as two hashes); only the length can leak. NULL never equals. */
int aos_secret_equal(const char *a, const char *b);

#endif
