/* sf-compute: converge instances placed on this node (api.md §7 steps 3-7).
 *   instance.create  wait for interfaces and images, build disks + config drive, define
 *                    and start the domain: initial -> preflight -> creating -> created
 *   instance.delete  destroy the domain, remove its files, release its addresses
 * Every step re-reads Redis and checks what already exists, so a redelivery after a
 * kill -9 at any line converges instead of doubling anything. */
#include "handlers.h"

#include "configdrive.h"
#include "disk.h"
#include "domain.h"
#include "event.h"
#include "imgfmt.h"
#include "intent.h"
#include "ipam.h"
#include "lock.h"
#include "log.h"
#include "object.h"
#include "sflimits.h"
#include "state.h"
#include "store.h"
#include "util.h"
#include "virt.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#define LOCK_TTL_MS 30000

static void instance_dir(sf_ctx_t *ctx, const char *uuid, char *out, size_t len) {
        snprintf(out, len, "%s/instances/%s", ctx->cfg.storage, uuid);
}

static void blob_path(sf_ctx_t *ctx, const char *uuid, char *out, size_t len) {
        snprintf(out, len, "%s/blobs/%.2s/%s", ctx->cfg.storage, uuid, uuid);
}

/* Device names per api.md §6.1: index over the final list, by bus. */
static void device_name(const char *bus, int index, char out[16]) {
        if (strcmp(bus, "virtio") == 0)
                snprintf(out, 16, "vd%c", 'a' + index);
        else if (strcmp(bus, "nvme") == 0)
                snprintf(out, 16, "nvme%d", index);
        else
                snprintf(out, 16, "sd%c", 'a' + index);
}

/* The artifact's current blob if it is on this node, else *ret = NULL.  Returns
 * -EIO when the artifact failed (message in err). */
static int current_blob(sf_ctx_t *ctx, const char *art_uuid, char ret_blob[SF_UUID_LEN], bool *ready,
                        char *err, size_t errlen) {
        _cleanup_json_ json_object *art = NULL, *blob = NULL;
        json_object *blobs, *cur, *locs;
        char idx[24], path[4096];
        const char *st, *bu;
        struct stat sb;

        *ready = false;
        if (sf_store_get(ctx->store, "artifact", art_uuid, &art, NULL) < 0) {
                snprintf(err, errlen, "image artifact %s vanished", art_uuid);
                return -EIO;
        }
        st = sf_json_str(art, "state") ?: "";
        if (strcmp(st, "error") == 0 || strcmp(st, "deleted") == 0) {
                if (sf_json_str(art, "error_message"))
                        snprintf(err, errlen, "%s", sf_json_str(art, "error_message"));
                else
                        snprintf(err, errlen, "image fetch failed: artifact is %s", st);
                return -EIO;
        }
        snprintf(idx, sizeof(idx), "%lld", (long long)sf_json_int(art, "index", 0));
        if (strcmp(st, "created") != 0 || !json_object_object_get_ex(art, "blobs", &blobs) ||
            !json_object_object_get_ex(blobs, idx, &cur) || !(bu = sf_json_str(cur, "uuid")))
                return 0;
        if (sf_store_get(ctx->store, "blob", bu, &blob, NULL) < 0 ||
            !json_object_object_get_ex(blob, "locations", &locs))
                return 0;
        for (size_t i = 0; i < json_object_array_length(locs); i++) {
                if (strcmp(json_object_get_string(json_object_array_get_idx(locs, i)), ctx->cfg.node) != 0)
                        continue;
                blob_path(ctx, bu, path, sizeof(path));
                if (stat(path, &sb) == 0) {
                        snprintf(ret_blob, SF_UUID_LEN, "%s", bu);
                        *ready = true;
                }
        }
        return 0;
}

/* The qcow2 a disk overlay stacks on: the blob itself when it is a self-contained
 * qcow2, a qcow2 transcode of it in image_cache/ (made once, atomically) when it is raw.
 * The format is sf's own reading of the blob's header, never qemu-img's guess: an image
 * that could make qemu read other files (a vmdk extent, a backing or data file) or that
 * is in any other format is refused with -EMEDIUMTYPE and the reason. */
static int image_for_blob(sf_ctx_t *ctx, const char *blob, char *out, size_t len, char *reason,
                          size_t reason_len) {
        char src[4096], dir[4096];
        sf_imgfmt_t fmt;
        int r;

        blob_path(ctx, blob, src, sizeof(src));
        r = sf_imgfmt_detect(src, &fmt, reason, reason_len);
        if (r < 0)
                return r;
        if (fmt == SF_IMGFMT_QCOW2) {
                snprintf(out, len, "%s", src);
                return 0;
        }
        snprintf(dir, sizeof(dir), "%s/image_cache", ctx->cfg.storage);
        r = sf_mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        snprintf(out, len, "%s/%s.qcow2", dir, blob);
        return sf_disk_to_qcow2(src, fmt, out);
}

typedef struct {
        json_object *disks;
        const char *power;
        bool power_changed;
} built_t;

static int apply_built(json_object *doc, void *ud) {
        built_t *b = ud;

        b->power_changed = strcmp(sf_json_str(doc, "power_state") ?: "", b->power) != 0;
        json_object_object_add(doc, "disks", json_object_get(b->disks));
        json_object_object_add(doc, "power_state", json_object_new_string(b->power));
        return 0;
}

