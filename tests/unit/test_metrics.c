/* ferry_metrics: exact exposition text, escaping, names refused, NULL-safety, and a
 * concurrency smoke test (many threads updating and rendering at once; totals exact). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_metrics.h"
#include "ferry_test.h"

static void test_format_exact(void)
{
    static const double bounds[] = {0.005, 0.1, 1, 2.5};
    ferry_metrics *m = ferry_metrics_new();
    ferry_counter *c = ferry_metrics_counter(m, "ferry_events_consumed_total",
                                             "DatasetOnboard events taken from Kafka");
    ferry_gauge *g = ferry_metrics_gauge(m, "ferry_migrations_in_flight", "Migrations now");
    ferry_metric_vec *fv = ferry_metrics_counter_vec(m, "ferry_failures_total",
                                                     "Failures by class", "class", 8);
    ferry_metric_vec *lag = ferry_metrics_gauge_vec(m, "ferry_consumer_lag", "Lag", "partition",
                                                    8);
    ferry_histogram *h = ferry_metrics_histogram(m, "ferry_copy_duration_seconds", "One object",
                                                 bounds, 4);
    size_t len = 0;
    char *text;

    CHECK(c && g && fv && lag && h);
    ferry_counter_add(c, 41);
    ferry_counter_inc(c);
    ferry_gauge_set(g, 3);
    ferry_gauge_add(g, -2);
    ferry_counter_add(ferry_metric_vec_counter(fv, "s3-server"), 2);
    ferry_counter_inc(ferry_metric_vec_counter(fv, "fenced"));
    ferry_counter_inc(ferry_metric_vec_counter(fv, "s3-server"));
    ferry_gauge_set(ferry_metric_vec_gauge(lag, "0"), 17);
    ferry_gauge_set(ferry_metric_vec_gauge(lag, "1"), 0.5);
    ferry_gauge_set(ferry_metric_vec_gauge(lag, "2"), 1);
    ferry_gauge_remove(ferry_metric_vec_gauge(lag, "2"));
    ferry_histogram_observe(h, 0.005); /* le is inclusive */
    ferry_histogram_observe(h, 0.05);
    ferry_histogram_observe(h, 2);
    ferry_histogram_observe(h, 100);

    text = ferry_metrics_render(m, &len);
    CHECK_STR(text,
              "# HELP ferry_events_consumed_total DatasetOnboard events taken from Kafka\n"
              "# TYPE ferry_events_consumed_total counter\n"
              "ferry_events_consumed_total 42\n"
              "# HELP ferry_migrations_in_flight Migrations now\n"
              "# TYPE ferry_migrations_in_flight gauge\n"
              "ferry_migrations_in_flight 1\n"
              "# HELP ferry_failures_total Failures by class\n"
              "# TYPE ferry_failures_total counter\n"
              "ferry_failures_total{class=\"s3-server\"} 3\n"
              "ferry_failures_total{class=\"fenced\"} 1\n"
              "# HELP ferry_consumer_lag Lag\n"
              "# TYPE ferry_consumer_lag gauge\n"
              "ferry_consumer_lag{partition=\"0\"} 17\n"
              "ferry_consumer_lag{partition=\"1\"} 0.5\n"
              "# HELP ferry_copy_duration_seconds One object\n"
              "# TYPE ferry_copy_duration_seconds histogram\n"
              "ferry_copy_duration_seconds_bucket{le=\"0.005\"} 1\n"
              "ferry_copy_duration_seconds_bucket{le=\"0.1\"} 2\n"
              "ferry_copy_duration_seconds_bucket{le=\"1\"} 2\n"
              "ferry_copy_duration_seconds_bucket{le=\"2.5\"} 3\n"
              "ferry_copy_duration_seconds_bucket{le=\"+Inf\"} 4\n"
              "ferry_copy_duration_seconds_sum 102.055\n"
              "ferry_copy_duration_seconds_count 4\n");
    CHECK_INT(len, text ? strlen(text) : 0);
    free(text);

    /* A removed gauge series comes back when set again. */
    ferry_gauge_set(ferry_metric_vec_gauge(lag, "2"), 4);
    text = ferry_metrics_render(m, NULL);
    CHECK(text && strstr(text, "ferry_consumer_lag{partition=\"2\"} 4\n"));
    free(text);
    CHECK_INT(ferry_counter_value(c), 42);
    CHECK(ferry_gauge_value(g) == 1.0);
    ferry_metrics_destroy(m);
}

