/* The scheduler (api.md §7.2). */
#pragma once
#include "api.h"

#include <json-c/json.h>
#include <stdint.h>

typedef struct sf_sched_req {
        int64_t cpus, memory;  /* vCPUs, MiB */
        const char *ns;        /* the instance's namespace (affinity is per namespace) */
        const char *placed_on; /* forced node or NULL */
        json_object *disks;    /* the disk specs (sizes in GiB) */
        json_object *metadata; /* the instance's metadata (tags, affinity) or NULL */
        const char *instance;  /* the instance's uuid, for the audit events */
} sf_sched_req_t;

/* Picks a node for the request into out; on refusal answers resp (507, or 404 for an
 * unknown forced node) and returns a negative errno. */
int sf_api_schedule(sf_ctx_t *ctx, const sf_sched_req_t *req, sf_http_resp_t *resp, char out[64]);
