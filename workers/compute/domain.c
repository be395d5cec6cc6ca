#include "domain.h"

#include "log.h"
#include "tmpl.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sf_domain_name(const char *uuid, char out[64]) {
        snprintf(out, 64, "sf:%s", uuid);
}

static bool one_of(const char *s, const char *a, const char *b) {
        return strcmp(s, a) == 0 || strcmp(s, b) == 0;
}

/* Device names and buses go into attributes verbatim; keep them to a safe alphabet. */
static bool token_ok(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
                        return false;
        return true;
}

/* Side channel names are the user's: letters, digits, '-', '_' and '.' (a path part too). */
static bool token_ok_mixed(const char *s) {
        if (!*s || *s == '.')
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      *s == '_' || *s == '-' || *s == '.'))
                        return false;
        return true;
}

static bool port_ok(int p) {
        return p > 0 && p < 65536;
}

/* A numeric listen address (IPv4 or IPv6): it goes into attributes and qemu's options. */
static bool addr_ok(const char *a) {
        if (!*a)
                return false;
        for (; *a; a++)
                if (!((*a >= '0' && *a <= '9') || (*a >= 'a' && *a <= 'f') || (*a >= 'A' && *a <= 'F') ||
                      *a == '.' || *a == ':'))
                        return false;
        return true;
}

static int spec_check(const sf_domain_spec_t *s) {
        if (!sf_uuid_parse(s->uuid, NULL) || !one_of(s->domain_type, "kvm", "qemu") ||
            !one_of(s->machine, "pc", "q35") || s->memory_mib <= 0 || s->vcpus <= 0 ||
            !s->console_log[0] || (s->ndisks && !s->disks) || (s->nnics && !s->nics)) {
                log_err("domain %s: invalid spec", s->uuid);
                return -EINVAL;
        }
        for (size_t i = 0; i < s->ndisks; i++) {
                const sf_domain_disk_t *d = &s->disks[i];
                if (!token_ok(d->device) || !token_ok(d->bus) || (!d->path[0] && strcmp(d->type, "cdrom") != 0) ||
                    !one_of(d->format, "qcow2", "raw") || !one_of(d->type, "disk", "cdrom") ||
                    (d->backing[0] && !one_of(d->backing_format, "qcow2", "raw"))) {
                        log_err("domain %s: invalid disk %zu (%s)", s->uuid, i, d->device);
                        return -EINVAL;
                }
        }
        if ((s->vdi[0] && !one_of(s->vdi, "vnc", "spice") && strcmp(s->vdi, "spiceconcurrent") != 0) ||
            (s->vdi[0] && !port_ok(s->vdi_port)) || (s->vdi_tls_port && !port_ok(s->vdi_tls_port)) ||
            (s->console_port && !port_ok(s->console_port)) ||
            ((s->vdi[0] || s->console_port) && !addr_ok(s->listen)) ||
            (s->video_model[0] && (!token_ok(s->video_model) || s->video_vram_kib <= 0)) ||
            (s->secure_boot && (!s->uefi || strcmp(s->machine, "q35") != 0)) ||
            (s->uefi && (!s->loader[0] || !s->nvram[0] || !s->nvram_template[0])) ||
            s->nside_channels > SF_MAX_SIDE_CHANNELS || (s->nside_channels && !s->channel_dir[0])) {
                log_err("domain %s: invalid spec (graphics, console, video, firmware or channels)", s->uuid);
                return -EINVAL;
        }
        for (size_t i = 0; i < s->nside_channels; i++)
                if (!token_ok_mixed(s->side_channels[i])) {
                        log_err("domain %s: invalid side channel name", s->uuid);
                        return -EINVAL;
                }
        for (size_t i = 0; i < s->nnics; i++) {
                const sf_domain_nic_t *n = &s->nics[i];
                if (strlen(n->mac) != 17 || !n->bridge[0] || !token_ok(n->model) || n->mtu < 68 ||
                    n->mtu > 65535) {
                        log_err("domain %s: invalid nic %zu (%s)", s->uuid, i, n->mac);
                        return -EINVAL;
                }
        }
        return 0;
}