static void test_escaping_and_numbers(void)
{
    ferry_metrics *m = ferry_metrics_new();
    ferry_metric_vec *v = ferry_metrics_counter_vec(m, "x_total", "a \\ b\nc \"q\"", "code", 4);
    ferry_gauge *g1 = ferry_metrics_gauge(m, "g1", "");
    ferry_gauge *g2 = ferry_metrics_gauge(m, "g2", "h");
    ferry_gauge *g3 = ferry_metrics_gauge(m, "g3", "h");
    ferry_gauge *g4 = ferry_metrics_gauge(m, "g4", "h");
    char *text;

    ferry_counter_inc(ferry_metric_vec_counter(v, "a\"b\\c\nd"));
    ferry_gauge_set(g1, NAN);
    ferry_gauge_set(g2, -INFINITY);
    ferry_gauge_set(g3, 0.1);
    ferry_gauge_set(g4, 1e300);
    text = ferry_metrics_render(m, NULL);
    CHECK_STR(text, "# HELP x_total a \\\\ b\\nc \"q\"\n"
                    "# TYPE x_total counter\n"
                    "x_total{code=\"a\\\"b\\\\c\\nd\"} 1\n"
                    "# HELP g1 \n"
                    "# TYPE g1 gauge\n"
                    "g1 NaN\n"
                    "# HELP g2 h\n"
                    "# TYPE g2 gauge\n"
                    "g2 -Inf\n"
                    "# HELP g3 h\n"
                    "# TYPE g3 gauge\n"
                    "g3 0.1\n"
                    "# HELP g4 h\n"
                    "# TYPE g4 gauge\n"
                    "g4 1e+300\n");
    free(text);
    ferry_metrics_destroy(m);
}

static void test_refusals(void)
{
    static const double bad[] = {1, 1};
    static const double good[] = {1};
    ferry_metrics *m = ferry_metrics_new();
    ferry_metric_vec *v;

    CHECK(ferry_metrics_counter(m, "ok_total", "h") != NULL);
    CHECK(ferry_metrics_counter(m, "ok_total", "dup") == NULL);
    CHECK(ferry_metrics_gauge(m, "9starts_with_digit", "h") == NULL);
    CHECK(ferry_metrics_gauge(m, "has-dash", "h") == NULL);
    CHECK(ferry_metrics_gauge(m, "", "h") == NULL);
    CHECK(ferry_metrics_gauge(m, "ns:colon_ok", "h") != NULL);
    CHECK(ferry_metrics_counter_vec(m, "l1", "h", "le", 4) == NULL);
    CHECK(ferry_metrics_counter_vec(m, "l2", "h", "__x", 4) == NULL);
    CHECK(ferry_metrics_counter_vec(m, "l3", "h", "a:b", 4) == NULL);
    CHECK(ferry_metrics_counter_vec(m, "l4", "h", "a", 0) == NULL);
    CHECK(ferry_metrics_histogram(m, "h1", "h", bad, 2) == NULL);
    CHECK(ferry_metrics_histogram(m, "h2", "h", good, 0) == NULL);
    CHECK(ferry_metrics_histogram(m, "h3", "h", good, 1) != NULL);

    /* A full vec hands out NULL, and NULL updates are harmless. */
    v = ferry_metrics_counter_vec(m, "small_total", "h", "code", 2);
    CHECK(ferry_metric_vec_counter(v, "200") != NULL);
    CHECK(ferry_metric_vec_counter(v, "404") != NULL);
    CHECK(ferry_metric_vec_counter(v, "200") == ferry_metric_vec_counter(v, "200"));
    CHECK(ferry_metric_vec_counter(v, "500") == NULL);
    CHECK(ferry_metric_vec_gauge(v, "200") == NULL); /* wrong type */
    ferry_counter_inc(NULL);
    ferry_counter_add(NULL, 3);
    ferry_gauge_set(NULL, 1);
    ferry_gauge_add(NULL, 1);
    ferry_gauge_remove(NULL);
    ferry_histogram_observe(NULL, 1);
    CHECK_INT(ferry_counter_value(NULL), 0);
    ferry_metrics_destroy(m);
    ferry_metrics_destroy(NULL);
}

static int hook_calls;
static void hook(void *opaque)
{
    hook_calls++;
    ferry_counter_set(opaque, 99);
}

