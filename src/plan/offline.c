/* offline.c - the offline planner: a plan for a goal without an LLM.
 *
 * DSL text goes to the DSL parser. Anything else is cut into clauses at
 * "and", "then", "并", "然后" ... where a known verb follows, and each clause
 * is matched against a few patterns (docs/DSL.md, "Plain-language goals"),
 * in English or Simplified Chinese; each pattern gives one step. A file the
 * goal does not name comes from the step before (plot what was cleaned) or
 * from the task's inputs. English keywords match in any case; file and
 * column names keep theirs. */
#include "plan/internal.h"
#include "utf8/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOAL_MAX   4096
#define CLAUSE_MAX 16
#define NAME_MAX_  128

typedef struct {
    const json_t *inputs;
    json_t *steps;
    char file[NAME_MAX_ + 16]; /* the file the last step wrote, or "" */
    aos_err_t *err;
} ctx_t;

/* ---- text helpers ------------------------------------------------------------------- */

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* s[0..n) as a trimmed string in out (cap bytes). */
static void copy_trim(char *out, size_t cap, const char *s, size_t n)
{
    while (n && is_space((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && is_space((unsigned char)s[n - 1]))
        n--;
    if (n >= cap)
        n = aos_utf8_trim(s, cap - 1);
    memmove(out, s, n);
    out[n] = '\0';
}

/* 1 if lc (lowercase) starts with word w followed by a non-letter. */
static int starts_word(const char *lc, const char *w)
{
    size_t n = strlen(w);
    return !strncmp(lc, w, n) && !is_alnum((unsigned char)lc[n]);
}

/* 1 if lc starts with any of the NULL-terminated words; *n its length. */
static int starts_any(const char *lc, const char *const *words, size_t *n)
{
    for (size_t i = 0; words[i]; i++) {
        size_t k = strlen(words[i]);
        int ascii = is_alnum((unsigned char)words[i][0]);
        if (!strncmp(lc, words[i], k) && (!ascii || !is_alnum((unsigned char)lc[k]))) {
            if (n)
                *n = k;
            return 1;
        }
    }
    return 0;
}

static size_t skip_spaces(const char *s, size_t i)
{
    while (s[i] && is_space((unsigned char)s[i]))
        i++;
    return i;
}

/* Skips the words of a list (articles ...) at lc + i, as often as they come. */
static size_t skip_words(const char *lc, size_t i, const char *const *words)
{
    size_t n;
    for (i = skip_spaces(lc, i); starts_any(lc + i, words, &n); i = skip_spaces(lc, i + n))
        ;
    return i;
}

/* Finds " w " (a whole ASCII word) in lc[from..to); the offset or -1. */
static long find_word(const char *lc, size_t from, size_t to, const char *w)
{
    size_t n = strlen(w);
    for (size_t i = from; i + n <= to; i++)
        if (!strncmp(lc + i, w, n) && (i == 0 || !is_alnum((unsigned char)lc[i - 1])) &&
            !is_alnum((unsigned char)lc[i + n]))
            return (long)i;
    return -1;
}

static long find_text(const char *s, size_t from, size_t to, const char *w)
{
    size_t n = strlen(w);
    for (size_t i = from; i + n <= to; i++)
        if (!strncmp(s + i, w, n))
            return (long)i;
    return -1;
}

/* A quoted span at s+i ("...", '...', “...”, 「...」): its content. */
static int quoted(const char *s, size_t i, size_t *start, size_t *end, size_t *after)
{
    static const char *const open[] = {"\"", "'", "\xe2\x80\x9c", "\xe3\x80\x8c", NULL};
    static const char *const close[] = {"\"", "'", "\xe2\x80\x9d", "\xe3\x80\x8d", NULL};
    for (size_t k = 0; open[k]; k++) {
        size_t on = strlen(open[k]);
        if (strncmp(s + i, open[k], on))
            continue;
        const char *c = strstr(s + i + on, close[k]);
        if (!c)
            return 0;
        *start = i + on;
        *end = (size_t)(c - s);
        *after = *end + strlen(close[k]);
        return 1;
    }
    return 0;
}

static int file_char(unsigned char c)
{
    return is_alnum(c) || c == '_' || c == '.' || c == '/' || c == '-';
}

/* The first file name in s[from..to): a quoted span with a '.', or a run of
 * [A-Za-z0-9_./-] ending in .ext; copied to out. Its span in *at, *after. */
static int find_file(const char *s, size_t from, size_t to, char *out, size_t cap, size_t *at,
                     size_t *after)
{
    for (size_t i = from; i < to;) {
        size_t a, b, next;
        if (quoted(s, i, &a, &b, &next) && next <= to && memchr(s + a, '.', b - a) && b > a) {
            copy_trim(out, cap, s + a, b - a);
            *at = i;
            *after = next;
            return 1;
        }
        if (!file_char((unsigned char)s[i]) || (i > from && file_char((unsigned char)s[i - 1]))) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < to && file_char((unsigned char)s[j]))
            j++;
        size_t e = j;
        while (e > i && s[e - 1] == '.')
            e--; /* a full stop after the name */
        const char *dot = NULL;
        for (size_t k = i; k < e; k++)
            if (s[k] == '.')
                dot = s + k;
        size_t ext = dot ? (size_t)(s + e - dot - 1) : 0;
        int alnum_ext = ext >= 1 && ext <= 8;
        for (size_t k = 0; alnum_ext && k < ext; k++)
            alnum_ext = is_alnum((unsigned char)dot[1 + k]);
        if (dot && dot > s + i && alnum_ext && e - i <= NAME_MAX_) {
            copy_trim(out, cap, s + i, e - i);
            *at = i;
            *after = e;
            return 1;
        }
        i = j;
    }
    return 0;
}

/* The input that holds the task's file: "file", "path", or the only string
 * input that looks like a file name. */
static const char *input_file(const json_t *inputs)
{
    if (json_is_string(json_object_get(inputs, "file")))
        return "file";
    if (json_is_string(json_object_get(inputs, "path")))
        return "path";
    const char *found = NULL, *k;
    const json_t *v;
    int n = 0;
    json_object_foreach((json_t *)inputs, k, v)
    {
        char f[NAME_MAX_ + 1];
        size_t at, after;
        const char *s = json_string_value(v);
        if (s && find_file(s, 0, strlen(s), f, sizeof(f), &at, &after) && at == 0 &&
            after == strlen(s)) {
            found = k;
            n++;
        }
    }
    return n == 1 ? found : NULL;
}

/* 1 if lc[from..to), but for the span [at, after), holds only spaces and
 * words of the list. */
static int only_words(const char *lc, size_t from, size_t to, size_t at, size_t after,
                      const char *const *words)
{
    size_t n;
    for (size_t i = skip_spaces(lc, from); i < to; i = skip_spaces(lc, i)) {
        if (i == at)
            i = after;
        else if (starts_any(lc + i, words, &n))
            i += n;
        else
            return 0;
    }
    return 1;
}

/* ---- steps ------------------------------------------------------------------------------ */

static const char *new_id(ctx_t *c, const char *base, char *buf, size_t n)
{
    for (int k = 1;; k++) {
        if (k == 1)
            snprintf(buf, n, "%s", base);
        else
            snprintf(buf, n, "%s%d", base, k);
        size_t i;
        const json_t *st;
        int taken = 0;
        json_array_foreach(c->steps, i, st) taken |=
            !strcmp(json_string_value(json_object_get(st, "id")), buf);
        if (!taken)
            return buf;
    }
}

static int add_step(ctx_t *c, const char *base, const char *tool, json_t *args)
{
    char id[32];
    json_t *st = json_pack("{s:s, s:s, s:o}", "id", new_id(c, base, id, sizeof(id)), "tool", tool,
                           "args", args);
    if (!st || json_array_append_new(c->steps, st))
        return aos__fail(c->err, AOS_ENOMEM, "out of memory");
    return 0;
}

/* The path a step reads: a file named in the clause, else the file the step
 * before wrote, else the task's input; out gets the path (maybe a
 * ${inputs...} reference), value the file's actual name when known. */
static int source_file(ctx_t *c, const char *s, size_t from, size_t to, char *out, size_t cap,
                       const char **value)
{
    size_t at, after;
    if (find_file(s, from, to, out, cap, &at, &after)) {
        *value = out;
        return 1;
    }
    if (c->file[0]) {
        snprintf(out, cap, "%s", c->file);
        *value = out;
        return 1;
    }
    const char *in = input_file(c->inputs);
    if (in) {
        snprintf(out, cap, "${inputs.%s}", in);
        *value = json_string_value(json_object_get(c->inputs, in));
        return 1;
    }
    return 0;
}

/* ---- the patterns -------------------------------------------------------------------------
 * Each gets the clause (s, and lc: s with ASCII in lowercase) and returns 1
 * when it made its step, 0 when the clause is not its kind, or an error. */

static int p_call(ctx_t *c, const char *s, const char *lc)
{
    static const char *const verbs[] = {"call", "run", "invoke", "调用", "运行", NULL};
    size_t n;
    if (!starts_any(lc, verbs, &n))
        return 0;
    size_t i = skip_spaces(s, n), j = i;
    while (s[j] && !is_space((unsigned char)s[j]))
        j++;
    if (!memmem(s + i, j - i, "__", 2))
        return 0;
    char tool[AOS_PLAN_TOOL_MAX + 1];
    copy_trim(tool, sizeof(tool), s + i, j - i);
    static const char *const with[] = {"with", "using", "参数", "使用", NULL};
    i = skip_spaces(s, j);
    if (starts_any(lc + i, with, &n))
        i = skip_spaces(s, i + n);
    json_t *args;
    if (!s[i]) {
        args = json_object();
    } else {
        json_error_t je;
        args = json_loads(s + i, 0, &je);
        if (!json_is_object(args)) {
            json_decref(args);
            return aos__fail(c->err, AOS_EINVAL,
                             "call %s: the arguments must be a JSON object, as in: call %s with "
                             "{\"name\": \"value\"}",
                             tool, tool);
        }
    }
    int rc = add_step(c, "call", tool, args);
    return rc ? rc : 1;
}

static int p_logs(ctx_t *c, const char *s, const char *lc)
{
    static const char *const en[] = {"search", "find", "grep", "look", NULL};
    static const char *const zh[] = {"在日志中搜索", "在日志里搜索", "在日志中查找", "搜索日志中的",
                                     "搜索日志",     "查询日志",     "查找日志",     NULL};
    size_t n, from;
    char q[AOS_PLAN_TEXT_MAX / 4];
    if (starts_any(lc, zh, &n)) {
        from = n;
        if (!strncmp(s + skip_spaces(s, from), "中的", 6))
            from = skip_spaces(s, from) + 6;
        copy_trim(q, sizeof(q), s + from, strlen(s + from));
    } else if (starts_any(lc, en, &n)) {
        /* search [in|through] [the] logs for X | search for X in the logs |
         * find X in the logs */
        size_t len = strlen(lc);
        long logs = find_word(lc, n, len, "logs");
        if (logs < 0)
            logs = find_word(lc, n, len, "log");
        if (logs < 0)
            return 0;
        long forw = find_word(lc, n, len, "for");
        if (forw < 0) { /* find X in the logs */
            long in = find_word(lc, n, (size_t)logs, "in");
            if (in < 0)
                return 0;
            copy_trim(q, sizeof(q), s + n, (size_t)in - n);
        } else if (forw > logs) { /* ... logs for X */
            from = (size_t)forw + 3;
            copy_trim(q, sizeof(q), s + from, len - from);
        } else { /* ... for X in the logs */
            size_t to = (size_t)logs;
            long in = find_word(lc, (size_t)forw + 3, to, "in");
            if (in < 0)
                return 0;
            copy_trim(q, sizeof(q), s + forw + 3, (size_t)in - (size_t)forw - 3);
        }
    } else {
        return 0;
    }
    size_t a, b, after;
    if (quoted(q, 0, &a, &b, &after) && after == strlen(q)) {
        memmove(q, q + a, b - a);
        q[b - a] = '\0';
    }
    if (!q[0])
        return aos__fail(c->err, AOS_EINVAL,
                         "search the logs: for what? as in: search the logs for timeout");
    int rc = add_step(c, "search", "logs__logs.query", json_pack("{s:s}", "q", q));
    return rc ? rc : 1;
}

static int p_list(ctx_t *c, const char *s, const char *lc)
{
    static const char *const en[] = {"list", "show", NULL};
    static const char *const what[] = {"files", "artifacts", "outputs", "results", NULL};
    static const char *const filler[] = {"all", "the", "of", "me", "my", NULL};
    static const char *const zh[] = {"列出", "显示", "查看", NULL};
    static const char *const zh_what[] = {"所有", "全部", "的", NULL};
    size_t n;
    char dir[NAME_MAX_ + 1] = ".";
    if (starts_any(lc, en, &n)) {
        size_t i = skip_words(lc, n, filler);
        if (!starts_any(lc + i, what, &n))
            return 0;
        i = skip_spaces(lc, i + n);
        if (starts_word(lc + i, "in") || starts_word(lc + i, "under")) {
            i = skip_spaces(lc, i + (lc[i + 1] == 'n' ? 2 : 5));
            copy_trim(dir, sizeof(dir), s + i, strlen(s + i));
        } else if (lc[i]) {
            return 0;
        }
    } else if (starts_any(lc, zh, &n)) {
        /* 列出[所有的]文件 | 列出 DIR 中的文件 (下的, 里的); 产物 for 文件 */
        size_t len = strlen(s);
        long f = find_text(s, n, len, "文件");
        if (f < 0)
            f = find_text(s, n, len, "产物");
        if (f < 0)
            return 0;
        size_t after = skip_spaces(s, (size_t)f + 6);
        if (s[after] && strcmp(s + after, "列表"))
            return 0;
        static const char *const of[] = {"中的", "下的", "里的", NULL};
        long at = -1;
        for (size_t k = 0; of[k] && at < 0; k++)
            at = find_text(s, n, (size_t)f, of[k]);
        if (at >= 0)
            copy_trim(dir, sizeof(dir), s + n, (size_t)at - n);
        else if (skip_words(s, n, zh_what) != (size_t)f)
            return 0;
    } else {
        return 0;
    }
    if (!dir[0])
        dir[0] = '.';
    int rc = add_step(c, "list", "files__list", json_pack("{s:s}", "path", dir));
    return rc ? rc : 1;
}

/* "data.csv" -> "data.clean.csv" */
static void cleaned_name(const char *file, char *out, size_t cap)
{
    const char *slash = strrchr(file, '/');
    const char *dot = strrchr(file, '.');
    if (!dot || (slash && dot < slash) || dot == file || (slash && dot == slash + 1))
        snprintf(out, cap, "%s.clean.csv", file);
    else
        snprintf(out, cap, "%.*s.clean%s", (int)(dot - file), file, dot);
}

static int p_clean(ctx_t *c, const char *s, const char *lc)
{
    static const char *const verbs[] = {"clean", "清洗", "清理", NULL};
    static const char *const filler[] = {"up",    "the",  "file", "csv",  "data", "dataset",
                                         "table", "my",   "this", "it",   "文件", "数据",
                                         "表格",  "这个", "的",   "一下", NULL};
    size_t n, at = 0, after = 0, len = strlen(s);
    if (!starts_any(lc, verbs, &n))
        return 0;
    char f[NAME_MAX_ + 1];
    if (!find_file(s, n, len, f, sizeof(f), &at, &after))
        at = after = len;
    if (!only_words(lc, n, len, at, after, filler))
        return 0; /* more than a file: not this pattern */
    char path[NAME_MAX_ + 16];
    const char *value = NULL;
    if (!source_file(c, s, n, strlen(s), path, sizeof(path), &value) || !value)
        return aos__fail(c->err, AOS_EINVAL,
                         "clean: which file? as in: clean data.csv (or give the task an input "
                         "named file)");
    char out[NAME_MAX_ + 16];
    cleaned_name(value, out, sizeof(out));
    int rc =
        add_step(c, "clean", "csv__clean", json_pack("{s:s, s:s}", "path", path, "output", out));
    if (rc)
        return rc;
    snprintf(c->file, sizeof(c->file), "%s", out);
    return 1;
}

/* The chart kind named in the clause ("bar chart", "柱状图" ...); "line"
 * when none is. */
static const char *chart_kind(const char *lc)
{
    static const char *const kinds[] = {"bar", "scatter", "area", "line"};
    static const char *const zh[][3] = {{"柱状图", "条形图", "柱形图"},
                                        {"散点图", NULL, NULL},
                                        {"面积图", NULL, NULL},
                                        {"折线图", "曲线图", NULL}};
    static const char *const nouns[] = {"chart", "graph", "plot", "charts", "plots", NULL};
    size_t len = strlen(lc);
    for (size_t k = 0; k < 4; k++) {
        for (long at = find_word(lc, 0, len, kinds[k]); at >= 0;
             at = find_word(lc, (size_t)at + 1, len, kinds[k]))
            if (starts_any(lc + skip_spaces(lc, (size_t)at + strlen(kinds[k])), nouns, NULL))
                return kinds[k];
        if (k == 1 && strstr(lc, "scatterplot"))
            return kinds[k];
        for (size_t w = 0; w < 3 && zh[k][w]; w++)
            if (strstr(lc, zh[k][w]))
                return kinds[k];
    }
    return "line";
}

/* A column name from s[from..to): trimmed, quotes removed. */
static void column(const char *s, size_t from, size_t to, char *out, size_t cap)
{
    char tmp[NAME_MAX_ + 1];
    copy_trim(tmp, sizeof(tmp), s + from, to > from ? to - from : 0);
    size_t a, b, after;
    if (quoted(tmp, 0, &a, &b, &after) && after == strlen(tmp))
        copy_trim(out, cap, tmp + a, b - a);
    else
        snprintf(out, cap, "%s", tmp);
}

/* "revenue", "month" -> "revenue_by_month.svg", with what a file name
 * should not hold replaced by '_'. */
static void chart_name(const char *y, const char *x, char *out, size_t cap)
{
    snprintf(out, cap, "%s_by_%s.svg", y, x);
    for (char *p = out; *p; p++)
        if (*p == '/' || *p == '\\' || is_space((unsigned char)*p) || *p == ':' || *p == '*' ||
            *p == '?' || *p == '"' || *p == '<' || *p == '>' || *p == '|')
            *p = '_';
}

static int make_plot(ctx_t *c, const char *s, size_t from, size_t to, const char *y, const char *x,
                     const char *lc)
{
    char path[NAME_MAX_ + 16], out[2 * NAME_MAX_ + 16];
    const char *value = NULL;
    if (!y[0] || !x[0])
        return 0;
    if (!source_file(c, s, from, to, path, sizeof(path), &value))
        return aos__fail(c->err, AOS_EINVAL, "plot: which file? as in: plot %s by %s from data.csv",
                         y, x);
    chart_name(y, x, out, sizeof(out));
    int rc = add_step(c, "plot", "viz__plot",
                      json_pack("{s:s, s:s, s:s, s:s, s:s}", "path", path, "kind", chart_kind(lc),
                                "x", x, "y", y, "output", out));
    return rc ? rc : 1;
}

static int p_plot_en(ctx_t *c, const char *s, const char *lc)
{
    static const char *const verbs[] = {"plot",      "chart",     "graph", "draw",
                                        "visualize", "visualise", NULL};
    static const char *const articles[] = {"a", "an", "the", NULL};
    static const char *const kinds[] = {"line", "bar", "scatter", "area", NULL};
    static const char *const nouns[] = {"chart", "graph", "plot", "scatterplot", NULL};
    static const char *const by[] = {"by", "over", "per", "against", "vs", NULL};
    static const char *const tail[] = {"from", "in", "of", "using", "as", "for", NULL};
    size_t n, len = strlen(s);
    if (!starts_any(lc, verbs, &n))
        return 0;
    /* [a|the] [KIND] [chart|graph|plot] [of] Y by X ... */
    size_t i = skip_words(lc, n, articles), kn;
    if (starts_any(lc + i, kinds, &kn) && starts_any(lc + skip_spaces(lc, i + kn), nouns, NULL))
        i = skip_spaces(lc, i + kn);
    if (starts_any(lc + i, nouns, &kn))
        i = skip_spaces(lc, i + kn);
    if (starts_word(lc + i, "of"))
        i = skip_spaces(lc, i + 2);
    /* the file may come first: plot data.csv revenue by month */
    char f[NAME_MAX_ + 1];
    size_t fat, fafter;
    if (find_file(s, i, len, f, sizeof(f), &fat, &fafter) && fat == i)
        i = skip_spaces(s, fafter);
    long sep = -1;
    size_t sep_len = 0;
    for (size_t k = 0; by[k]; k++) {
        long at = find_word(lc, i, len, by[k]);
        if (at >= 0 && (sep < 0 || at < sep)) {
            sep = at;
            sep_len = strlen(by[k]);
        }
    }
    if (sep < 0)
        return 0;
    size_t xs = skip_spaces(s, (size_t)sep + sep_len), xe = len, ye = (size_t)sep;
    for (size_t k = 0; tail[k]; k++) {
        long at = find_word(lc, xs, len, tail[k]);
        if (at >= 0 && (size_t)at < xe)
            xe = (size_t)at;
        at = find_word(lc, i, (size_t)sep, tail[k]);
        if (at >= 0 && (size_t)at < ye && (size_t)at > i)
            ye = (size_t)at;
    }
    char y[NAME_MAX_ + 1], x[NAME_MAX_ + 1];
    column(s, i, ye, y, sizeof(y));
    column(s, xs, xe, x, sizeof(x));
    return make_plot(c, s, 0, len, y, x, lc);
}

static int p_plot_zh(ctx_t *c, const char *s, const char *lc)
{
    static const char *const verbs[] = {"绘制", "画出", "画", "生成", NULL};
    static const char *const units[][2] = {{"月", "month"}, {"年", "year"}, {"日", "day"},
                                           {"天", "day"},   {"周", "week"}, {"季度", "quarter"},
                                           {"小时", "hour"}};
    size_t len = strlen(s);
    long verb = -1;
    size_t vlen = 0;
    for (size_t k = 0; verbs[k] && verb < 0; k++)
        if ((verb = find_text(s, 0, len, verbs[k])) >= 0)
            vlen = strlen(verbs[k]);
    if (verb < 0 || strncmp(s, "按", 3))
        return 0; /* 按 X 绘制 Y */
    char x[NAME_MAX_ + 1], y[NAME_MAX_ + 1];
    column(s, 3, (size_t)verb, x, sizeof(x));
    for (size_t k = 0; k < sizeof(units) / sizeof(*units); k++)
        if (!strcmp(x, units[k][0]) || (!strncmp(x, units[k][0], strlen(units[k][0])) &&
                                        !strcmp(x + strlen(units[k][0]), "份")))
            snprintf(x, sizeof(x), "%s", units[k][1]);
    /* Y: after the verb, without the file, "的", "中的" and the chart's kind */
    size_t ys = (size_t)verb + vlen, ye = len;
    char f[NAME_MAX_ + 1];
    size_t fat, fafter;
    if (find_file(s, ys, len, f, sizeof(f), &fat, &fafter)) {
        ys = skip_spaces(s, fafter);
        if (!strncmp(s + ys, "中的", 6))
            ys += 6;
        else if (!strncmp(s + ys, "的", 3))
            ys += 3;
    }
    static const char *const kinds[] = {"的折线图", "的柱状图", "的条形图", "的柱形图", "的散点图",
                                        "的面积图", "的曲线图", "折线图",   "柱状图",   "条形图",
                                        "柱形图",   "散点图",   "面积图",   "曲线图",   "的图表",
                                        "的图",     "图表",     "图",       NULL};
    for (size_t k = 0; kinds[k]; k++) {
        long at = find_text(s, ys, ye, kinds[k]);
        if (at >= 0 && (size_t)at + strlen(kinds[k]) == ye) {
            ye = (size_t)at;
            break;
        }
    }
    column(s, ys, ye, y, sizeof(y));
    return make_plot(c, s, 0, len, y, x, lc);
}

static int p_read(ctx_t *c, const char *s, const char *lc)
{
    static const char *const verbs[] = {"read", "show", "open", "cat",  "print",
                                        "读取", "查看", "打开", "显示", NULL};
    static const char *const filler[] = {"the", "file", "me", "contents", "content",
                                         "of",  "文件", "的", "内容",     NULL};
    size_t n;
    if (!starts_any(lc, verbs, &n))
        return 0;
    char f[NAME_MAX_ + 1];
    size_t at, after;
    if (!find_file(s, n, strlen(s), f, sizeof(f), &at, &after) ||
        !only_words(lc, n, strlen(s), at, after, filler))
        return 0;
    int rc = add_step(c, "read", "files__read", json_pack("{s:s}", "path", f));
    return rc ? rc : 1;
}

typedef int (*pattern_fn)(ctx_t *c, const char *s, const char *lc);
static const pattern_fn PATTERNS[] = {p_call,    p_logs,    p_list, p_clean,
                                      p_plot_en, p_plot_zh, p_read};

/* Words that start a clause: where "and", "then", "并" ... split a goal. */
static const char *const VERBS[] = {
    "clean", "plot", "chart", "graph",  "draw", "visualize", "visualise", "list", "show", "read",
    "open",  "cat",  "print", "search", "find", "grep",      "look",      "call", "run",  "invoke",
    "清洗",  "清理", "按",    "绘制",   "画",   "列出",      "显示",      "读取", "查看", "打开",
    "搜索",  "查询", "查找",  "在日志", "调用", "运行",      NULL};

static const char *const SEPARATORS[] = {
    ", and then ", " and then ", ", then ", " then ", "; ",   ", and ", " and ",
    ", ",          ",",          "，然后",  "然后",   "，再", "再",     "，并且",
    "并且",        "，并",       "并",      "，",     "；",   "、",     NULL};

/* ---- the planner -------------------------------------------------------------------------- */

static int looks_like_dsl(const char *g)
{
    const char *p = g;
    for (;;) {
        while (is_space((unsigned char)*p))
            p++;
        if (*p != '#')
            break;
        while (*p && *p != '\n')
            p++;
    }
    const char *eol = strchr(p, '\n');
    size_t n = eol ? (size_t)(eol - p) : strlen(p);
    static const char *const kw[] = {"step", "approve", "milestone"};
    for (size_t k = 0; k < 3; k++) {
        size_t kl = strlen(kw[k]);
        if (n <= kl || strncmp(p, kw[k], kl) || (p[kl] != ' ' && p[kl] != '\t'))
            continue;
        if (k == 0)
            return memmem(p, n, "__", 2) != NULL;
        return memchr(p, '"', n) != NULL || memchr(p, '\'', n) != NULL;
    }
    return 0;
}

static int unknown(ctx_t *c, const char *clause)
{
    return aos__fail(c->err, AOS_ENOTFOUND,
                     "no offline plan for \"%.*s%s\": it understands Action DSL and: clean F.csv; "
                     "plot Y by X [from F]; list the files [in DIR]; read F; search the logs for "
                     "X; call S__T with {...} (or in Chinese)",
                     aos__snip(clause, strlen(clause), 40), clause,
                     strlen(clause) > 40 ? "..." : "");
}

json_t *aos_plan_offline(const char *goal, const json_t *inputs, aos_err_t *err)
{
    if (!goal) {
        aos__fail(err, AOS_EINVAL, "no goal");
        return NULL;
    }
    size_t len = strlen(goal);
    if (looks_like_dsl(goal)) {
        aos_plan_opts_t opts = {.inputs = inputs};
        return aos__dsl_parse(goal, len, &opts, err);
    }
    if (len > GOAL_MAX) {
        aos__fail(err, AOS_EINVAL, "a goal in words is at most %d bytes (Action DSL: %d)", GOAL_MAX,
                  AOS_DSL_MAX_INPUT);
        return NULL;
    }
    if (!aos_utf8_valid(goal, len)) {
        aos__fail(err, AOS_EINVAL, "the goal is not valid UTF-8");
        return NULL;
    }
    /* the goal, trimmed, without "please" and a final full stop */
    char s[GOAL_MAX + 1], lc[GOAL_MAX + 1];
    copy_trim(s, sizeof(s), goal, len);
    static const char *const ends[] = {".", "!", "?", "。", "！", "？", NULL};
    for (int again = 1; again;) {
        again = 0;
        size_t n = strlen(s);
        for (size_t k = 0; ends[k]; k++) {
            size_t e = strlen(ends[k]);
            if (n >= e && !strcmp(s + n - e, ends[k])) {
                s[n - e] = '\0';
                copy_trim(s, sizeof(s), s, strlen(s));
                again = 1;
                break;
            }
        }
    }
    for (size_t i = 0; i <= strlen(s); i++)
        lc[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    ctx_t c = {.inputs = inputs, .err = err, .steps = json_array()};
    if (!c.steps) {
        aos__fail(err, AOS_ENOMEM, "out of memory");
        return NULL;
    }
    /* clauses: cut where a separator is followed by a verb, outside quotes
     * and brackets (the JSON of a call) */
    size_t cut[CLAUSE_MAX + 1][2], nclause = 0, start = 0, total = strlen(s);
    int depth = 0, quote = 0;
    for (size_t i = 0; i < total && nclause < CLAUSE_MAX;) {
        size_t sep = 0;
        char ch = lc[i];
        if (quote && ch == '\\' && i + 1 < total) {
            i += 2;
            continue;
        }
        if (ch == '"')
            quote = !quote;
        else if (!quote && (ch == '{' || ch == '['))
            depth++;
        else if (!quote && (ch == '}' || ch == ']') && depth > 0)
            depth--;
        for (size_t k = 0; SEPARATORS[k] && !sep && !quote && !depth; k++) {
            size_t sl = strlen(SEPARATORS[k]);
            if (i > start && !strncmp(lc + i, SEPARATORS[k], sl) &&
                starts_any(lc + skip_spaces(lc, i + sl), VERBS, NULL))
                sep = sl;
        }
        if (sep) {
            cut[nclause][0] = start;
            cut[nclause++][1] = i;
            start = i = skip_spaces(lc, i + sep);
        } else {
            i++;
        }
    }
    cut[nclause][0] = start;
    cut[nclause++][1] = total;
    int rc = 0;
    for (size_t k = 0; k < nclause && rc == 0; k++) {
        char cs[GOAL_MAX + 1], cl[GOAL_MAX + 1];
        copy_trim(cs, sizeof(cs), s + cut[k][0], cut[k][1] - cut[k][0]);
        copy_trim(cl, sizeof(cl), lc + cut[k][0], cut[k][1] - cut[k][0]);
        static const char *const please[] = {"please", "then", "and", "请", "然后", "再", NULL};
        size_t n, skip = 0;
        while (starts_any(cl + skip, please, &n))
            skip = skip_spaces(cl, skip + n);
        int got = 0;
        for (size_t p = 0; p < sizeof(PATTERNS) / sizeof(*PATTERNS) && got == 0; p++)
            got = PATTERNS[p](&c, cs + skip, cl + skip);
        if (got < 0)
            rc = got;
        else if (got == 0)
            rc = unknown(&c, cs);
    }
    json_t *out = NULL;
    if (rc == 0) {
        json_t *plan = json_pack("{s:O}", "steps", c.steps);
        aos_plan_opts_t opts = {.inputs = inputs};
        out = plan ? aos_plan_validate(plan, &opts, err) : NULL;
        if (!plan)
            aos__fail(err, AOS_ENOMEM, "out of memory");
        json_decref(plan);
    }
    json_decref(c.steps);
    return out;
}
