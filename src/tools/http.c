/* http.c - the built-in MCP server "http": get, post, put, delete to the
 * hosts the caller's caps allow; see net.h.
 *
 * A call checks its URL (http or https, no credentials in it, the host on
 * the caps' allow list) on the loop, then runs as one src/httpc transfer
 * per hop. Redirects are followed here, not by curl, so each new URL is
 * checked against the allow list like the first. Every connection curl
 * opens goes through on_connect, which classifies the address it is about
 * to connect to and refuses non-public ones unless caps allow them; with
 * on_connect set, httpc also ignores proxies and never reuses a connection,
 * so no connection escapes the check (DNS rebinding included: the address
 * checked is the address connected to).
 *
 * The body is gathered in memory up to max_bytes (the transfer is aborted
 * past it) and returned as text (UTF-8) or base64, with the parsed JSON
 * when the response says it is JSON; or written to a workspace file with
 * save_to (on the thread pool, confined with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS), replaced atomically).
 *
 * Idempotency: post, put and delete called with an idempotency key keep a
 * record per (principal, tool, key) in <data_dir>/idempotency/http/, a
 * file named by the BLAKE2b hash of the three. It is created with O_EXCL
 * and fsynced BEFORE the request goes out ("started"), and replaced by the
 * result once it is known ("done"). A repeat finds the record: "done"
 * returns the stored result (structuredContent.replayed = true) without
 * sending anything; "started" (the first call is still running, or aosd
 * stopped while it ran) is refused as of unknown outcome; a record made for
 * other arguments is refused. A request that never left (the name did not
 * resolve, the connection was refused) removes its record. The key also
 * goes to the server as the Idempotency-Key header.
 *
 * Secrets: request header values may be secrets; they are never logged,
 * never put in a result or an error, and not sent to another origin on a
 * redirect (only a few harmless headers follow a cross-origin hop). A
 * value may name a runtime secret, {"secret": "S"}, or a project variable,
 * {"var": "V"} of the caller's caps.project (the variable's secret; one
 * of scope "task" is preferred to one of scope "project"): the arguments,
 * and so a task's step input and the idempotency record, keep the
 * reference. It is opened when the call starts, after the arguments are
 * checked and before anything is sent, through cfg.open_secret, which
 * checks that the caller (a task's: the principal it acts for) may use the
 * secret; a reference that does not resolve or open fails the call with
 * the error of the table (403, 404, 400) naming the header and the secret,
 * and nothing is sent. The opened header lines are wiped when the call
 * ends; a secret header never follows a cross-origin redirect. */
#include "tools/net.h"
#include "file/file.h"
#include "secret/secret.h"
#include "utf8/utf8.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HTTP_MAX_BYTES_DEFAULT  (1024 * 1024)
#define HTTP_MAX_BYTES_LIMIT    (32 * 1024 * 1024)
#define HTTP_TIMEOUT_DEFAULT_MS 30000
#define HTTP_TIMEOUT_LIMIT_MS   300000
#define HTTP_REDIRECTS_DEFAULT  5
#define HTTP_REDIRECTS_LIMIT    10
#define HTTP_MAX_HEADERS        64
#define HTTP_MAX_HEADER_BYTES   (16 * 1024)
#define HTTP_MAX_URL            8192
#define HTTP_MAX_KEY            256
#define HTTP_REF_NAME_MAX       64

struct aos_tools_http_s {
    aos_builtin_t builtin;
    uv_loop_t *loop;
    aos_httpc_t *httpc;
    char *data_dir;
    aos_store_t *store;
    char *(*open_secret)(const char *acting, const char *secret, const char *project, size_t *len,
                         aos_err_t *err, void *data);
    void *open_data;
};

/* ---- address classes ----------------------------------------------------- */

aos_addr_class_t aos_tools_addr_class4(const uint8_t a[4])
{
    uint8_t b = a[1];
    switch (a[0]) {
    case 0:
        return AOS_ADDR_UNSPECIFIED; /* "this network" */
    case 10:
        return AOS_ADDR_PRIVATE;
    case 100:
        return (b & 0xc0) == 64 ? AOS_ADDR_CGNAT : AOS_ADDR_PUBLIC;
    case 127:
        return AOS_ADDR_LOOPBACK;
    case 169:
        return b == 254 ? AOS_ADDR_LINK_LOCAL : AOS_ADDR_PUBLIC;
    case 172:
        return (b & 0xf0) == 16 ? AOS_ADDR_PRIVATE : AOS_ADDR_PUBLIC;
    case 192:
        if (b == 168)
            return AOS_ADDR_PRIVATE;
        if (b == 0 && (a[2] == 0 || a[2] == 2)) /* IETF assignments, TEST-NET-1 */
            return AOS_ADDR_RESERVED;
        if (b == 88 && a[2] == 99) /* 6to4 relay anycast (deprecated) */
            return AOS_ADDR_RESERVED;
        return AOS_ADDR_PUBLIC;
    case 198:
        if ((b & 0xfe) == 18) /* benchmarking 198.18/15 */
            return AOS_ADDR_RESERVED;
        return b == 51 && a[2] == 100 ? AOS_ADDR_RESERVED : AOS_ADDR_PUBLIC; /* TEST-NET-2 */
    case 203:
        return b == 0 && a[2] == 113 ? AOS_ADDR_RESERVED : AOS_ADDR_PUBLIC; /* TEST-NET-3 */
    default:
        if (a[0] >= 224 && a[0] <= 239)
            return AOS_ADDR_MULTICAST;
        if (a[0] >= 240) /* reserved, 255.255.255.255 broadcast */
            return AOS_ADDR_RESERVED;
        return AOS_ADDR_PUBLIC;
    }
}

/* An IPv6 form that carries an IPv4 address: its class, public or not. */
static aos_addr_class_t embedded4(const uint8_t v4[4])
{
    return aos_tools_addr_class4(v4);
}

aos_addr_class_t aos_tools_addr_class6(const uint8_t a[16])
{
    static const uint8_t zero[16];
    if (!memcmp(a, zero, 15)) {
        if (a[15] == 0)
            return AOS_ADDR_UNSPECIFIED;
        if (a[15] == 1)
            return AOS_ADDR_LOOPBACK;
    }
    if (!memcmp(a, zero, 10) && a[10] == 0xff && a[11] == 0xff)
        return AOS_ADDR_MAPPED; /* ::ffff:a.b.c.d */
    if (!memcmp(a, zero, 12))
        return embedded4(a + 12); /* ::a.b.c.d, IPv4-compatible (deprecated) */
    /* 64:ff9b::/96 (NAT64) */
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    if (!memcmp(a, nat64, 12))
        return embedded4(a + 12);
    /* 64:ff9b:1::/48 (local-use NAT64) */
    if (a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && a[4] == 0 && a[5] == 1)
        return AOS_ADDR_PRIVATE;
    if (a[0] == 0x20 && a[1] == 0x02) /* 2002::/16, 6to4: 2002:AABB:CCDD:: */
        return embedded4(a + 2);
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) /* Teredo 2001::/32 */
        return AOS_ADDR_RESERVED;
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) /* documentation */
        return AOS_ADDR_RESERVED;
    if (a[0] == 0x01 && a[1] == 0 && !memcmp(a + 2, zero, 6)) /* 100::/64 discard */
        return AOS_ADDR_RESERVED;
    if (a[0] == 0xff)
        return AOS_ADDR_MULTICAST;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return AOS_ADDR_LINK_LOCAL;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) /* site-local (deprecated) */
        return AOS_ADDR_PRIVATE;
    if ((a[0] & 0xfe) == 0xfc) /* unique local */
        return AOS_ADDR_PRIVATE;
    if ((a[0] & 0xe0) != 0x20) /* outside 2000::/3, the global unicast space */
        return AOS_ADDR_RESERVED;
    return AOS_ADDR_PUBLIC;
}

