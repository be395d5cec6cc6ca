/* Progress output of sf (cli/): one status line on stderr, redrawn in place, only when
 * stderr is a terminal (scripts parse stdout and may log stderr: they never get escape
 * codes). General enough for waits (states done of states expected) and for transfers
 * (bytes done of bytes total, with rate). The line's text is a pure function
 * (sf_progress_format) so it is unit tested (tests/unit/test_cli_progress.c). */
#pragma once
#include <stddef.h>
#include <stdio.h>

typedef struct {
        FILE *f;       /* stderr */
        int enabled;   /* f is a terminal (and TERM is not "dumb") */
        int width;     /* its columns when enabled */
        int drawn;     /* a line is on screen */
        double start;  /* monotonic seconds at init */
        double last;   /* when the line was last drawn */
} sf_progress_t;

/* What one line shows. `unit` "B": done/total are bytes, shown as sizes with a rate;
 * NULL: done/total are steps (e.g. states), shown as "done/total". total <= 0 = unknown
 * (no bar). ETA: from the rate once done > 0, capped by `limit` (seconds left before a
 * deadline; < 0 = none), which alone gives it while the rate is unknown. */
typedef struct {
        const char *label;
        double done, total;
        double elapsed;
        double limit;
        const char *unit;
} sf_progress_view_t;

/* Writes the line (no newline, no escape codes) into buf (len > 0), at most width - 1
 * columns so a terminal never wraps it (the bar shrinks first, then fields drop, then the
 * label is cut). Returns the length written. Pure. */
size_t sf_progress_format(char *buf, size_t len, const sf_progress_view_t *v, int width);

/* "1:05" / "1:02:03"; "--:--" for a negative or non-finite value. Pure. */
void sf_progress_duration(char *buf, size_t len, double seconds);
/* 1023 B, 1.0 KiB, 12.3 MiB ... Pure. */
void sf_progress_size(char *buf, size_t len, double bytes);

/* Checks whether f is a terminal and measures it; the clock starts now. */
void sf_progress_init(sf_progress_t *p, FILE *f);
/* Seconds since init. */
double sf_progress_elapsed(const sf_progress_t *p);
/* Redraws the line in place (\r, the text, clear to end of line); no-op when disabled.
 * elapsed and width are filled in here. */
void sf_progress_draw(sf_progress_t *p, sf_progress_view_t *v);
/* Clears the line (nothing is left behind); safe when nothing was drawn. */
void sf_progress_clear(sf_progress_t *p);
