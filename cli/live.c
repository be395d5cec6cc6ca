/* sf instance watch and the shared Ctrl-C handling: see live.h. (events follow is in
 * cmd_events.c.) */
#include "live.h"
#include "progress.h"
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WATCH_BACKSTOP_S 10.0 /* a GET now and then: an event lost while NATS was down */
#define WATCH_OPEN_MS 1000    /* at most this long for the stream to open before the re-GET */

volatile sig_atomic_t sf_live_interrupted;

static void on_sigint(int sig) {
        (void)sig;
        sf_live_interrupted = 1;
}

void sf_live_catch_sigint(struct sigaction *old) {
        struct sigaction sa = {.sa_handler = on_sigint};
        sigemptyset(&sa.sa_mask);
        sf_live_interrupted = 0;
        sigaction(SIGINT, &sa, old);
}

void sf_live_exit_interrupted(void) {
        fflush(stdout);
        fflush(stderr);
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
        _exit(130);
}

/* ---- instance watch ---- */

typedef struct {
        char name[128], uuid[64];
        char state[64], power[64];
        char message[256];
} watch_status_t;

static void copy_field(char *dst, size_t len, json_object *o, const char *key, const char *dflt) {
        json_object *v = NULL;
        const char *s = json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : dflt;
        snprintf(dst, len, "%s", s ? s : dflt);
        for (char *p = dst; *p; p++) /* one line, whatever the server sent */
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = ' ';
}

static void status_from_instance(watch_status_t *w, json_object *o) {
        copy_field(w->name, sizeof(w->name), o, "name", "");
        copy_field(w->uuid, sizeof(w->uuid), o, "uuid", "");
        copy_field(w->state, sizeof(w->state), o, "state", "unknown");
        copy_field(w->power, sizeof(w->power), o, "power_state", "unknown");
}

/* An event updates state and power state ("set attribute" events, lib/object.c) and is the
 * last event shown. */
static void status_from_event(watch_status_t *w, json_object *ev) {
        json_object *extra = NULL, *attr = NULL, *val = NULL;
        char msg[200], what[128] = "";
        copy_field(msg, sizeof(msg), ev, "message", "");
        if (json_object_object_get_ex(ev, "extra", &extra) && json_object_object_get_ex(extra, "attribute", &attr) &&
            json_object_object_get_ex(extra, "value", &val) && json_object_is_type(attr, json_type_string)) {
                const char *a = json_object_get_string(attr);
                if (!strcmp(a, "state"))
                        copy_field(w->state, sizeof(w->state), extra, "value", "unknown");
                else if (!strcmp(a, "power_state"))
                        copy_field(w->power, sizeof(w->power), extra, "value", "unknown");
                char v[64];
                copy_field(v, sizeof(v), extra, "value", "None");
                snprintf(what, sizeof(what), " %s=%s", a, v);
        }
        snprintf(w->message, sizeof(w->message), "%s%s", msg, what);
}

static int status_terminal(const watch_status_t *w) {
        size_t n = strlen(w->state);
        return !strcmp(w->state, "created") || !strcmp(w->state, "deleted") ||
               (n >= 5 && !strcmp(w->state + n - 5, "error"));
}

static void status_format(const watch_status_t *w, double elapsed, char *buf, size_t len) {
        char el[32];
        sf_progress_duration(el, sizeof(el), elapsed);
        snprintf(buf, len, "%s: state %s, power state %s, last event: %s (%s)", *w->name ? w->name : w->uuid,
                 w->state, w->power, *w->message ? w->message : "-", el);
}

/* On a terminal: the line redrawn in place (cut to the width so it never wraps); else a
 * new line whenever anything but the elapsed time changed. */
static void status_show(sf_progress_t *p, const watch_status_t *w, watch_status_t *shown, int final) {
        char line[768];
        status_format(w, sf_progress_elapsed(p), line, sizeof(line));
        if (p->enabled) {
                int width = p->width > 1 && p->width < (int)sizeof(line) ? p->width - 1 : (int)sizeof(line) - 1;
                line[width] = 0;
                fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
                fflush(stderr);
                p->drawn = !final;
        } else if (memcmp(w, shown, sizeof(*w)) != 0 || final) {
                if (memcmp(w, shown, sizeof(*w)) != 0)
                        printf("%s\n", line);
                fflush(stdout);
        }
        *shown = *w;
}

