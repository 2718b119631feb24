/* secret.c - the master key, sealing with XChaCha20-Poly1305, and API
 * tokens. See secret.h for formats.
 *
 * The keys live in sodium_malloc'ed memory (guard pages, locked when the
 * system allows, read-only between calls) and are wiped on free. A box
 * holds its current key and, after a rotation, the retired one (opening
 * only); a read-write lock outside the guarded memory lets a rotation swap
 * them while other threads seal and open. The key file
 * is written to a temporary file and hard-linked into place: link() fails if
 * the name exists, so a process that loses the race reads the winner's key
 * instead of replacing it. */
#include "secret/secret.h"

#include "file/file.h"
#include "log/log.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_BYTES   crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES   crypto_aead_xchacha20poly1305_ietf_ABYTES
#define PREFIX      "v1:"
#define PREFIX_LEN  3
#define PREFIX2     "v2:"
#define B64         sodium_base64_VARIANT_ORIGINAL
#define KEY_TEXT    128 /* longest key file we read: 44 chars of base64 and slack */

typedef struct {
    unsigned char key[KEY_BYTES];
    unsigned char old[KEY_BYTES]; /* the retired key, if has_old */
    int has_old;
} keys_t;

struct aos_secret_box_s {
    pthread_rwlock_t lock;
    keys_t *k; /* sodium_malloc'ed, read-only outside aos_secret_box_swap */
};

/* sodium_init is thread-safe and returns 1 once it has already run. */
static int sodium_ready(void)
{
    return sodium_init() >= 0;
}

/* Decodes base64 of exactly KEY_BYTES in any variant, ignoring white space. */
static int decode_key(const char *text, size_t len, unsigned char key[KEY_BYTES])
{
    static const int variants[] = {
        sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
        sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
                       text[len - 1] == '\t'))
        len--;
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        size_t n = 0;
        const char *end = NULL;
        if (sodium_base642bin(key, KEY_BYTES, text, len, " \t\r\n", &n, &end, variants[i]) == 0 &&
            end == text + len && n == KEY_BYTES)
            return 0;
    }
    sodium_memzero(key, KEY_BYTES);
    return -1;
}

