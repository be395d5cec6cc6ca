#include "crashpoint.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool armed;
static char want[128];   /* point name, or "*" */
static long want_n = 1;  /* the pass that fires */
static int sig = SIGKILL;
static atomic_long passes;

/* Parse SF_CRASHPOINT once: "<name>[:<n>][:stop]". */
static void crashpoint_load(void) {
        const char *env = getenv("SF_CRASHPOINT");
        char buf[sizeof(want)], *tok, *save = NULL;

        if (!env || !*env || strlen(env) >= sizeof(buf))
                return;
        snprintf(buf, sizeof(buf), "%s", env);
        tok = strtok_r(buf, ":", &save);
        if (!tok)
                return;
        snprintf(want, sizeof(want), "%s", tok);
        while ((tok = strtok_r(NULL, ":", &save))) {
                if (strcmp(tok, "stop") == 0)
                        sig = SIGSTOP;
                else if (atol(tok) > 0)
                        want_n = atol(tok);
        }
        armed = true;
}

void sf_crashpoint(const char *name) {
        char msg[256];
        long n;
        int len;

        pthread_once(&once, crashpoint_load);
        if (!armed || (strcmp(want, "*") != 0 && strcmp(want, name) != 0))
                return;
        n = atomic_fetch_add(&passes, 1) + 1;
        if (n != want_n)
                return;
        len = snprintf(msg, sizeof(msg), "crashpoint %s (#%ld): %s\n", name, n,
                       sig == SIGKILL ? "SIGKILL" : "SIGSTOP");
        if (len > 0 && write(STDERR_FILENO, msg, (size_t)len) < 0) {
                /* nothing to do: the signal below is what matters */
        }
        raise(sig);
}