/* Render dir/file with vars. */
static int render(const char *dir, const char *file, const sf_tmpl_var_t *v, size_t n, char **ret) {
        char path[PATH_MAX];
        int k = snprintf(path, sizeof(path), "%s/%s", dir, file);

        if (k < 0 || (size_t)k >= sizeof(path))
                return -ENAMETOOLONG;
        return sf_tmpl_render_file(path, v, n, ret);
}

/* Append src to *acc (both malloc'd or NULL); frees src. */
static int concat(char **acc, char *src) {
        size_t a = *acc ? strlen(*acc) : 0, b = strlen(src);
        char *n = realloc(*acc, a + b + 1);

        if (!n) {
                free(src);
                return -ENOMEM;
        }
        memcpy(n + a, src, b + 1);
        *acc = n;
        free(src);
        return 0;
}

static int render_disk(const char *dir, const sf_domain_disk_t *d, bool writeback, char **ret) {
        _cleanup_free_ char *backing = NULL;
        int r;

        if (!d->path[0]) {
                const sf_tmpl_var_t ev[] = {{"device", d->device}, {"bus", d->bus}};
                return render(dir, "domain-cdrom-empty.xml", ev, SF_ARRAY_SIZE(ev), ret);
        }

        if (d->backing[0]) {
                const sf_tmpl_var_t bv[] = {
                        {"format", d->backing_format},
                        {"path", d->backing},
                };
                r = render(dir, "domain-backing.xml", bv, SF_ARRAY_SIZE(bv), &backing);
                if (r < 0)
                        return r;
        }
        const sf_tmpl_var_t v[] = {
                {"type", d->type},
                {"format", d->format},
                {"cache", writeback ? "writeback" : "none"},
                {"path", d->path},
                {"backing", backing ? backing : ""},
                {"device", d->device},
                {"bus", d->bus},
                {"readonly", d->readonly ? "      <readonly/>\n" : ""},
        };
        return render(dir, "domain-disk.xml", v, SF_ARRAY_SIZE(v), ret);
}

static int render_nic(const char *dir, const sf_domain_nic_t *n, char **ret) {
        char mtu[16];

        snprintf(mtu, sizeof(mtu), "%d", n->mtu);
        const sf_tmpl_var_t v[] = {
                {"mac", n->mac},
                {"bridge", n->bridge},
                {"model", n->model},
                {"mtu", mtu},
        };
        return render(dir, "domain-nic.xml", v, SF_ARRAY_SIZE(v), ret);
}

/* Render file with v and append it to *acc. */
static int render_append(const char *dir, const char *file, const sf_tmpl_var_t *v, size_t n, char **acc) {
        char *frag = NULL;
        int r = render(dir, file, v, n, &frag);

        return r < 0 ? r : concat(acc, frag);
}

/* qemu's option syntax: a ',' inside a value is written ",,". */
static char *qemu_opt_escape(const char *s) {
        size_t n = 0;
        char *o, *p;

        for (const char *q = s; *q; q++)
                n += *q == ',' ? 2 : 1;
        o = p = malloc(n + 1);
        if (!o)
                return NULL;
        for (; *s; s++) {
                *p++ = *s;
                if (*s == ',')
                        *p++ = ',';
        }
        *p = 0;
        return o;
}

static int qemu_arg(const char *dir, const char *value, char **acc) {
        const sf_tmpl_var_t v[] = {{"value", value}};
        return render_append(dir, "domain-qemu-arg.xml", v, 1, acc);
}

/* NVMe disks: libvirt 9.0 has no nvme disk bus, so as upstream they are qemu arguments
 * (a -drive without a device, and an nvme device on it). */
