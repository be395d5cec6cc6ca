/* sf_wait_*: see wait.h. */
#include "wait.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int sf_wait_deadline_s(const sf_cli_t *cli) {
        const char *s = cli->client.async_strategy ? cli->client.async_strategy : "pause";
        if (!strcmp(s, "continue"))
                return 0;
        if (!strcmp(s, "block"))
                return 3600;
        return 60;
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int settled(json_object *o, const char *const *pending, const char *until) {
        json_object *st = NULL;
        const char *state = json_object_object_get_ex(o, "state", &st) ? json_object_get_string(st) : NULL;
        if (until)
                return state && !strcmp(state, until);
        for (int i = 0; pending && pending[i]; i++)
                if (state && !strcmp(state, pending[i]))
                        return 0;
        return 1;
}

int sf_wait_state(sf_cli_t *cli, const char *label, const char *path, const char *const *pending,
                  const char *until, json_object **ret) {
        double deadline = now_s() + sf_wait_deadline_s(cli);
        json_object *o = NULL;
        int r;
        (void)label;
        for (;;) {
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
                sleep(1);
        }
        if (ret)
                *ret = o;
        else
                json_object_put(o);
        return r;
}
