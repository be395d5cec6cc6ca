/* The scheduler (api.md §7 step 2): which node gets a new instance.
 *
 * The core, sf_sched_pick, is a pure function over a table of node metrics (what each
 * sf-compute heartbeat records), so tests drive every filter from a table.  sf_api_schedule
 * wraps it for POST /instances: node metrics cached SF_SCHEDULER_CACHE_TIMEOUT seconds
 * plus the placements this sf-api made since, affinity scores read only when the new
 * instance asks for affinity, and one audit event per stage written in one go. */
#pragma once
#include "api.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One node as the scheduler sees it. */
typedef struct sf_sched_node {
        char name[64];
        char state[16];  /* node state; only `created` is schedulable */
        double lastseen; /* last heartbeat, epoch seconds */
        bool has_metrics, is_hypervisor;
        int64_t cpu_max, cpu_max_per_instance, cpu_total_instance_vcpus;
        double cpu_load_1;
        int64_t memory_max, memory_available, memory_total_instance_actual; /* MiB */
        int64_t disk_free_instances;                                        /* bytes */
        int64_t node_queue_waiting;
        int64_t affinity; /* the new instance's affinity score here (sf_sched_affinity) */
} sf_sched_node_t;

typedef struct sf_sched_policy {
        double cpu_overcommit;      /* CPU_OVERCOMMIT_RATIO */
        double ram_overcommit;      /* RAM_OVERCOMMIT_RATIO */
        double ram_reservation_gib; /* RAM_SYSTEM_RESERVATION */
        double min_free_disk_gib;   /* MINIMUM_FREE_DISK */
        double now;                 /* epoch seconds */
        double checkin_max_s;       /* NODE_CHECKIN_MAXIMUM: older heartbeats are not candidates */
} sf_sched_policy_t;

typedef struct sf_sched_ask {
        int64_t cpus, memory; /* vCPUs, MiB */
        int64_t disk_gib;     /* sum of the sized disks */
        const char *placed_on;/* forced node or NULL */
} sf_sched_ask_t;

/* Called after each stage with its audit message ("schedule initial candidates", ...) and
 * the candidates left (indexes into the node table). */
typedef void (*sf_sched_stage_fn)(void *userdata, const char *message, const sf_sched_node_t *nodes,
                                  const size_t *cand, size_t ncand);

/* Runs the filters in upstream's order: candidates (metrics, state created, heartbeat
 * within checkin_max_s; or only placed_on), hypervisors, queue, max vCPUs, CPU, RAM,
 * disk, highest affinity, lowest floor(cpu_load_1), then a random one of those left
 * (rand_r on *seed).  0 with *ret_idx; -ENOSPC with *ret_msg (upstream's 507 message);
 * -ENOENT when placed_on is not a candidate (404). */
int sf_sched_pick(const sf_sched_node_t *nodes, size_t n, const sf_sched_ask_t *ask, const sf_sched_policy_t *pol,
                  unsigned *seed, sf_sched_stage_fn stage, void *userdata, size_t *ret_idx, const char **ret_msg);

/* The affinity score of a node for an instance whose metadata `affinity` is {tag: int}:
 * the sum over that node's other instances of the same namespace (peer_tags: each one's
 * `tags` array) of affinity[tag] for each tag the instance has. */
int64_t sf_sched_affinity(json_object *affinity, json_object *const *peer_tags, size_t npeers);

/* Sum of the sized disks of a disk spec array, GiB (sizeless ones count 0, as upstream). */
int64_t sf_sched_disk_gib(json_object *disks);

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