/* What the create steps assemble, in order; each step returns an SF_WORK_* result. */
typedef struct {
        sf_work_t *w;
        json_object *inst;
        const sf_fence_t *fence;
        const char *uuid, *ns;
        char dir[4096], cd_path[4200];
        bool with_cd;
        sf_domain_disk_t disks[SF_MAX_BLOCK_DEVICES];
        size_t nd;
        sf_domain_nic_t nics[SF_MAX_NICS];
        sf_cd_iface_t cdifs[SF_MAX_NICS];
        size_t nn;
        json_object *disk_view; /* the record's "disks" */
        char *xml;
        double step; /* start of the current step, for its status event */
} create_t;

static void create_step_done(create_t *c, const char *what, json_object *extra) {
        sf_event_emit(c->w->ctx, "instance", c->uuid, c->ns, "status", what, extra, sf_now() - c->step);
        c->step = sf_now();
}

static int create_instance_dir(create_t *c) {
        int r;

        instance_dir(c->w->ctx, c->uuid, c->dir, sizeof(c->dir));
        r = sf_mkdir_p(c->dir, 0755);
        if (r < 0)
                return sf_work_error(c->w, "cannot create %s: %s", c->dir, strerror(-r)), SF_WORK_RETRY;
        snprintf(c->cd_path, sizeof(c->cd_path), "%s/config.iso", c->dir);
        return SF_WORK_DONE;
}

static void disk_view_add(create_t *c, const sf_domain_disk_t *d, int64_t size, const char *blob, bool cd) {
        json_object *dv = json_object_new_object();

        json_object_object_add(dv, "device", json_object_new_string(d->device));
        json_object_object_add(dv, "bus", json_object_new_string(d->bus));
        json_object_object_add(dv, "size", size > 0 ? json_object_new_int64(size) : NULL);
        json_object_object_add(dv, "blob_uuid", blob && blob[0] ? json_object_new_string(blob) : NULL);
        json_object_object_add(dv, "snapshot_ignores", json_object_new_boolean(cd));
        json_object_array_add(c->disk_view, dv);
}

/* One disk from its spec: a qcow2 overlay on its image (art), or a blank qcow2. */
static int create_disk(create_t *c, json_object *spec, const char *art) {
        sf_work_t *w = c->w;
        const char *bus = sf_json_str(spec, "bus") ?: "virtio";
        int64_t size = sf_json_int(spec, "size", 0);
        sf_domain_disk_t *d = &c->disks[c->nd];
        char blob[SF_UUID_LEN] = "", base[4096] = "", err[256] = "";
        bool ready;
        int r;

        device_name(bus, (int)c->nd, d->device);
        snprintf(d->bus, sizeof(d->bus), "%s", bus);
        snprintf(d->type, sizeof(d->type), "disk");
        snprintf(d->format, sizeof(d->format), "qcow2");
        {
                char dev[sizeof(d->device)];
                memcpy(dev, d->device, sizeof(dev));
                snprintf(d->path, sizeof(d->path), "%s/%s.qcow2", c->dir, dev);
        }
        if (art && *art) {
                r = current_blob(w->ctx, art, blob, &ready, err, sizeof(err));
                if (r < 0 || !ready)
                        return sf_work_error(w, "%s", err[0] ? err : "image vanished"), SF_WORK_FAIL;
                r = image_for_blob(w->ctx, blob, base, sizeof(base), err, sizeof(err));
                if (r == -EMEDIUMTYPE)
                        return sf_work_error(w, "%s", err), SF_WORK_FAIL;
                if (r < 0)
                        return sf_work_error(w, "cannot prepare image: %s", strerror(-r)), SF_WORK_RETRY;
                r = sf_disk_overlay(base, d->path, (uint64_t)size);
                if (r == -ERANGE)
                        return sf_work_error(w, "ImagesCannotShrink: disk %s is smaller than its image", d->device),
                               SF_WORK_FAIL;
                if (r < 0)
                        return sf_work_error(w, "cannot create disk %s: %s", d->device, strerror(-r)), SF_WORK_RETRY;
                snprintf(d->backing, sizeof(d->backing), "%s", base);
                snprintf(d->backing_format, sizeof(d->backing_format), "qcow2");
        } else {
                r = sf_disk_blank(d->path, (uint64_t)(size > 0 ? size : 0));
                if (r < 0)
                        return sf_work_error(w, "cannot create blank disk: %s", strerror(-r)), SF_WORK_RETRY;
        }
        sf_work_progress(w); /* disks can take a while: keep the ack timer fresh */
        disk_view_add(c, d, size, blob, false);
        c->nd++;
        return SF_WORK_DONE;
}

/* The config drive's device, right after disk 0 on the same bus. */
static void add_config_drive_device(create_t *c) {
        sf_domain_disk_t *cd = &c->disks[c->nd];
        char bus[sizeof(cd->bus)];

        memcpy(bus, c->disks[0].bus, sizeof(bus));
        device_name(bus, (int)c->nd, cd->device);
        snprintf(cd->bus, sizeof(cd->bus), "%s", bus);
        snprintf(cd->type, sizeof(cd->type), "disk");
        snprintf(cd->format, sizeof(cd->format), "raw");
        snprintf(cd->path, sizeof(cd->path), "%s", c->cd_path);
        cd->readonly = true;
        disk_view_add(c, cd, 0, NULL, true);
        c->nd++;
}