aos_addr_class_t aos_tools_addr_class(const struct sockaddr *sa, size_t len)
{
    if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return aos_tools_addr_class4((const uint8_t *)&in->sin_addr);
    }
    if (sa && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return aos_tools_addr_class6(in6->sin6_addr.s6_addr);
    }
    return AOS_ADDR_RESERVED;
}

const char *aos_tools_addr_class_name(aos_addr_class_t c)
{
    switch (c) {
    case AOS_ADDR_PUBLIC:
        return "public";
    case AOS_ADDR_UNSPECIFIED:
        return "unspecified";
    case AOS_ADDR_LOOPBACK:
        return "loopback";
    case AOS_ADDR_PRIVATE:
        return "private";
    case AOS_ADDR_LINK_LOCAL:
        return "link-local";
    case AOS_ADDR_CGNAT:
        return "shared (CGNAT)";
    case AOS_ADDR_MULTICAST:
        return "multicast";
    case AOS_ADDR_MAPPED:
        return "IPv4-mapped IPv6";
    case AOS_ADDR_RESERVED:
        return "reserved";
    }
    return "reserved";
}

/* ---- host allow list --------------------------------------------------------- */

/* host without brackets and one trailing dot, lower-cased, into out; 0 or -1
 * (empty, too long, or a character no host has). */
static int host_norm(const char *host, char *out, size_t n)
{
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len == 0 || len >= n)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)host[i];
        /* '%': a percent-encoded host (or an IPv6 zone) could decode to
         * another name than the one matched; refuse it rather than guess */
        if (ch <= ' ' || ch >= 0x7f || ch == '/' || ch == '@' || ch == '[' || ch == ']' ||
            ch == '%' || ch == '\\')
            return -1;
        out[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    out[len] = '\0';
    return 0;
}

int aos_tools_host_allowed(const json_t *allow, const char *host)
{
    char h[256], p[256];
    if (!host || host_norm(host, h, sizeof(h)))
        return 0;
    size_t hl = strlen(h);
    size_t i;
    const json_t *e;
    json_array_foreach(allow, i, e)
    {
        const char *s = json_string_value(e);
        if (!s)
            continue;
        if (!strcmp(s, "*"))
            return 1;
        if (s[0] == '*' && s[1] == '.')
            s++;
        int suffix = s[0] == '.';
        if (host_norm(s + suffix, p, sizeof(p)))
            continue;
        size_t pl = strlen(p);
        if (!suffix) {
            if (!strcmp(h, p))
                return 1;
        } else if (hl > pl + 1 && h[hl - pl - 1] == '.' && !strcmp(h + hl - pl, p) &&
                   !strchr(h, ':')) {
            /* a name below the suffix (an IPv6 literal never is one) */
            return 1;
        }
    }
    return 0;
}

/* ---- the call ------------------------------------------------------------------ */

enum { IDEM_NONE, IDEM_NEW, IDEM_REPLAY, IDEM_BUSY, IDEM_MISMATCH, IDEM_FAIL };

typedef struct {
    aos_tools_http_t *h;
    aos_builtin_done_fn done;
    void *ctx;
    uv_work_t work;

    char *tool; /* "get", ... */
    char method[8];
    char *url;    /* of the current hop */
    char *origin; /* scheme://host:port of the first URL */
    char **lines; /* the header lines, "Name: value", NULL-terminated; owned */
    char **hdrs;  /* the lines sent on this hop (of lines), NULL-terminated */
    char **safe;  /* the lines that may follow a cross-origin hop (of lines) */
    size_t nlines;
    /* header values that name a secret or a project variable, opened
     * into lines by refs_open before the first hop */
    struct hdr_ref {
        char *name, *secret, *var;
        const char *value; /* opened: in its line */
        size_t vlen;
    } * refs;
    size_t nrefs;
    char *acting;  /* whose right to use the secrets is checked */
    char *project; /* caps.project: where {"var"} and the secrets' scope look */
    json_t *vars;  /* the project's variables (the store job's answer) */
    aos_err_t ref_err;
    char *body;
    size_t body_len;
    json_t *allow; /* array of host patterns; NULL = any host */
    int allow_private;
    size_t max_bytes;
    uint64_t deadline; /* uv_now() at which the whole call times out */
    long timeout_ms;
    int max_redirects;
    json_t *redirects;
    char *workspace, *save_to;

    char *buf; /* the body of the current hop */
    size_t len, cap;
    int too_big;
    char refused[200]; /* why on_connect refused an address */
    char addr[64];     /* the address connected to */

    /* idempotency */
    char *idem_path;    /* NULL: no record */
    char args_hash[65]; /* of the arguments, hex */
    int idem_state;     /* IDEM_* from the worker */
    int sent;           /* a hop's request left */
    json_t *result;     /* the CallToolResult to give */
    char werr[256];     /* a worker's error */
} http_call_t;

static void call_free(http_call_t *c)
{
    if (!c)
        return;
    free(c->tool);
    free(c->url);
    free(c->origin);
    for (char **p = c->lines; p && *p; p++) {
        sodium_memzero(*p, strlen(*p)); /* a line may carry a secret */
        free(*p);
    }
    for (size_t i = 0; i < c->nrefs; i++) {
        free(c->refs[i].name);
        free(c->refs[i].secret);
        free(c->refs[i].var);
    }
    free(c->refs);
    free(c->acting);
    free(c->project);
    json_decref(c->vars);
    free(c->lines);
    free(c->hdrs);
    free(c->safe);
    free(c->body);
    json_decref(c->allow);
    json_decref(c->redirects);
    free(c->workspace);
    free(c->save_to);
    free(c->buf);
    free(c->idem_path);
    json_decref(c->result);
    free(c);
}

static json_t *tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *tool_error(const char *fmt, ...)
{
    char m[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    return json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", m, "isError", 1);
}

/* Answers the caller and frees c. */
static void finish(http_call_t *c, json_t *result)
{
    aos_builtin_done_fn done = c->done;
    void *ctx = c->ctx;
    call_free(c);
    if (result) {
        done(ctx, result, NULL);
    } else {
        aos_err_t e = {0, ""};
        aos_err_set(&e, AOS_ENOMEM, "out of memory");
        done(ctx, NULL, &e);
    }
}

/* Answers the caller with an error of the table (err) and frees c. */
static void finish_err(http_call_t *c, const aos_err_t *err)
{
    aos_builtin_done_fn done = c->done;
    void *ctx = c->ctx;
    aos_err_t e = *err;
    call_free(c);
    done(ctx, NULL, &e);
}

/* ---- workspace file ------------------------------------------------------------- */

static int openat2_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
    struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC,
                           .mode = (flags & O_CREAT) ? mode : 0,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                      RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/* Whether rel is a path a workspace file may have: relative, no "..", no
 * empty or "." name at its end. NULL or why not. */
static const char *rel_path_problem(const char *rel)
{
    if (!*rel)
        return "is empty";
    if (rel[0] == '/')
        return "is absolute (paths are relative to the workspace)";
    if (strlen(rel) > 4096)
        return "is too long";
    const char *p = rel;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return "leaves the workspace ('..')";
        if (!e && (n == 0 || (n == 1 && p[0] == '.')))
            return "does not name a file";
        p += n + (e ? 1 : 0);
    }
    return NULL;
}

