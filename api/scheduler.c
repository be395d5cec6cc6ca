/* The scheduler (api.md §7 step 2): which node gets a new instance. */
#include "scheduler.h"

#include "event.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIB (1024.0 * 1024.0 * 1024.0)
#define QUEUE_MAX_WAITING 20 /* upstream: nodes with more queued work are skipped */

/* ---- the pure core ---- */

static void stage_report(sf_sched_stage_fn stage, void *ud, const char *msg, const sf_sched_node_t *nodes,
                         const size_t *cand, size_t n) {
        if (stage)
                stage(ud, msg, nodes, cand, n);
}

/* Keeps the candidates ok() accepts; returns how many are left. */
static size_t keep_if(const sf_sched_node_t *nodes, size_t *cand, size_t n, const sf_sched_ask_t *ask,
                      const sf_sched_policy_t *pol,
                      bool (*ok)(const sf_sched_node_t *, const sf_sched_ask_t *, const sf_sched_policy_t *)) {
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                if (ok(&nodes[cand[i]], ask, pol))
                        cand[k++] = cand[i];
        return k;
}

static bool is_candidate(const sf_sched_node_t *nd, const sf_sched_ask_t *a, const sf_sched_policy_t *p) {
        (void)a;
        return nd->has_metrics && strcmp(nd->state, "created") == 0 && p->now - nd->lastseen <= p->checkin_max_s;
}

static bool is_hypervisor(const sf_sched_node_t *nd, const sf_sched_ask_t *a, const sf_sched_policy_t *p) {
        (void)a, (void)p;
        return nd->is_hypervisor;
}

static bool queue_ok(const sf_sched_node_t *nd, const sf_sched_ask_t *a, const sf_sched_policy_t *p) {
        (void)a, (void)p;
        return nd->node_queue_waiting <= QUEUE_MAX_WAITING;
}

static bool vcpus_ok(const sf_sched_node_t *nd, const sf_sched_ask_t *a, const sf_sched_policy_t *p) {
        (void)p;
        return a->cpus <= nd->cpu_max_per_instance;
}

static bool idle_cpu_ok(const sf_sched_node_t *nd, const sf_sched_ask_t *a, const sf_sched_policy_t *p) {
        return (double)(nd->cpu_total_instance_vcpus + a->cpus) <= (double)nd->cpu_max * p->cpu_overcommit;
}

/* The host keeps its reservation (no overlap with the instances assumed), and instance
 * memory stays within the overcommit ratio (KSM). */
static bool idle_ram_ok(const sf_sched_node_t *nd, const sf_sched_ask_t *a, const sf_sched_policy_t *p) {
        double available = (double)nd->memory_available - p->ram_reservation_gib * 1024;

        if (available - (double)a->memory < 0)
                return false;
        return nd->memory_max > 0 &&
               (double)(nd->memory_total_instance_actual + a->memory) / (double)nd->memory_max <= p->ram_overcommit;
}

static bool idle_disk_ok(const sf_sched_node_t *nd, const sf_sched_ask_t *a, const sf_sched_policy_t *p) {
        return (double)a->disk_gib <= (double)nd->disk_free_instances / GIB - p->min_free_disk_gib;
}

/* Keeps the candidates with the best key (highest if want_max). */
static size_t keep_best(const sf_sched_node_t *nodes, size_t *cand, size_t n, bool want_max,
                        int64_t (*key)(const sf_sched_node_t *)) {
        int64_t best = 0;
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                int64_t v = key(&nodes[cand[i]]);
                if (i == 0 || (want_max ? v > best : v < best))
                        best = v;
        }
        for (size_t i = 0; i < n; i++)
                if (key(&nodes[cand[i]]) == best)
                        cand[k++] = cand[i];
        return k;
}

static int64_t affinity_key(const sf_sched_node_t *nd) { return nd->affinity; }
/* floor(cpu_load_1), without libm */
static int64_t load_key(const sf_sched_node_t *nd) {
        int64_t v = (int64_t)nd->cpu_load_1;

        return (double)v > nd->cpu_load_1 ? v - 1 : v;
}