/* Reads the key file; AOS_ENOTFOUND (err untouched) when it does not exist. */
static int read_key_file(const char *path, unsigned char key[KEY_BYTES], aos_err_t *err)
{
    char text[KEY_TEXT];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return AOS_ENOTFOUND;
        return aos_err_set(err, AOS_EIO, "unable to read '%s': %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 077))
        aos_log_warn("secret", "'%s' is readable by others; run chmod 600 on it", path);
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(text) && (n = read(fd, text + len, sizeof(text) - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            sodium_memzero(text, sizeof(text));
            return aos_err_set(err, AOS_EIO, "unable to read '%s': %s", path, strerror(e));
        }
        len += (size_t)n;
    }
    close(fd);
    int rc = 0;
    if (len == sizeof(text) || decode_key(text, len, key) < 0)
        rc = aos_err_set(err, AOS_EINVAL, "'%s' does not hold a base64 key of %d bytes", path,
                         KEY_BYTES);
    sodium_memzero(text, sizeof(text));
    return rc;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Makes a new key and publishes it at path, unless another process did
 * first, in which case that key is read and used. */
static int create_key_file(const char *dir, const char *path, unsigned char key[KEY_BYTES],
                           aos_err_t *err)
{
    char tmp[PATH_MAX];
    char text[sodium_base64_ENCODED_LEN(KEY_BYTES, B64) + 1];
    int rc = 0;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, AOS_SECRET_KEY_FILE) >=
        sizeof(tmp))
        return aos_err_set(err, AOS_EINVAL, "data directory path too long");
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return aos_err_set(err, AOS_EIO, "unable to create '%s': %s", path, strerror(errno));

    randombytes_buf(key, KEY_BYTES);
    sodium_bin2base64(text, sizeof(text) - 1, key, KEY_BYTES, B64);
    size_t len = strlen(text);
    text[len++] = '\n';
    if (fchmod(fd, 0600) < 0 || write_all(fd, text, len) < 0 || fsync(fd) < 0) {
        rc = aos_err_set(err, AOS_EIO, "unable to write '%s': %s", tmp, strerror(errno));
        close(fd);
        goto out;
    }
    if (close(fd) < 0) {
        rc = aos_err_set(err, AOS_EIO, "unable to write '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (link(tmp, path) < 0) {
        if (errno == EEXIST)
            rc = read_key_file(path, key, err);
        else
            rc = aos_err_set(err, AOS_EIO, "unable to create '%s': %s", path, strerror(errno));
        goto out;
    }
    /* Make the new name durable too. */
    (void)aos_file_sync_dir(path);
    aos_log_info("secret", "created master key '%s'", path);
out:
    unlink(tmp);
    sodium_memzero(text, sizeof(text));
    if (rc < 0)
        sodium_memzero(key, KEY_BYTES);
    return rc;
}

static int load_key(unsigned char key[KEY_BYTES], const char *data_dir, const char *key_b64,
                    aos_err_t *err)
{
    if (key_b64 && key_b64[0]) {
        if (decode_key(key_b64, strlen(key_b64), key) < 0)
            return aos_err_set(err, AOS_EINVAL, "master key must be base64 of %d bytes", KEY_BYTES);
        return 0;
    }
    if (!data_dir || !data_dir[0])
        return aos_err_set(err, AOS_EINVAL, "no master key and no data directory");
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", data_dir, AOS_SECRET_KEY_FILE) >=
        sizeof(path))
        return aos_err_set(err, AOS_EINVAL, "data directory path too long");
    int rc = read_key_file(path, key, err);
    if (rc == AOS_ENOTFOUND)
        rc = create_key_file(data_dir, path, key, err);
    return rc;
}

int aos_secret_box_open(aos_secret_box_t **out, const char *data_dir, const char *key_b64,
                        aos_err_t *err)
{
    *out = NULL;
    if (!sodium_ready())
        return aos_err_set(err, AOS_EINTERNAL, "libsodium failed to initialize");
    aos_secret_box_t *b = calloc(1, sizeof(*b));
    keys_t *k = sodium_malloc(sizeof(*k));
    if (!b || !k) {
        free(b);
        sodium_free(k);
        return aos_err_set(err, AOS_ENOMEM, "unable to allocate the secret box");
    }
    memset(k, 0, sizeof(*k));
    int rc = load_key(k->key, data_dir, key_b64, err);
    if (rc < 0) {
        sodium_free(k); /* zeroes it */
        free(b);
        return rc;
    }
    sodium_mprotect_readonly(k);
    pthread_rwlock_init(&b->lock, NULL);
    b->k = k;
    *out = b;
    return 0;
}

int aos_secret_box_new(aos_secret_box_t **out, aos_err_t *err)
{
    unsigned char raw[KEY_BYTES];
    char text[sodium_base64_ENCODED_LEN(KEY_BYTES, B64)];
    *out = NULL;
    if (!sodium_ready())
        return aos_err_set(err, AOS_EINTERNAL, "libsodium failed to initialize");
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(text, sizeof(text), raw, sizeof(raw), B64);
    int rc = aos_secret_box_open(out, NULL, text, err);
    sodium_memzero(raw, sizeof(raw));
    sodium_memzero(text, sizeof(text));
    return rc;
}

int aos_secret_box_save(aos_secret_box_t *b, const char *path, aos_err_t *err)
{
    char text[sodium_base64_ENCODED_LEN(KEY_BYTES, B64) + 1];
    pthread_rwlock_rdlock(&b->lock);
    sodium_bin2base64(text, sizeof(text) - 1, b->k->key, KEY_BYTES, B64);
    pthread_rwlock_unlock(&b->lock);
    size_t len = strlen(text);
    text[len++] = '\n';
    int rc = aos_file_replace(path, text, len, 0600, err);
    sodium_memzero(text, sizeof(text));
    return rc;
}