/* Writes len bytes to <workspace>/<rel>, creating missing directories,
 * through a temporary file renamed over the target. Runs on the pool. */
static int save_file(const char *workspace, const char *rel, const char *data, size_t len,
                     char *why, size_t whyn)
{
    int dir = open(workspace, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (dir < 0) {
        snprintf(why, whyn, "the workspace is not available: %s", strerror(errno));
        return -1;
    }
    char *path = strdup(rel);
    if (!path) {
        close(dir);
        snprintf(why, whyn, "out of memory");
        return -1;
    }
    char *name = path, *slash;
    int rc = -1;
    while ((slash = strchr(name, '/'))) {
        *slash = '\0';
        if (*name && strcmp(name, ".")) {
            if (mkdirat(dir, name, 0755) && errno != EEXIST) {
                snprintf(why, whyn, "unable to make the directory '%.200s': %s", name,
                         strerror(errno));
                goto out;
            }
            int next = openat2_beneath(dir, name, O_DIRECTORY | O_RDONLY, 0);
            if (next < 0) {
                snprintf(why, whyn, "'%.200s' is not a directory inside the workspace: %s", name,
                         errno == ELOOP ? "it is a symbolic link" : strerror(errno));
                goto out;
            }
            close(dir);
            dir = next;
        }
        name = slash + 1;
    }
    char tmp[64];
    snprintf(tmp, sizeof(tmp), ".aos-http-%08x.tmp", randombytes_random());
    int fd = openat2_beneath(dir, tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        snprintf(why, whyn, "unable to create a file in the workspace: %s", strerror(errno));
        goto out;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (off < len || fsync(fd)) {
        snprintf(why, whyn, "unable to write '%.200s': %s", rel, strerror(errno));
        close(fd);
        unlinkat(dir, tmp, 0);
        goto out;
    }
    close(fd);
    if (renameat(dir, tmp, dir, name)) {
        snprintf(why, whyn, "unable to write '%.200s': %s", rel, strerror(errno));
        unlinkat(dir, tmp, 0);
        goto out;
    }
    fsync(dir);
    rc = 0;
out:
    close(dir);
    free(path);
    return rc;
}

/* ---- idempotency records (on the pool) ------------------------------------------- */

static int mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, 0700) && errno != EEXIST ? -1 : 0;
}

static int write_all_fsync(int fd, const char *s, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, s + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return fsync(fd);
}

/* Claims the record, or reads the one there. */
static void idem_begin_work(uv_work_t *w)
{
    http_call_t *c = w->data;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", c->idem_path);
    char *s = strrchr(dir, '/');
    if (s)
        *s = '\0';
    if (mkdirs(dir)) {
        snprintf(c->werr, sizeof(c->werr), "unable to keep the idempotency record: %s",
                 strerror(errno));
        c->idem_state = IDEM_FAIL;
        return;
    }
    int fd = open(c->idem_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        json_t *rec = json_pack("{s:s, s:s}", "state", "started", "args", c->args_hash);
        char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
        json_decref(rec);
        int bad = !text || write_all_fsync(fd, text, strlen(text));
        free(text);
        close(fd);
        if (bad) {
            unlink(c->idem_path);
            snprintf(c->werr, sizeof(c->werr), "unable to write the idempotency record");
            c->idem_state = IDEM_FAIL;
            return;
        }
        (void)aos_file_sync_dir(c->idem_path);
        c->idem_state = IDEM_NEW;
        return;
    }
    if (errno != EEXIST) {
        snprintf(c->werr, sizeof(c->werr), "unable to keep the idempotency record: %s",
                 strerror(errno));
        c->idem_state = IDEM_FAIL;
        return;
    }
    json_error_t je;
    json_t *rec = json_load_file(c->idem_path, 0, &je);
    const char *state = json_string_value(json_object_get(rec, "state"));
    const char *args = json_string_value(json_object_get(rec, "args"));
    if (!rec || !state || !args) {
        /* a record torn by a crash while it was claimed: the request may
         * or may not have gone out */
        c->idem_state = IDEM_BUSY;
    } else if (strcmp(args, c->args_hash)) {
        c->idem_state = IDEM_MISMATCH;
    } else if (!strcmp(state, "done") && json_is_object(json_object_get(rec, "result"))) {
        c->result = json_incref(json_object_get(rec, "result"));
        c->idem_state = IDEM_REPLAY;
    } else {
        c->idem_state = IDEM_BUSY;
    }
    json_decref(rec);
}

/* The end of a call on the pool: the file saved, the record completed. */
static void end_work(uv_work_t *w)
{
    http_call_t *c = w->data;
    if (c->save_to && c->result && !json_is_true(json_object_get(c->result, "isError"))) {
        char why[300];
        if (save_file(c->workspace, c->save_to, c->buf ? c->buf : "", c->len, why, sizeof(why))) {
            long status = (long)json_integer_value(
                json_object_get(json_object_get(c->result, "structuredContent"), "status"));
            json_decref(c->result);
            c->result =
                tool_error("the response (HTTP %ld) was received but not saved: %s", status, why);
        }
    }
    if (!c->idem_path || c->idem_state != IDEM_NEW)
        return;
    if (!c->sent) {
        unlink(c->idem_path); /* nothing went out: a retry may send it */
        (void)aos_file_sync_dir(c->idem_path);
        return;
    }
    json_t *rec = json_pack("{s:s, s:s, s:O}", "state", "done", "args", c->args_hash, "result",
                            c->result ? c->result : json_null());
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    /* on failure the claimed record stays "started": a retry is answered
     * as busy rather than sent twice */
    if (text)
        (void)aos_file_replace(c->idem_path, text, strlen(text), 0600, NULL);
    free(text);
}

static void end_done(uv_work_t *w, int status)
{
    http_call_t *c = w->data;
    (void)status;
    json_t *res = c->result;
    c->result = NULL;
    finish(c, res);
}

/* Hands the result to the pool for the file and the record, or answers now. */
/* s with every occurrence of the n bytes of val replaced by the mark: a new
 * string, or NULL when val is not in s. */
