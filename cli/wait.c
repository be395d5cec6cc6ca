/* sf_wait_*: see wait.h. */
#include "wait.h"
#include "live.h"
#include "progress.h"
#include "stream.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_S 1.0      /* upstream's poll period: the GET stays the source of truth */
#define REDRAW_MS 250   /* progress redraw (and Ctrl-C check) period */
#define SUBSCRIBE_MS 500 /* at most this long for the stream to open before the first re-GET */

int sf_wait_deadline_s(const sf_cli_t *cli) {
        return sf_client_deadline_s(&cli->client);
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *state_of(json_object *o) {
        json_object *st = NULL;
        return json_object_object_get_ex(o, "state", &st) && json_object_is_type(st, json_type_string)
                       ? json_object_get_string(st)
                       : NULL;
}

static int settled(json_object *o, const char *const *pending, const char *until) {
        const char *state = state_of(o);
        if (until)
                return state && !strcmp(state, until);
        for (int i = 0; pending && pending[i]; i++)
                if (state && !strcmp(state, pending[i]))
                        return 0;
        return 1;
}

/* An event saying the object's state changed: {"message": "set attribute", "extra":
 * {"attribute": "state", ...}} (lib/object.c). */
static int is_state_change(const sf_stream_event_t *e) {
        json_object *extra, *attr;
        return e->data && json_object_object_get_ex(e->data, "extra", &extra) &&
               json_object_object_get_ex(extra, "attribute", &attr) && json_object_is_type(attr, json_type_string) &&
               !strcmp(json_object_get_string(attr), "state");
}

static void progress_show(sf_progress_t *p, const char *label, json_object *o, const char *const *pending,
                          const char *until, double deadline_s) {
        const char *state = state_of(o);
        char text[256];
        sf_progress_view_t v = {.label = text, .limit = deadline_s - sf_progress_elapsed(p)};
        int n = 0, at = -1;
        if (!p->enabled)
                return;
        snprintf(text, sizeof(text), "%s: %s", label ? label : "waiting", state ? state : "(no state)");
        for (; !until && pending && pending[n]; n++)
                if (state && !strcmp(state, pending[n]))
                        at = n;
        if (until || !n) { /* states left unknown: the bar is the time budget */
                v.unit = "s";
                v.done = sf_progress_elapsed(p);
                v.total = deadline_s;
        } else {
                v.done = at < 0 ? n : at;
                v.total = n;
        }
        if (v.limit < 0)
                v.limit = 0;
        sf_progress_draw(p, &v);
}

/* Waits for a reason to GET again: an event saying the state changed, or the next poll.
 * 1 = GET now; 0 = not yet (redraw); -EINTR on Ctrl-C. Drops a stream that is refused. */
static int wait_for_change(sf_stream_t **s, double poll_at) {
        double left = poll_at - now_s();
        int ms = left <= 0 ? 0 : left * 1000 > REDRAW_MS ? REDRAW_MS : (int)(left * 1000);
        if (left <= 0)
                return 1;
        if (*s) {
                sf_stream_event_t *e = NULL;
                int r = sf_stream_next(*s, ms, &e);
                if (r == 0) {
                        r = is_state_change(e);
                        sf_stream_event_free(e);
                        return r;
                }
                if (r == -EINTR)
                        return r;
                if (r != -EAGAIN) { /* refused for good: poll only */
                        sf_stream_free(*s);
                        *s = NULL;
                }
                return 0;
        }
        usleep((useconds_t)ms * 1000);
        return sf_live_interrupted ? -EINTR : 0;
}

int sf_wait_state(sf_cli_t *cli, const char *label, const char *path, const char *const *pending,
                  const char *until, json_object **ret) {
        int deadline_s = sf_wait_deadline_s(cli);
        double deadline = now_s() + deadline_s, poll_at;
        json_object *o = NULL, *uuid;
        sf_stream_t *s = NULL;
        sf_progress_t p;
        struct sigaction old_sa;
        int r;

        sf_progress_init(&p, stderr);
        if (sf_client_request(&cli->client, "GET", path, NULL, &o) < 0) {
                r = -1;
                goto cleanup;
        }
        if (settled(o, pending, until)) {
                r = 0;
                goto cleanup;
        }
        if (deadline_s <= 0) {
                r = -ETIMEDOUT;
                goto cleanup;
        }
        sf_live_catch_sigint(&old_sa);
        progress_show(&p, label, o, pending, until, deadline_s);
        /* Follow the object's events. The stream only carries events from its opening on,
         * so the first re-GET comes after it opened: a change in between is not missed. */
        if (json_object_object_get_ex(o, "uuid", &uuid) && json_object_is_type(uuid, json_type_string) &&
            sf_stream_open(&cli->client, NULL, json_object_get_string(uuid), -1, &sf_live_interrupted, 0, &s) == 0) {
                double until_open = now_s() + SUBSCRIBE_MS / 1000.0;
                while (!sf_stream_is_open(s) && now_s() < until_open && !sf_live_interrupted) {
                        sf_stream_event_t *e = NULL;
                        int k = sf_stream_next(s, 50, &e);
                        sf_stream_event_free(e);
                        if (k != 0 && k != -EAGAIN)
                                break;
                }
                poll_at = now_s();
        } else {
                poll_at = now_s() + POLL_S;
        }
        for (;;) {
                progress_show(&p, label, o, pending, until, deadline_s);
                r = wait_for_change(&s, poll_at < deadline ? poll_at : deadline);
                if (r == -EINTR || sf_live_interrupted) {
                        sf_progress_clear(&p);
                        sf_stream_free(s);
                        json_object_put(o);
                        sf_live_exit_interrupted();
                }
                if (r == 0)
                        continue;
                json_object_put(o);
                o = NULL;
                if (sf_client_request(&cli->client, "GET", path, NULL, &o) < 0) {
                        r = -1;
                        break;
                }
                if (settled(o, pending, until)) {
                        r = 0;
                        break;
                }
                if (now_s() >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                poll_at = now_s() + POLL_S;
        }
        sigaction(SIGINT, &old_sa, NULL);
cleanup:
        sf_progress_clear(&p);
        sf_stream_free(s);
        if (ret)
                *ret = o;
        else
                json_object_put(o);
        return r;
}
