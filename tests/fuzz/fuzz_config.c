/* fuzz_config.c - aosd's settings: a JSON config file (--config) and
 * command-line arguments, both from the input. The input is the file's
 * content, then a NUL byte, then arguments separated by NUL bytes. Checked:
 * loading never crashes, and a failed load leaves an error message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "err/err.h"

static char path[64];

static void remove_file(void)
{
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(path, sizeof(path), "%.40s/aos-fuzz-config-%d.json", tmp ? tmp : "/tmp",
                 (int)getpid());
        unsetenv("AOS_CONFIG");
        atexit(remove_file);
    }
    const char *d = (const char *)data;
    const char *nul = memchr(d, '\0', size);
    size_t flen = nul ? (size_t)(nul - d) : size;
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(d, 1, flen, f);
    fclose(f);
    /* argv: aosd --config PATH, then the input's NUL-separated words */
    char *argv[24] = {"aosd", "--config", path};
    int argc = 3;
    char *rest = NULL;
    if (nul) {
        size_t rlen = size - flen - 1;
        rest = malloc(rlen + 1);
        if (!rest)
            return 0;
        memcpy(rest, nul + 1, rlen);
        rest[rlen] = '\0';
        for (char *p = rest; p < rest + rlen && argc < 23; p += strlen(p) + 1)
            argv[argc++] = p;
    }
    argv[argc] = NULL;
    aos_config_t cfg;
    aos_err_t err = {0, ""};
    if (aos_config_init(&cfg) == 0) {
        if (aos_config_load(&cfg, argc, argv, &err) < 0 && !aos_err_msg(&err)[0])
            abort(); /* a refusal must say why */
        aos_config_release(&cfg);
    }
    free(rest);
    return 0;
}