/* Disks: disk 0, then the config drive as device 1, then the rest. */
static int create_disks(create_t *c) {
        json_object *spec_list = NULL, *arts = NULL;
        int res;

        json_object_object_get_ex(c->inst, "disk_spec", &spec_list);
        json_object_object_get_ex(c->inst, "artifacts", &arts);
        /* The API refuses more (same constants); a record from elsewhere fails, never truncates. */
        if (json_object_array_length(spec_list) > SF_MAX_DISKS)
                return sf_work_error(c->w, "too many disks (at most %d)", SF_MAX_DISKS), SF_WORK_FAIL;
        for (size_t i = 0; i < json_object_array_length(spec_list); i++) {
                const char *art = arts ? json_object_get_string(json_object_array_get_idx(arts, i)) : NULL;

                res = create_disk(c, json_object_array_get_idx(spec_list, i), art);
                if (res != SF_WORK_DONE)
                        return res;
                if (i == 0 && c->with_cd)
                        add_config_drive_device(c);
        }
        create_step_done(c, "block devices created", NULL);
        return SF_WORK_DONE;
}

/* NICs and the config drive's network_data. */
static int create_nics(create_t *c) {
        sf_ctx_t *ctx = c->w->ctx;
        json_object *ifaces;

        if (!json_object_object_get_ex(c->inst, "interfaces", &ifaces))
                return SF_WORK_DONE;
        if (json_object_array_length(ifaces) > SF_MAX_NICS)
                return sf_work_error(c->w, "too many network interfaces (at most %d)", SF_MAX_NICS), SF_WORK_FAIL;
        for (size_t i = 0; i < json_object_array_length(ifaces); i++) {
                _cleanup_json_ json_object *iface = NULL, *net = NULL;
                const char *iu = json_object_get_string(json_object_array_get_idx(ifaces, i));
                sf_domain_nic_t *nic = &c->nics[c->nn];
                sf_cd_iface_t *cdif = &c->cdifs[c->nn];
                sf_cidr_t cidr;

                if (sf_store_get(ctx->store, "networkinterface", iu, &iface, NULL) < 0 ||
                    sf_store_get(ctx->store, "network", sf_json_str(iface, "network_uuid") ?: "-", &net, NULL) < 0)
                        return sf_work_error(c->w, "interface %s vanished", iu), SF_WORK_FAIL;
                const char *mac = sf_json_str(iface, "macaddr") ?: "";

                snprintf(nic->mac, sizeof(nic->mac), "%s", mac);
                snprintf(nic->bridge, sizeof(nic->bridge), "br-vxlan-%06llx",
                         (unsigned long long)sf_json_int(net, "vxid", 0));
                snprintf(nic->model, sizeof(nic->model), "%s", sf_json_str(iface, "model") ?: "virtio");
                nic->mtu = ctx->cfg.mtu;
                snprintf(cdif->uuid, sizeof(cdif->uuid), "%s", iu);
                snprintf(cdif->mac, sizeof(cdif->mac), "%s", mac);
                snprintf(cdif->ipv4, sizeof(cdif->ipv4), "%s", sf_json_str(iface, "ipv4") ?: "");
                snprintf(cdif->network_uuid, sizeof(cdif->network_uuid), "%s", sf_json_str(net, "uuid"));
                if (sf_cidr_parse(sf_json_str(net, "netblock"), &cidr, NULL) == 0) {
                        sf_cidr_netmask(&cidr, cdif->netmask);
                        sf_cidr_addr(&cidr, 1, cdif->gateway);
                }
                cdif->order = (int)sf_json_int(iface, "order", (int64_t)i);
                c->nn++;
        }
        return SF_WORK_DONE;
}

static int create_config_drive(create_t *c) {
        sf_ctx_t *ctx = c->w->ctx;
        sf_configdrive_t cd = {.ssh_key = sf_json_str(c->inst, "ssh_key"),
                               .user_data_b64 = sf_json_str(c->inst, "user_data"),
                               .mtu = ctx->cfg.mtu,
                               .ifaces = c->cdifs,
                               .nifaces = c->nn};
        int r;

        if (!c->with_cd)
                return SF_WORK_DONE;
        snprintf(cd.uuid, sizeof(cd.uuid), "%s", c->uuid);
        snprintf(cd.name, sizeof(cd.name), "%s", sf_json_str(c->inst, "name") ?: "");
        snprintf(cd.zone, sizeof(cd.zone), "%s", ctx->cfg.zone);
        snprintf(cd.dns_server, sizeof(cd.dns_server), "%s", ctx->cfg.dns_server);
        r = sf_configdrive_build(&cd, c->cd_path);
        if (r == -EINVAL)
                return sf_work_error(c->w, "invalid config drive input (user_data)"), SF_WORK_FAIL;
        if (r < 0)
                return sf_work_error(c->w, "cannot build config drive: %s", strerror(-r)), SF_WORK_RETRY;
        create_step_done(c, "config drive written", NULL);
        return SF_WORK_DONE;
}

static int create_domain_xml(create_t *c) {
        sf_ctx_t *ctx = c->w->ctx;
        sf_compute_t *cs = c->w->user;
        sf_domain_spec_t spec = {.memory_mib = (int)sf_json_int(c->inst, "memory", 256),
                                 .vcpus = (int)sf_json_int(c->inst, "cpus", 1),
                                 .disks = c->disks,
                                 .ndisks = c->nd,
                                 .nics = c->nics,
                                 .nnics = c->nn};
        int r;

        snprintf(spec.uuid, sizeof(spec.uuid), "%s", c->uuid);
        snprintf(spec.name, sizeof(spec.name), "%s", sf_json_str(c->inst, "name") ?: "");
        snprintf(spec.node, sizeof(spec.node), "%s", ctx->cfg.node);
        snprintf(spec.domain_type, sizeof(spec.domain_type), "%s", cs->domain_type);
        snprintf(spec.machine, sizeof(spec.machine), "%s", sf_json_str(c->inst, "machine_type") ?: "pc");
        snprintf(spec.console_log, sizeof(spec.console_log), "%s/console.log", c->dir);
        r = sf_domain_xml(&spec, NULL, &c->xml);
        if (r < 0)
                return sf_work_error(c->w, "cannot render domain XML: %s", strerror(-r)), SF_WORK_FAIL;
        return SF_WORK_DONE;
}