static char *scrub_str(const char *s, size_t sl, const char *val, size_t n, size_t *out_len)
{
    const char *hit = memmem(s, sl, val, n);
    if (!hit)
        return NULL;
    static const char mark[] = "[REDACTED]";
    size_t cap = sl + (sl / n + 1) * (sizeof(mark) - 1) + 1, o = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    const char *p = s, *end = s + sl;
    while (hit) {
        memcpy(out + o, p, (size_t)(hit - p));
        o += (size_t)(hit - p);
        memcpy(out + o, mark, sizeof(mark) - 1);
        o += sizeof(mark) - 1;
        p = hit + n;
        hit = memmem(p, (size_t)(end - p), val, n);
    }
    memcpy(out + o, p, (size_t)(end - p));
    o += (size_t)(end - p);
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* Replaces the opened secrets in every string of v (what the server
 * answered may echo a header: a result is stored with the task's step and
 * the idempotency record). A value under 4 bytes is left, as the
 * redactor leaves it. */
static void scrub(http_call_t *c, json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) scrub(c, x);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) scrub(c, x);
    } else if (json_is_string(v)) {
        for (size_t i = 0; i < c->nrefs; i++) {
            const struct hdr_ref *r = &c->refs[i];
            size_t n = 0;
            if (!r->value || r->vlen < 4)
                continue;
            char *clean =
                scrub_str(json_string_value(v), json_string_length(v), r->value, r->vlen, &n);
            if (clean) {
                sodium_memzero((char *)json_string_value(v), json_string_length(v));
                json_string_setn_nocheck(v, clean, n);
                free(clean);
            }
        }
    }
}

static void conclude(http_call_t *c, json_t *result)
{
    if (c->nrefs && result)
        scrub(c, result);
    json_decref(c->result);
    c->result = result;
    int needs_pool = (c->save_to && result && !json_is_true(json_object_get(result, "isError"))) ||
                     (c->idem_path && c->idem_state == IDEM_NEW);
    c->work.data = c;
    if (!needs_pool || uv_queue_work(c->h->loop, &c->work, end_work, end_done)) {
        c->result = NULL;
        finish(c, result);
    }
}

/* ---- the transfer ----------------------------------------------------------------- */

static void hop_start(http_call_t *c);

static int on_connect(const struct sockaddr *sa, unsigned len, void *data)
{
    http_call_t *c = data;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
    aos_addr_class_t k = aos_tools_addr_class(sa, len);
    if (k != AOS_ADDR_PUBLIC && !c->allow_private) {
        snprintf(c->refused, sizeof(c->refused),
                 "%s is a %s address; the caller's caps do not allow private addresses "
                 "(http.allow_private)",
                 ip, aos_tools_addr_class_name(k));
        return 1;
    }
    snprintf(c->addr, sizeof(c->addr), "%s", ip);
    return 0;
}

static int on_data(aos_httpc_req_t *r, const char *chunk, size_t n, void *data)
{
    http_call_t *c = data;
    (void)r;
    if (n > c->max_bytes - c->len) {
        c->too_big = 1;
        return AOS_ETOOBIG;
    }
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 16384;
        while (cap < c->len + n)
            cap *= 2;
        if (cap > c->max_bytes)
            cap = c->max_bytes;
        char *p = realloc(c->buf, cap);
        if (!p)
            return AOS_ENOMEM;
        c->buf = p;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, chunk, n);
    c->len += n;
    return 0;
}

static json_t *response_result(http_call_t *c, aos_httpc_req_t *r, long status)
{
    json_t *sc = json_object();
    json_object_set_new(sc, "url", json_string(c->url));
    json_object_set_new(sc, "status", json_integer(status));
    json_t *hs = json_object();
    static const char *const keep[] = {"content-type",
                                       "content-length",
                                       "content-encoding",
                                       "location",
                                       "etag",
                                       "last-modified",
                                       "cache-control",
                                       "date",
                                       "server",
                                       "retry-after",
                                       "idempotency-key",
                                       "x-request-id",
                                       NULL};
    for (const char *const *k = keep; *k; k++) {
        const char *v = aos_httpc_resp_header(r, *k);
        if (v)
            json_object_set_new(hs, *k, json_string(v));
    }
    json_object_set_new(sc, "headers", hs);
    json_object_set_new(sc, "bytes", json_integer((json_int_t)c->len));
    if (c->addr[0])
        json_object_set_new(sc, "address", json_string(c->addr));
    json_object_set(sc, "redirects", c->redirects);
    const char *ct = aos_httpc_resp_header(r, "content-type");
    int is_text = c->len == 0 || aos_utf8_valid(c->buf, c->len);
    char summary[200];
    if (c->save_to) {
        json_object_set_new(sc, "saved_to", json_string(c->save_to));
        snprintf(summary, sizeof(summary), "HTTP %ld, %zu bytes saved to %.150s", status, c->len,
                 c->save_to);
    } else if (is_text) {
        json_object_set_new(sc, "body", json_stringn(c->buf ? c->buf : "", c->len));
        if (ct && (strstr(ct, "json") != NULL)) {
            json_t *j = json_loadb(c->buf ? c->buf : "", c->len, JSON_DECODE_ANY, NULL);
            if (j)
                json_object_set_new(sc, "json", j);
        }
        summary[0] = '\0';
    } else {
        size_t n = sodium_base64_encoded_len(c->len, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(n);
        if (b64) {
            sodium_bin2base64(b64, n, (const unsigned char *)c->buf, c->len,
                              sodium_base64_VARIANT_ORIGINAL);
            json_object_set_new(sc, "body_base64", json_string(b64));
            free(b64);
        }
        snprintf(summary, sizeof(summary), "HTTP %ld, %zu bytes of binary content (body_base64)",
                 status, c->len);
    }
    json_t *text;
    if (summary[0])
        text = json_string(summary);
    else {
        char head[64];
        snprintf(head, sizeof(head), "HTTP %ld\n\n", status);
        size_t hl = strlen(head);
        char *t = malloc(hl + c->len + 1);
        if (t) {
            memcpy(t, head, hl);
            if (c->len)
                memcpy(t + hl, c->buf, c->len);
        }
        text = t ? json_stringn(t, hl + c->len) : NULL;
        free(t);
    }
    /* a status >= 400 is the server's answer, not a failure of the tool */
    return json_pack("{s:[{s:s, s:o}], s:o}", "content", "type", "text", "text",
                     text ? text : json_string(""), "structuredContent", sc);
}

static int is_redirect(long s)
{
    return s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
}

/* "scheme://host:port" of url into out. */
static int origin_of(const char *url, char *out, size_t n)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (u && !curl_url_set(u, CURLUPART_URL, url, 0) &&
        !curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) &&
        !curl_url_get(u, CURLUPART_HOST, &host, 0) &&
        !curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)) {
        snprintf(out, n, "%s://%s:%s", scheme, host, port);
        for (char *p = out; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p + 32);
        rc = 0;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* Checks url (scheme, no credentials, host allowed) and returns it in its
 * normalised form (to free), or NULL with why set. base: the URL a relative
 * url is resolved against, or NULL. */
static char *check_url(http_call_t *c, const char *base, const char *url, char *why, size_t n)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *full = NULL;
    if (!u) {
        snprintf(why, n, "out of memory");
        return NULL;
    }
    CURLUcode rc = CURLUE_OK;
    if (base)
        rc = curl_url_set(u, CURLUPART_URL, base, 0);
    if (!rc)
        rc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (rc) {
        snprintf(why, n, "'%.200s' is not a valid URL: %s", url, curl_url_strerror(rc));
        goto bad;
    }
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (!scheme || (strcasecmp(scheme, "http") && strcasecmp(scheme, "https"))) {
        snprintf(why, n, "'%.200s': only http and https URLs are allowed", url);
        goto bad;
    }
    if (!curl_url_get(u, CURLUPART_USER, &user, 0) && user) {
        snprintf(why, n, "credentials in the URL are not allowed (use an Authorization header)");
        goto bad;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) || !host || !*host) {
        snprintf(why, n, "'%.200s' has no host", url);
        goto bad;
    }
    if (c->allow && !aos_tools_host_allowed(c->allow, host)) {
        snprintf(why, n, "the host '%.200s' is not one the caller's caps allow (http.allow_hosts)",
                 host);
        goto bad;
    }
    /* an address literal is judged now, with a clearer error than curl's */
    char h[256];
    uint8_t a[16];
    if (!host_norm(host, h, sizeof(h))) {
        aos_addr_class_t k = AOS_ADDR_PUBLIC;
        int lit = 0;
        if (inet_pton(AF_INET, h, a) == 1) {
            k = aos_tools_addr_class4(a);
            lit = 1;
        } else if (inet_pton(AF_INET6, h, a) == 1) {
            k = aos_tools_addr_class6(a);
            lit = 1;
        }
        if (lit && k != AOS_ADDR_PUBLIC && !c->allow_private) {
            snprintf(why, n,
                     "%.100s is a %s address; the caller's caps do not allow private addresses "
                     "(http.allow_private)",
                     h, aos_tools_addr_class_name(k));
            goto bad;
        }
    }
    if (curl_url_get(u, CURLUPART_URL, &full, 0) || !full) {
        snprintf(why, n, "'%.200s' is not a valid URL", url);
        goto bad;
    }
    char *out = strdup(full);
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(full);
    curl_url_cleanup(u);
    if (!out)
        snprintf(why, n, "out of memory");
    return out;
