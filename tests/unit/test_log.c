/* ferry_log's JSON lines are valid JSON whatever the message holds: quotes, control
 * bytes, invalid UTF-8 (replaced by U+FFFD, never emitted raw), a message cut mid-sequence,
 * an over-long message; and text mode never lets a control byte through. */
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "ferry_log.h"
#include "ferry_test.h"

/* Logs one line with stderr sent to a temporary file and returns the line (malloc'd). */
static char *capture(ferry_log_format fmt, const ferry_log_ctx *ctx, const char *msg)
{
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    char *line = calloc(1, 65536);
    size_t n;

    if (!tmp || saved < 0 || !line)
        abort();
    fflush(stderr);
    dup2(fileno(tmp), STDERR_FILENO);
    ferry_log_init("test\xff\"prog",
                   "w\x01"
                   "1",
                   FERRY_LOG_DEBUG, fmt);
    ferry_log_write(FERRY_LOG_WARN, ctx, "%s", msg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    n = fread(line, 1, 65535, tmp);
    line[n] = '\0';
    fclose(tmp);
    return line;
}

/* The line is one JSON object ending in a newline, valid UTF-8, and has field `key`;
 * returns that field's value (malloc'd) or NULL. */
static char *json_field(const char *line, const char *key)
{
    json_error_t jerr;
    size_t n = strlen(line);
    json_t *o, *v;
    char *out = NULL;

    CHECK(n > 0 && line[n - 1] == '\n');
    CHECK(strchr(line, '\n') == line + n - 1); /* exactly one line */
    o = json_loads(line, 0, &jerr);            /* jansson refuses invalid UTF-8 */
    if (!o) {
        fprintf(stderr, "not valid JSON (%s): %s", jerr.text, line);
        ferry_test_failures++;
        return NULL;
    }
    v = json_object_get(o, key);
    if (json_is_string(v))
        out = strdup(json_string_value(v));
    json_decref(o);
    return out;
}

static void test_json_escapes_everything(void)
{
    ferry_log_ctx ctx = {"data\"set\n", "ev\\id"};
    char *line = capture(FERRY_LOG_FMT_JSON, &ctx,
                         "q\"b\\ nl\n cr\r tab\t nul-less \x01\x1f\x7f end");
    char *msg = json_field(line, "msg"), *ds = json_field(line, "dataset");
    char *prog = json_field(line, "program"), *w = json_field(line, "worker");

    CHECK_STR(msg, "q\"b\\ nl\n cr\r tab\t nul-less \x01\x1f\x7f end");
    CHECK_STR(ds, "data\"set\n");
    CHECK_STR(prog, "test\xEF\xBF\xBD\"prog");
    CHECK_STR(w, "w\x01"
                 "1");
    free(msg), free(ds), free(prog), free(w), free(line);
}

static void test_json_invalid_utf8_is_replaced(void)
{
    /* a lone continuation byte, a truncated 2-byte sequence, an overlong '/', a surrogate,
     * a code point past U+10FFFF, then valid 2-, 3- and 4-byte sequences */
    const char *in = "a\x80"
                     "b\xC3"
                     "c\xC0\xAF"
                     "d\xED\xA0\x80"
                     "e\xF4\x90\x80\x80"
                     "f\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
    char *line = capture(FERRY_LOG_FMT_JSON, NULL, in);
    char *msg = json_field(line, "msg");

    CHECK_STR(msg, "a\xEF\xBF\xBD"
                   "b\xEF\xBF\xBD"
                   "c\xEF\xBF\xBD\xEF\xBF\xBD"
                   "d\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                   "e\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                   "f\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
    free(msg), free(line);
}

static void test_json_long_message(void)
{
    /* longer than the message buffer, all invalid bytes and control bytes: cut, still
     * one valid object */
    char big[5000];
    char *line, *msg;
    for (size_t i = 0; i < sizeof(big) - 1; i++)
        big[i] = (char)(i % 3 == 0 ? 0xFF : i % 3 == 1 ? 0x01 : 'x');
    big[sizeof(big) - 1] = '\0';
    line = capture(FERRY_LOG_FMT_JSON, NULL, big);
    msg = json_field(line, "msg");
    CHECK(msg && strlen(msg) > 1000);
    free(msg), free(line);
}

static void test_text_mode_sanitizes(void)
{
    char *line = capture(FERRY_LOG_FMT_TEXT, NULL, "x\ny\x1b[2Jz\xFF");
    CHECK(strstr(line, "x?y?[2Jz\xEF\xBF\xBD\n") != NULL);
    CHECK(strchr(line, '\n') == line + strlen(line) - 1);
    free(line);
}

int main(void)
{
    RUN(test_json_escapes_everything);
    RUN(test_json_invalid_utf8_is_replaced);
    RUN(test_json_long_message);
    RUN(test_text_mode_sanitizes);
    return ferry_test_failures ? 1 : 0;
}
