/* The scheduler (api.md §7.2): which node gets a new instance. */
#include "scheduler.h"

#include "store.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NODE_LIVE_S 120 /* NODE_CHECKIN_MAXIMUM */

int sf_api_schedule(sf_ctx_t *ctx, const sf_sched_req_t *c, sf_http_resp_t *resp, char out[64]) {
        char **nodes = NULL;
        double best = -1;
        bool any_metrics = false, any_ram = false;
        int r;

        r = sf_store_index(ctx->store, "node", "all", NULL, &nodes, NULL);
        if (r < 0)
                return r;
        out[0] = 0;
        for (char **p = nodes; *p; p++) {
                _cleanup_json_ json_object *n = NULL;
                json_object *m;
                double avail;

                if (c->placed_on && strcmp(*p, c->placed_on) != 0)
                        continue;
                if (sf_store_get(ctx->store, "node", *p, &n, NULL) < 0)
                        continue;
                /* A deleted node may still heartbeat: it never gets new instances. */
                if (!sf_json_bool(n, "is_hypervisor", false) ||
                    strcmp(sf_json_str(n, "state") ?: "created", "created") != 0 ||
                    sf_now() - (double)sf_json_int(n, "lastseen", 0) > NODE_LIVE_S ||
                    !json_object_object_get_ex(n, "metrics", &m))
                        continue;
                any_metrics = true;
                avail = (double)sf_json_int(m, "memory_available", 0);
                if (avail < (double)c->memory)
                        continue;
                any_ram = true;
                if (avail > best) {
                        best = avail;
                        snprintf(out, 64, "%s", *p);
                }
        }
        sf_strv_free(nodes);
        if (!any_metrics)
                return sf_http_error(resp, 507, "No nodes with metrics"), -ENOSPC;
        if (!any_ram || !out[0])
                return sf_http_error(resp, 507, "No nodes with enough idle RAM"), -ENOSPC;
        return 0;
}
