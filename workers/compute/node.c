/* sf-compute: the node heartbeat (lastseen and metrics). */
#include "compute.h"

#include "event.h"
#include "intent.h"
#include "keys.h"
#include "ipam.h"
#include "lock.h"
#include "log.h"
#include "object.h"
#include "sflimits.h"
#include "state.h"
#include "store.h"
#include "util.h"
#include "virt.h"

#include <libvirt/virterror.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#define HEARTBEAT_INTERVAL_MS 5000
#define GIB (1024.0 * 1024.0 * 1024.0)

/* This node's pending intents (node_queue_waiting), counted inside Redis: one command
 * whatever the queue length.  KEYS[1] the pending zset; ARGV[1] the intent key prefix,
 * ARGV[2] the node's subject prefix. */
static const char QUEUE_LUA[] =
        "local ids = redis.call('ZRANGE', KEYS[1], 0, 9999)\n"
        "local n = 0\n"
        "for _, id in ipairs(ids) do\n"
        "  local s = redis.call('HGET', ARGV[1] .. id, 'subject')\n"
        "  if s and string.sub(s, 1, #ARGV[2]) == ARGV[2] then n = n + 1 end\n"
        "end\n"
        "return n\n";

/* The heartbeat thread's own state: its libvirt connection and when it last did the
 * slower things. */
typedef struct beat {
        virConnectPtr conn;
        double next_nodes_check, next_usage;
} beat_t;

static int64_t node_queue_waiting(sf_ctx_t *ctx) {
        char prefix[160];
        _cleanup_reply_ redisReply *r = NULL;

        sf_intent_subject(ctx->cfg.node, "", prefix, sizeof(prefix));
        r = sf_store_cmd(ctx->store, "EVAL %s 1 " SF_KEY_INTENTS_PENDING " " SF_KEY_INTENT_PREFIX " %s", QUEUE_LUA,
                         prefix);
        return r && r->type == REDIS_REPLY_INTEGER ? (int64_t)r->integer : 0;
}