static int create_define_start(create_t *c) {
        sf_compute_t *cs = c->w->user;
        _cleanup_json_ json_object *extra = NULL;
        int r;

        r = sf_virt_define_start(cs->conn, c->xml);
        if (r < 0)
                return sf_work_error(c->w, "libvirt could not start the domain: %s", strerror(-r)), SF_WORK_RETRY;
        extra = json_object_new_object();
        json_object_object_add(extra, "domain_type", json_object_new_string(cs->domain_type));
        create_step_done(c, "domain defined and started", extra);
        return SF_WORK_DONE;
}

static int create_record(create_t *c) {
        built_t built = {.disks = c->disk_view, .power = "on"};
        int r;

        r = sf_store_update(c->w->ctx->store, "instance", c->uuid, c->fence, apply_built, &built, NULL);
        if (r < 0)
                return sf_work_error(c->w, "cannot record disks: %s", strerror(-r)), SF_WORK_RETRY;
        /* A power change is an attribute write like any other: a "set attribute" event, so
         * event readers and the live stream see it (lib/object.c does the same). */
        if (built.power_changed) {
                _cleanup_json_ json_object *extra = json_object_new_object();

                json_object_object_add(extra, "attribute", json_object_new_string("power_state"));
                json_object_object_add(extra, "value", json_object_new_string(built.power));
                sf_event_emit(c->w->ctx, "instance", c->uuid, c->ns, "mutate", "set attribute", extra, -1);
        }
        return SF_WORK_DONE;
}

/* Each step re-checks what exists, so a redelivery after a kill -9 anywhere converges. */
static int build_and_start(sf_work_t *w, json_object *inst, const sf_fence_t *fence) {
        static int (*const steps[])(create_t *) = {
                create_instance_dir, create_disks,        create_nics,   create_config_drive,
                create_domain_xml,   create_define_start, create_record,
        };
        create_t *c = calloc(1, sizeof(*c));
        int res = SF_WORK_DONE;

        if (!c)
                return sf_work_error(w, "out of memory"), SF_WORK_RETRY;
        c->w = w;
        c->inst = inst;
        c->fence = fence;
        c->uuid = sf_json_str(inst, "uuid");
        c->ns = sf_json_str(inst, "namespace");
        c->with_cd = strcmp(sf_json_str(inst, "configdrive") ?: "openstack-disk", "none") != 0;
        c->disk_view = json_object_new_array();
        c->step = sf_now();
        for (size_t i = 0; i < SF_ARRAY_SIZE(steps) && res == SF_WORK_DONE; i++)
                res = steps[i](c);
        json_object_put(c->disk_view);
        free(c->xml);
        free(c);
        return res;
}

/* The per-instance lock; one left by a dead sf-compute of this node is broken at once
 * (fencing keeps that safe) rather than waited out. */
static int lock_instance(sf_ctx_t *ctx, const char *uuid, int wait_ms, sf_lock_t **ret) {
        char name[64];

        snprintf(name, sizeof(name), "instance/%s", uuid);
        return sf_lock_acquire_worker(ctx->store, name, ctx->cfg.node, LOCK_TTL_MS, wait_ms, ret);
}

/* Waits for the other workers' steps; returns SF_WORK_DONE when all are ready. */
static int preconditions(sf_work_t *w, json_object *inst) {
        sf_ctx_t *ctx = w->ctx;
        json_object *ifaces, *arts;

        if (json_object_object_get_ex(inst, "interfaces", &ifaces)) {
                for (size_t i = 0; i < json_object_array_length(ifaces); i++) {
                        _cleanup_json_ json_object *iface = NULL;
                        const char *iu = json_object_get_string(json_object_array_get_idx(ifaces, i)), *st;
                        if (sf_store_get(ctx->store, "networkinterface", iu, &iface, NULL) < 0)
                                return sf_work_error(w, "interface %s vanished", iu), SF_WORK_FAIL;
                        st = sf_json_str(iface, "state") ?: "";
                        if (strcmp(st, "error") == 0 || strcmp(st, "deleted") == 0)
                                return sf_work_error(w, "network interface %s is %s: %s", iu, st,
                                                     sf_json_str(iface, "error_message") ?: ""),
                                       SF_WORK_FAIL;
                        if (strcmp(st, "created") != 0)
                                return sf_work_error(w, "waiting for network interface %s", iu), SF_WORK_WAIT;
                }
        }
        if (json_object_object_get_ex(inst, "artifacts", &arts)) {
                for (size_t i = 0; i < json_object_array_length(arts); i++) {
                        const char *au = json_object_get_string(json_object_array_get_idx(arts, i));
                        char blob[SF_UUID_LEN], err[256] = "";
                        bool ready = false;
                        if (!au || !*au)
                                continue;
                        if (current_blob(ctx, au, blob, &ready, err, sizeof(err)) < 0)
                                return sf_work_error(w, "%s", err), SF_WORK_FAIL;
                        if (!ready)
                                return sf_work_error(w, "waiting for image %s", au), SF_WORK_WAIT;
                }
        }
        return SF_WORK_DONE;
}

/* libvirtd may have restarted under us: reconnect before using the connection, so no
 * handler needs an sf-compute restart to work again.  Returns SF_WORK_DONE when usable. */
