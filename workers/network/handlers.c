/* sf-network: converge networks on this node (api.md §7.3) from their Redis records.
 *   network.create  plumb the network (VXLAN, bridge, netns, dnsmasq, NAT); -> created
 *   network.attach  an interface: make sure its network is plumbed, add its DHCP host; -> created
 *   network.refresh rewrite the DHCP hosts from the interface records
 *   network.delete  wait until no interface uses it, tear everything down; -> deleted */
#include "handlers.h"
#include "keys.h"

#include "event.h"
#include "exec.h"
#include "intent.h"
#include "ipam.h"
#include "log.h"
#include "netplumb.h"
#include "object.h"
#include "store.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The plumbing description of a network document. */
static int plumb_of(sf_ctx_t *ctx, json_object *net, sf_netplumb_t *p) {
        sf_cidr_t c, fc;
        const char *nb = sf_json_str(net, "netblock"), *fgw = sf_json_str(net, "floating_gateway");

        memset(p, 0, sizeof(*p));
        if (!nb || sf_cidr_parse(nb, &c, NULL) < 0)
                return -EINVAL;
        if (snprintf(p->uuid, sizeof(p->uuid), "%s", sf_json_str(net, "uuid") ?: "") >= (int)sizeof(p->uuid))
                return -EINVAL;
        p->vxid = (uint32_t)sf_json_int(net, "vxid", 0);
        snprintf(p->netblock, sizeof(p->netblock), "%s", nb);
        sf_cidr_addr(&c, 1, p->router);
        p->prefix = c.prefix;
        p->provide_dhcp = sf_json_bool(net, "provide_dhcp", false);
        p->provide_nat = sf_json_bool(net, "provide_nat", false);
        snprintf(p->mesh_dev, sizeof(p->mesh_dev), "%s", ctx->cfg.mesh_dev);
        if (snprintf(p->mesh_ip, sizeof(p->mesh_ip), "%s", ctx->cfg.mesh_ip) >= (int)sizeof(p->mesh_ip))
                return -EINVAL;
        p->mtu = ctx->cfg.mtu;
        if (snprintf(p->dhcp_dir, sizeof(p->dhcp_dir), "%s/dhcp/%s", ctx->cfg.storage, p->uuid) >=
            (int)sizeof(p->dhcp_dir))
                return -ENAMETOOLONG;
        snprintf(p->zone, sizeof(p->zone), "%s", ctx->cfg.zone);
        if (snprintf(p->dns_server, sizeof(p->dns_server), "%s", ctx->cfg.dns_server) >=
            (int)sizeof(p->dns_server))
                return -EINVAL;
        if (p->provide_nat && fgw) {
                if (sf_cidr_parse(ctx->cfg.floating_network, &fc, NULL) < 0)
                        return -EINVAL;
                if (snprintf(p->floating_gateway, sizeof(p->floating_gateway), "%s", fgw) >=
                    (int)sizeof(p->floating_gateway))
                        return -EINVAL;
                sf_cidr_addr(&fc, 1, p->egress_gateway);
                p->egress_prefix = fc.prefix;
        } else {
                p->provide_nat = false;
        }
        return 0;
}

/* DHCP hosts = every live interface on the network with an address. */
static int refresh_hosts(sf_ctx_t *ctx, const sf_netplumb_t *p) {
        _cleanup_reply_ redisReply *m = sf_store_cmd(ctx->store, "SMEMBERS " SF_KEY_NETIFACES, p->uuid);
        _cleanup_free_ sf_dhcp_host_t *hosts = NULL;
        size_t n = 0;

        if (!m || m->type != REDIS_REPLY_ARRAY)
                return -EIO;
        hosts = calloc(m->elements + 1, sizeof(*hosts));
        if (!hosts)
                return -ENOMEM;
        for (size_t i = 0; i < m->elements; i++) {
                _cleanup_json_ json_object *iface = NULL, *inst = NULL;
                const char *st, *ip, *mac;
                int r = sf_store_get(ctx->store, "networkinterface", m->element[i]->str, &iface, NULL);

                /* A host we could not read is not a host to drop: keep the old file. */
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                st = sf_json_str(iface, "state") ?: "";
                ip = sf_json_str(iface, "ipv4");
                mac = sf_json_str(iface, "macaddr");
                if (strcmp(st, "deleted") == 0 || strcmp(st, "error") == 0 || !ip || !mac)
                        continue;
                snprintf(hosts[n].mac, sizeof(hosts[n].mac), "%s", mac);
                snprintf(hosts[n].ip, sizeof(hosts[n].ip), "%s", ip);
                r = sf_store_get(ctx->store, "instance", sf_json_str(iface, "instance_uuid") ?: "-", &inst, NULL);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (r == 0 && sf_json_str(inst, "name"))
                        snprintf(hosts[n].hostname, sizeof(hosts[n].hostname), "%s", sf_json_str(inst, "name"));
                else
                        snprintf(hosts[n].hostname, sizeof(hosts[n].hostname), "host-%s",
                                 m->element[i]->str);
                n++;
        }
        return sf_netplumb_hosts(p, hosts, n);
}