int sf_sched_pick(const sf_sched_node_t *nodes, size_t n, const sf_sched_ask_t *ask, const sf_sched_policy_t *pol,
                  unsigned *seed, sf_sched_stage_fn stage, void *ud, size_t *ret_idx, const char **ret_msg) {
        static const struct {
                const char *message, *refusal; /* refusal: the 507 when nothing is left */
                bool (*ok)(const sf_sched_node_t *, const sf_sched_ask_t *, const sf_sched_policy_t *);
        } filters[] = {
                {"schedule are hypervisors", "No nodes with metrics", is_hypervisor},
                {"schedule have reasonable queue state", NULL, queue_ok},
                {"schedule have enough actual cpu", "Requested vCPUs exceeds vCPU limit", vcpus_ok},
                {"schedule have enough idle cpu", "No nodes with enough idle CPU", idle_cpu_ok},
                {"schedule have enough idle ram", "No nodes with enough idle RAM", idle_ram_ok},
                {"schedule have enough idle disk", "No nodes with enough disk space", idle_disk_ok},
        };
        _cleanup_free_ size_t *cand = calloc(n ? n : 1, sizeof(*cand));
        size_t k = 0;

        if (!cand)
                return -ENOMEM;
        if (ask->placed_on) {
                for (size_t i = 0; i < n; i++)
                        if (strcmp(nodes[i].name, ask->placed_on) == 0 && is_candidate(&nodes[i], ask, pol))
                                cand[k++] = i;
                stage_report(stage, ud, "schedule forced candidates", nodes, cand, k);
                if (k == 0) {
                        *ret_msg = "node not found";
                        return -ENOENT;
                }
        } else {
                for (size_t i = 0; i < n; i++)
                        if (is_candidate(&nodes[i], ask, pol))
                                cand[k++] = i;
        }
        stage_report(stage, ud, "schedule initial candidates", nodes, cand, k);
        for (size_t f = 0; f < SF_ARRAY_SIZE(filters); f++) {
                k = keep_if(nodes, cand, k, ask, pol, filters[f].ok);
                stage_report(stage, ud, filters[f].message, nodes, cand, k);
                if (k == 0 && filters[f].refusal) {
                        *ret_msg = filters[f].refusal;
                        return -ENOSPC;
                }
        }
        k = keep_best(nodes, cand, k, true, affinity_key);
        stage_report(stage, ud, "schedule have highest affinity", nodes, cand, k);
        k = keep_best(nodes, cand, k, false, load_key);
        stage_report(stage, ud, "schedule have lowest cpu load", nodes, cand, k);
        /* Shuffle (Fisher-Yates), take the first, as upstream does. */
        for (size_t i = k; i > 1; i--) {
                size_t j = (size_t)rand_r(seed) % i, t = cand[i - 1];
                cand[i - 1] = cand[j];
                cand[j] = t;
        }
        stage_report(stage, ud, "schedule final candidates", nodes, cand, k);
        *ret_idx = cand[0];
        return 0;
}

int64_t sf_sched_affinity(json_object *affinity, json_object *const *peer_tags, size_t npeers) {
        int64_t score = 0;

        if (!affinity || !json_object_is_type(affinity, json_type_object))
                return 0;
        for (size_t i = 0; i < npeers; i++) {
                json_object *tags = peer_tags[i];
                if (!tags || !json_object_is_type(tags, json_type_array))
                        continue;
                json_object_object_foreach(affinity, tag, val) {
                        for (size_t t = 0; t < json_object_array_length(tags); t++) {
                                const char *have = json_object_get_string(json_object_array_get_idx(tags, t));
                                if (have && strcmp(have, tag) == 0) {
                                        score += json_object_get_int64(val);
                                        break;
                                }
                        }
                }
        }
        return score;
}

int64_t sf_sched_disk_gib(json_object *disks) {
        int64_t sum = 0;

        for (size_t i = 0; disks && json_object_is_type(disks, json_type_array) && i < json_object_array_length(disks);
             i++) {
                json_object *size = NULL;
                if (json_object_object_get_ex(json_object_array_get_idx(disks, i), "size", &size) && size &&
                    json_object_get_int64(size) > 0)
                        sum += json_object_get_int64(size);
        }
        return sum;
}

/* ---- sf-api: cached metrics, recent placements, affinity inputs, events ---- */

/* A placement counts on top of a node's metrics (its vCPUs and memory in the instance
 * sums) until a heartbeat taken this long after it: by then its domain runs and the
 * heartbeat's own sums include it.  So a burst of creates between two cache refreshes
 * does not all land on one node past its overcommit limits. */