void aos_secret_box_swap(aos_secret_box_t *b, aos_secret_box_t *next)
{
    pthread_rwlock_wrlock(&b->lock);
    pthread_rwlock_rdlock(&next->lock);
    sodium_mprotect_readwrite(b->k);
    memcpy(b->k->old, b->k->key, KEY_BYTES);
    b->k->has_old = 1;
    memcpy(b->k->key, next->k->key, KEY_BYTES);
    sodium_mprotect_readonly(b->k);
    pthread_rwlock_unlock(&next->lock);
    pthread_rwlock_unlock(&b->lock);
    aos_secret_box_free(next);
}

void aos_secret_box_free(aos_secret_box_t *b)
{
    if (!b)
        return;
    sodium_free(b->k); /* zeroes it */
    pthread_rwlock_destroy(&b->lock);
    free(b);
}

/* Authenticated data of a "v2" value: the prefix, then ad. */
static unsigned char *make_ad(const char *prefix, const void *ad, size_t ad_len, size_t *out_len)
{
    unsigned char *a = malloc(PREFIX_LEN + ad_len + 1);
    if (!a)
        return NULL;
    memcpy(a, prefix, PREFIX_LEN);
    if (ad_len)
        memcpy(a + PREFIX_LEN, ad, ad_len);
    *out_len = PREFIX_LEN + ad_len;
    return a;
}

static char *seal(aos_secret_box_t *b, const char *prefix, const void *ad, size_t ad_len,
                  const char *plaintext, size_t len)
{
    if (!b || (!plaintext && len) || len > AOS_SECRET_MAX || (!ad && ad_len))
        return NULL;
    size_t raw_len = NONCE_BYTES + len + TAG_BYTES;
    size_t b64_len = sodium_base64_ENCODED_LEN(raw_len, B64); /* counts the NUL */
    size_t a_len = 0;
    unsigned char *raw = malloc(raw_len);
    char *out = malloc(PREFIX_LEN + b64_len);
    unsigned char *a = make_ad(prefix, ad, ad_len, &a_len);
    if (!raw || !out || !a) {
        free(raw);
        free(out);
        free(a);
        return NULL;
    }
    randombytes_buf(raw, NONCE_BYTES);
    /* The prefix is authenticated data: a "v1" ciphertext cannot pass as
     * another format sealed with the same key; a "v2" one is also bound to
     * its caller's associated data. */
    pthread_rwlock_rdlock(&b->lock);
    crypto_aead_xchacha20poly1305_ietf_encrypt(raw + NONCE_BYTES, NULL,
                                               (const unsigned char *)(plaintext ? plaintext : ""),
                                               len, a, a_len, NULL, raw, b->k->key);
    pthread_rwlock_unlock(&b->lock);
    memcpy(out, prefix, PREFIX_LEN);
    sodium_bin2base64(out + PREFIX_LEN, b64_len, raw, raw_len, B64);
    free(raw);
    free(a);
    return out;
}

char *aos_secret_seal(aos_secret_box_t *b, const char *plaintext, size_t len)
{
    return seal(b, PREFIX, NULL, 0, plaintext, len);
}

char *aos_secret_seal_ad(aos_secret_box_t *b, const char *plaintext, size_t len, const void *ad,
                         size_t ad_len)
{
    return seal(b, PREFIX2, ad, ad_len, plaintext, len);
}