static int load_network(sf_work_t *w, const char *uuid, json_object **ret) {
        int r = sf_store_get(w->ctx->store, "network", uuid, ret, NULL);

        if (r == -ENOENT)
                return 1;
        return r;
}

static int handle_create(sf_work_t *w) {
        sf_ctx_t *ctx = w->ctx;
        _cleanup_json_ json_object *net = NULL;
        const char *state;
        sf_netplumb_t p;
        double t0 = sf_now();
        int r;

        r = load_network(w, w->intent->object_uuid, &net);
        if (r == 1)
                return SF_WORK_DONE;
        if (r < 0)
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        state = sf_json_str(net, "state") ?: "";
        if (strcmp(state, "initial") != 0 && strcmp(state, "created") != 0)
                return SF_WORK_DONE; /* being deleted or failed: nothing to build */
        if (plumb_of(ctx, net, &p) < 0)
                return sf_work_error(w, "invalid network record"), SF_WORK_FAIL;
        r = sf_netplumb_ensure(&p);
        if (r == 0)
                r = refresh_hosts(ctx, &p);
        if (r < 0)
                return sf_work_error(w, "network plumbing failed: %s", strerror(-r)), SF_WORK_RETRY;
        sf_event_emit(ctx, "network", p.uuid, sf_json_str(net, "namespace"), "status", "network deployed", NULL,
                      sf_now() - t0);
        r = sf_obj_set_state(ctx, "network", p.uuid, "created", NULL, NULL, NULL);
        if (r < 0 && r != -EINVAL)
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        return SF_WORK_DONE;
}

static int handle_attach(sf_work_t *w) {
        sf_ctx_t *ctx = w->ctx;
        _cleanup_json_ json_object *iface = NULL, *net = NULL;
        const char *st, *nst;
        sf_netplumb_t p;
        bool plumbed = false;
        int r;

        r = sf_store_get(ctx->store, "networkinterface", w->intent->object_uuid, &iface, NULL);
        if (r == -ENOENT)
                return SF_WORK_DONE;
        if (r < 0)
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        st = sf_json_str(iface, "state") ?: "";
        if (strcmp(st, "initial") != 0 && strcmp(st, "created") != 0)
                return SF_WORK_DONE;
        r = load_network(w, sf_json_str(iface, "network_uuid") ?: "-", &net);
        if (r == 1)
                return sf_work_error(w, "network does not exist"), SF_WORK_FAIL;
        if (r < 0)
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        nst = sf_json_str(net, "state") ?: "";
        if (strcmp(nst, "initial") == 0)
                return sf_work_error(w, "network is not ready"), SF_WORK_WAIT;
        if (strcmp(nst, "created") != 0)
                return sf_work_error(w, "network is %s", nst), SF_WORK_FAIL;
        if (plumb_of(ctx, net, &p) < 0)
                return sf_work_error(w, "invalid network record"), SF_WORK_FAIL;
        /* A create waits for this step: when the network's links and dnsmasq are
         * already here, only the DHCP hosts change (ensure execs a dozen commands, and
         * even the firewall check execs iptables twice; the reconciler checks those). */
        r = sf_netplumb_links_exist(&p, &plumbed);
        if (r < 0 || !plumbed)
                r = sf_netplumb_ensure(&p);
        if (r == 0)
                r = refresh_hosts(ctx, &p);
        if (r < 0)
                return sf_work_error(w, "network plumbing failed: %s", strerror(-r)), SF_WORK_RETRY;
        r = sf_obj_set_state(ctx, "networkinterface", w->intent->object_uuid, "created", NULL, NULL, NULL);
        if (r < 0 && r != -EINVAL)
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        return SF_WORK_DONE;
}

static int handle_refresh(sf_work_t *w) {
        _cleanup_json_ json_object *net = NULL;
        sf_netplumb_t p;
        bool exists = false;
        int r;

        r = load_network(w, w->intent->object_uuid, &net);
        if (r == 1)
                return SF_WORK_DONE;
        if (r < 0)
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        if (strcmp(sf_json_str(net, "state") ?: "", "deleted") == 0 || plumb_of(w->ctx, net, &p) < 0)
                return SF_WORK_DONE;
        if (sf_netplumb_links_exist(&p, &exists) < 0 || !exists)
                return SF_WORK_DONE; /* not plumbed here: nothing to refresh */
        r = refresh_hosts(w->ctx, &p);
        if (r < 0)
                return sf_work_error(w, "DHCP refresh failed: %s", strerror(-r)), SF_WORK_RETRY;
        return SF_WORK_DONE;
}