static int render_nvme(const char *dir, const sf_domain_disk_t *d, size_t index, const char *machine, bool writeback,
                       char **acc) {
        _cleanup_free_ char *path = qemu_opt_escape(d->path), *drive = NULL, *dev = NULL;
        int r;

        if (!path)
                return -ENOMEM;
        drive = sf_strdupf("file=%s,format=%s,if=none,id=sf-nvme%zu,cache=%s%s", path, d->format, index,
                           writeback ? "writeback" : "none", d->readonly ? ",readonly=on" : "");
        /* An explicit slot, counting down from 0x1e: qemu handles these arguments before
         * libvirt's devices, and an unplaced one would take the slot libvirt gave another. */
        dev = sf_strdupf("nvme,drive=sf-nvme%zu,serial=sf-%s,bus=%s,addr=0x%zx", index, d->device,
                         strcmp(machine, "q35") == 0 ? "pcie.0" : "pci.0", (size_t)0x1e - index);
        if (!drive || !dev)
                return -ENOMEM;
        if ((r = qemu_arg(dir, "-drive", acc)) < 0 || (r = qemu_arg(dir, drive, acc)) < 0 ||
            (r = qemu_arg(dir, "-device", acc)) < 0 || (r = qemu_arg(dir, dev, acc)) < 0)
                return r;
        return 0;
}

static int render_console(const char *dir, const sf_domain_spec_t *s, char **acc) {
        char port[16];

        if (!s->console_port) {
                const sf_tmpl_var_t v[] = {{"console_log", s->console_log}};
                return render_append(dir, "domain-console-pty.xml", v, 1, acc);
        }
        snprintf(port, sizeof(port), "%d", s->console_port);
        const sf_tmpl_var_t v[] = {{"listen", s->listen}, {"port", port}, {"console_log", s->console_log}};
        return render_append(dir, "domain-console-tcp.xml", v, SF_ARRAY_SIZE(v), acc);
}

static int render_graphics(const char *dir, const sf_domain_spec_t *s, char **acc) {
        char port[16], tls[64] = "";

        if (!s->vdi[0])
                return 0;
        snprintf(port, sizeof(port), "%d", s->vdi_port);
        if (strcmp(s->vdi, "vnc") == 0) {
                const sf_tmpl_var_t v[] = {{"port", port}, {"listen", s->listen}};
                return render_append(dir, "domain-graphics-vnc.xml", v, SF_ARRAY_SIZE(v), acc);
        }
        /* Every channel secure when the host has spice TLS, as upstream. */
        if (s->vdi_tls_port)
                snprintf(tls, sizeof(tls), " tlsPort='%d' defaultMode='secure'", s->vdi_tls_port);
        const sf_tmpl_var_t v[] = {{"port", port}, {"tls", tls}, {"listen", s->listen}};
        return render_append(dir, "domain-graphics-spice.xml", v, SF_ARRAY_SIZE(v), acc);
}

static int render_firmware(const char *dir, const sf_domain_spec_t *s, char **acc) {
        if (!s->uefi)
                return 0;
        const sf_tmpl_var_t v[] = {{"secure", s->secure_boot ? "yes" : "no"},
                                   {"loader", s->loader},
                                   {"template", s->nvram_template},
                                   {"nvram", s->nvram}};
        return render_append(dir, "domain-uefi.xml", v, SF_ARRAY_SIZE(v), acc);
}

static int render_extras(const char *dir, const sf_domain_spec_t *s, char **video, char **channels, char **args) {
        int r;

        if (s->video_model[0]) {
                char vram[16];
                snprintf(vram, sizeof(vram), "%d", s->video_vram_kib);
                const sf_tmpl_var_t v[] = {{"model", s->video_model}, {"vram", vram}};
                r = render_append(dir, "domain-video.xml", v, SF_ARRAY_SIZE(v), video);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < s->nside_channels; i++) {
                _cleanup_free_ char *path = sf_strdupf("%s/sc-%s", s->channel_dir, s->side_channels[i]);
                if (!path)
                        return -ENOMEM;
                const sf_tmpl_var_t v[] = {{"path", path}, {"name", s->side_channels[i]}};
                r = render_append(dir, "domain-channel.xml", v, SF_ARRAY_SIZE(v), channels);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0, n = 0; i < s->ndisks; i++) {
                if (strcmp(s->disks[i].bus, "nvme") != 0)
                        continue;
                r = render_nvme(dir, &s->disks[i], n++, s->machine, s->cache_writeback, args);
                if (r < 0)
                        return r;
        }
        /* Secure boot: S3 off, as upstream (OVMF's SMM variable store and S3 do not mix). */
        if (s->secure_boot && (r = qemu_arg(dir, "-global", args)) < 0)
                return r;
        if (s->secure_boot && (r = qemu_arg(dir, "ICH9-LPC.disable_s3=1", args)) < 0)
                return r;
        if (strcmp(s->vdi, "spiceconcurrent") == 0) {
                const sf_tmpl_var_t v[] = {{"name", "SPICE_DEBUG_ALLOW_MC"}, {"value", "1"}};
                r = render_append(dir, "domain-qemu-env.xml", v, SF_ARRAY_SIZE(v), args);
                if (r < 0)
                        return r;
        }
        if (**args) {
                char *wrapped = sf_strdupf("  <qemu:commandline>\n%s  </qemu:commandline>\n", *args);
                if (!wrapped)
                        return -ENOMEM;
                free(*args);
                *args = wrapped;
        }
        return 0;
}