static char *open_sealed(aos_secret_box_t *b, const char *prefix, const void *ad, size_t ad_len,
                         const char *sealed, size_t *len)
{
    if (len)
        *len = 0;
    if (!b || !sealed || strncmp(sealed, prefix, PREFIX_LEN) != 0 || (!ad && ad_len))
        return NULL;
    const char *b64 = sealed + PREFIX_LEN;
    size_t b64_len = strlen(b64);
    if (b64_len > sodium_base64_ENCODED_LEN(NONCE_BYTES + AOS_SECRET_MAX + TAG_BYTES, B64))
        return NULL;
    size_t raw_max = b64_len / 4 * 3 + 3, a_len = 0;
    unsigned char *raw = malloc(raw_max);
    unsigned char *a = make_ad(prefix, ad, ad_len, &a_len);
    char *plain = NULL;
    if (!raw || !a)
        goto out;
    size_t raw_len = 0;
    const char *end = NULL;
    if (sodium_base642bin(raw, raw_max, b64, b64_len, NULL, &raw_len, &end, B64) != 0 ||
        end != b64 + b64_len || raw_len < NONCE_BYTES + TAG_BYTES)
        goto out;
    size_t plain_len = raw_len - NONCE_BYTES - TAG_BYTES;
    plain = sodium_malloc(plain_len + 1);
    if (!plain)
        goto out;
    unsigned long long n = 0;
    pthread_rwlock_rdlock(&b->lock);
    int bad = crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)plain, &n, NULL,
                                                         raw + NONCE_BYTES, raw_len - NONCE_BYTES,
                                                         a, a_len, raw, b->k->key) != 0;
    if (bad && b->k->has_old) /* sealed before the last rotation, copied in memory */
        bad = crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)plain, &n, NULL,
                                                         raw + NONCE_BYTES, raw_len - NONCE_BYTES,
                                                         a, a_len, raw, b->k->old) != 0;
    pthread_rwlock_unlock(&b->lock);
    if (bad) {
        sodium_free(plain);
        plain = NULL;
        goto out;
    }
    plain[n] = '\0';
    if (len)
        *len = (size_t)n;
out:
    free(raw);
    free(a);
    return plain;
}

char *aos_secret_open(aos_secret_box_t *b, const char *sealed, size_t *len)
{
    return open_sealed(b, PREFIX, NULL, 0, sealed, len);
}

char *aos_secret_open_ad(aos_secret_box_t *b, const char *sealed, const void *ad, size_t ad_len,
                         size_t *len)
{
    return open_sealed(b, PREFIX2, ad, ad_len, sealed, len);
}

char *aos_secret_reseal(aos_secret_box_t *from, aos_secret_box_t *to, const char *sealed,
                        const void *ad, size_t ad_len)
{
    size_t n = 0;
    int v2 = sealed && !strncmp(sealed, PREFIX2, PREFIX_LEN);
    char *plain =
        v2 ? aos_secret_open_ad(from, sealed, ad, ad_len, &n) : aos_secret_open(from, sealed, &n);
    if (!plain)
        return NULL;
    char *out = v2 ? aos_secret_seal_ad(to, plain, n, ad, ad_len) : aos_secret_seal(to, plain, n);
    aos_secret_wipe(plain);
    return out;
}

void aos_secret_wipe(char *plaintext)
{
    if (plaintext)
        sodium_free(plaintext); /* zeroes the whole allocation */
}

char *aos_secret_token_new(void)
{
    unsigned char raw[32];
    if (!sodium_ready())
        return NULL;
    char *out = malloc(AOS_SECRET_TOKEN_LEN + 1);
    if (!out)
        return NULL;
    randombytes_buf(raw, sizeof(raw));
    memcpy(out, "aos_", 4);
    sodium_bin2base64(out + 4, AOS_SECRET_TOKEN_LEN + 1 - 4, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    return out;
}

void aos_secret_token_hash(const char *token, char out_hex[65])
{
    unsigned char h[32];
    if (!token)
        token = "";
    sodium_ready();
    crypto_generichash(h, sizeof(h), (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_bin2hex(out_hex, 65, h, sizeof(h));
}

int aos_secret_equal(const char *a, const char *b)
{
    if (!a || !b)
        return 0;
    size_t n = strlen(a);
    if (n != strlen(b))
        return 0;
    return sodium_memcmp(a, b, n) == 0;
}
