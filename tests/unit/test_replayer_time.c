/* --since/--until syntax (lib/ferry_dlq.c): ISO-8601 and durations back from now. */
#include <stdint.h>

#include "ferry_dlq.h"
#include "ferry_test.h"

static const int64_t NOW = 1795656996807LL; /* 2026-11-26T01:36:36.807Z */

static int64_t t(const char *s)
{
    char errstr[256];
    int64_t v = INT64_MIN;
    if (ferry_dlq_parse_time(s, NOW, &v, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "  parse \"%s\": %s\n", s, errstr);
        return INT64_MIN;
    }
    return v;
}

static int bad(const char *s, const char *needle)
{
    char errstr[256] = "";
    int64_t v;
    if (ferry_dlq_parse_time(s, NOW, &v, errstr, sizeof(errstr)) == 0)
        return 0;
    return needle == NULL || strstr(errstr, needle) != NULL;
}

static void test_iso(void)
{
    CHECK_INT(t("1970-01-01T00:00:00Z"), 0);
    CHECK_INT(t("2026-11-26T01:00:00Z"), 1795654800000LL);
    CHECK_INT(t("2026-11-26T01:00Z"), 1795654800000LL);
    CHECK_INT(t("2026-11-26 01:00:00Z"), 1795654800000LL);
    CHECK_INT(t("2026-11-26t01:00:00z"), 1795654800000LL);
    CHECK_INT(t("2026-11-26"), 1795651200000LL); /* midnight UTC */
    CHECK_INT(t("2026-11-26T01:00:00.25Z"), 1795654800250LL);
    CHECK_INT(t("2026-11-26T01:00:00.123456789Z"), 1795654800123LL);
    CHECK_INT(t("2026-11-26T02:00:00+01:00"), 1795654800000LL);
    CHECK_INT(t("2026-11-26T02:00:00+0100"), 1795654800000LL);
    CHECK_INT(t("2026-11-25T20:00:00-05:00"), 1795654800000LL);
    CHECK_INT(t("2026-11-26T06:30:00+05:30"), 1795654800000LL);
    CHECK_INT(t("2024-02-29T00:00:00Z"), 1709164800000LL); /* leap day */
    CHECK_INT(t("2000-03-01T00:00:00Z"), 951868800000LL);
    CHECK_INT(t("1969-12-31T23:59:59Z"), -1000);
}

static void test_relative(void)
{
    CHECK_INT(t("now"), NOW);
    CHECK_INT(t("0s"), NOW);
    CHECK_INT(t("30m"), NOW - 30 * 60000LL);
    CHECK_INT(t("2h"), NOW - 2 * 3600000LL);
    CHECK_INT(t("1h30m"), NOW - 90 * 60000LL);
    CHECK_INT(t("45s"), NOW - 45000);
    CHECK_INT(t("7d"), NOW - 7 * 86400000LL);
    CHECK_INT(t("2w"), NOW - 14 * 86400000LL);
    CHECK_INT(t("1d2h3m4s"), NOW - (86400 + 7200 + 180 + 4) * 1000LL);
}

static void test_refused(void)
{
    CHECK(bad("", NULL));
    CHECK(bad("yesterday", "not a time"));
    CHECK(bad("2h ago", "not a time"));
    CHECK(bad("h", "not a time"));
    CHECK(bad("30", "not a time")); /* a bare number has no unit */
    CHECK(bad("30x", "not a time"));
    CHECK(bad("-2h", "not a time"));
    CHECK(bad("99999999999h", NULL));               /* overflow */
    CHECK(bad("2026-11-26T01:00:00", "time zone")); /* ambiguous: say so */
    CHECK(bad("2026-13-01", "no such date"));
    CHECK(bad("2026-02-29", "no such date")); /* not a leap year */
    CHECK(bad("2026-11-31", "no such date"));
    CHECK(bad("2026-11-26T24:00:00Z", "no such time"));
    CHECK(bad("2026-11-26T01:60:00Z", "no such time"));
    CHECK(bad("2026-11-26T1:00:00Z", "not a time"));
    CHECK(bad("2026-11-26T01:00:00Zjunk", "not a time"));
    CHECK(bad("2026-11-26T01:00:00+25:00", "not a time"));
    CHECK(bad("2026-11-26T01:00:00.Z", "not a time"));
    CHECK(bad("26-11-2026", "not a time"));
}

static void test_format_round_trip(void)
{
    char buf[32];
    ferry_dlq_format_time(NOW, buf, sizeof(buf));
    CHECK_STR(buf, "2026-11-26T01:36:36Z");
    CHECK_INT(t(buf), NOW - 807);
    ferry_dlq_format_time(0, buf, sizeof(buf));
    CHECK_STR(buf, "1970-01-01T00:00:00Z");
    ferry_dlq_format_time(-1000, buf, sizeof(buf));
    CHECK_STR(buf, "1969-12-31T23:59:59Z");
    ferry_dlq_format_time(1709164800000LL, buf, sizeof(buf));
    CHECK_STR(buf, "2024-02-29T00:00:00Z");
    for (int64_t ms = 0; ms < 4000LL * 86400000; ms += 86400000LL * 37 + 3723000) {
        ferry_dlq_format_time(ms, buf, sizeof(buf));
        CHECK_INT(t(buf), ms - ms % 1000);
    }
}

int main(void)
{
    RUN(test_iso);
    RUN(test_relative);
    RUN(test_refused);
    RUN(test_format_round_trip);
    return TEST_EXIT();
}