/* The egress bridge is shared by every NAT network on the node: remove it with the
 * last one so a node without networks holds no links of ours. */
static void remove_idle_egress_bridge(void) {
        char path[128];
        DIR *d;
        struct dirent *e;
        int ports = 0;

        snprintf(path, sizeof(path), "/sys/class/net/%s/brif", SF_NETPLUMB_EGRESS_BRIDGE);
        d = opendir(path);
        if (!d)
                return;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        ports++;
        closedir(d);
        if (ports == 0) {
                char *argv[] = {(char *)"ip", (char *)"link", (char *)"del", (char *)SF_NETPLUMB_EGRESS_BRIDGE, NULL};
                sf_exec(argv, NULL, NULL);
        }
}

static int handle_delete(sf_work_t *w) {
        sf_ctx_t *ctx = w->ctx;
        _cleanup_json_ json_object *net = NULL;
        const char *state, *fgw;
        sf_netplumb_t p;
        int r, live = 0;

        r = load_network(w, w->intent->object_uuid, &net);
        if (r == 1)
                return SF_WORK_DONE;
        if (r < 0)
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        state = sf_json_str(net, "state") ?: "";
        if (strcmp(state, "deleted") == 0)
                return SF_WORK_DONE;
        r = sf_obj_network_live_interfaces(ctx->store, w->intent->object_uuid, &live);
        if (r < 0)
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        if (live > 0) {
                /* Upstream's delete-wait: retried until the last interface is gone. */
                if (strcmp(state, "created") == 0)
                        sf_obj_set_state(ctx, "network", w->intent->object_uuid, "delete-wait", NULL, NULL, NULL);
                w->wait_ms = 2000;
                return sf_work_error(w, "network still has %d interfaces", live), SF_WORK_WAIT;
        }
        if (plumb_of(ctx, net, &p) < 0)
                return sf_work_error(w, "invalid network record"), SF_WORK_FAIL;
        r = sf_netplumb_destroy(&p);
        if (r < 0)
                return sf_work_error(w, "network teardown failed: %s", strerror(-r)), SF_WORK_RETRY;
        remove_idle_egress_bridge();
        sf_ipam_drop(ctx->store, p.uuid);
        fgw = sf_json_str(net, "floating_gateway");
        if (fgw)
                sf_ipam_release(ctx->store, "floating", fgw, p.uuid);
        freeReplyObject(sf_store_cmd(ctx->store, "DEL " SF_KEY_VXID, p.vxid));
        r = sf_obj_set_state(ctx, "network", p.uuid, "deleted", NULL, NULL, NULL);
        if (r < 0 && r != -EINVAL)
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        return SF_WORK_DONE;
}

static void fail_network(sf_work_t *w, const char *msg) {
        sf_obj_set_state(w->ctx, "network", w->intent->object_uuid, "error", msg, NULL, NULL);
}

static void fail_interface(sf_work_t *w, const char *msg) {
        sf_obj_set_state(w->ctx, "networkinterface", w->intent->object_uuid, "error", msg, NULL, NULL);
}

const sf_handler_t sf_network_handlers[] = {
        {.kind = "network.create", .fn = handle_create, .on_fail = fail_network},
        {.kind = "network.attach", .fn = handle_attach, .on_fail = fail_interface},
        {.kind = "network.refresh", .fn = handle_refresh},
        {.kind = "network.delete", .fn = handle_delete, .on_fail = fail_network, .deadline_s = 86400},
};
const size_t sf_network_nhandlers = SF_ARRAY_SIZE(sf_network_handlers);

/* Networks this node serves that lost their plumbing (a host reboot, a dnsmasq that
 * died, a link somebody deleted) are rebuilt from their records. */