static void test_render_hook(void)
{
    ferry_metrics *m = ferry_metrics_new();
    ferry_counter *c = ferry_metrics_counter(m, "mirrored_total", "h");
    char *text;

    ferry_metrics_on_render(m, hook, c);
    text = ferry_metrics_render(m, NULL);
    CHECK(text && strstr(text, "mirrored_total 99\n"));
    CHECK_INT(hook_calls, 1);
    free(text);
    ferry_metrics_destroy(m);

    m = ferry_metrics_new(); /* empty registry: empty text, not NULL */
    text = ferry_metrics_render(m, NULL);
    CHECK_STR(text, "");
    free(text);
    ferry_metrics_destroy(m);
}

/* ---- concurrency smoke ----------------------------------------------------------- */

#define THREADS 8
#define ROUNDS 20000

typedef struct shared {
    ferry_metrics *m;
    ferry_counter *c;
    ferry_gauge *g;
    ferry_metric_vec *v;
    ferry_histogram *h;
} shared;

static void *updater(void *arg)
{
    shared *s = arg;
    static const char *const codes[] = {"200", "202", "400", "503"};
    for (int i = 0; i < ROUNDS; i++) {
        ferry_counter_inc(s->c);
        ferry_gauge_add(s->g, 1);
        ferry_gauge_add(s->g, -0.5);
        /* Creating series while others look them up and render. */
        ferry_counter_inc(ferry_metric_vec_counter(s->v, codes[i % 4]));
        ferry_histogram_observe(s->h, (double)(i % 3));
    }
    return NULL;
}

static void *renderer(void *arg)
{
    shared *s = arg;
    for (int i = 0; i < 200; i++) {
        char *t = ferry_metrics_render(s->m, NULL);
        if (!t || !strstr(t, "# TYPE smoke_total counter\n"))
            ferry_test_failures++;
        free(t);
    }
    return NULL;
}

static void test_concurrency(void)
{
    static const double bounds[] = {0.5, 1.5};
    shared s;
    pthread_t th[THREADS + 2];
    char *text, want[128];

    s.m = ferry_metrics_new();
    s.c = ferry_metrics_counter(s.m, "smoke_total", "h");
    s.g = ferry_metrics_gauge(s.m, "smoke_gauge", "h");
    s.v = ferry_metrics_counter_vec(s.m, "smoke_codes_total", "h", "code", 16);
    s.h = ferry_metrics_histogram(s.m, "smoke_seconds", "h", bounds, 2);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, updater, &s);
    for (int i = THREADS; i < THREADS + 2; i++)
        pthread_create(&th[i], NULL, renderer, &s);
    for (int i = 0; i < THREADS + 2; i++)
        pthread_join(th[i], NULL);

    CHECK_INT(ferry_counter_value(s.c), THREADS * ROUNDS);
    CHECK(ferry_gauge_value(s.g) == THREADS * ROUNDS * 0.5);
    for (int k = 0; k < 4; k++) {
        static const char *const codes[] = {"200", "202", "400", "503"};
        CHECK_INT(ferry_counter_value(ferry_metric_vec_counter(s.v, codes[k])),
                  THREADS * ROUNDS / 4);
    }
    text = ferry_metrics_render(s.m, NULL);
    snprintf(want, sizeof(want), "smoke_seconds_count %d\n", THREADS * ROUNDS);
    CHECK(text && strstr(text, want));
    /* i % 3: 0 and 1 are <= 1.5, 2 is not */
    snprintf(want, sizeof(want), "smoke_seconds_sum %d\n", THREADS * (ROUNDS / 3 * 3 + 1));
    CHECK(text && strstr(text, want));
    /* each code appears once: no duplicate series were created under contention */
    CHECK(text && strstr(text, "smoke_codes_total{code=\"200\"}") ==
                      strstr(text, "{code=\"200\"}") - strlen("smoke_codes_total"));
    {
        const char *p = text;
        int n = 0;
        while (p && (p = strstr(p, "{code=\"503\"}"))) {
            n++;
            p++;
        }
        CHECK_INT(n, 1);
    }
    free(text);
    ferry_metrics_destroy(s.m);
}

int main(void)
{
    RUN(test_format_exact);
    RUN(test_escaping_and_numbers);
    RUN(test_refusals);
    RUN(test_render_hook);
    RUN(test_concurrency);
    return TEST_EXIT();
}
