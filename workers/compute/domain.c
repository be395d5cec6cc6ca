#include "domain.h"

#include "log.h"
#include "tmpl.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
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

static int spec_check(const sf_domain_spec_t *s) {
        if (!sf_uuid_parse(s->uuid, NULL) || !one_of(s->domain_type, "kvm", "qemu") ||
            !one_of(s->machine, "pc", "q35") || s->memory_mib <= 0 || s->vcpus <= 0 ||
            !s->console_log[0] || (s->ndisks && !s->disks) || (s->nnics && !s->nics)) {
                log_err("domain %s: invalid spec", s->uuid);
                return -EINVAL;
        }
        for (size_t i = 0; i < s->ndisks; i++) {
                const sf_domain_disk_t *d = &s->disks[i];
                if (!token_ok(d->device) || !token_ok(d->bus) || !d->path[0] ||
                    !one_of(d->format, "qcow2", "raw") || !one_of(d->type, "disk", "cdrom") ||
                    (d->backing[0] && !one_of(d->backing_format, "qcow2", "raw"))) {
                        log_err("domain %s: invalid disk %zu (%s)", s->uuid, i, d->device);
                        return -EINVAL;
                }
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

int sf_domain_xml(const sf_domain_spec_t *spec, const char *tmpl_dir, char **ret_xml) {
        _cleanup_free_ char *disks = NULL, *nics = NULL;
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
        if (!disks || !nics)
                return -ENOMEM;
        for (size_t i = 0; i < spec->ndisks; i++) {
                char *frag = NULL;
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
                {"disks", disks},
                {"nics", nics},
                {"console_log", spec->console_log},
        };
        return render(dir, "domain.xml", v, SF_ARRAY_SIZE(v), ret_xml);
}
