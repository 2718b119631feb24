/* fuzz_csv.c - the CSV parser of csv.clean and viz.plot: encoding
 * detection, dialect sniffing and the streaming reader over any bytes
 * (the first byte picks the encoding, delimiter and quote), and the
 * classification and normalisation of every field read. Checked: no
 * memory error, fields are NUL-terminated within the record, a value that
 * normalises as a number is one strtod reads whole, and one that
 * normalises as a date is YYYY-MM-DD (or with THH:MM:SS). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/internal.h"

static void check_value(const char *v)
{
    char out[512];
    int order;
    csv_type_t t = aos__csv_classify(v, &order);
    (void)aos__csv_null_token(v);
    for (int k = CSV_T_BOOL; k <= CSV_T_TEXT; k++) {
        int fl = aos__csv_normalize(v, (csv_type_t)k, order == 1, out, sizeof(out));
        if (fl < 0)
            continue;
        if ((k == CSV_T_INT || k == CSV_T_DEC) && out[0]) {
            char *end;
            strtod(out, &end);
            if (*end) {
                fprintf(stderr, "'%s' normalised as a number to '%s'\n", v, out);
                abort();
            }
        }
        if ((k == CSV_T_DATE || k == CSV_T_DATETIME) && out[0] &&
            (strlen(out) < 10 || out[4] != '-' || out[7] != '-' ||
             !isdigit((unsigned char)out[0]))) {
            fprintf(stderr, "'%s' normalised as a date to '%s'\n", v, out);
            abort();
        }
    }
    if (t == CSV_T_INT && aos__csv_normalize(v, CSV_T_INT, 0, out, sizeof(out)) < 0) {
        fprintf(stderr, "'%s' classified as an integer does not normalise as one\n", v);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char delims[] = {',', ';', '\t', '|'};
    uint8_t sel = data[0];
    data++;
    size--;
    csv_enc_t enc = (sel & 3) == 3 ? aos__csv_detect_enc(data, size) : (csv_enc_t)(sel & 3);
    csv_dialect_t d = (sel & 4) ? aos__csv_sniff((const char *)data, size)
                                : (csv_dialect_t){delims[(sel >> 3) & 3], (sel & 32) ? '\'' : '"'};
    FILE *f = fmemopen((void *)data, size ? size : 1, "r");
    if (!f)
        return 0;
    if (!size)
        fgetc(f); /* an empty stream */
    csv_reader_t *r = aos__csv_reader_new(f, enc, d);
    char **fields;
    size_t n;
    size_t records = 0;
    while (r && aos__csv_read(r, &fields, &n) == 1 && records++ < 10000)
        for (size_t i = 0; i < n; i++)
            check_value(fields[i]);
    aos__csv_reader_free(r);
    fclose(f);
    return 0;
}