#define PLACED_GRACE_S 10
#define PLACED_MAX 1024
#define PLACED_KEEP_S 60 /* older placements: any live node has heartbeaten since */

typedef struct placement {
        char node[64];
        double at;
        int64_t cpus, memory;
} placement_t;

static pthread_mutex_t cache_mutex = PTHREAD_MUTEX_INITIALIZER;
static sf_sched_node_t *cache_nodes;
static size_t cache_n;
static double cache_loaded;
static uint64_t cache_gen; /* the node type's generation the table was read at */
static placement_t placed[PLACED_MAX];
static size_t placed_next;

static void node_from_doc(json_object *doc, const char *name, sf_sched_node_t *out) {
        json_object *m = NULL, *lastseen = NULL;

        memset(out, 0, sizeof(*out));
        snprintf(out->name, sizeof(out->name), "%s", name);
        snprintf(out->state, sizeof(out->state), "%s", sf_json_str(doc, "state") ?: "created");
        if (json_object_object_get_ex(doc, "lastseen", &lastseen))
                out->lastseen = json_object_get_double(lastseen);
        out->is_hypervisor = sf_json_bool(doc, "is_hypervisor", false);
        if (!json_object_object_get_ex(doc, "metrics", &m) || !json_object_is_type(m, json_type_object))
                return;
        out->has_metrics = true;
        out->cpu_max = sf_json_int(m, "cpu_max", 0);
        out->cpu_max_per_instance = sf_json_int(m, "cpu_max_per_instance", 0);
        out->cpu_total_instance_vcpus = sf_json_int(m, "cpu_total_instance_vcpus", 0);
        out->cpu_load_1 = json_object_get_double(json_object_object_get(m, "cpu_load_1"));
        out->memory_max = sf_json_int(m, "memory_max", 0);
        out->memory_available = sf_json_int(m, "memory_available", 0);
        out->memory_total_instance_actual = sf_json_int(m, "memory_total_instance_actual", 0);
        out->disk_free_instances = sf_json_int(m, "disk_free_instances", 0);
        out->node_queue_waiting = sf_json_int(m, "node_queue_waiting", 0);
}

/* Every node record, in one SMEMBERS and one pipelined read. */
static int nodes_load(sf_store_t *s, sf_sched_node_t **ret, size_t *ret_n) {
        char **names = NULL;
        const char **types = NULL;
        redisReply **replies = NULL;
        sf_sched_node_t *nodes = NULL;
        size_t n = 0, k = 0;
        int r;

        r = sf_store_index(s, "node", "all", NULL, &names, &n);
        if (r < 0)
                return r;
        nodes = calloc(n ? n : 1, sizeof(*nodes));
        types = calloc(n ? n : 1, sizeof(*types));
        if (!nodes || !types) {
                r = -ENOMEM;
                goto cleanup;
        }
        for (size_t i = 0; i < n; i++)
                types[i] = "node";
        if (n > 0) {
                r = sf_store_read_many(s, n, types, (const char *const *)names, true, &replies);
                if (r < 0)
                        goto cleanup;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_json_ json_object *doc = NULL;
                const char *text;
                size_t len;

                r = sf_store_reply_obj(replies[i], "node", names[i], NULL, &text, &len);
                if (r == -ENOENT || r == -EBADMSG)
                        continue; /* removed meanwhile: not a candidate */
                if (r < 0)
                        goto cleanup;
                if (sf_store_doc_parse(text, "node", names[i], &doc) < 0)
                        continue;
                node_from_doc(doc, names[i], &nodes[k++]);
        }
        *ret = nodes;
        *ret_n = k;
        nodes = NULL;
        r = 0;
cleanup:
        if (replies)
                sf_store_replies_free(replies, n);
        free(types);
        free(nodes);
        sf_strv_free(names);
        return r;
}

/* Affinity scores by node: only when the new instance asks for affinity, from the
 * namespace's instances (one SMEMBERS and one pipelined read), never the whole cluster.
 * *ret_scores gets a JSON object {node: score} (NULL when there is no affinity). */
