/* json.h - a request body's JSON, read faster than jansson's parser reads
 * it (internal to http/).
 *
 * jansson's json_loadb reads a byte at a time through a stream with a
 * UTF-8 check per byte, and a token at a time into a growing buffer: about
 * 250 instructions per byte of a request (60,000 for a POST /api/run of a
 * 4-step plan, as much as its plan's validation). aos__json_fast reads the
 * common case of a body in one pass and builds the same values with the
 * same calls jansson's parser makes (json_object, json_object_setn_new_nocheck,
 * json_array_append_new, json_stringn_nocheck, json_integer): objects and
 * arrays, strings of valid UTF-8 with the escapes \" \\ \/ \b \f \n \r \t,
 * integers that fit in 18 digits, true, false and null. Anything else -
 * a \u escape, a real number, a duplicate key, nesting deeper than 256, and
 * every malformed text - is not its to judge: it returns NULL and the
 * caller hands the text to json_loadb, whose value or error message is the
 * answer, as before. So what a body parses to, and what a bad body is told,
 * does not change. Pure: callable from any thread. */
#ifndef AOS_HTTP_JSON_H
#define AOS_HTTP_JSON_H

#include <jansson.h>
#include <stddef.h>

/* The value json_loadb(text, len, JSON_REJECT_DUPLICATES, ...) returns,
 * or NULL when the text is not of the common case described above (or
 * memory ran out): then call json_loadb. A new reference. */
json_t *aos__json_fast(const char *text, size_t len);

#endif