int sf_live_instance_watch(sf_cli_t *cli, sf_args_t *a) {
        json_object *o = NULL;
        sf_stream_t *s = NULL;
        sf_progress_t p;
        watch_status_t w = {.name = ""}, shown = {.name = ""};
        struct sigaction old;
        double next_get;
        int r = 1;
        char *path = sf_cli_path("/instances/%s", a->pos[0], NULL);

        /* The live line goes where progress goes (stderr, a terminal only); without a
         * terminal the changes are lines on stdout, for logs and scripts. */
        sf_progress_init(&p, stderr);
        if (sf_cli_call(cli, "GET", strdup(path), NULL, &o) < 0)
                goto cleanup;
        status_from_instance(&w, o);
        json_object_put(o);
        o = NULL;
        sf_live_catch_sigint(&old);
        if (p.enabled)
                fputs("\033[?25l", stderr); /* no cursor blinking over the line */
        if (!status_terminal(&w))
                status_show(&p, &w, &shown, 0); /* at once: opening the stream may take a moment */
        if (!status_terminal(&w) && *w.uuid &&
            sf_stream_open(&cli->client, "instance", w.uuid, -1, &sf_live_interrupted, 0, &s) == 0) {
                for (int i = 0; i < WATCH_OPEN_MS / 50 && !sf_stream_is_open(s) && !sf_live_interrupted; i++) {
                        sf_stream_event_t *e = NULL;
                        int k = sf_stream_next(s, 50, &e);
                        if (k == 0)
                                status_from_event(&w, e->data);
                        sf_stream_event_free(e);
                        if (k != 0 && k != -EAGAIN)
                                break;
                }
                next_get = 0; /* again now that the stream is open: nothing between is missed */
        } else {
                next_get = sf_progress_elapsed(&p) + 1;
        }
        for (;;) {
                if (!status_terminal(&w) && sf_progress_elapsed(&p) >= next_get) {
                        if (sf_client_request(&cli->client, "GET", path, NULL, &o) < 0)
                                break;
                        status_from_instance(&w, o);
                        json_object_put(o);
                        o = NULL;
                        next_get = sf_progress_elapsed(&p) + (s ? WATCH_BACKSTOP_S : 1);
                }
                if (status_terminal(&w)) {
                        status_show(&p, &w, &shown, 1);
                        r = 0;
                        break;
                }
                status_show(&p, &w, &shown, 0);
                if (sf_live_interrupted)
                        break;
                if (s) {
                        sf_stream_event_t *e = NULL;
                        int k = sf_stream_next(s, 1000, &e);
                        if (k == 0 && e->data && !strcmp(e->event, "message"))
                                status_from_event(&w, e->data);
                        sf_stream_event_free(e);
                        if (k != 0 && k != -EAGAIN && k != -EINTR) { /* refused: poll instead */
                                sf_stream_free(s);
                                s = NULL;
                                next_get = sf_progress_elapsed(&p) + 1;
                        }
                } else {
                        for (int i = 0; i < 4 && !sf_live_interrupted; i++)
                                usleep(250000);
                }
        }
        if (sf_live_interrupted) {
                if (p.enabled) /* leave the last status on its own line, cursor back */
                        status_show(&p, &w, &shown, 1);
                if (p.enabled)
                        fputs("\033[?25h", stderr);
                sf_stream_free(s);
                free(path);
                sf_live_exit_interrupted();
        }
        if (p.enabled) {
                if (p.drawn)
                        fputc('\n', stderr);
                fputs("\033[?25h", stderr);
        }
        sigaction(SIGINT, &old, NULL);
cleanup:
        sf_stream_free(s);
        json_object_put(o);
        free(path);
        return r;
}
