/* ferry_metrics: a small Prometheus registry -- counters, gauges, counters and gauges with
 * one label of a few values (class, partition, code), histograms with fixed buckets --
 * rendered in the text exposition format 0.0.4.
 *
 * Usage (error handling left out):
 *
 *     ferry_metrics *m = ferry_metrics_new();
 *     ferry_counter *copied = ferry_metrics_counter(m, "ferry_objects_copied_total",
 *                                                   "Objects copied and verified");
 *     ferry_metric_vec *fail = ferry_metrics_counter_vec(m, "ferry_failures_total",
 *                                                        "Failures by class", "class", 32);
 *     static const double b[] = {0.01, 0.1, 1, 10};
 *     ferry_histogram *dur = ferry_metrics_histogram(m, "ferry_copy_duration_seconds",
 *                                                    "Copy latency", b, 4);
 *     ferry_counter_inc(copied);
 *     ferry_counter_inc(ferry_metric_vec_counter(fail, "s3-server"));
 *     ferry_histogram_observe(dur, 0.42);
 *     char *text = ferry_metrics_render(m, &len);   // caller frees
 *
 * Threads: any function may be called from any thread at any time (registration is
 * usually done at startup, but need not be). Every update, every label lookup and
 * rendering may run at the same time: values are atomics, a vec's series
 * list only grows (under the vec's mutex; readers see it through an atomic count), and
 * series are freed only by ferry_metrics_destroy(). A series pointer returned by a vec
 * may be kept and reused.
 *
 * NULL-safety: every update function accepts NULL and does nothing, so a metric that
 * could not be created (out of memory, a vec that is full) never crashes its callers.
 *
 * Format: families in registration order, each with "# HELP" and "# TYPE" lines; series
 * of a vec in the order their label values were first used; label values escaped
 * (backslash, double quote, newline), HELP text escaped (backslash, newline). Counters are
 * integers; gauges and histogram sums are doubles printed in their shortest round-trip
 * form ("NaN", "+Inf", "-Inf" for the special values). */
#ifndef FERRY_METRICS_H
#define FERRY_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct ferry_metrics ferry_metrics;
typedef struct ferry_metric_vec ferry_metric_vec;
typedef struct ferry_series ferry_counter; /* one time series */
typedef struct ferry_series ferry_gauge;
typedef struct ferry_histogram ferry_histogram;

#define FERRY_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

ferry_metrics *ferry_metrics_new(void);
void ferry_metrics_destroy(ferry_metrics *m); /* NULL-safe; frees every metric */

/* Registration. name: [a-zA-Z_:][a-zA-Z0-9_:]*, unique in the registry; help: any text.
 * Both copied. NULL for a bad or duplicate name, or out of memory. */
ferry_counter *ferry_metrics_counter(ferry_metrics *m, const char *name, const char *help);
ferry_gauge *ferry_metrics_gauge(ferry_metrics *m, const char *name, const char *help);
/* One label (label: [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", not "le"), at most
 * max_series distinct values (1..4096); a value beyond that gets NULL from the lookups. */
ferry_metric_vec *ferry_metrics_counter_vec(ferry_metrics *m, const char *name,
                                            const char *help, const char *label,
                                            size_t max_series);
ferry_metric_vec *ferry_metrics_gauge_vec(ferry_metrics *m, const char *name, const char *help,
                                          const char *label, size_t max_series);
/* bounds: strictly increasing, finite, 1..64 of them; copied. "+Inf" is implied. */
ferry_histogram *ferry_metrics_histogram(ferry_metrics *m, const char *name, const char *help,
                                         const double *bounds, size_t n_bounds);

/* The series of a label value (created on first use, with value 0; the value is copied).
 * NULL if the vec is full, value is NULL, or out of memory. Use the function matching the
 * vec's type (a counter vec's series are counters). */
ferry_counter *ferry_metric_vec_counter(ferry_metric_vec *v, const char *value);
ferry_gauge *ferry_metric_vec_gauge(ferry_metric_vec *v, const char *value);

/* Counters only go up. */
void ferry_counter_inc(ferry_counter *c);
void ferry_counter_add(ferry_counter *c, uint64_t n);
/* For a count kept elsewhere and mirrored here at scrape time (it must only grow). */
void ferry_counter_set(ferry_counter *c, uint64_t n);
uint64_t ferry_counter_value(const ferry_counter *c); /* 0 for NULL */

void ferry_gauge_set(ferry_gauge *g, double v); /* also shows a removed series again */
void ferry_gauge_add(ferry_gauge *g, double d); /* negative d to decrease */
double ferry_gauge_value(const ferry_gauge *g); /* 0 for NULL */
/* Hides a gauge series from the output (a partition no longer owned) until it is set
 * again. The series itself stays allocated, so pointers to it remain valid. */
void ferry_gauge_remove(ferry_gauge *g);

void ferry_histogram_observe(ferry_histogram *h, double v);

/* The whole registry as exposition text (NUL-terminated; *len without the NUL, may be
 * NULL). Caller frees. NULL if out of memory. */
char *ferry_metrics_render(ferry_metrics *m, size_t *len);

/* Called at the start of every render (on the rendering thread), e.g. to mirror counts
 * kept elsewhere with ferry_counter_set(). One hook per registry; NULL removes it. */
void ferry_metrics_on_render(ferry_metrics *m, void (*fn)(void *opaque), void *opaque);

#endif
