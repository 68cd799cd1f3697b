#include "ferry_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind;

/* One time series. A counter holds its count; a gauge the bits of a double. */
struct ferry_series {
    _Atomic uint64_t v;
    atomic_int visible; /* gauges: 0 after ferry_gauge_remove */
    int is_gauge;
    char *label_value; /* NULL in a family without a label */
};

struct ferry_histogram {
    double *bounds;
    size_t n;                  /* bounds; counts has n + 1 slots (the last is +Inf) */
    _Atomic uint64_t *counts;  /* per bucket, not cumulative (cumulated when rendered) */
    _Atomic uint64_t sum_bits; /* a double */
};

/* A metric family: a plain counter/gauge (one series, `single`), a vec (one label) or a
 * histogram. */
struct ferry_metric_vec {
    kind kind;
    char *name, *help, *label;
    struct ferry_series single;
    struct ferry_series **series; /* vec: max slots, filled in order, never moved */
    size_t max;
    atomic_size_t n;
    pthread_mutex_t lock; /* vec: serialises creation of series */
    struct ferry_histogram hist;
    struct ferry_metric_vec *next;
};

struct ferry_metrics {
    pthread_mutex_t lock; /* the family list (registration) */
    struct ferry_metric_vec *head, *tail;
    void (*on_render)(void *);
    void *on_render_opaque;
};

/* ---- doubles in atomics ---------------------------------------------------------- */

static uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static void atomic_add_double(_Atomic uint64_t *bits, double d)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, d2u(u2d(old) + d),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* ---- registry ------------------------------------------------------------------- */