bad:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(full);
    curl_url_cleanup(u);
    return NULL;
}

static void on_done(aos_httpc_req_t *r, int status, const char *errmsg, void *data)
{
    http_call_t *c = data;
    if (aos_httpc_sent(r))
        c->sent = 1;
    if (status == AOS_ETOOBIG || c->too_big) {
        conclude(c, tool_error("the response of %.300s is larger than max_bytes (%zu bytes)",
                               c->url, c->max_bytes));
        return;
    }
    if (status == AOS_ETIMEDOUT) {
        conclude(c, tool_error("%.300s did not answer within timeout_ms (%ld ms)", c->url,
                               c->timeout_ms));
        return;
    }
    if (status == AOS_ECANCELED) {
        conclude(c, tool_error("the request to %.300s was cancelled (aosd is stopping)", c->url));
        return;
    }
    if (status) {
        if (c->refused[0])
            conclude(c, tool_error("refused to connect to %.300s: %s", c->url, c->refused));
        else
            conclude(c, tool_error("the request to %.300s failed: %s", c->url,
                                   errmsg ? errmsg : aos_strerror(status)));
        return;
    }
    long code = aos_httpc_status(r);
    const char *loc = aos_httpc_resp_header(r, "location");
    if (!is_redirect(code) || !loc || c->max_redirects == 0) {
        conclude(c, response_result(c, r, code));
        return;
    }
    if ((int)json_array_size(c->redirects) >= c->max_redirects) {
        conclude(c, tool_error("%.300s: more than max_redirects (%d) redirects", c->url,
                               c->max_redirects));
        return;
    }
    char why[400];
    char *next = check_url(c, c->url, loc, why, sizeof(why));
    if (!next) {
        conclude(c, tool_error("refused to follow the redirect (HTTP %ld) from %.300s: %s", code,
                               c->url, why));
        return;
    }
    /* 303, and 301/302 after a POST, turn into a GET without a body */
    if (code == 303 || ((code == 301 || code == 302) && !strcmp(c->method, "POST"))) {
        if (strcmp(c->method, "HEAD"))
            snprintf(c->method, sizeof(c->method), "GET");
        free(c->body);
        c->body = NULL;
        c->body_len = 0;
    }
    char o[600];
    if (c->hdrs && (origin_of(next, o, sizeof(o)) || strcmp(o, c->origin))) {
        /* another origin: only the harmless headers go along */
        for (size_t i = 0;; i++) {
            c->hdrs[i] = c->safe[i];
            if (!c->safe[i])
                break;
        }
    }
    json_array_append_new(c->redirects, json_string(next));
    free(c->url);
    c->url = next;
    c->len = 0;
    c->refused[0] = c->addr[0] = '\0';
    hop_start(c);
}

static void hop_start(http_call_t *c)
{
    uint64_t now = uv_now(c->h->loop);
    if (now >= c->deadline) {
        conclude(c, tool_error("%.300s did not answer within timeout_ms (%ld ms)", c->url,
                               c->timeout_ms));
        return;
    }
    aos_httpc_opts_t o = {.method = c->method,
                          .url = c->url,
                          .headers = (const char *const *)c->hdrs,
                          .body = c->body,
                          .body_len = c->body_len,
                          .timeout_ms = (long)(c->deadline - now),
                          .on_data = on_data,
                          .on_done = on_done,
                          .data = c,
                          .on_connect = on_connect};
    aos_err_t err = {0, ""};
    if (aos_httpc_start(c->h->httpc, &o, NULL, &err))
        conclude(c, tool_error("unable to start the request: %s", aos_err_msg(&err)));
}

/* ---- arguments ---------------------------------------------------------------------- */

static int header_name_ok(const char *s)
{
    if (!*s || strlen(s) > 128)
        return 0;
    for (; *s; s++)
        if (!(*s > ' ' && *s < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", *s)))
            return 0;
    return 1;
}

static int header_value_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return 0;
    return 1;
}

static int ref_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HTTP_REF_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return 0;
    return 1;
}

/* The caller's headers as lines (c->hdrs) and which may cross origins
 * (c->safe). NULL or why not (never quoting a value). */
