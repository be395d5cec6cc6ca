/* sf-compute: the build steps of a create (api.md §7 steps 5-6): disks, config drive,
 * domain XML, define + start, record.  Each step re-checks what exists. */
#include "compute.h"

#include "configdrive.h"
#include "crashpoint.h"
#include "disk.h"
#include "domain.h"
#include "imgfmt.h"
#include "ports.h"

#include "event.h"
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

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* OVMF from Debian's ovmf package (api.md §7.2; the 4M builds are the ones Debian keeps
 * current).  Secure boot: the secboot code with Microsoft's keys enrolled in the vars. */
#define OVMF_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define OVMF_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"
#define OVMF_CODE_SECBOOT "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
#define OVMF_VARS_SECBOOT "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
/* Spice gets a TLS port only where libvirt's spice TLS is set up (qemu.conf spice_tls=1
 * with these certificates): libvirt refuses a tlsPort otherwise. */
#define SPICE_TLS_CERT "/etc/pki/libvirt-spice/server-cert.pem"
/* define+start attempts when qemu finds a console/VDI port taken (as upstream). */
#define START_ATTEMPTS 6

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
int sf_compute_current_blob(sf_ctx_t *ctx, const char *art_uuid, char ret_blob[SF_UUID_LEN], bool *ready,
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
                sf_compute_blob_path(ctx, bu, path, sizeof(path));
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

        sf_compute_blob_path(ctx, blob, src, sizeof(src));
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
        sf_lock_t *lock;
        sf_fence_t fence;
        const char *uuid, *ns;
        char dir[4096], cd_path[4200];
        bool with_cd;
        sf_domain_disk_t disks[SF_MAX_BLOCK_DEVICES];
        size_t nd;
        sf_domain_nic_t nics[SF_MAX_NICS];
        sf_cd_iface_t cdifs[SF_MAX_NICS];
        size_t nn;
        json_object *disk_view; /* the record's "disks" */
        int console_port, vdi_port, vdi_tls_port;
        char *xml;
        double step; /* start of the current step, for its status event */
} create_t;

static void create_step_done(create_t *c, const char *what, json_object *extra) {
        sf_event_emit(c->w->ctx, "instance", c->uuid, c->ns, "status", what, extra, sf_now() - c->step);
        c->step = sf_now();
}

/* Before a file or libvirt side effect: is the instance lock still ours?  A holder that
 * was paused past its TTL stops here and runs the intent again later (WAIT), when the
 * record says what is left to do; the fenced writes refuse anything late anyway. */
static int create_lock_check(create_t *c) {
        int r = sf_lock_check(c->w->ctx->store, c->lock);

        if (r == -ENOLCK) {
                log_warn("instance %s: lock lost mid-create; stopping, the record decides what is left", c->uuid);
                return sf_work_error(c->w, "instance lock lost"), SF_WORK_WAIT;
        }
        if (r < 0)
                return sf_work_error(c->w, "lock check: %s", strerror(-r)), SF_WORK_RETRY;
        return SF_WORK_DONE;
}