static void reconcile_networks(sf_ctx_t *ctx) {
        char **ids = NULL;

        if (sf_store_index(ctx->store, "network", "node", ctx->cfg.node, &ids, NULL) < 0)
                return;
        for (char **p = ids; *p; p++) {
                _cleanup_json_ json_object *net = NULL;
                const char *st;
                sf_netplumb_t pl;
                bool exists = false;

                if (sf_store_get(ctx->store, "network", *p, &net, NULL) < 0)
                        continue;
                st = sf_json_str(net, "state") ?: "";
                if ((strcmp(st, "created") != 0 && strcmp(st, "delete-wait") != 0) ||
                    strcmp(sf_json_str(net, "node") ?: "", ctx->cfg.node) != 0 || plumb_of(ctx, net, &pl) < 0 ||
                    sf_netplumb_exists(&pl, &exists) < 0 || exists)
                        continue;
                log_warn("reconciler: network %s lost its plumbing; rebuilding", *p);
                if (sf_netplumb_ensure(&pl) == 0)
                        refresh_hosts(ctx, &pl);
        }
        sf_strv_free(ids);
}

static double state_age(json_object *doc) {
        json_object *ts;

        if (!json_object_object_get_ex(doc, "state_updated", &ts))
                return 1e9;
        return sf_now() - json_object_get_double(ts);
}

/* Networks of this node left in initial (delete-wait) without progress for
 * SF_STUCK_AFTER get their network.create (network.delete) again: sf-api may have died
 * between writing the record and recording the intent.  Submitting is idempotent (an
 * open intent is re-published, not duplicated), so doing it every pass piles nothing up. */
static void reconcile_stuck_networks(sf_ctx_t *ctx) {
        char **ids = NULL;

        if (sf_store_index(ctx->store, "network", "node", ctx->cfg.node, &ids, NULL) < 0)
                return;
        for (char **p = ids; *p; p++) {
                _cleanup_json_ json_object *net = NULL;
                const char *st, *kind;

                if (sf_store_get(ctx->store, "network", *p, &net, NULL) < 0)
                        continue;
                st = sf_json_str(net, "state") ?: "";
                if (strcmp(st, "initial") == 0)
                        kind = "network.create";
                else if (strcmp(st, "delete-wait") == 0)
                        kind = "network.delete";
                else
                        continue;
                if (state_age(net) < ctx->cfg.stuck_after_s ||
                    strcmp(sf_json_str(net, "node") ?: "", ctx->cfg.node) != 0)
                        continue;
                log_info("reconciler: network %s is %s without progress; re-submitting %s", *p, st, kind);
                sf_intent_submit(ctx, ctx->cfg.node, "network", kind, "network", *p, sf_json_str(net, "namespace"),
                                 NULL, NULL);
        }
        sf_strv_free(ids);
}

/* The same for interfaces left in initial: network.attach goes to the instance's node,
 * so each node looks at the interfaces of its own instances. */
static void reconcile_stuck_interfaces(sf_ctx_t *ctx) {
        char **ids = NULL;

        if (sf_store_index(ctx->store, "instance", "node", ctx->cfg.node, &ids, NULL) < 0)
                return;
        for (char **p = ids; *p; p++) {
                _cleanup_json_ json_object *inst = NULL;
                json_object *ifaces;

                if (sf_store_get(ctx->store, "instance", *p, &inst, NULL) < 0 ||
                    strcmp(sf_json_str(inst, "node") ?: "", ctx->cfg.node) != 0 ||
                    strcmp(sf_json_str(inst, "state") ?: "", "deleted") == 0 ||
                    !json_object_object_get_ex(inst, "interfaces", &ifaces) ||
                    !json_object_is_type(ifaces, json_type_array))
                        continue;
                for (size_t i = 0; i < json_object_array_length(ifaces); i++) {
                        _cleanup_json_ json_object *iface = NULL;
                        const char *iu = json_object_get_string(json_object_array_get_idx(ifaces, i));

                        if (!iu || sf_store_get(ctx->store, "networkinterface", iu, &iface, NULL) < 0 ||
                            strcmp(sf_json_str(iface, "state") ?: "", "initial") != 0 ||
                            state_age(iface) < ctx->cfg.stuck_after_s)
                                continue;
                        log_info("reconciler: interface %s is initial without progress; re-submitting", iu);
                        sf_intent_submit(ctx, ctx->cfg.node, "network", "network.attach", "networkinterface", iu,
                                         sf_json_str(iface, "namespace"), NULL, NULL);
                }
        }
        sf_strv_free(ids);
}

void sf_network_tick(sf_ctx_t *ctx, void *user) {
        static int64_t next_reconcile;

        (void)user;
        sf_intent_redrive(ctx, ctx->cfg.node, "network", ctx->cfg.redrive_after_s, NULL);
        if (sf_mono_ms() >= next_reconcile) {
                reconcile_networks(ctx);
                reconcile_stuck_networks(ctx);
                reconcile_stuck_interfaces(ctx);
                next_reconcile = sf_mono_ms() + (int64_t)ctx->cfg.reconcile_interval_s * 1000;
        }
}