static const char *take_headers(http_call_t *c, const json_t *hs, const char *key, int has_ct)
{
    size_t n = json_object_size(hs) + 3;
    if (json_object_size(hs) > HTTP_MAX_HEADERS)
        return "too many headers";
    c->lines = calloc(n, sizeof(char *));
    c->hdrs = calloc(n, sizeof(char *));
    c->safe = calloc(n, sizeof(char *));
    if (!c->lines || !c->hdrs || !c->safe)
        return "out of memory";
    size_t i = 0, s = 0, total = 0;
    const char *name;
    const json_t *v;
    static const char *const forbidden[] = {
        "host", "content-length", "transfer-encoding",   "connection",      "upgrade",
        "te",   "expect",         "proxy-authorization", "idempotency-key", NULL};
    static const char *const safe[] = {"accept", "accept-language", "content-type", "user-agent",
                                       NULL};
    c->refs = calloc(n, sizeof(*c->refs));
    if (!c->refs)
        return "out of memory";
    json_object_foreach((json_t *)hs, name, v)
    {
        if (!header_name_ok(name))
            return "a header name is not a valid HTTP token";
        for (const char *const *f = forbidden; *f; f++)
            if (!strcasecmp(name, *f))
                return "headers may not set Host, Content-Length, Transfer-Encoding, Connection, "
                       "Upgrade, TE, Expect, Proxy-Authorization or Idempotency-Key";
        if (json_is_object(v)) {
            const char *sec = json_string_value(json_object_get(v, "secret"));
            const char *var = json_string_value(json_object_get(v, "var"));
            const char *ref = sec ? sec : var;
            if (json_object_size(v) != 1 || !ref || !ref_name_ok(ref))
                return "a header value must be a string, {\"secret\": \"<runtime secret>\"} or "
                       "{\"var\": \"<project variable>\"} (a name of 1 to 64 of A-Z a-z 0-9 _ . "
                       "-)";
            struct hdr_ref *r = &c->refs[c->nrefs++];
            r->name = strdup(name);
            r->secret = sec ? strdup(sec) : NULL;
            r->var = var ? strdup(var) : NULL;
            if (!r->name || (sec && !r->secret) || (var && !r->var))
                return "out of memory";
            total += strlen(name) + 2;
            continue;
        }
        if (!json_is_string(v))
            return "header values must be strings or references to secrets";
        size_t vl = json_string_length(v);
        if (!header_value_ok(json_string_value(v), vl))
            return "a header value holds a line break or NUL";
        total += strlen(name) + vl + 2;
        if (total > HTTP_MAX_HEADER_BYTES)
            return "the headers are too large";
        size_t ll = strlen(name) + vl + 3;
        char *line = malloc(ll);
        if (!line)
            return "out of memory";
        snprintf(line, ll, "%s: %s", name, json_string_value(v));
        c->hdrs[i] = line;
        c->lines[i++] = line;
        for (const char *const *f = safe; *f; f++)
            if (!strcasecmp(name, *f))
                c->safe[s++] = line;
    }
    if (key) {
        size_t ll = strlen(key) + 20;
        char *line = malloc(ll);
        if (!line)
            return "out of memory";
        snprintf(line, ll, "Idempotency-Key: %s", key);
        c->hdrs[i] = line;
        c->lines[i++] = line;
    }
    if (!has_ct && c->body) {
        char *line = strdup("Content-Type: application/json");
        if (!line)
            return "out of memory";
        c->hdrs[i] = line;
        c->lines[i++] = line;
        c->safe[s++] = line;
    }
    c->nlines = i;
    return NULL;
}

static int key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > HTTP_MAX_KEY)
        return 0;
    for (; *k; k++)
        if (*k < 0x21 || *k > 0x7e)
            return 0;
    return 1;
}

/* The hex BLAKE2b of the NUL-separated parts. */
static void hash_hex(char out[65], const char *const *parts, size_t n)
{
    crypto_generichash_state st;
    unsigned char h[32];
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    for (size_t i = 0; i < n; i++)
        crypto_generichash_update(&st, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    crypto_generichash_final(&st, h, sizeof(h));
    sodium_bin2hex(out, 65, h, sizeof(h));
}

static void idem_begin_done(uv_work_t *w, int status)
{
    http_call_t *c = w->data;
    (void)status;
    switch (c->idem_state) {
    case IDEM_NEW:
        hop_start(c);
        return;
    case IDEM_REPLAY: {
        json_t *res = c->result;
        c->result = NULL;
        json_t *sc = json_object_get(res, "structuredContent");
        if (json_is_object(sc))
            json_object_set_new(sc, "replayed", json_true());
        c->idem_state = IDEM_NONE;
        finish(c, res);
        return;
    }
    case IDEM_MISMATCH:
        c->idem_state = IDEM_NONE;
        finish(c, tool_error("the idempotency key was used before with other arguments; "
                             "nothing was sent"));
        return;
    case IDEM_BUSY:
        c->idem_state = IDEM_NONE;
        finish(c, tool_error("a call with this idempotency key is still running, or was "
                             "interrupted with an unknown outcome; nothing was sent"));
        return;
    default:
        c->idem_state = IDEM_NONE;
        finish(c, tool_error("%s; nothing was sent", c->werr));
        return;
    }
}

static json_t *caps_http(const json_t *caps, http_call_t *c, const char **why)
{
    *why = NULL;
    if (!caps) {
        c->allow = NULL; /* any host, public addresses only */
        return NULL;
    }
    const json_t *h = json_object_get(caps, "http");
    if (!json_is_object(h)) {
        *why = "the caller's caps grant no http access (caps.http)";
        return NULL;
    }
    const json_t *hosts = json_object_get(h, "allow_hosts");
    if (!json_is_array(hosts) || json_array_size(hosts) == 0) {
        *why = "the caller's caps allow no hosts (caps.http.allow_hosts)";
        return NULL;
    }
    c->allow_private = json_is_true(json_object_get(h, "allow_private"));
    c->allow = json_deep_copy(hosts);
    return NULL;
}

static int get_uint(const json_t *args, const char *name, long dflt, long max, long *out, char *why,
                    size_t n)
{
    const json_t *v = json_object_get(args, name);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
        snprintf(why, n, "'%s' must be an integer from 0 to %ld", name, max);
        return -1;
    }
    *out = (long)json_integer_value(v);
    return 0;
}

/* The call, its headers complete: the idempotency record, then the
 * first hop. */
static void call_go(http_call_t *c)
{
    if (c->idem_path) {
        c->work.data = c;
        if (uv_queue_work(c->h->loop, &c->work, idem_begin_work, idem_begin_done))
            finish(c, tool_error("unable to keep the idempotency record; nothing was sent"));
        return;
    }
    hop_start(c);
}

/* Opens each reference into a header line (c->lines, c->hdrs; never
 * c->safe: a secret does not follow a cross-origin hop), then goes on;
 * the first that fails ends the call with its error, nothing sent. */
static void refs_open(http_call_t *c)
{
    aos_err_t err = {0, ""};
    size_t total = 0;
    for (char **l = c->lines; *l; l++)
        total += strlen(*l);
    for (size_t i = 0; i < c->nrefs; i++) {
        struct hdr_ref *r = &c->refs[i];
        aos_err_t e = {0, ""};
        size_t len = 0;
        if (!r->name || !r->secret) { /* resolved before: never */
            finish(c, NULL);
            return;
        }
        char *plain =
            c->h->open_secret(c->acting, r->secret, c->project, &len, &e, c->h->open_data);
        if (!plain) {
            aos_err_set(
                &err, e.code ? e.code : AOS_EINTERNAL,
                "header '%.64s' (runtime secret '%.64s'%s%.64s%s): %.300s; nothing was sent",
                r->name, r->secret, r->var ? ", project variable '" : "", r->var ? r->var : "",
                r->var ? "'" : "", aos_err_msg(&e));
            finish_err(c, &err);
            return;
        }
        size_t ll = strlen(r->name) + len + 3;
        total += ll;
        char *line = header_value_ok(plain, len) ? malloc(ll) : NULL;
        if (line)
            snprintf(line, ll, "%s: %.*s", r->name, (int)len, plain);
        aos_secret_wipe(plain);
        if (!line || total > HTTP_MAX_HEADER_BYTES) {
            if (line) {
                sodium_memzero(line, ll);
                free(line);
            }
            aos_err_set(&err, AOS_EINVAL,
                        "header '%.64s': the value of runtime secret '%.64s' %s; nothing was sent",
                        r->name, r->secret,
                        line
                            ? "makes the headers too large"
                            : "cannot be a header value (a line break or NUL) or is out of memory");
            finish_err(c, &err);
            return;
        }
        r->value = line + strlen(r->name) + 2;
        r->vlen = len;
        c->hdrs[c->nlines] = line;
        c->lines[c->nlines++] = line;
    }
    call_go(c);
}