static int affinity_scores(sf_store_t *s, const sf_sched_req_t *req, json_object **ret_scores) {
        json_object *affinity = NULL;
        _cleanup_json_ json_object *scores = NULL;
        char **uuids = NULL;
        const char **types = NULL;
        redisReply **replies = NULL;
        size_t n = 0;
        int r;

        *ret_scores = NULL;
        if (!req->metadata || !json_object_object_get_ex(req->metadata, "affinity", &affinity) ||
            !json_object_is_type(affinity, json_type_object) || json_object_object_length(affinity) == 0)
                return 0;
        scores = json_object_new_object();
        r = sf_store_index(s, "instance", "ns", req->ns, &uuids, &n);
        if (r < 0)
                return r;
        types = calloc(n ? n : 1, sizeof(*types));
        if (!types || !scores) {
                r = -ENOMEM;
                goto cleanup;
        }
        for (size_t i = 0; i < n; i++)
                types[i] = "instance";
        if (n > 0) {
                r = sf_store_read_many(s, n, types, (const char *const *)uuids, true, &replies);
                if (r < 0)
                        goto cleanup;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_json_ json_object *doc = NULL;
                json_object *md = NULL, *tags = NULL, *cur;
                const char *text, *node, *state;
                size_t len;

                if (req->instance && strcmp(uuids[i], req->instance) == 0)
                        continue;
                if (sf_store_reply_obj(replies[i], "instance", uuids[i], NULL, &text, &len) < 0 ||
                    sf_store_doc_parse(text, "instance", uuids[i], &doc) < 0)
                        continue;
                node = sf_json_str(doc, "node");
                state = sf_json_str(doc, "state") ?: "";
                if (!node || !*node || strcmp(state, "deleted") == 0 || strcmp(state, "error") == 0 ||
                    !json_object_object_get_ex(doc, "metadata", &md) || !json_object_object_get_ex(md, "tags", &tags))
                        continue;
                cur = json_object_object_get(scores, node);
                json_object_object_add(scores, node,
                                       json_object_new_int64((cur ? json_object_get_int64(cur) : 0) +
                                                             sf_sched_affinity(affinity, &tags, 1)));
        }
        *ret_scores = json_object_get(scores);
        r = 0;
cleanup:
        if (replies)
                sf_store_replies_free(replies, n);
        free(types);
        sf_strv_free(uuids);
        return r;
}

/* The audit events of one scheduling, gathered and written at the end in one go. */
typedef struct stage_log {
        const char *messages[16];
        json_object *extras[16];
        size_t n;
} stage_log_t;

static void stage_log_add(void *ud, const char *message, const sf_sched_node_t *nodes, const size_t *cand,
                          size_t ncand) {
        stage_log_t *log = ud;
        json_object *extra, *list;

        if (log->n >= SF_ARRAY_SIZE(log->messages))
                return;
        extra = json_object_new_object();
        list = json_object_new_array();
        for (size_t i = 0; i < ncand; i++)
                json_object_array_add(list, json_object_new_string(nodes[cand[i]].name));
        json_object_object_add(extra, "candidates", list);
        log->messages[log->n] = message;
        log->extras[log->n++] = extra;
}

static void stage_log_done(stage_log_t *log) {
        for (size_t i = 0; i < log->n; i++)
                json_object_put(log->extras[i]);
}

/* The cached node table, copied, with this sf-api's recent placements added.  It is
 * read again when older than SF_SCHEDULER_CACHE_TIMEOUT or when any node record changed
 * (one GET of the type's generation: a deleted node is skipped at once, a new heartbeat
 * is seen at once).  Called with cache_mutex held. */