static int virt_ready(sf_work_t *w) {
        sf_compute_t *cs = w->user;
        int r = sf_virt_ensure_alive(w->ctx->cfg.libvirt_uri, &cs->conn);

        if (r < 0)
                return sf_work_error(w, "libvirt is unreachable: %s", strerror(-r)), SF_WORK_RETRY;
        return SF_WORK_DONE;
}

static int handle_create(sf_work_t *w) {
        sf_ctx_t *ctx = w->ctx;
        const char *uuid = w->intent->object_uuid;
        _cleanup_json_ json_object *inst = NULL;
        sf_lock_t *lock = NULL;
        sf_fence_t fence;
        const char *st;
        double t0 = sf_now();
        int r, res;

        r = sf_store_get(ctx->store, "instance", uuid, &inst, NULL);
        if (r == -ENOENT)
                return SF_WORK_DONE;
        if (r < 0)
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        st = sf_json_str(inst, "state") ?: "";
        if (strcmp(st, "initial") != 0 && strcmp(st, "preflight") != 0 && strcmp(st, "creating") != 0)
                return SF_WORK_DONE; /* created already, or being deleted, or failed */
        res = preconditions(w, inst);
        if (res != SF_WORK_DONE)
                return res;
        res = virt_ready(w);
        if (res != SF_WORK_DONE)
                return res;

        r = lock_instance(ctx, uuid, 2000, &lock);
        if (r == -EBUSY)
                return sf_work_error(w, "instance is locked"), SF_WORK_WAIT;
        if (r < 0)
                return sf_work_error(w, "lock: %s", strerror(-r)), SF_WORK_RETRY;
        fence = sf_lock_fence(lock);
        if (strcmp(st, "initial") == 0) {
                r = sf_obj_set_state(ctx, "instance", uuid, "preflight", NULL, &fence, NULL);
                st = "preflight";
        }
        if (r == 0 && strcmp(st, "preflight") == 0)
                r = sf_obj_set_state(ctx, "instance", uuid, "creating", NULL, &fence, NULL);
        if (r < 0) {
                sf_lock_release(ctx->store, lock);
                /* -EINVAL: somebody moved it (a delete): nothing left for us. */
                return r == -EINVAL ? SF_WORK_DONE : (sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY);
        }
        sf_work_progress(w);
        res = build_and_start(w, inst, &fence);
        if (res == SF_WORK_DONE) {
                r = sf_obj_set_state(ctx, "instance", uuid, "created", NULL, &fence, NULL);
                if (r < 0 && r != -EINVAL)
                        res = (sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY);
                else
                        sf_event_emit(ctx, "instance", uuid, sf_json_str(inst, "namespace"), "status",
                                      "instance started", NULL, sf_now() - t0);
        }
        sf_lock_release(ctx->store, lock);
        return res;
}

/* Remove everything the instance holds on this node and in IPAM: domain, instance
 * directory, addresses and MACs.  Idempotent: each step treats "already gone" as done,
 * so a teardown interrupted half-way finishes when it runs again. */
static int instance_remove_local(sf_work_t *w, json_object *inst) {
        sf_ctx_t *ctx = w->ctx;
        sf_compute_t *cs = w->user;
        const char *uuid = sf_json_str(inst, "uuid");
        char name[64], dir[4096];
        json_object *ifaces;
        int r;

        if (virt_ready(w) != SF_WORK_DONE)
                return -EIO;
        sf_domain_name(uuid, name);
        r = sf_virt_destroy_undefine(cs->conn, name);
        if (r < 0)
                return sf_work_error(w, "libvirt could not remove the domain: %s", strerror(-r)), -EIO;
        instance_dir(ctx, uuid, dir, sizeof(dir));
        r = sf_rm_rf(dir);
        if (r < 0)
                return sf_work_error(w, "cannot remove %s: %s", dir, strerror(-r)), -EIO;
        if (json_object_object_get_ex(inst, "interfaces", &ifaces)) {
                for (size_t i = 0; i < json_object_array_length(ifaces); i++) {
                        _cleanup_json_ json_object *net = NULL;
                        const char *iu = json_object_get_string(json_object_array_get_idx(ifaces, i));
                        char nu[SF_UUID_LEN];

                        if (!iu || sf_obj_release_interface(ctx, iu, nu) < 0)
                                return sf_work_error(w, "cannot release interface %s", iu ? iu : "?"), -EIO;
                        /* The network node drops the DHCP host entry. */
                        if (nu[0] && sf_store_get(ctx->store, "network", nu, &net, NULL) == 0)
                                sf_intent_submit(ctx, sf_json_str(net, "node") ?: ctx->cfg.network_node, "network",
                                                 "network.refresh", "network", nu, sf_json_str(net, "namespace"),
                                                 NULL, NULL);
                }
        }
        return 0;
}

/* A user's delete, from any state (api.md §4.3): -> delete-wait -> deleted.  A delete
 * that failed before (delete-wait-error) goes through error first, the only way out of
 * delete-wait-error upstream allows; the teardown then finishes what is left. */