static int vars_job(aos_store_t *st, void *arg, aos_err_t *err)
{
    http_call_t *c = arg;
    return aos_store_project_var_list(st, c->project, &c->vars, err);
}

/* Each {"var": V} to its secret: the project's variable V, of scope "task"
 * before one of scope "project". */
static void vars_done(int status, const aos_err_t *err, void *arg)
{
    http_call_t *c = arg;
    aos_err_t e = {0, ""};
    if (status) {
        aos_err_set(&e, AOS_EUNAVAIL, "unable to read project '%.64s''s variables: %.200s",
                    c->project, aos_err_msg(err));
        finish_err(c, &e);
        return;
    }
    for (size_t i = 0; i < c->nrefs; i++) {
        struct hdr_ref *r = &c->refs[i];
        if (!r->var)
            continue;
        const char *best = NULL;
        size_t k;
        json_t *row;
        json_array_foreach(c->vars, k, row)
        {
            if (strcmp(json_string_value(json_object_get(row, "name")) ?: "", r->var))
                continue;
            const char *ref = json_string_value(json_object_get(row, "secret_ref"));
            const char *scope = json_string_value(json_object_get(row, "scope")) ?: "";
            if (ref && *ref && (!best || !strcmp(scope, "task")))
                best = ref;
        }
        if (!best) {
            aos_err_set(&e, AOS_ENOTFOUND,
                        "header '%.64s': project '%.64s' has no variable '%.64s'; nothing was sent",
                        r->name, c->project, r->var);
            finish_err(c, &e);
            return;
        }
        if (!(r->secret = strdup(best))) {
            finish(c, NULL);
            return;
        }
    }
    refs_open(c);
}

/* Who may use the references' secrets, and the project they are in. */
static void refs_start(http_call_t *c, const aos_caller_t *caller)
{
    aos_err_t e = {0, ""};
    /* a task calls for its submitter: the submitter's right to the secret */
    const char *acting =
        caller->on_behalf_of && caller->principal && !strncmp(caller->principal, "task:", 5)
            ? caller->on_behalf_of
            : caller->principal;
    const char *project = json_string_value(json_object_get(caller->caps, "project"));
    c->acting = strdup(acting ? acting : "");
    c->project = project && *project ? strdup(project) : NULL;
    if (!c->acting || (project && *project && !c->project)) {
        finish(c, NULL);
        return;
    }
    if (!c->h->open_secret) {
        aos_err_set(&e, AOS_EUNAVAIL,
                    "header '%.64s' names a runtime secret and this server opens none; nothing "
                    "was sent",
                    c->refs[0].name);
        finish_err(c, &e);
        return;
    }
    for (size_t i = 0; i < c->nrefs; i++) {
        if (!c->refs[i].var)
            continue;
        if (!c->project) {
            aos_err_set(&e, AOS_EINVAL,
                        "header '%.64s' names project variable '%.64s', but the call is in no "
                        "project (only a task of a project has variables); nothing was sent",
                        c->refs[i].name, c->refs[i].var);
            finish_err(c, &e);
            return;
        }
        if (!c->h->store || aos_store_submit(c->h->store, vars_job, vars_done, c)) {
            aos_err_set(&e, AOS_EUNAVAIL, "unable to read project variables; nothing was sent");
            finish_err(c, &e);
        }
        return;
    }
    refs_open(c);
}

static int http_call(void *data, const aos_caller_t *caller, const char *tool, const json_t *args,
                     aos_builtin_done_fn done, void *ctx)
{
    aos_tools_http_t *h = data;
    const char *method;
    if (!strcmp(tool, "get"))
        method = "GET";
    else if (!strcmp(tool, "post"))
        method = "POST";
    else if (!strcmp(tool, "put"))
        method = "PUT";
    else if (!strcmp(tool, "delete"))
        method = "DELETE";
    else
        return AOS_ENOTFOUND;
    http_call_t *c = calloc(1, sizeof(*c));
    if (!c || !(c->tool = strdup(tool)) || !(c->redirects = json_array())) {
        call_free(c);
        return AOS_ENOMEM;
    }
    c->h = h;
    c->done = done;
    c->ctx = ctx;
    snprintf(c->method, sizeof(c->method), "%s", method);
    char why[600] = "";
    const char *w;
    caps_http(caller->caps, c, &w);
    if (w) {
        finish(c, tool_error("%s", w));
        return 0;
    }
    static const char *const known[] = {"url",     "headers",       "body",
                                        "json",    "max_bytes",     "timeout_ms",
                                        "save_to", "max_redirects", NULL};
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)args, k, v)
    {
        const char *const *p = known;
        while (*p && strcmp(*p, k))
            p++;
        if (!*p || (!strcmp(method, "GET") && (!strcmp(k, "body") || !strcmp(k, "json")))) {
            finish(c, tool_error("unknown argument '%.64s'", k));
            return 0;
        }
    }
    const char *url = json_string_value(json_object_get(args, "url"));
    if (!url || !*url || strlen(url) > HTTP_MAX_URL) {
        finish(c,
               tool_error("'url' must be an http or https URL of at most %d bytes", HTTP_MAX_URL));
        return 0;
    }
    long max_bytes, timeout, redirects;
    if (get_uint(args, "max_bytes", HTTP_MAX_BYTES_DEFAULT, HTTP_MAX_BYTES_LIMIT, &max_bytes, why,
                 sizeof(why)) ||
        get_uint(args, "timeout_ms", HTTP_TIMEOUT_DEFAULT_MS, HTTP_TIMEOUT_LIMIT_MS, &timeout, why,
                 sizeof(why)) ||
        get_uint(args, "max_redirects", HTTP_REDIRECTS_DEFAULT, HTTP_REDIRECTS_LIMIT, &redirects,
                 why, sizeof(why))) {
        finish(c, tool_error("%s", why));
        return 0;
    }
    c->max_bytes = (size_t)max_bytes;
    c->timeout_ms = timeout > 0 ? timeout : HTTP_TIMEOUT_DEFAULT_MS;
    c->max_redirects = (int)redirects;
    const json_t *body = json_object_get(args, "body"), *js = json_object_get(args, "json");
    if (body && js) {
        finish(c, tool_error("give 'body' or 'json', not both"));
        return 0;
    }
    if (body && !json_is_string(body)) {
        finish(c, tool_error("'body' must be a string (use 'json' for a JSON value)"));
        return 0;
    }
    int has_ct = 0;
    const json_t *hs = json_object_get(args, "headers");
    if (hs && !json_is_object(hs)) {
        finish(c, tool_error("'headers' must be an object of name: value strings"));
        return 0;
    }
    const char *hn;
    const json_t *hv;
    json_object_foreach((json_t *)hs, hn, hv)
    {
        if (!strcasecmp(hn, "content-type"))
            has_ct = 1;
    }
    if (body) {
        c->body_len = json_string_length(body);
        c->body = malloc(c->body_len + 1);
        if (c->body)
            memcpy(c->body, json_string_value(body), c->body_len);
        has_ct = 1; /* a text body: the caller says what it is, or none */
    } else if (js) {
        c->body = json_dumps(js, JSON_COMPACT | JSON_ENCODE_ANY);
        c->body_len = c->body ? strlen(c->body) : 0;
    }
    if ((body || js) && !c->body) {
        finish(c, NULL);
        return 0;
    }
    const char *save_to = json_string_value(json_object_get(args, "save_to"));
    if (json_object_get(args, "save_to")) {
        const char *ws = json_string_value(json_object_get(caller->caps, "workspace"));
        const char *prob = save_to ? rel_path_problem(save_to) : "must be a string";
        if (prob) {
            finish(c, tool_error("'save_to' %s", prob));
            return 0;
        }
        if (!ws || ws[0] != '/') {
            finish(c, tool_error("'save_to' needs a workspace, and the caller's caps grant none "
                                 "(caps.workspace)"));
            return 0;
        }
        c->workspace = strdup(ws);
        c->save_to = strdup(save_to);
        if (!c->workspace || !c->save_to) {
            finish(c, NULL);
            return 0;
        }
    }
    const char *key = caller->idempotency_key;
    if (key && !*key)
        key = NULL;
    if (key && strcmp(method, "GET")) {
        const char *who = caller->principal ? caller->principal : "";
        const char *parts[] = {who, tool, key};
        char name[65];
        hash_hex(name, parts, 3);
        char *a = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
        const char *ap[] = {a ? a : ""};
        hash_hex(c->args_hash, ap, 1);
        free(a);
        size_t n = strlen(h->data_dir) + 100;
        c->idem_path = malloc(n);
        if (!c->idem_path) {
            finish(c, NULL);
            return 0;
        }
        snprintf(c->idem_path, n, "%s/idempotency/http/%s.json", h->data_dir, name);
    }
    /* the record holds any key; the header only one a header line can carry */
    const char *hw = take_headers(c, hs, key && key_ok(key) ? key : NULL, has_ct);
    if (hw) {
        finish(c, tool_error("%s", hw));
        return 0;
    }
    c->url = check_url(c, NULL, url, why, sizeof(why));
    char o[600];
    if (!c->url || origin_of(c->url, o, sizeof(o)) || !(c->origin = strdup(o))) {
        finish(c, tool_error("%s", c->url ? "out of memory" : why));
        return 0;
    }
    c->deadline = uv_now(h->loop) + (uint64_t)c->timeout_ms;
    if (c->nrefs)
        refs_start(c, caller);
    else
        call_go(c);
    return 0;
}