static int64_t disk_free(const char *storage, const char *sub) {
        char path[PATH_MAX];
        struct statvfs vfs;

        snprintf(path, sizeof(path), "%s/%s", storage, sub);
        if (statvfs(path, &vfs) != 0 && statvfs(storage, &vfs) != 0)
                return 0;
        return (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
}

/* What libvirt says: CPUs, the per-instance vCPU limit, and the sums over running
 * domains (as upstream, every running domain counts: it uses the host). */
static void libvirt_metrics(beat_t *b, const char *domain_type, json_object *m) {
        virDomainPtr *doms = NULL;
        int64_t vcpus = 0, mem_kib = 0, instances = 0;
        int n, cpus = -1, maxv = -1;

        if (b->conn) {
                cpus = virNodeGetCPUMap(b->conn, NULL, NULL, 0);
                maxv = virConnectGetMaxVcpus(b->conn, domain_type);
        }
        if (cpus <= 0)
                cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
        json_object_object_add(m, "cpu_max", json_object_new_int64(cpus));
        json_object_object_add(m, "cpu_max_per_instance", json_object_new_int64(maxv > 0 ? maxv : cpus));
        n = b->conn ? virConnectListAllDomains(b->conn, &doms, 0) : -1;
        for (int i = 0; i < n; i++) {
                virDomainInfo info;
                const char *name = virDomainGetName(doms[i]);

                if (name && strncmp(name, "sf:", 3) == 0)
                        instances++;
                if (virDomainIsActive(doms[i]) == 1 && virDomainGetInfo(doms[i], &info) == 0) {
                        vcpus += info.nrVirtCpu;
                        mem_kib += (int64_t)info.memory;
                }
                virDomainFree(doms[i]);
        }
        free(doms);
        json_object_object_add(m, "cpu_total_instance_vcpus", json_object_new_int64(vcpus));
        json_object_object_add(m, "memory_total_instance_actual", json_object_new_int64(mem_kib / 1024));
        json_object_object_add(m, "instances", json_object_new_int64(instances));
}

/* This node's metrics (api.md §8.1 metrics/<node>): what the scheduler filters on. */
static json_object *node_metrics(sf_ctx_t *ctx, beat_t *b, const sf_compute_t *cs) {
        json_object *m = json_object_new_object();
        struct sysinfo si;
        double load[3];

        if (sysinfo(&si) == 0) {
                FILE *f = fopen("/proc/meminfo", "re");
                char line[256];
                long long avail_kb = -1;
                while (f && fgets(line, sizeof(line), f))
                        if (sscanf(line, "MemAvailable: %lld kB", &avail_kb) == 1)
                                break;
                if (f)
                        fclose(f);
                json_object_object_add(m, "memory_max",
                                       json_object_new_int64((int64_t)si.totalram * si.mem_unit / 1048576));
                json_object_object_add(m, "memory_available", json_object_new_int64(avail_kb >= 0 ? avail_kb / 1024 : 0));
        }
        libvirt_metrics(b, cs->domain_type, m);
        json_object_object_add(m, "cpu_load_1", json_object_new_double(getloadavg(load, 3) >= 1 ? load[0] : 0));
        json_object_object_add(m, "disk_free_instances", json_object_new_int64(disk_free(ctx->cfg.storage, "instances")));
        json_object_object_add(m, "disk_free_blobs", json_object_new_int64(disk_free(ctx->cfg.storage, "blobs")));
        json_object_object_add(m, "node_queue_waiting", json_object_new_int64(node_queue_waiting(ctx)));
        return m;
}

typedef struct beat_update {
        json_object *fresh;
        bool returned; /* was missing, is created again */
} beat_update_t;

static int apply_heartbeat(json_object *doc, void *ud) {
        beat_update_t *u = ud;

        json_object_object_foreach(u->fresh, k, v) json_object_object_add(doc, k, json_object_get(v));
        u->returned = false;
        if (strcmp(sf_json_str(doc, "state") ?: "", "missing") == 0) {
                json_object_object_add(doc, "state", json_object_new_string("created"));
                json_object_object_add(doc, "state_updated", json_object_new_double(sf_now()));
                u->returned = true;
        }
        return 0;
}

/* The node's state change as sf_obj_set_state reports one, plus upstream's audit line. */
static void node_state_events(sf_ctx_t *ctx, const char *node, const char *state, const char *audit) {
        _cleanup_json_ json_object *extra = json_object_new_object();

        json_object_object_add(extra, "attribute", json_object_new_string("state"));
        json_object_object_add(extra, "value", json_object_new_string(state));
        json_object_object_add(extra, "update_time", json_object_new_double(sf_now()));
        sf_event_emit(ctx, "node", node, NULL, "mutate", "set attribute", extra, -1);
        sf_event_emit(ctx, "node", node, NULL, "audit", audit, NULL, -1);
}

/* Writes this node's record: lastseen and metrics.  Runs on the heartbeat thread with
 * that thread's own context.  Returns the metrics written (caller puts them). */
static json_object *heartbeat_write(sf_ctx_t *ctx, beat_t *b, const sf_compute_t *cs) {
        _cleanup_json_ json_object *doc = json_object_new_object(), *after = NULL;
        json_object *m = node_metrics(ctx, b, cs);
        beat_update_t u = {.fresh = doc};
        static bool warned_deleted;
        int r;

        json_object_object_add(doc, "uuid", json_object_new_string(ctx->cfg.node));
        json_object_object_add(doc, "name", json_object_new_string(ctx->cfg.node));
        json_object_object_add(doc, "ip", json_object_new_string(ctx->cfg.mesh_ip));
        json_object_object_add(doc, "lastseen", json_object_new_int64((int64_t)sf_now()));
        json_object_object_add(doc, "is_hypervisor", json_object_new_boolean(true));
        json_object_object_add(doc, "is_network_node",
                               json_object_new_boolean(strcmp(ctx->cfg.node, ctx->cfg.network_node) == 0));
        json_object_object_add(doc, "domain_type", json_object_new_string(cs->domain_type));
        json_object_object_add(doc, "metrics", json_object_get(m));
        r = sf_store_update(ctx->store, "node", ctx->cfg.node, NULL, apply_heartbeat, &u, &after);
        /* A deleted node stays deleted (docs/architecture.md "Node delete"): its lastseen
         * still moves, so the operator sees it is alive, but it gets no new instances. */
        if (r == 0 && strcmp(sf_json_str(after, "state") ?: "", "deleted") == 0 && !warned_deleted) {
                log_warn("node %s is deleted: it gets no new instances (re-add it under a new SF_NODE name)",
                         ctx->cfg.node);
                warned_deleted = true;
        }
        if (r == 0 && u.returned) {
                log_info("node %s is back: missing -> created", ctx->cfg.node);
                node_state_events(ctx, ctx->cfg.node, "created", "node returned from being missing");
        }
        if (r == -ENOENT) {
                json_object_object_add(doc, "state", json_object_new_string("created"));
                json_object_object_add(doc, "metadata", json_object_new_object());
                sf_obj_create(ctx, "node", ctx->cfg.node, doc);
        }
        return m;
}

typedef struct missing_check {
        double now, max_age;
        bool changed;
} missing_check_t;

/* created -> missing, decided on the record being written (a heartbeat that landed
 * meanwhile makes the CAS retry and this answer "nothing to do"). */
static int apply_missing(json_object *doc, void *ud) {
        missing_check_t *c = ud;
        json_object *ls = NULL;

        c->changed = false;
        if (strcmp(sf_json_str(doc, "state") ?: "", "created") != 0 || !json_object_object_get_ex(doc, "lastseen", &ls) ||
            c->now - json_object_get_double(ls) <= c->max_age)
                return 1;
        json_object_object_add(doc, "state", json_object_new_string("missing"));
        json_object_object_add(doc, "state_updated", json_object_new_double(c->now));
        c->changed = true;
        return 0;
}

/* Cluster-wide: every node silent for SF_NODE_CHECKIN_MAXIMUM becomes `missing` (any
 * live sf-compute may do it; the CAS makes a race harmless).  One SMEMBERS and one
 * pipelined read. */
static void nodes_check_missing(sf_ctx_t *ctx) {
        char **names = NULL;
        const char **types = NULL;
        redisReply **replies = NULL;
        size_t n = 0;
        double now = sf_now();

        if (sf_store_index(ctx->store, "node", "all", NULL, &names, &n) < 0 || n == 0)
                goto cleanup;
        types = calloc(n, sizeof(*types));
        if (!types)
                goto cleanup;
        for (size_t i = 0; i < n; i++)
                types[i] = "node";
        if (sf_store_read_many(ctx->store, n, types, (const char *const *)names, true, &replies) < 0)
                goto cleanup;
        for (size_t i = 0; i < n; i++) {
                _cleanup_json_ json_object *doc = NULL;
                missing_check_t c = {.now = now, .max_age = ctx->cfg.node_checkin_max_s};
                const char *text;
                size_t len;

                if (strcmp(names[i], ctx->cfg.node) == 0 ||
                    sf_store_reply_obj(replies[i], "node", names[i], NULL, &text, &len) < 0 ||
                    sf_store_doc_parse(text, "node", names[i], &doc) < 0 || apply_missing(doc, &c) != 0)
                        continue;
                if (sf_store_update(ctx->store, "node", names[i], NULL, apply_missing, &c, NULL) == 0 && c.changed) {
                        log_warn("node %s has not checked in for %d s: missing", names[i], ctx->cfg.node_checkin_max_s);
                        node_state_events(ctx, names[i], "missing", "node has gone missing");
                }
        }
cleanup:
        if (replies)
                sf_store_replies_free(replies, n);
        free(types);
        sf_strv_free(names);
}

/* The MAC of the interface whose target is dev, from the domain XML (upstream keys
 * network usage by MAC); "" if not found. */
static void interface_mac(const char *xml, const char *dev, char *out, size_t len) {
        const char *p = xml;
        char want[128];

        out[0] = 0;
        snprintf(want, sizeof(want), "<target dev='%s'", dev);
        while (xml && (p = strstr(p, "<interface")) != NULL) {
                const char *end = strstr(p, "</interface>"), *mac = strstr(p, "<mac address='"), *tgt = strstr(p, want);
                if (!end)
                        break;
                if (mac && tgt && mac < end && tgt < end) {
                        mac += strlen("<mac address='");
                        snprintf(out, len, "%.*s", (int)strcspn(mac, "'"), mac);
                        return;
                }
                p = end;
        }
}

static unsigned long long param_ull(virTypedParameterPtr params, int n, const char *name) {
        unsigned long long v = 0;

        virTypedParamsGetULLong(params, n, name, &v);
        return v;
}

/* upstream's usage extra: cpu, per-disk and per-NIC counters of one domain. */
static json_object *domain_usage(virDomainStatsRecordPtr rec) {
        json_object *out = json_object_new_object(), *cpu = json_object_new_object(),
                    *disks = json_object_new_object(), *nics = json_object_new_object();
        unsigned int count = 0;
        char key[64], *xml = virDomainGetXMLDesc(rec->dom, 0);

        json_object_object_add(cpu, "cpu time ns", json_object_new_int64((int64_t)param_ull(rec->params, rec->nparams, "cpu.time")));
        json_object_object_add(cpu, "system time ns", json_object_new_int64((int64_t)param_ull(rec->params, rec->nparams, "cpu.system")));
        json_object_object_add(cpu, "user time ns", json_object_new_int64((int64_t)param_ull(rec->params, rec->nparams, "cpu.user")));
        virTypedParamsGetUInt(rec->params, rec->nparams, "block.count", &count);
        for (unsigned int i = 0; i < count; i++) {
                static const char *const names[][2] = {{"rd.reqs", "read requests"}, {"rd.bytes", "read bytes"},
                                                       {"wr.reqs", "write requests"}, {"wr.bytes", "write bytes"},
                                                       {"errors", "errors"}};
                const char *dev = NULL;
                json_object *d = json_object_new_object();

                snprintf(key, sizeof(key), "block.%u.name", i);
                virTypedParamsGetString(rec->params, rec->nparams, key, &dev);
                for (size_t k = 0; k < SF_ARRAY_SIZE(names); k++) {
                        snprintf(key, sizeof(key), "block.%u.%s", i, names[k][0]);
                        json_object_object_add(d, names[k][1],
                                               json_object_new_int64((int64_t)param_ull(rec->params, rec->nparams, key)));
                }
                json_object_object_add(disks, dev ? dev : "unknown", d);
        }
        count = 0;
        virTypedParamsGetUInt(rec->params, rec->nparams, "net.count", &count);
        for (unsigned int i = 0; i < count; i++) {
                static const char *const names[][2] = {
                        {"rx.bytes", "read bytes"},   {"rx.pkts", "read packets"},  {"rx.errs", "read errors"},
                        {"rx.drop", "read drops"},    {"tx.bytes", "write bytes"},  {"tx.pkts", "write packets"},
                        {"tx.errs", "write errors"},  {"tx.drop", "write drops"}};
                const char *dev = NULL;
                char mac[32];
                json_object *d = json_object_new_object();

                snprintf(key, sizeof(key), "net.%u.name", i);
                virTypedParamsGetString(rec->params, rec->nparams, key, &dev);
                for (size_t k = 0; k < SF_ARRAY_SIZE(names); k++) {
                        snprintf(key, sizeof(key), "net.%u.%s", i, names[k][0]);
                        json_object_object_add(d, names[k][1],
                                               json_object_new_int64((int64_t)param_ull(rec->params, rec->nparams, key)));
                }
                interface_mac(xml, dev ? dev : "", mac, sizeof(mac));
                json_object_object_add(nics, mac[0] ? mac : dev ? dev : "unknown", d);
        }
        free(xml);
        json_object_object_add(out, "cpu usage", cpu);
        json_object_object_add(out, "disk usage", disks);
        json_object_object_add(out, "network usage", nics);
        return out;
}

/* Every SF_USAGE_EVENT_FREQUENCY: a `usage` event per running instance of this node (one
 * libvirt call for all their counters, one pipelined read for their namespaces) and a
 * node `resources` event with the metrics. */
static void usage_events(sf_ctx_t *ctx, beat_t *b, json_object *metrics) {
        virDomainStatsRecordPtr *recs = NULL;
        const char **types = NULL, **uuids = NULL;
        redisReply **replies = NULL;
        size_t k = 0;
        int n;

        if (metrics)
                sf_event_emit(ctx, "node", ctx->cfg.node, NULL, "resources",
                              "updated node resources and package versions", metrics, -1);
        if (!b->conn)
                return;
        n = virConnectGetAllDomainStats(b->conn,
                                        VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_BLOCK | VIR_DOMAIN_STATS_INTERFACE,
                                        &recs, VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE);
        if (n <= 0) {
                if (n < 0)
                        log_warn("usage: libvirt domain stats failed: %s", virGetLastErrorMessage());
                goto cleanup;
        }
        types = calloc((size_t)n, sizeof(*types));
        uuids = calloc((size_t)n, sizeof(*uuids));
        if (!types || !uuids)
                goto cleanup;
        for (int i = 0; i < n; i++) {
                const char *name = virDomainGetName(recs[i]->dom);
                if (!name || strncmp(name, "sf:", 3) != 0)
                        continue;
                types[k] = "instance";
                uuids[k++] = name + 3;
        }
        if (k == 0 || sf_store_read_many(ctx->store, k, types, uuids, true, &replies) < 0)
                goto cleanup;
        k = 0;
        for (int i = 0; i < n; i++) {
                const char *name = virDomainGetName(recs[i]->dom), *text;
                _cleanup_json_ json_object *doc = NULL, *extra = NULL;
                size_t len, j;

                if (!name || strncmp(name, "sf:", 3) != 0)
                        continue;
                j = k++;
                if (sf_store_reply_obj(replies[j], "instance", uuids[j], NULL, &text, &len) < 0 ||
                    sf_store_doc_parse(text, "instance", uuids[j], &doc) < 0 ||
                    strcmp(sf_json_str(doc, "node") ?: "", ctx->cfg.node) != 0)
                        continue;
                extra = domain_usage(recs[i]);
                sf_event_emit(ctx, "instance", uuids[j], sf_json_str(doc, "namespace"), "usage", "usage", extra, -1);
        }
cleanup:
        if (replies)
                sf_store_replies_free(replies, k);
        free(types);
        free(uuids);
        if (recs)
                virDomainStatsRecordListFree(recs);
}

/* One heartbeat: the record, then (less often) the cluster's missing nodes and the usage
 * events. */
static void heartbeat_once(sf_ctx_t *ctx, beat_t *b, const sf_compute_t *cs) {
        _cleanup_json_ json_object *metrics = NULL;
        double now = sf_now(), every;

        if (sf_virt_ensure_alive(ctx->cfg.libvirt_uri, &b->conn) < 0)
                b->conn = NULL;
        metrics = heartbeat_write(ctx, b, cs);
        if (now >= b->next_nodes_check) {
                nodes_check_missing(ctx);
                /* a quarter of the window, between one heartbeat and 30 s */
                every = ctx->cfg.node_checkin_max_s / 4.0;
                every = every < HEARTBEAT_INTERVAL_MS / 1000.0 ? HEARTBEAT_INTERVAL_MS / 1000.0 : every > 30 ? 30 : every;
                b->next_nodes_check = now + every;
        }
        if (ctx->cfg.usage_event_frequency_s > 0 && now >= b->next_usage) {
                if (b->next_usage > 0) /* not at start: the first after a full period */
                        usage_events(ctx, b, metrics);
                b->next_usage = now + ctx->cfg.usage_event_frequency_s;
        }
}

/* The heartbeat has its own thread and Redis connection (hiredis is not thread-safe),
 * so a handler that takes ten minutes (an image conversion) never makes the node look
 * dead to the scheduler (NODE_LIVE_S, 120 s). */
static void *heartbeat_main(void *arg) {
        sf_compute_t *cs = arg;
        sf_ctx_t ctx = {0};
        beat_t b = {0};
        bool open = false;

        pthread_mutex_lock(&cs->hb_mutex);
        while (!cs->hb_stop) {
                struct timespec until;

                pthread_mutex_unlock(&cs->hb_mutex);
                if (!open)
                        open = sf_ctx_open(&ctx, false, 0) == 0;
                if (open)
                        heartbeat_once(&ctx, &b, cs);
                clock_gettime(CLOCK_MONOTONIC, &until);
                until.tv_sec += HEARTBEAT_INTERVAL_MS / 1000;
                pthread_mutex_lock(&cs->hb_mutex);
                while (!cs->hb_stop && pthread_cond_timedwait(&cs->hb_cond, &cs->hb_mutex, &until) != ETIMEDOUT)
                        ;
        }
        pthread_mutex_unlock(&cs->hb_mutex);
        if (open)
                sf_ctx_close(&ctx);
        sf_virt_close(b.conn);
        return NULL;
}

int sf_compute_heartbeat_start(sf_compute_t *cs) {
        pthread_condattr_t ca;
        int r;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&cs->hb_cond, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_init(&cs->hb_mutex, NULL);
        cs->hb_stop = false;
        r = pthread_create(&cs->hb_thread, NULL, heartbeat_main, cs);
        if (r != 0) {
                pthread_cond_destroy(&cs->hb_cond);
                pthread_mutex_destroy(&cs->hb_mutex);
                return -r;
        }
        cs->hb_running = true;
        return 0;
}

void sf_compute_heartbeat_stop(sf_compute_t *cs) {
        if (!cs || !cs->hb_running)
                return;
        pthread_mutex_lock(&cs->hb_mutex);
        cs->hb_stop = true;
        pthread_cond_signal(&cs->hb_cond);
        pthread_mutex_unlock(&cs->hb_mutex);
        pthread_join(cs->hb_thread, NULL);
        pthread_cond_destroy(&cs->hb_cond);
        pthread_mutex_destroy(&cs->hb_mutex);
        cs->hb_running = false;
}