static int handle_delete(sf_work_t *w) {
        sf_ctx_t *ctx = w->ctx;
        const char *uuid = w->intent->object_uuid;
        _cleanup_json_ json_object *inst = NULL;
        sf_lock_t *lock = NULL;
        sf_fence_t fence;
        int r;

        r = sf_store_get(ctx->store, "instance", uuid, &inst, NULL);
        if (r == -ENOENT)
                return SF_WORK_DONE;
        if (r < 0)
                return sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY;
        if (strcmp(sf_json_str(inst, "state") ?: "", "deleted") == 0)
                return SF_WORK_DONE;
        r = lock_instance(ctx, uuid, 5000, &lock);
        if (r == -EBUSY)
                return sf_work_error(w, "instance is locked"), SF_WORK_WAIT;
        if (r < 0)
                return sf_work_error(w, "lock: %s", strerror(-r)), SF_WORK_RETRY;
        fence = sf_lock_fence(lock);
        r = 0;
        if (strcmp(sf_json_str(inst, "state") ?: "", "delete-wait-error") == 0)
                r = sf_obj_set_state(ctx, "instance", uuid, "error", NULL, &fence, NULL);
        if (r == 0)
                r = sf_obj_set_state(ctx, "instance", uuid, "delete-wait", NULL, &fence, NULL);
        if (r == 0)
                r = instance_remove_local(w, inst);
        if (r == 0) {
                _cleanup_json_ json_object *off = json_object_new_string("off");
                sf_obj_set_field(ctx, "instance", uuid, "power_state", json_object_get(off), &fence);
                r = sf_obj_set_state(ctx, "instance", uuid, "deleted", NULL, &fence, NULL);
        }
        sf_lock_release(ctx->store, lock);
        if (r == -EINVAL)
                return SF_WORK_DONE; /* somebody else finished it */
        if (r < 0)
                return w->error[0] ? SF_WORK_RETRY : (sf_work_error(w, "redis: %s", strerror(-r)), SF_WORK_RETRY);
        return SF_WORK_DONE;
}

/* A create that cannot succeed: <state>-error with the message, then clean up and
 * leave it listed as error until the user deletes it (api.md §4.3).  Under the
 * instance lock and fenced like the handlers: a paused process that wakes up after
 * a newer holder (a delete) took over must not write over its result.  If the lock
 * cannot be had, whoever holds it decides; the instance keeps its state and the
 * reconciler's stuck re-drive tries again. */
static void mark_create_failed(sf_work_t *w, const char *msg) {
        sf_ctx_t *ctx = w->ctx;
        const char *uuid = w->intent->object_uuid;
        _cleanup_json_ json_object *inst = NULL;
        sf_lock_t *lock = NULL;
        sf_fence_t fence;
        char to[48];
        int r;

        r = lock_instance(ctx, uuid, 5000, &lock);
        if (r < 0) {
                log_warn("instance %s: cannot lock to record its failure (%s): %s", uuid, strerror(-r), msg);
                return;
        }
        fence = sf_lock_fence(lock);
        if (sf_store_get(ctx->store, "instance", uuid, &inst, NULL) < 0)
                goto cleanup;
        snprintf(to, sizeof(to), "%s-error", sf_json_str(inst, "state") ?: "initial");
        if (!sf_state_ok("instance", sf_json_str(inst, "state"), to))
                goto cleanup;
        if (sf_obj_set_state(ctx, "instance", uuid, to, msg, &fence, NULL) < 0)
                goto cleanup;
        w->error[0] = 0;
        if (instance_remove_local(w, inst) == 0)
                sf_obj_set_state(ctx, "instance", uuid, "error", NULL, &fence, NULL);
cleanup:
        sf_lock_release(ctx->store, lock);
}

/* A delete that cannot finish: delete-wait-error, fenced as above.  Asking again
 * (DELETE) goes error -> delete-wait and re-runs the idempotent teardown. */
static void mark_delete_failed(sf_work_t *w, const char *msg) {
        sf_ctx_t *ctx = w->ctx;
        const char *uuid = w->intent->object_uuid;
        sf_lock_t *lock = NULL;
        sf_fence_t fence;
        int r;

        r = lock_instance(ctx, uuid, 5000, &lock);
        if (r < 0) {
                log_warn("instance %s: cannot lock to record its failed delete (%s): %s", uuid, strerror(-r), msg);
                return;
        }
        fence = sf_lock_fence(lock);
        sf_obj_set_state(ctx, "instance", uuid, "delete-wait-error", msg, &fence, NULL);
        sf_lock_release(ctx->store, lock);
}

const sf_handler_t sf_compute_handlers[] = {
        {.kind = "instance.create", .fn = handle_create, .on_fail = mark_create_failed, .deadline_s = 1800},
        {.kind = "instance.delete", .fn = handle_delete, .on_fail = mark_delete_failed},
};
const size_t sf_compute_nhandlers = SF_ARRAY_SIZE(sf_compute_handlers);

/* ---- heartbeat ---- */

#define HEARTBEAT_INTERVAL_MS 5000

static int apply_heartbeat(json_object *doc, void *ud) {
        json_object *fresh = ud;

        json_object_object_foreach(fresh, k, v) json_object_object_add(doc, k, json_object_get(v));
        return 0;
}

/* Writes this node's record: lastseen and metrics.  Runs on the heartbeat thread with
 * that thread's own context. */