ferry_metrics *ferry_metrics_new(void)
{
    ferry_metrics *m = calloc(1, sizeof(*m));
    if (m)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

static void family_free(struct ferry_metric_vec *f)
{
    size_t n = atomic_load(&f->n);
    for (size_t i = 0; f->series && i < n; i++) {
        free(f->series[i]->label_value);
        free(f->series[i]);
    }
    free(f->series);
    free((void *)f->hist.counts);
    free(f->hist.bounds);
    pthread_mutex_destroy(&f->lock);
    free(f->name);
    free(f->help);
    free(f->label);
    free(f);
}

void ferry_metrics_destroy(ferry_metrics *m)
{
    if (!m)
        return;
    while (m->head) {
        struct ferry_metric_vec *f = m->head;
        m->head = f->next;
        family_free(f);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static int valid_name(const char *s, int colon_ok)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (colon_ok && c == ':');
        if (!alpha && !(p > s && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

static struct ferry_metric_vec *new_family(kind k, const char *name, const char *help,
                                           const char *label, size_t max)
{
    struct ferry_metric_vec *f;

    if (!valid_name(name, 1))
        return NULL;
    if (label && (!valid_name(label, 0) || !strncmp(label, "__", 2) || !strcmp(label, "le") ||
                  max < 1 || max > 4096))
        return NULL;
    if (!(f = calloc(1, sizeof(*f))))
        return NULL;
    pthread_mutex_init(&f->lock, NULL);
    f->kind = k;
    f->max = max;
    f->single.is_gauge = k == KIND_GAUGE;
    atomic_init(&f->single.visible, 1);
    atomic_init(&f->hist.sum_bits, d2u(0.0));
    if (!(f->name = strdup(name)) || !(f->help = strdup(help ? help : "")) ||
        (label && !(f->label = strdup(label))) ||
        (label && !(f->series = calloc(max, sizeof(*f->series))))) {
        family_free(f);
        return NULL;
    }
    return f;
}

/* Appends a finished family; frees it and returns NULL if the name is taken. */
static struct ferry_metric_vec *add_family(ferry_metrics *m, struct ferry_metric_vec *f)
{
    if (!m || !f) {
        if (f)
            family_free(f);
        return NULL;
    }
    pthread_mutex_lock(&m->lock);
    for (struct ferry_metric_vec *o = m->head; o; o = o->next)
        if (!strcmp(o->name, f->name)) {
            pthread_mutex_unlock(&m->lock);
            family_free(f);
            return NULL;
        }
    if (m->tail)
        m->tail->next = f;
    else
        m->head = f;
    m->tail = f;
    pthread_mutex_unlock(&m->lock);
    return f;
}

ferry_counter *ferry_metrics_counter(ferry_metrics *m, const char *name, const char *help)
{
    struct ferry_metric_vec *f = add_family(m, new_family(KIND_COUNTER, name, help, NULL, 0));
    return f ? &f->single : NULL;
}

ferry_gauge *ferry_metrics_gauge(ferry_metrics *m, const char *name, const char *help)
{
    struct ferry_metric_vec *f = add_family(m, new_family(KIND_GAUGE, name, help, NULL, 0));
    return f ? &f->single : NULL;
}

ferry_metric_vec *ferry_metrics_counter_vec(ferry_metrics *m, const char *name,
                                            const char *help, const char *label,
                                            size_t max_series)
{
    if (!label)
        return NULL;
    return add_family(m, new_family(KIND_COUNTER, name, help, label, max_series));
}

ferry_metric_vec *ferry_metrics_gauge_vec(ferry_metrics *m, const char *name, const char *help,
                                          const char *label, size_t max_series)
{
    if (!label)
        return NULL;
    return add_family(m, new_family(KIND_GAUGE, name, help, label, max_series));
}

ferry_histogram *ferry_metrics_histogram(ferry_metrics *m, const char *name, const char *help,
                                         const double *bounds, size_t n_bounds)
{
    struct ferry_metric_vec *f;

    if (!m || !bounds || n_bounds < 1 || n_bounds > 64)
        return NULL;
    for (size_t i = 0; i < n_bounds; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return NULL;
    if (!(f = new_family(KIND_HISTOGRAM, name, help, NULL, 0)))
        return NULL;
    f->hist.bounds = malloc(n_bounds * sizeof(double));
    f->hist.counts = calloc(n_bounds + 1, sizeof(*f->hist.counts));
    if (!f->hist.bounds || !f->hist.counts) {
        family_free(f);
        return NULL;
    }
    memcpy(f->hist.bounds, bounds, n_bounds * sizeof(double));
    f->hist.n = n_bounds;
    f = add_family(m, f);
    return f ? &f->hist : NULL;
}

static struct ferry_series *vec_get(struct ferry_metric_vec *f, const char *value)
{
    struct ferry_series *s = NULL;
    size_t n;

    if (!f || !f->label || !value)
        return NULL;
    n = atomic_load_explicit(&f->n, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(f->series[i]->label_value, value))
            return f->series[i];
    pthread_mutex_lock(&f->lock);
    n = atomic_load_explicit(&f->n, memory_order_relaxed);
    for (size_t i = 0; i < n && !s; i++) /* created meanwhile? */
        if (!strcmp(f->series[i]->label_value, value))
            s = f->series[i];
    if (!s && n < f->max && (s = calloc(1, sizeof(*s)))) {
        if (!(s->label_value = strdup(value))) {
            free(s);
            s = NULL;
        } else {
            s->is_gauge = f->kind == KIND_GAUGE;
            atomic_init(&s->visible, 1);
            atomic_init(&s->v, s->is_gauge ? d2u(0.0) : 0);
            f->series[n] = s;
            atomic_store_explicit(&f->n, n + 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&f->lock);
    return s;
}

ferry_counter *ferry_metric_vec_counter(ferry_metric_vec *v, const char *value)
{
    return v && v->kind == KIND_COUNTER ? vec_get(v, value) : NULL;
}

ferry_gauge *ferry_metric_vec_gauge(ferry_metric_vec *v, const char *value)
{
    return v && v->kind == KIND_GAUGE ? vec_get(v, value) : NULL;
}

/* ---- updates ------------------------------------------------------------------- */

void ferry_counter_inc(ferry_counter *c) { ferry_counter_add(c, 1); }

void ferry_counter_add(ferry_counter *c, uint64_t n)
{
    if (c && !c->is_gauge)
        atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

void ferry_counter_set(ferry_counter *c, uint64_t n)
{
    if (c && !c->is_gauge)
        atomic_store_explicit(&c->v, n, memory_order_relaxed);
}

uint64_t ferry_counter_value(const ferry_counter *c)
{
    return c && !c->is_gauge ? atomic_load_explicit(&c->v, memory_order_relaxed) : 0;
}

void ferry_gauge_set(ferry_gauge *g, double v)
{
    if (!g || !g->is_gauge)
        return;
    atomic_store_explicit(&g->v, d2u(v), memory_order_relaxed);
    atomic_store_explicit(&g->visible, 1, memory_order_relaxed);
}

void ferry_gauge_add(ferry_gauge *g, double d)
{
    if (g && g->is_gauge)
        atomic_add_double(&g->v, d);
}

double ferry_gauge_value(const ferry_gauge *g)
{
    return g && g->is_gauge ? u2d(atomic_load_explicit(&g->v, memory_order_relaxed)) : 0;
}

void ferry_gauge_remove(ferry_gauge *g)
{
    if (g && g->is_gauge)
        atomic_store_explicit(&g->visible, 0, memory_order_relaxed);
}

void ferry_histogram_observe(ferry_histogram *h, double v)
{
    size_t i = 0;

    if (!h || !h->counts)
        return;
    while (i < h->n && !(v <= h->bounds[i])) /* NaN lands in +Inf */
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
}

/* ---- rendering ----------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *np;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (!(np = realloc(b->p, cap))) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static void putf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(buf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* HELP text: backslash and newline; label values also the double quote. */
static void put_escaped(buf *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            puts_(b, "\\\\");
        else if (*s == '\n')
            puts_(b, "\\n");
        else if (quote && *s == '"')
            puts_(b, "\\\"");
        else
            put(b, s, 1);
    }
}

/* Shortest text that reads back as the same double; integers without a decimal point. */
static void fmt_double(double v, char *out, size_t size)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        snprintf(out, size, "0");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(out, size, "%.0f", v);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, size, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

static void put_double(buf *b, double v)
{
    char tmp[64];
    fmt_double(v, tmp, sizeof(tmp));
    puts_(b, tmp);
}

static void put_series(buf *b, const struct ferry_metric_vec *f, const struct ferry_series *s)
{
    if (s->is_gauge && !atomic_load_explicit(&s->visible, memory_order_relaxed))
        return;
    puts_(b, f->name);
    if (f->label) {
        putf(b, "{%s=\"", f->label);
        put_escaped(b, s->label_value, 1);
        puts_(b, "\"}");
    }
    puts_(b, " ");
    if (s->is_gauge)
        put_double(b, u2d(atomic_load_explicit(&s->v, memory_order_relaxed)));
    else
        putf(b, "%llu", (unsigned long long)atomic_load_explicit(&s->v, memory_order_relaxed));
    puts_(b, "\n");
}

static void put_histogram(buf *b, const struct ferry_metric_vec *f)
{
    const struct ferry_histogram *h = &f->hist;
    uint64_t cum = 0;
    char le[64];

    for (size_t i = 0; i <= h->n; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < h->n)
            fmt_double(h->bounds[i], le, sizeof(le));
        else
            snprintf(le, sizeof(le), "+Inf");
        putf(b, "%s_bucket{le=\"%s\"} %llu\n", f->name, le, (unsigned long long)cum);
    }
    /* _count is the +Inf bucket, so the two always agree within one scrape. */
    putf(b, "%s_sum ", f->name);
    put_double(b, u2d(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
    putf(b, "\n%s_count %llu\n", f->name, (unsigned long long)cum);
}

char *ferry_metrics_render(ferry_metrics *m, size_t *len)
{
    static const char *const type_name[] = {"counter", "gauge", "histogram"};
    buf b = {0};
    struct ferry_metric_vec *f;

    if (!m)
        return NULL;
    if (m->on_render)
        m->on_render(m->on_render_opaque);
    put(&b, "", 0);               /* an empty registry renders as "" */
    pthread_mutex_lock(&m->lock); /* the family list; values are read without it */
    for (f = m->head; f; f = f->next) {
        putf(&b, "# HELP %s ", f->name);
        put_escaped(&b, f->help, 0);
        putf(&b, "\n# TYPE %s %s\n", f->name, type_name[f->kind]);
        if (f->kind == KIND_HISTOGRAM) {
            put_histogram(&b, f);
        } else if (!f->label) {
            put_series(&b, f, &f->single);
        } else {
            size_t n = atomic_load_explicit(&f->n, memory_order_acquire);
            for (size_t i = 0; i < n; i++)
                put_series(&b, f, f->series[i]);
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}

void ferry_metrics_on_render(ferry_metrics *m, void (*fn)(void *opaque), void *opaque)
{
    if (!m)
        return;
    m->on_render = fn;
    m->on_render_opaque = opaque;
}