static int nodes_current(sf_ctx_t *ctx, double now, sf_sched_node_t **ret, size_t *ret_n) {
        static const char *const types[] = {"node"};
        sf_sched_node_t *copy;
        uint64_t gen = 0;
        int r;

        r = sf_store_gens(ctx->store, 1, types, &gen);
        if (r < 0)
                return r;
        if (!cache_nodes || gen != cache_gen || now - cache_loaded > ctx->cfg.scheduler_cache_timeout_s) {
                sf_sched_node_t *fresh = NULL;
                size_t n = 0;
                r = nodes_load(ctx->store, &fresh, &n);
                if (r < 0)
                        return r;
                free(cache_nodes);
                cache_nodes = fresh;
                cache_n = n;
                cache_loaded = now;
                cache_gen = gen;
        }
        copy = calloc(cache_n ? cache_n : 1, sizeof(*copy));
        if (!copy)
                return -ENOMEM;
        memcpy(copy, cache_nodes, cache_n * sizeof(*copy));
        for (size_t p = 0; p < PLACED_MAX; p++) {
                const placement_t *pl = &placed[p];
                if (!pl->node[0] || pl->at < now - PLACED_KEEP_S)
                        continue;
                for (size_t i = 0; i < cache_n; i++) {
                        sf_sched_node_t *nd = &copy[i];
                        if (strcmp(nd->name, pl->node) != 0 || pl->at < nd->lastseen - PLACED_GRACE_S)
                                continue;
                        /* The sums the heartbeat takes from libvirt's domains; free RAM and
                         * disk are measurements, which a domain just placed has not moved yet
                         * (as upstream, compared with the request alone). */
                        nd->cpu_total_instance_vcpus += pl->cpus;
                        nd->memory_total_instance_actual += pl->memory;
                }
        }
        *ret = copy;
        *ret_n = cache_n;
        return 0;
}

int sf_api_schedule(sf_ctx_t *ctx, const sf_sched_req_t *req, sf_http_resp_t *resp, char out[64]) {
        static __thread unsigned seed;
        _cleanup_json_ json_object *scores = NULL;
        _cleanup_free_ sf_sched_node_t *nodes = NULL;
        stage_log_t log = {0};
        sf_sched_ask_t ask = {.cpus = req->cpus, .memory = req->memory, .disk_gib = sf_sched_disk_gib(req->disks),
                              .placed_on = req->placed_on};
        sf_sched_policy_t pol = {.cpu_overcommit = ctx->cfg.cpu_overcommit_ratio,
                                 .ram_overcommit = ctx->cfg.ram_overcommit_ratio,
                                 .ram_reservation_gib = ctx->cfg.ram_system_reservation_gib,
                                 .min_free_disk_gib = ctx->cfg.minimum_free_disk_gib,
                                 .now = sf_now(),
                                 .checkin_max_s = ctx->cfg.node_checkin_max_s};
        const char *msg = NULL;
        size_t n = 0, idx = 0;
        int r;

        if (!seed)
                seed = (unsigned)(sf_mono_ms() ^ (int64_t)pthread_self());
        /* Redis reads for affinity happen before the lock: it only guards memory. */
        r = affinity_scores(ctx->store, req, &scores);
        if (r < 0)
                return r;
        pthread_mutex_lock(&cache_mutex);
        r = nodes_current(ctx, pol.now, &nodes, &n);
        if (r == 0) {
                for (size_t i = 0; scores && i < n; i++)
                        nodes[i].affinity = sf_json_int(scores, nodes[i].name, 0);
                r = sf_sched_pick(nodes, n, &ask, &pol, &seed, stage_log_add, &log, &idx, &msg);
        }
        /* Counted at once, so the next create (before any heartbeat) sees it. */
        if (r == 0) {
                placement_t *pl = &placed[placed_next++ % PLACED_MAX];
                snprintf(pl->node, sizeof(pl->node), "%s", nodes[idx].name);
                pl->at = pol.now;
                pl->cpus = ask.cpus;
                pl->memory = ask.memory;
        }
        pthread_mutex_unlock(&cache_mutex);
        if (r == -ENOSPC || r == -ENOENT) {
                json_object *extra = json_object_new_object();
                char text[160];

                if (r == -ENOENT)
                        snprintf(text, sizeof(text), "node not found: %s", req->placed_on);
                else
                        snprintf(text, sizeof(text), "%s", msg);
                json_object_object_add(extra, "message", json_object_new_string(text));
                if (log.n < SF_ARRAY_SIZE(log.messages)) {
                        log.messages[log.n] = r == -ENOENT ? "schedule failed, node not found"
                                                           : "schedule failed, insufficient resources";
                        log.extras[log.n++] = extra;
                } else {
                        json_object_put(extra);
                }
                sf_http_error(resp, r == -ENOENT ? 404 : 507, "%s", text);
        }
        if (req->instance && log.n > 0)
                sf_event_emit_many(ctx, "instance", req->instance, req->ns, "audit", log.n, log.messages, log.extras);
        stage_log_done(&log);
        if (r < 0)
                return r;
        snprintf(out, 64, "%s", nodes[idx].name);
        return 0;
}