/* ---- tool definitions ---------------------------------------------------------------- */

static json_t *input_schema(int with_body)
{
    json_t *props = json_pack(
        "{s:{s:s, s:s}, s:{s:s, s:{s:[s,s]}, s:s}, s:{s:s, s:i, s:i, s:s}, s:{s:s, s:i, s:i, s:s},"
        " s:{s:s, s:i, s:i, s:s}, s:{s:s, s:s}}",
        "url", "type", "string", "description",
        "http:// or https:// URL; its host must be one the caller's caps allow", "headers", "type",
        "object", "additionalProperties", "type", "string", "object", "description",
        "request headers (values may be secrets: they are never logged and do not follow a "
        "redirect to another origin); a value may instead be {\"secret\": \"<runtime "
        "secret>\"} or {\"var\": \"<project variable>\"}, opened only when the request is "
        "made",
        "max_bytes", "type", "integer", "minimum", 0, "maximum", HTTP_MAX_BYTES_LIMIT,
        "description", "largest response body accepted (default 1 MiB)", "timeout_ms", "type",
        "integer", "minimum", 0, "maximum", HTTP_TIMEOUT_LIMIT_MS, "description",
        "time for the whole call, redirects included (default 30000)", "max_redirects", "type",
        "integer", "minimum", 0, "maximum", HTTP_REDIRECTS_LIMIT, "description",
        "redirects to follow (default 5; 0 returns the 3xx itself)", "save_to", "type", "string",
        "description",
        "write the body to this file of the workspace (relative path) instead of returning it");
    if (with_body) {
        json_object_set_new(props, "body",
                            json_pack("{s:s, s:s}", "type", "string", "description",
                                      "request body as text (set Content-Type in headers)"));
        json_object_set_new(props, "json",
                            json_pack("{s:s}", "description",
                                      "request body as JSON (Content-Type application/json)"));
    }
    return json_pack("{s:s, s:o, s:[s], s:b}", "type", "object", "properties", props, "required",
                     "url", "additionalProperties", 0);
}

static json_t *output_schema(void)
{
    return json_pack(
        "{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s},"
        " s:{s:s}, s:{s:s, s:{s:s}}, s:{s:s}}, s:[s,s,s]}",
        "type", "object", "properties", "url", "type", "string", "status", "type", "integer",
        "headers", "type", "object", "body", "type", "string", "body_base64", "type", "string",
        "json", "description", "the body parsed, when the response is JSON", "bytes", "type",
        "integer", "address", "type", "string", "saved_to", "type", "string", "redirects", "type",
        "array", "items", "type", "string", "replayed", "type", "boolean", "required", "url",
        "status", "bytes");
}

static json_t *tool_def(const char *name, const char *description, int with_body, int read_only,
                        int destructive, int idempotent)
{
    return json_pack("{s:s, s:s, s:o, s:o, s:{s:b, s:b, s:b, s:b}}", "name", name, "description",
                     description, "inputSchema", input_schema(with_body), "outputSchema",
                     output_schema(), "annotations", "readOnlyHint", read_only, "destructiveHint",
                     destructive, "idempotentHint", idempotent, "openWorldHint", 1);
}

static json_t *http_tools(void *data)
{
    (void)data;
    return json_pack(
        "[o, o, o, o]",
        tool_def("get",
                 "HTTP GET a URL on a host the caller's caps allow (private and loopback "
                 "addresses refused unless allowed, checked after DNS and on every redirect); "
                 "returns status, headers and body (text, JSON or base64), or saves the body to "
                 "a workspace file.",
                 0, 1, 0, 1),
        tool_def("post",
                 "HTTP POST to a URL on an allowed host. With an idempotency key a repeat "
                 "returns the first result instead of posting again.",
                 1, 0, 1, 0),
        tool_def("put", "HTTP PUT to a URL on an allowed host.", 1, 0, 1, 1),
        tool_def("delete", "HTTP DELETE a URL on an allowed host.", 1, 0, 1, 1));
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

int aos_tools_http_new(aos_tools_http_t **out, const aos_tools_http_cfg_t *cfg, aos_err_t *err)
{
    *out = NULL;
    aos_tools_http_t *h = calloc(1, sizeof(*h));
    if (!h || !(h->data_dir = strdup(cfg->data_dir ? cfg->data_dir : "."))) {
        free(h);
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    h->loop = cfg->loop;
    h->httpc = cfg->httpc;
    h->store = cfg->store;
    h->open_secret = cfg->open_secret;
    h->open_data = cfg->open_data;
    h->builtin.name = "http";
    h->builtin.description = "HTTP requests to the hosts the caller's caps allow";
    h->builtin.tools = http_tools;
    h->builtin.call = http_call;
    h->builtin.data = h;
    *out = h;
    return 0;
}

const aos_builtin_t *aos_tools_http_builtin(aos_tools_http_t *h)
{
    return &h->builtin;
}

void aos_tools_http_free(aos_tools_http_t *h)
{
    if (!h)
        return;
    free(h->data_dir);
    free(h);
}
