/* Terminal niceties, only when a human is watching: the width to cut messages to, and a
 * progress bar on stderr for long replays. Nothing here runs when output is a pipe. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ferry_util.h"
#include "replayer.h"

int replayer_term_width(int fd)
{
    struct winsize ws;
    const char *cols;
    if (!isatty(fd))
        return 0;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    cols = getenv("COLUMNS");
    if (cols) {
        long v = strtol(cols, NULL, 10);
        if (v > 0 && v < 10000)
            return (int)v;
    }
    return 80;
}

void replayer_progress_start(replayer_progress *p, int64_t total)
{
    p->enabled = isatty(STDERR_FILENO) && total > 0;
    p->shown = 0;
    p->total = total;
    p->done = 0;
    p->t0_ms = ferry_mono_ms();
    p->last_draw_ms = 0;
    replayer_progress_set(p, 0);
}

static void draw(replayer_progress *p)
{
    int width = replayer_term_width(STDERR_FILENO), bar;
    int64_t elapsed = ferry_mono_ms() - p->t0_ms;
    double rate = elapsed > 0 ? (double)p->done * 1000.0 / (double)elapsed : 0;
    char eta[32] = "";
    int filled;

    if (p->done > 0 && p->done < p->total && rate > 0) {
        int64_t s = (int64_t)((double)(p->total - p->done) / rate + 0.5);
        if (s >= 3600)
            snprintf(eta, sizeof(eta), " ETA %lldh%02lldm", (long long)(s / 3600),
                     (long long)(s % 3600 / 60));
        else if (s >= 60)
            snprintf(eta, sizeof(eta), " ETA %lldm%02llds", (long long)(s / 60),
                     (long long)(s % 60));
        else
            snprintf(eta, sizeof(eta), " ETA %llds", (long long)s);
    }
    /* "replaying [####----] 12/40  30%  9.8/s ETA 3s" */
    bar = width - 60;
    if (bar > 40)
        bar = 40;
    if (bar < 10)
        bar = 10;
    filled = (int)(p->total ? p->done * bar / p->total : 0);
    fprintf(stderr, "\r\033[Kreplaying [");
    for (int i = 0; i < bar; i++)
        fputc(i < filled ? '#' : '-', stderr);
    fprintf(stderr, "] %lld/%lld %3d%% %.1f/s%s", (long long)p->done, (long long)p->total,
            (int)(p->total ? p->done * 100 / p->total : 0), rate, eta);
    fflush(stderr);
    p->shown = 1;
}

void replayer_progress_set(replayer_progress *p, int64_t done)
{
    int64_t now = ferry_mono_ms();
    p->done = done;
    if (!p->enabled)
        return;
    if (p->shown && done < p->total && now - p->last_draw_ms < 100)
        return;
    p->last_draw_ms = now;
    draw(p);
}

void replayer_progress_hide(replayer_progress *p)
{
    if (!p->enabled || !p->shown)
        return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    p->shown = 0;
}

void replayer_progress_end(replayer_progress *p)
{
    if (!p->enabled)
        return;
    draw(p);
    fputc('\n', stderr);
    p->shown = 0;
    p->enabled = 0;
}