static int create_instance_dir(create_t *c) {
        int r;

        if ((r = create_lock_check(c)) != SF_WORK_DONE)
                return r;

        sf_compute_instance_dir(c->w->ctx, c->uuid, c->dir, sizeof(c->dir));
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

/* An ISO 9660 image ("CD001" at byte 32769): upstream makes such a base a cdrom. */
static bool is_iso9660(const char *path) {
        char magic[5];
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        bool iso;

        if (fd < 0)
                return false;
        iso = pread(fd, magic, sizeof(magic), 32769) == (ssize_t)sizeof(magic) && memcmp(magic, "CD001", 5) == 0;
        close(fd);
        return iso;
}

/* qemu opens NVMe disks itself (they are qemu arguments, not libvirt disks), so libvirt
 * does not hand them to its user: sf does. */
static int disk_give_to_qemu(const char *path) {
        struct passwd *pw = getpwnam("libvirt-qemu");

        if (!pw)
                return 0; /* no such user: qemu runs as root here */
        return chown(path, pw->pw_uid, pw->pw_gid) < 0 ? -errno : 0;
}

/* A cdrom: the image's blob itself, read-only (raw, or qcow2 if that is what it is), or
 * an empty drive.  A cdrom cannot be virtio: upstream moves it to usb. */
static int create_cdrom(create_t *c, const char *bus, const char *blob) {
        sf_domain_disk_t *d = &c->disks[c->nd];
        char reason[256] = "";
        sf_imgfmt_t fmt = SF_IMGFMT_RAW;
        int r;

        if (strcmp(bus, "virtio") == 0 || strcmp(bus, "nvme") == 0)
                bus = "usb";
        device_name(bus, (int)c->nd, d->device);
        snprintf(d->bus, sizeof(d->bus), "%s", bus);
        snprintf(d->type, sizeof(d->type), "cdrom");
        d->readonly = true;
        d->path[0] = 0;
        snprintf(d->format, sizeof(d->format), "raw");
        if (blob && blob[0]) {
                sf_compute_blob_path(c->w->ctx, blob, d->path, sizeof(d->path));
                r = sf_imgfmt_detect(d->path, &fmt, reason, sizeof(reason));
                if (r == -EMEDIUMTYPE)
                        return sf_work_error(c->w, "%s", reason), SF_WORK_FAIL;
                if (r < 0)
                        return sf_work_error(c->w, "cannot read image: %s", strerror(-r)), SF_WORK_RETRY;
                snprintf(d->format, sizeof(d->format), "%s", sf_imgfmt_name(fmt));
        }
        disk_view_add(c, d, 0, blob, true);
        c->nd++;
        return SF_WORK_DONE;
}

/* One disk from its spec: a qcow2 overlay on its image (art), a blank qcow2, or a cdrom. */
static int create_disk(create_t *c, json_object *spec, const char *art) {
        sf_work_t *w = c->w;
        const char *bus = sf_json_str(spec, "bus") ?: "virtio";
        const char *type = sf_json_str(spec, "type") ?: "disk";
        int64_t size = sf_json_int(spec, "size", 0);
        sf_domain_disk_t *d = &c->disks[c->nd];
        char blob[SF_UUID_LEN] = "", base[4096] = "", err[256] = "";
        bool ready;
        int r;

        if (art && *art) {
                r = sf_compute_current_blob(w->ctx, art, blob, &ready, err, sizeof(err));
                if (r < 0 || !ready)
                        return sf_work_error(w, "%s", err[0] ? err : "image vanished"), SF_WORK_FAIL;
                sf_compute_blob_path(w->ctx, blob, base, sizeof(base));
                if (strcmp(type, "cdrom") == 0 || is_iso9660(base))
                        return create_cdrom(c, bus, blob);
        } else if (strcmp(type, "cdrom") == 0) {
                return create_cdrom(c, bus, NULL);
        }
        device_name(bus, (int)c->nd, d->device);
        snprintf(d->bus, sizeof(d->bus), "%s", bus);
        snprintf(d->type, sizeof(d->type), "disk");
        snprintf(d->format, sizeof(d->format), "qcow2");
        {
                char dev[sizeof(d->device)];
                memcpy(dev, d->device, sizeof(dev));
                snprintf(d->path, sizeof(d->path), "%s/%s.qcow2", c->dir, dev);
        }
        if ((r = create_lock_check(c)) != SF_WORK_DONE)
                return r;
        if (art && *art) {
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
        if (strcmp(bus, "nvme") == 0 && (r = disk_give_to_qemu(d->path)) < 0)
                return sf_work_error(w, "cannot hand %s to qemu: %s", d->path, strerror(-r)), SF_WORK_RETRY;
        sf_work_progress(w); /* disks can take a while: keep the ack timer fresh */
        disk_view_add(c, d, size, blob, false);
        c->nd++;
        sf_crashpoint("create.disk");
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
        if ((r = create_lock_check(c)) != SF_WORK_DONE)
                return r;
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

/* The port fields an instance may have, in the order assign_ports fills them. */
static const char *const PORT_FIELDS[] = {"console_port", "vdi_port", "vdi_tls_port"};

typedef struct {
        const int *ports; /* one per PORT_FIELDS entry; 0 = leave that field */
        const bool *set;
        size_t n;
} port_fields_t;

static int set_port_fields(json_object *doc, void *ud) {
        const port_fields_t *p = ud;

        for (size_t i = 0; i < p->n; i++)
                if (p->set[i])
                        json_object_object_add(doc, PORT_FIELDS[i], p->ports[i] ? json_object_new_int(p->ports[i]) : NULL);
        return 0;
}

/* The instance's ports (ports[i] for PORT_FIELDS[i], i < n): the recorded ones while
 * they are still ours to claim, else fresh ones.  Fresh ones are recorded (all in one
 * write) before they are claimed (all in one round trip), so that a crash in between
 * leaves every claim named by the record (delete releases what the record names).  A
 * port found taken is picked again, up to 20 rounds. */
static int ports_assign(create_t *c, int *ports, size_t n, const int *avoid, int navoid) {
        sf_ctx_t *ctx = c->w->ctx;
        int r;

        for (int attempt = 0; attempt < 20; attempt++) {
                bool picked[SF_ARRAY_SIZE(PORT_FIELDS)] = {false}, taken[SF_ARRAY_SIZE(PORT_FIELDS)] = {false};
                bool any_picked = false, any_taken = false;

                for (size_t i = 0; i < n; i++) {
                        int av[SF_ARRAY_SIZE(PORT_FIELDS) * 2];
                        int nav = 0;

                        if (ports[i])
                                continue;
                        for (int k = 0; k < navoid && nav < (int)SF_ARRAY_SIZE(av); k++)
                                av[nav++] = avoid[k];
                        for (size_t k = 0; k < n && nav < (int)SF_ARRAY_SIZE(av); k++)
                                if (ports[k])
                                        av[nav++] = ports[k];
                        r = sf_ports_pick(ctx->cfg.console_bind, av, nav, &ports[i]);
                        if (r < 0)
                                return r;
                        picked[i] = any_picked = true;
                }
                if (any_picked) {
                        r = sf_store_update(ctx->store, "instance", c->uuid, &c->fence, set_port_fields,
                                            &(port_fields_t){.ports = ports, .set = picked, .n = n}, NULL);
                        if (r < 0)
                                return r;
                }
                r = sf_ports_claim_many(ctx->store, ctx->cfg.node, c->uuid, ports, n, taken);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n; i++)
                        if (taken[i]) {
                                ports[i] = 0;
                                any_taken = true;
                        }
                if (!any_taken)
                        return 0;
        }
        return -EADDRINUSE;
}

/* Whether something on this host now listens on one of the instance's ports (the
 * domain failed to start, so it is not qemu's). */
static bool ports_taken(create_t *c) {
        const int ports[] = {c->console_port, c->vdi_port, c->vdi_tls_port};

        for (size_t i = 0; i < SF_ARRAY_SIZE(ports); i++)
                if (ports[i] && !sf_ports_bindable(c->w->ctx->cfg.console_bind, ports[i]))
                        return true;
        return false;
}

static bool spice_tls(void) {
        return access(SPICE_TLS_CERT, R_OK) == 0;
}

/* Serial console, VDI and (spice with TLS) VDI TLS ports.  fresh: drop the current ones
 * (qemu found one taken) and take new ones. */
static int assign_ports(create_t *c, bool fresh) {
        sf_ctx_t *ctx = c->w->ctx;
        json_object *video = NULL;
        const char *vdi;
        int avoid[3] = {c->console_port, c->vdi_port, c->vdi_tls_port}, ports[3] = {0}, r;
        size_t n = 2;

        json_object_object_get_ex(c->inst, "video", &video);
        vdi = sf_json_str(video, "vdi") ?: "spice";
        if (fresh) {
                for (size_t i = 0; i < SF_ARRAY_SIZE(avoid); i++)
                        if (avoid[i])
                                sf_ports_release(ctx->store, ctx->cfg.node, c->uuid, avoid[i]);
        } else {
                for (size_t i = 0; i < SF_ARRAY_SIZE(PORT_FIELDS); i++)
                        ports[i] = (int)sf_json_int(c->inst, PORT_FIELDS[i], 0);
        }
        if (strncmp(vdi, "spice", 5) == 0 && spice_tls())
                n = 3;
        r = ports_assign(c, ports, n, avoid, fresh ? 3 : 0);
        if (r < 0)
                return r;
        c->console_port = ports[0];
        c->vdi_port = ports[1];
        if (n == 3)
                c->vdi_tls_port = ports[2];
        return 0;
}

static int create_ports(create_t *c) {
        int r = assign_ports(c, false);

        if (r < 0)
                return sf_work_error(c->w, "cannot allocate console ports: %s", strerror(-r)), SF_WORK_RETRY;
        return SF_WORK_DONE;
}

/* UEFI firmware, video, graphics and side channels into spec. */
static int domain_options(create_t *c, sf_domain_spec_t *spec) {
        sf_ctx_t *ctx = c->w->ctx;
        json_object *video = NULL, *sc = NULL;

        snprintf(spec->listen, sizeof(spec->listen), "%s", ctx->cfg.console_bind);
        spec->console_port = c->console_port;
        json_object_object_get_ex(c->inst, "video", &video);
        snprintf(spec->vdi, sizeof(spec->vdi), "%s", sf_json_str(video, "vdi") ?: "spice");
        spec->vdi_port = c->vdi_port;
        spec->vdi_tls_port = c->vdi_tls_port;
        snprintf(spec->video_model, sizeof(spec->video_model), "%s", sf_json_str(video, "model") ?: "cirrus");
        spec->video_vram_kib = (int)sf_json_int(video, "memory", 16384);
        spec->uefi = sf_json_bool(c->inst, "uefi", false);
        spec->secure_boot = sf_json_bool(c->inst, "secure_boot", false);
        if (spec->uefi) {
                const char *code = spec->secure_boot ? OVMF_CODE_SECBOOT : OVMF_CODE;
                const char *vars = spec->secure_boot ? OVMF_VARS_SECBOOT : OVMF_VARS;

                if (access(code, R_OK) < 0 || access(vars, R_OK) < 0)
                        return sf_work_error(c->w, "UEFI firmware %s is not installed (Debian package ovmf)", code),
                               SF_WORK_FAIL;
                snprintf(spec->loader, sizeof(spec->loader), "%s", code);
                snprintf(spec->nvram_template, sizeof(spec->nvram_template), "%s", vars);
                snprintf(spec->nvram, sizeof(spec->nvram), "%s/nvram", c->dir);
        }
        /* null ⇒ the agent's channel; [] ⇒ none (api.md §2.3.1). */
        snprintf(spec->channel_dir, sizeof(spec->channel_dir), "%s", c->dir);
        if (!json_object_object_get_ex(c->inst, "side_channels", &sc) || !sc) {
                snprintf(spec->side_channels[0], sizeof(spec->side_channels[0]), "sf-agent");
                spec->nside_channels = 1;
        } else {
                for (size_t i = 0; i < json_object_array_length(sc) && i < SF_MAX_SIDE_CHANNELS; i++)
                        snprintf(spec->side_channels[spec->nside_channels++], sizeof(spec->side_channels[0]), "%s",
                                 json_object_get_string(json_object_array_get_idx(sc, i)) ?: "");
        }
        return SF_WORK_DONE;
}

/* Disks and config drive need only the records; the domain needs the bridges. */
static int create_await_network(create_t *c) {
        return sf_compute_await_interfaces(c->w, c->inst);
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
        r = domain_options(c, &spec);
        if (r != SF_WORK_DONE)
                return r;
        free(c->xml);
        c->xml = NULL;
        r = sf_domain_xml(&spec, NULL, &c->xml);
        if (r < 0)
                return sf_work_error(c->w, "cannot render domain XML: %s", strerror(-r)), SF_WORK_FAIL;
        return SF_WORK_DONE;
}

static int create_define_start(create_t *c) {
        sf_compute_t *cs = c->w->user;
        _cleanup_json_ json_object *extra = NULL;
        int r;

        if ((r = create_lock_check(c)) != SF_WORK_DONE)
                return r;
        for (int attempt = 1;; attempt++) {
                r = sf_virt_define_start(cs->conn, c->xml);
                if (r == 0)
                        break;
                /* qemu could not bind a console or VDI port that something else took since
                 * it was picked: new ports, as upstream, a few times.  (libvirt's message
                 * is gone by now; whether a port is taken is asked of the host itself.) */
                if (attempt >= START_ATTEMPTS || !ports_taken(c))
                        return sf_work_error(c->w, "libvirt could not start the domain: %s", strerror(-r)),
                               SF_WORK_RETRY;
                log_warn("instance %s: a console port is taken; new ports (attempt %d)", c->uuid, attempt);
                if (assign_ports(c, true) < 0)
                        return sf_work_error(c->w, "cannot allocate console ports"), SF_WORK_RETRY;
                r = create_domain_xml(c);
                if (r != SF_WORK_DONE)
                        return r;
        }
        extra = json_object_new_object();
        json_object_object_add(extra, "domain_type", json_object_new_string(cs->domain_type));
        create_step_done(c, "domain defined and started", extra);
        return SF_WORK_DONE;
}

/* A write that leaves the power state as it was carries no event. */
static bool power_unchanged(json_object *doc, void *ud) {
        const built_t *b = ud;

        (void)doc;
        return !b->power_changed;
}

static int create_record(create_t *c) {
        built_t built = {.disks = c->disk_view, .power = "on"};
        _cleanup_json_ json_object *extra = json_object_new_object();
        _cleanup_free_ char *stored_ts = NULL;
        /* A power change is an attribute write like any other: a "set attribute" event, so
         * event readers and the live stream see it (lib/object.c does the same), stored in
         * the record's own write. */
        sf_event_write_t ev = {.ctx = c->w->ctx, .objtype = "instance", .uuid = c->uuid, .type = "mutate",
                               .message = "set attribute", .extra = extra, .duration = -1,
                               .skip = power_unchanged, .skip_ud = &built};
        int r;

        if (!extra)
                return sf_work_error(c->w, "out of memory"), SF_WORK_RETRY;
        json_object_object_add(extra, "attribute", json_object_new_string("power_state"));
        json_object_object_add(extra, "value", json_object_new_string(built.power));
        r = sf_store_update_then(c->w->ctx->store, "instance", c->uuid, &c->fence, apply_built, &built,
                                 sf_event_write_then, &ev, NULL, &stored_ts);
        if (r == 0 && stored_ts)
                sf_event_write_publish(&ev, stored_ts);
        sf_event_write_done(&ev);
        if (r == -ENOLCK)
                return sf_work_error(c->w, "instance lock lost"), SF_WORK_WAIT;
        if (r < 0)
                return sf_work_error(c->w, "cannot record disks: %s", strerror(-r)), SF_WORK_RETRY;
        return SF_WORK_DONE;
}

/* Each step re-checks what exists, so a redelivery after a kill -9 anywhere converges. */
int sf_compute_build(sf_work_t *w, json_object *inst, sf_lock_t *lock) {
        static int (*const steps[])(create_t *) = {
                create_instance_dir,  create_disks, create_nics,         create_config_drive,
                create_await_network, create_ports, create_domain_xml,   create_define_start,
                create_record,
        };
        /* A crash point after each step (lib/crashpoint.h): the fault test kills here. */
        static const char *const step_names[] = {
                "create.instance-dir",   "create.disks", "create.nics",       "create.config-drive",
                "create.await-network",  "create.ports", "create.domain-xml", "create.define-start",
                "create.record",
        };
        _Static_assert(SF_ARRAY_SIZE(step_names) == SF_ARRAY_SIZE(steps), "a crash point name per step");
        create_t *c = calloc(1, sizeof(*c));
        int res = SF_WORK_DONE;

        if (!c)
                return sf_work_error(w, "out of memory"), SF_WORK_RETRY;
        c->w = w;
        c->inst = inst;
        c->lock = lock;
        c->fence = sf_lock_fence(lock);
        c->uuid = sf_json_str(inst, "uuid");
        c->ns = sf_json_str(inst, "namespace");
        c->with_cd = strcmp(sf_json_str(inst, "configdrive") ?: "openstack-disk", "none") != 0;
        c->disk_view = json_object_new_array();
        c->step = sf_now();
        for (size_t i = 0; i < SF_ARRAY_SIZE(steps) && res == SF_WORK_DONE; i++) {
                res = steps[i](c);
                if (res == SF_WORK_DONE)
                        sf_crashpoint(step_names[i]);
        }
        json_object_put(c->disk_view);
        free(c->xml);
        free(c);
        return res;
}