int sf_domain_xml(const sf_domain_spec_t *spec, const char *tmpl_dir, char **ret_xml) {
        _cleanup_free_ char *disks = NULL, *nics = NULL, *console = NULL, *graphics = NULL, *video = NULL,
                            *channels = NULL, *args = NULL, *firmware = NULL;
        char dir[PATH_MAX], name[64], mem[32], vcpus[16];
        int r;

        if (!spec || !ret_xml)
                return -EINVAL;
        r = spec_check(spec);
        if (r < 0)
                return r;
        if (tmpl_dir) {
                if (strlen(tmpl_dir) >= sizeof(dir))
                        return -ENAMETOOLONG;
                strcpy(dir, tmpl_dir);
        } else if ((r = sf_tmpl_dir(dir, sizeof(dir))) < 0)
                return r;

        /* Fragments start as "" so an instance without NICs still renders. */
        disks = strdup("");
        nics = strdup("");
        console = strdup("");
        graphics = strdup("");
        video = strdup("");
        channels = strdup("");
        args = strdup("");
        firmware = strdup("");
        if (!disks || !nics || !console || !graphics || !video || !channels || !args || !firmware)
                return -ENOMEM;
        for (size_t i = 0; i < spec->ndisks; i++) {
                char *frag = NULL;
                if (strcmp(spec->disks[i].bus, "nvme") == 0)
                        continue; /* qemu arguments, below */
                r = render_disk(dir, &spec->disks[i], spec->cache_writeback, &frag);
                if (r < 0 || (r = concat(&disks, frag)) < 0)
                        return r;
        }
        for (size_t i = 0; i < spec->nnics; i++) {
                char *frag = NULL;
                r = render_nic(dir, &spec->nics[i], &frag);
                if (r < 0 || (r = concat(&nics, frag)) < 0)
                        return r;
        }

        if ((r = render_console(dir, spec, &console)) < 0 || (r = render_graphics(dir, spec, &graphics)) < 0 ||
            (r = render_firmware(dir, spec, &firmware)) < 0 ||
            (r = render_extras(dir, spec, &video, &channels, &args)) < 0)
                return r;

        sf_domain_name(spec->uuid, name);
        snprintf(mem, sizeof(mem), "%lld", (long long)spec->memory_mib * 1024);
        snprintf(vcpus, sizeof(vcpus), "%d", spec->vcpus);
        const sf_tmpl_var_t v[] = {
                {"domain_type", spec->domain_type},
                {"name", name},
                {"uuid", spec->uuid},
                {"title", spec->name},
                {"node", spec->node},
                {"memory_kib", mem},
                {"vcpus", vcpus},
                {"machine", spec->machine},
                /* TCG cannot pass the host CPU through; let qemu pick its default model. */
                {"cpu", strcmp(spec->domain_type, "kvm") == 0 ? "  <cpu mode='host-passthrough'/>\n" : ""},
                {"firmware", firmware},
                {"smm", spec->secure_boot ? "    <smm state='on'>\n      <tseg unit='MiB'>48</tseg>\n    </smm>\n" : ""},
                {"disks", disks},
                {"nics", nics},
                {"console", console},
                {"graphics", graphics},
                {"video", video},
                {"channels", channels},
                {"qemu_commandline", args},
        };
        return render(dir, "domain.xml", v, SF_ARRAY_SIZE(v), ret_xml);
}
