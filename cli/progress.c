/* See progress.h. */
#include "progress.h"

#include <math.h> /* isfinite (a macro: sf links no libm) */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BAR_MAX 30 /* columns of the bar at most */
#define BAR_MIN 8  /* below this the bar is left out */

static double mono_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sf_progress_duration(char *buf, size_t len, double seconds) {
        if (!isfinite(seconds) || seconds < 0 || seconds > 359999999.0) {
                snprintf(buf, len, "--:--");
                return;
        }
        long s = (long)(seconds + 0.5);
        if (s >= 3600)
                snprintf(buf, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
        else
                snprintf(buf, len, "%ld:%02ld", s / 60, s % 60);
}

void sf_progress_size(char *buf, size_t len, double bytes) {
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
        int u = 0;
        if (!isfinite(bytes) || bytes < 0)
                bytes = 0;
        if (bytes < 1024) {
                snprintf(buf, len, "%.0f B", bytes);
                return;
        }
        while (bytes >= 1024 && u < 5) {
                bytes /= 1024;
                u++;
        }
        /* 1023.96 KiB would print as 1024.0: carry to the next unit */
        if (bytes >= 1023.95 && u < 5) {
                bytes /= 1024;
                u++;
        }
        snprintf(buf, len, "%.1f %s", bytes, units[u]);
}

/* The ETA in seconds, or -1 when unknown (see progress.h). */
static double eta_s(const sf_progress_view_t *v) {
        double eta = -1;
        if (v->total > 0 && v->done >= v->total)
                eta = 0;
        else if (v->total > 0 && v->done > 0 && v->elapsed > 0)
                eta = (v->total - v->done) * v->elapsed / v->done;
        if (v->limit >= 0 && (eta < 0 || eta > v->limit))
                eta = v->limit;
        return eta;
}

size_t sf_progress_format(char *buf, size_t len, const sf_progress_view_t *v, int width) {
        enum { F_RATE, F_ELAPSED, F_COUNT, F_ETA, NF };
        char f[NF][64] = {{0}}, a[24], b[24], right[4 * 64 + 8];
        int timebar = v->unit && !strcmp(v->unit, "s"); /* done/total are seconds of a budget */
        int bytes = v->unit && !strcmp(v->unit, "B");
        double frac = -1, eta = eta_s(v);
        const char *label = v->label ? v->label : "";
        size_t avail = width > 1 ? (size_t)width - 1 : 1, labelw, rightw = 0, n;
        int barw = 0;

        if (!len)
                return 0;
        if (v->total > 0 && isfinite(v->done) && isfinite(v->total))
                frac = v->done <= 0 ? 0 : v->done >= v->total ? 1 : v->done / v->total;
        if (bytes) {
                sf_progress_size(a, sizeof(a), v->done);
                if (frac >= 0) {
                        sf_progress_size(b, sizeof(b), v->total);
                        snprintf(f[F_COUNT], sizeof(f[F_COUNT]), "%3d%% %s/%s", (int)(frac * 100), a, b);
                } else {
                        snprintf(f[F_COUNT], sizeof(f[F_COUNT]), "%s", a);
                }
                if (v->elapsed > 0 && v->done > 0) {
                        sf_progress_size(a, sizeof(a), v->done / v->elapsed);
                        snprintf(f[F_RATE], sizeof(f[F_RATE]), "%s/s", a);
                }
        } else if (!timebar && frac >= 0) {
                double d = v->done < 0 ? 0 : v->done > 1e15 ? 1e15 : v->done;
                snprintf(f[F_COUNT], sizeof(f[F_COUNT]), "%.0f/%.0f", d, v->total > 1e15 ? 1e15 : v->total);
        }
        sf_progress_duration(a, sizeof(a), v->elapsed);
        snprintf(f[F_ELAPSED], sizeof(f[F_ELAPSED]), "elapsed %s", a);
        if (eta >= 0) {
                sf_progress_duration(a, sizeof(a), eta);
                snprintf(f[F_ETA], sizeof(f[F_ETA]), "ETA %s", a);
        }

        labelw = strlen(label);
        /* Short of room, these go in turn: rate, elapsed, count, the bar (below BAR_MIN
         * columns it is left out), ETA; then the label is cut. */
        static const int drops[] = {F_RATE, F_ELAPSED, F_COUNT, -1, F_ETA};
        int want_bar = frac >= 0;
        for (size_t step = 0;; step++) {
                static const int order[] = {F_COUNT, F_RATE, F_ELAPSED, F_ETA}; /* display order */
                right[0] = 0;
                rightw = 0;
                for (int i = 0; i < 4; i++)
                        if (f[order[i]][0])
                                rightw += (size_t)snprintf(right + rightw, sizeof(right) - rightw, " %s", f[order[i]]);
                barw = 0;
                if (want_bar && avail > labelw + rightw + 3) {
                        size_t room = avail - labelw - rightw - 3;
                        barw = room > BAR_MAX ? BAR_MAX : (int)room;
                        if (barw < BAR_MIN)
                                barw = 0;
                }
                if ((labelw + rightw <= avail && (!want_bar || barw)) || step >= sizeof(drops) / sizeof(drops[0]))
                        break;
                if (drops[step] < 0)
                        want_bar = 0;
                else
                        f[drops[step]][0] = 0;
        }
        if (labelw + rightw > avail) { /* still too long: cut the label ("..." marks the cut) */
                size_t keep = avail > rightw ? avail - rightw : 0;
                if (keep > 3)
                        n = (size_t)snprintf(buf, len, "%.*s...%s", (int)(keep - 3), label, right);
                else
                        n = (size_t)snprintf(buf, len, "%.*s%s", (int)keep, label, right);
                if (n >= len)
                        n = len - 1;
                if (n > avail)
                        buf[n = avail] = 0;
                return n;
        }
        n = (size_t)snprintf(buf, len, "%s", label);
        if (barw && n < len) {
                int fill = (int)(frac * barw + 1e-9);
                n += (size_t)snprintf(buf + n, len - n, " [");
                for (int i = 0; i < barw && n + 1 < len; i++)
                        buf[n++] = i < fill ? '#' : '-';
                buf[n < len ? n : len - 1] = 0;
                if (n < len)
                        n += (size_t)snprintf(buf + n, len - n, "]");
        }
        if (n < len)
                n += (size_t)snprintf(buf + n, len - n, "%s", right);
        return n >= len ? len - 1 : n;
}

void sf_progress_init(sf_progress_t *p, FILE *f) {
        const char *term = getenv("TERM");
        struct winsize ws;
        *p = (sf_progress_t){.f = f, .start = mono_s(), .width = 80};
        p->enabled = isatty(fileno(f)) && !(term && !strcmp(term, "dumb"));
        if (p->enabled && ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                p->width = ws.ws_col;
}

double sf_progress_elapsed(const sf_progress_t *p) {
        return mono_s() - p->start;
}

void sf_progress_draw(sf_progress_t *p, sf_progress_view_t *v) {
        char line[1024];
        struct winsize ws;
        if (!p->enabled)
                return;
        if (ioctl(fileno(p->f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) /* the window may have been resized */
                p->width = ws.ws_col;
        v->elapsed = sf_progress_elapsed(p);
        sf_progress_format(line, sizeof(line), v, p->width < (int)sizeof(line) ? p->width : (int)sizeof(line));
        fprintf(p->f, "\r%s\033[K", line);
        fflush(p->f);
        p->drawn = 1;
        p->last = v->elapsed;
}

void sf_progress_clear(sf_progress_t *p) {
        if (!p || !p->enabled || !p->drawn)
                return;
        fputs("\r\033[K", p->f);
        fflush(p->f);
        p->drawn = 0;
}
