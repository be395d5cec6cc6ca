/* sf-api: the REST API (api.md).  Validates, authenticates, writes the truth to Redis,
 * records and publishes intents.  Binds to loopback unless SF_API_BIND says otherwise. */
#include "api.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

static const sf_http_route_t routes[] = {
        {"GET", "/", sf_api_root},
        {"POST", "/auth", sf_api_auth_post},
        {"GET", "/auth/namespaces", sf_api_namespaces_get},
        {"POST", "/auth/namespaces", sf_api_namespaces_post},
        {"GET", "/auth/namespaces/{}", sf_api_namespace_get},
        {"GET", "/auth/namespaces/{}/keys", sf_api_namespace_keys_get},
        {"POST", "/auth/namespaces/{}/keys", sf_api_namespace_keys_post},
        {"DELETE", "/auth/namespaces/{}/keys/{}", sf_api_namespace_key_delete},
        {"GET", "/networks", sf_api_networks_get},
        {"POST", "/networks", sf_api_networks_post},
        {"GET", "/networks/{}", sf_api_network_get},
        {"DELETE", "/networks/{}", sf_api_network_delete},
        {"GET", "/networks/{}/events", sf_api_network_events},
        {"GET", "/networks/{}/interfaces", sf_api_network_interfaces},
        {"GET", "/instances", sf_api_instances_get},
        {"POST", "/instances", sf_api_instances_post},
        {"GET", "/instances/{}", sf_api_instance_get},
        {"DELETE", "/instances/{}", sf_api_instance_delete},
        {"GET", "/instances/{}/events", sf_api_instance_events},
        {"GET", "/instances/{}/interfaces", sf_api_instance_interfaces},
        {"GET", "/instances/{}/consoledata", sf_api_instance_consoledata},
        {"GET", "/interfaces/{}", sf_api_interface_get},
};

int main(void) {
        sf_http_server_t *srv = NULL;
        sigset_t set;
        sf_ctx_t ctx;
        int sig = 0, r;

        sf_log_init("sf-api");
        signal(SIGPIPE, SIG_IGN);
        /* Block the stop signals before threads start so only sigwait sees them. */
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        r = sf_ctx_open(&ctx, true, 30);
        if (r < 0)
                return 1;
        if (!ctx.cfg.auth_secret[0]) {
                log_err("SF_AUTH_SECRET (or SF_AUTH_SECRET_FILE) must be set");
                return 1;
        }
        sf_api_init(&ctx.cfg, ctx.bus);
        r = sf_http_start(ctx.cfg.api_bind, ctx.cfg.api_port, routes, SF_ARRAY_SIZE(routes), NULL, &srv);
        if (r < 0) {
                log_err("cannot listen on %s:%d: %s", ctx.cfg.api_bind, ctx.cfg.api_port, strerror(-r));
                return 1;
        }
        log_info("listening on http://%s:%d/", ctx.cfg.api_bind, sf_http_port(srv));
        sigwait(&set, &sig);
        log_info("signal %d: stopping", sig);
        sf_http_stop(srv);
        sf_ctx_close(&ctx);
        return 0;
}
