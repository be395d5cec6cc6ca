/* sf-api: the REST API (api.md).  Validates, authenticates, writes the truth to Redis,
 * records and publishes intents.  Binds to loopback unless SF_API_BIND says otherwise. */
#include "api.h"
#include "authguard.h"

#include "log.h"
#include "memtrim.h"
#include "util.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

/* Every event stream subscriber holds a socket: allow as many fds as the hard limit. */
static void fd_limit_raise(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        log_warn("cannot raise the open file limit: %s", strerror(errno));
        }
}

int main(void) {
        sf_http_server_t *srv = NULL;
        sigset_t set;
        sf_ctx_t ctx;
        int sig = 0, r;

        sf_log_init("sf-api");
        /* A list answer is ~1 MB per 1,000 instances: keep freed memory in the arenas
         * instead of mapping fresh pages (and faulting them in) for every request. */
        mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
        mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
        signal(SIGPIPE, SIG_IGN);
        fd_limit_raise();
        /* Idle, it gives back what start-up touched and the heap kept (memtrim.h). */
        /* Block the stop signals before threads start so only sigwait sees them. */
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        if (sf_mem_trimmer_start(15) < 0)
                log_warn("no memory trimmer thread");
        r = sf_ctx_open(&ctx, true, 30);
        if (r < 0)
                return 1;
        if (!ctx.cfg.auth_secret[0]) {
                log_err("SF_AUTH_SECRET (or SF_AUTH_SECRET_FILE) must be set");
                return 1;
        }
        if (sf_api_init(&ctx.cfg, ctx.bus) < 0)
                return 1;
        r = sf_http_start(ctx.cfg.api_bind, ctx.cfg.api_port, sf_api_routes, sf_api_nroutes, NULL, &srv);
        if (r < 0) {
                log_err("cannot listen on %s:%d: %s", ctx.cfg.api_bind, ctx.cfg.api_port, strerror(-r));
                return 1;
        }
        log_info("listening on http://%s:%d/", ctx.cfg.api_bind, sf_http_port(srv));
        sigwait(&set, &sig);
        log_info("signal %d: stopping", sig);
        sf_http_stop(srv);
        sf_api_stream_stop();
        sf_authguard_stop(); /* pending failed-attempt counts become audit events */
        sf_ctx_close(&ctx);
        return 0;
}