static void heartbeat_write(sf_ctx_t *ctx, const sf_compute_t *cs) {
        _cleanup_json_ json_object *doc = json_object_new_object(), *m = json_object_new_object(), *after = NULL;
        static bool warned_deleted;
        struct sysinfo si;
        struct statvfs vfs;
        char **insts = NULL;
        size_t ninst = 0;
        int r;

        json_object_object_add(doc, "uuid", json_object_new_string(ctx->cfg.node));
        json_object_object_add(doc, "name", json_object_new_string(ctx->cfg.node));
        json_object_object_add(doc, "ip", json_object_new_string(ctx->cfg.mesh_ip));
        json_object_object_add(doc, "lastseen", json_object_new_int64((int64_t)sf_now()));
        json_object_object_add(doc, "is_hypervisor", json_object_new_boolean(true));
        json_object_object_add(doc, "is_network_node",
                               json_object_new_boolean(strcmp(ctx->cfg.node, ctx->cfg.network_node) == 0));
        json_object_object_add(doc, "domain_type", json_object_new_string(cs->domain_type));
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
        json_object_object_add(m, "cpu_max", json_object_new_int64(sysconf(_SC_NPROCESSORS_ONLN)));
        if (statvfs(ctx->cfg.storage, &vfs) == 0)
                json_object_object_add(m, "disk_free_instances",
                                       json_object_new_int64((int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize));
        if (sf_store_index(ctx->store, "instance", "node", ctx->cfg.node, &insts, &ninst) == 0)
                sf_strv_free(insts);
        json_object_object_add(m, "instances", json_object_new_int64((int64_t)ninst));
        json_object_object_add(doc, "metrics", json_object_get(m));
        r = sf_store_update(ctx->store, "node", ctx->cfg.node, NULL, apply_heartbeat, doc, &after);
        /* A deleted node stays deleted (docs/architecture.md "Node delete"): its lastseen
         * still moves, so the operator sees it is alive, but it gets no new instances. */
        if (r == 0 && strcmp(sf_json_str(after, "state") ?: "", "deleted") == 0 && !warned_deleted) {
                log_warn("node %s is deleted: it gets no new instances (re-add it under a new SF_NODE name)",
                         ctx->cfg.node);
                warned_deleted = true;
        }
        if (r == -ENOENT) {
                json_object_object_add(doc, "state", json_object_new_string("created"));
                json_object_object_add(doc, "metadata", json_object_new_object());
                sf_obj_create(ctx, "node", ctx->cfg.node, doc);
        }
}

/* The heartbeat has its own thread and Redis connection (hiredis is not thread-safe),
 * so a handler that takes ten minutes (an image conversion) never makes the node look
 * dead to the scheduler (NODE_LIVE_S, 120 s). */
static void *heartbeat_main(void *arg) {
        sf_compute_t *cs = arg;
        sf_ctx_t ctx = {0};
        bool open = false;

        pthread_mutex_lock(&cs->hb_mutex);
        while (!cs->hb_stop) {
                struct timespec until;

                pthread_mutex_unlock(&cs->hb_mutex);
                if (!open)
                        open = sf_ctx_open(&ctx, false, 0) == 0;
                if (open)
                        heartbeat_write(&ctx, cs);
                clock_gettime(CLOCK_MONOTONIC, &until);
                until.tv_sec += HEARTBEAT_INTERVAL_MS / 1000;
                pthread_mutex_lock(&cs->hb_mutex);
                while (!cs->hb_stop && pthread_cond_timedwait(&cs->hb_cond, &cs->hb_mutex, &until) != ETIMEDOUT)
                        ;
        }
        pthread_mutex_unlock(&cs->hb_mutex);
        if (open)
                sf_ctx_close(&ctx);
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

/* ---- reconciliation ----
 * Every removal below acts only on certainty: a record that a successful read found
 * absent (-ENOENT) or `deleted`.  A Redis error, timeout, LOADING reply or corrupt
 * document, and any libvirt error, mean "don't know": touch nothing and end the pass
 * (the next one, SF_RECONCILE_INTERVAL later, looks again). */

/* 0 and *ret_gone set when the answer is certain; the read's error otherwise. */
static int instance_gone(sf_ctx_t *ctx, const char *uuid, bool *ret_gone) {
        _cleanup_json_ json_object *inst = NULL;
        int r;

        r = sf_store_get(ctx->store, "instance", uuid, &inst, NULL);
        if (r == -ENOENT) {
                *ret_gone = true;
                return 0;
        }
        if (r < 0)
                return r;
        *ret_gone = strcmp(sf_json_str(inst, "state") ?: "", "deleted") == 0;
        return 0;
}

/* Domains of this node whose instance is gone (a crash between undefine and the state
 * write is covered by the delete intent; this catches records that vanished). */
static int reconcile_domains(sf_ctx_t *ctx, sf_compute_t *cs) {
        char **uuids = NULL;
        size_t n = 0;
        int r;

        r = sf_virt_list_sf(cs->conn, ctx->cfg.node, &uuids, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char name[64];
                bool gone = false;

                r = instance_gone(ctx, uuids[i], &gone);
                if (r < 0) {
                        log_warn("reconciler: cannot read instance %s (%s); leaving every domain alone this pass",
                                 uuids[i], strerror(-r));
                        break;
                }
                if (!gone)
                        continue;
                sf_domain_name(uuids[i], name);
                log_warn("reconciler: removing leaked domain %s", name);
                sf_virt_destroy_undefine(cs->conn, name);
        }
        sf_virt_strv_free(uuids, n);
        return r;
}

/* Instance directories (disks, config drive, console) that nobody owns any more: the
 * instance is gone and libvirt says for certain there is no domain using them. */
static int reconcile_instance_dirs(sf_ctx_t *ctx, sf_compute_t *cs) {
        char dir[4096];
        struct dirent *e;
        DIR *d;
        int r = 0;

        snprintf(dir, sizeof(dir), "%s/instances", ctx->cfg.storage);
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((e = readdir(d))) {
                char path[4400], name[64];
                bool gone = false;
                int st = 0;

                if (!sf_uuid_parse(e->d_name, NULL))
                        continue;
                r = instance_gone(ctx, e->d_name, &gone);
                if (r < 0) {
                        log_warn("reconciler: cannot read instance %s (%s); leaving instance files alone this pass",
                                 e->d_name, strerror(-r));
                        break;
                }
                if (!gone)
                        continue;
                sf_domain_name(e->d_name, name);
                r = sf_virt_state(cs->conn, name, &st);
                if (r != -ENOENT) {
                        r = 0; /* a domain still uses it (the domain pass goes first), or libvirt is unsure */
                        continue;
                }
                r = 0;
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                log_warn("reconciler: removing leaked instance files %s", path);
                sf_rm_rf(path);
        }
        closedir(d);
        return r;
}

/* Instances stuck in a transitional state without progress get a fresh intent (e.g.
 * the API died between writing the record and recording its intent). */
static int reconcile_stuck(sf_ctx_t *ctx) {
        char **insts = NULL;
        int r;

        r = sf_store_index(ctx->store, "instance", "node", ctx->cfg.node, &insts, NULL);
        if (r < 0)
                return r;
        for (char **p = insts; *p; p++) {
                _cleanup_json_ json_object *inst = NULL;
                const char *st;
                double age;

                r = sf_store_get(ctx->store, "instance", *p, &inst, NULL);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        break;
                st = sf_json_str(inst, "state") ?: "";
                age = sf_now() - json_object_get_double(json_object_object_get(inst, "state_updated"));
                if (age < ctx->cfg.stuck_after_s || strcmp(sf_json_str(inst, "node") ?: "", ctx->cfg.node) != 0)
                        continue;
                if (strcmp(st, "initial") == 0 || strcmp(st, "preflight") == 0 || strcmp(st, "creating") == 0)
                        sf_intent_submit(ctx, ctx->cfg.node, "compute", "instance.create", "instance", *p,
                                         sf_json_str(inst, "namespace"), NULL, NULL);
                else if (strcmp(st, "delete-wait") == 0)
                        sf_intent_submit(ctx, ctx->cfg.node, "compute", "instance.delete", "instance", *p,
                                         sf_json_str(inst, "namespace"), NULL, NULL);
        }
        sf_strv_free(insts);
        return r < 0 ? r : 0;
}

/* This node's pass: leaked domains, leaked files, stuck instances (each step only if
 * the one before was sure), then the intent re-drive. */
static void reconcile_node(sf_ctx_t *ctx, sf_compute_t *cs) {
        if (sf_virt_ensure_alive(ctx->cfg.libvirt_uri, &cs->conn) == 0 && reconcile_domains(ctx, cs) == 0 &&
            reconcile_instance_dirs(ctx, cs) == 0)
                reconcile_stuck(ctx);
        sf_intent_redrive(ctx, ctx->cfg.node, "compute", ctx->cfg.redrive_after_s, NULL);
}

/* Instances the API recorded but never placed (it died mid-create): once a minute,
 * cluster-wide (whoever takes the lock; it is left to expire), they go to error and
 * give their addresses back, so nothing waits for ever in "initial". */
static void reconcile_unplaced(sf_ctx_t *ctx) {
        char holder[96], **all = NULL;
        sf_lock_t *lock = NULL;

        sf_lock_holder(ctx->cfg.node, holder, sizeof(holder));
        if (sf_lock_acquire(ctx->store, "reconcile/unplaced", holder, 60000, 0, false, &lock) < 0)
                return;
        if (sf_store_index(ctx->store, "instance", "all", NULL, &all, NULL) == 0) {
                for (char **p = all; *p; p++) {
                        _cleanup_json_ json_object *inst = NULL;
                        json_object *ifaces = NULL;
                        const char *node;
                        int r = sf_store_get(ctx->store, "instance", *p, &inst, NULL);

                        if (r < 0 && r != -ENOENT)
                                break; /* Redis unsure: end the scan, touch nothing */
                        if (r < 0 || strcmp(sf_json_str(inst, "state") ?: "", "initial") != 0)
                                continue;
                        node = sf_json_str(inst, "node");
                        if ((node && *node) ||
                            sf_now() - json_object_get_double(json_object_object_get(inst, "state_updated")) < 300)
                                continue;
                        log_warn("reconciler: instance %s was never placed; marking it error", *p);
                        json_object_object_get_ex(inst, "interfaces", &ifaces);
                        for (size_t i = 0; ifaces && i < json_object_array_length(ifaces); i++)
                                sf_obj_release_interface(ctx, json_object_get_string(json_object_array_get_idx(ifaces, i)),
                                                         NULL);
                        sf_obj_set_state(ctx, "instance", *p, "initial-error",
                                         "creation was interrupted before the instance was placed", NULL, NULL);
                        sf_obj_set_state(ctx, "instance", *p, "error", NULL, NULL, NULL);
                }
                sf_strv_free(all);
        }
        /* Upstream's CLEANER_DELAY: deleted records go for good after a while. */
        {
                int n = 0;
                if (sf_obj_purge_deleted(ctx, ctx->cfg.cleaner_delay_s, &n) == 0 && n > 0)
                        log_info("cleaner: hard-deleted %d record(s) deleted more than %d s ago", n,
                                 ctx->cfg.cleaner_delay_s);
        }
        /* Not released: the TTL spaces the scans out across the cluster. */
        sf_lock_release(NULL, lock);
}

void sf_compute_tick(sf_ctx_t *ctx, void *user) {
        sf_compute_t *cs = user;

        if (sf_mono_ms() >= cs->next_reconcile_ms) {
                reconcile_node(ctx, cs);
                reconcile_unplaced(ctx);
                cs->next_reconcile_ms = sf_mono_ms() + (int64_t)ctx->cfg.reconcile_interval_s * 1000;
        }
}
