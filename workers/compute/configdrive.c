#include "configdrive.h"
#include "iso.h"

#include "exec.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define RANDOM_SEED_BYTES 512

static void json_putp(json_object **o) { json_object_put(*o); }
#define _cleanup_json_ __attribute__((cleanup(json_putp)))

/* json-c returns NULL from these only on OOM; callers check the final object. */
static json_object *jstr(const char *s) { return json_object_new_string(s); }

static int random_seed(char **ret) {
        unsigned char raw[RANDOM_SEED_BYTES];
        char *b64 = malloc(4 * ((RANDOM_SEED_BYTES + 2) / 3) + 1);
        int r;

        if (!b64)
                return -ENOMEM;
        r = sf_random_bytes(raw, sizeof(raw));
        if (r < 0) {
                free(b64);
                return r;
        }
        EVP_EncodeBlock((unsigned char *)b64, raw, sizeof(raw));
        *ret = b64;
        return 0;
}

static json_object *meta_data(const sf_configdrive_t *cd, const char *seed) {
        json_object *m = json_object_new_object(), *keys = json_object_new_object();
        char hostname[80];

        snprintf(hostname, sizeof(hostname), "%s.local", cd->name);
        json_object_object_add(m, "random_seed", jstr(seed));
        json_object_object_add(m, "uuid", jstr(cd->uuid));
        json_object_object_add(m, "availability_zone", jstr(cd->zone));
        json_object_object_add(m, "hostname", jstr(hostname));
        json_object_object_add(m, "launch_index", json_object_new_int(0));
        json_object_object_add(m, "devices", json_object_new_array());
        json_object_object_add(m, "project_id", NULL);
        json_object_object_add(m, "name", jstr(cd->name));
        json_object_object_add(keys, "mykey", cd->ssh_key ? jstr(cd->ssh_key) : NULL);
        json_object_object_add(m, "public_keys", keys);
        return m;
}

static int by_order(const void *a, const void *b) {
        const sf_cd_iface_t *x = *(const sf_cd_iface_t *const *)a, *y = *(const sf_cd_iface_t *const *)b;
        return (x->order > y->order) - (x->order < y->order);
}

static json_object *network_data(const sf_configdrive_t *cd, const sf_cd_iface_t **sorted) {
        json_object *n = json_object_new_object(), *links = json_object_new_array(),
                    *nets = json_object_new_array(), *svcs = json_object_new_array();
        bool first = true;

        for (size_t i = 0; i < cd->nifaces; i++) {
                const sf_cd_iface_t *f = sorted[i];
                char eth[16], id[64];

                if (!f->ipv4[0])
                        continue;
                snprintf(eth, sizeof(eth), "eth%d", f->order);
                snprintf(id, sizeof(id), "%s-%d", f->network_uuid, f->order);

                json_object *l = json_object_new_object();
                json_object_object_add(l, "ethernet_mac_address", jstr(f->mac));
                json_object_object_add(l, "id", jstr(eth));
                json_object_object_add(l, "name", jstr(eth));
                json_object_object_add(l, "mtu", json_object_new_int(cd->mtu));
                json_object_object_add(l, "type", jstr("vif"));
                json_object_object_add(l, "vif_id", jstr(f->uuid));
                json_object_array_add(links, l);

                json_object *net = json_object_new_object();
                json_object_object_add(net, "id", jstr(id));
                json_object_object_add(net, "link", jstr(eth));
                json_object_object_add(net, "type", jstr("ipv4"));
                json_object_object_add(net, "network_id", jstr(f->network_uuid));
                json_object_object_add(net, "ip_address", jstr(f->ipv4));
                json_object_object_add(net, "netmask", jstr(f->netmask));
                /* Only the first network carries the default route. */
                if (first && f->gateway[0]) {
                        json_object *routes = json_object_new_array(), *rt = json_object_new_object();
                        json_object_object_add(rt, "network", jstr("0.0.0.0"));
                        json_object_object_add(rt, "netmask", jstr("0.0.0.0"));
                        json_object_object_add(rt, "gateway", jstr(f->gateway));
                        json_object_array_add(routes, rt);
                        json_object_object_add(net, "routes", routes);
                }
                first = false;
                json_object_array_add(nets, net);
        }
        if (cd->dns_server[0]) {
                json_object *s = json_object_new_object();
                json_object_object_add(s, "address", jstr(cd->dns_server));
                json_object_object_add(s, "type", jstr("dns"));
                json_object_array_add(svcs, s);
        }
        json_object_object_add(n, "links", links);
        json_object_object_add(n, "networks", nets);
        json_object_object_add(n, "services", svcs);
        return n;
}

static char *to_string(json_object *o) {
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
        return s ? strdup(s) : NULL;
}

int sf_configdrive_json(const sf_configdrive_t *cd, char **ret_meta, char **ret_network) {
        _cleanup_json_ json_object *meta = NULL, *net = NULL;
        _cleanup_free_ char *seed = NULL;
        _cleanup_free_ const sf_cd_iface_t **sorted = NULL;
        char *m = NULL, *n = NULL;
        int r;

        if (!cd || !ret_meta || !ret_network || (cd->nifaces && !cd->ifaces))
                return -EINVAL;
        r = random_seed(&seed);
        if (r < 0)
                return r;
        sorted = calloc(cd->nifaces + 1, sizeof(*sorted));
        if (!sorted)
                return -ENOMEM;
        for (size_t i = 0; i < cd->nifaces; i++)
                sorted[i] = &cd->ifaces[i];
        qsort(sorted, cd->nifaces, sizeof(*sorted), by_order);

        meta = meta_data(cd, seed);
        net = network_data(cd, sorted);
        if (!meta || !net)
                return -ENOMEM;
        m = to_string(meta);
        n = to_string(net);
        if (!m || !n) {
                free(m);
                free(n);
                return -ENOMEM;
        }
        *ret_meta = m;
        *ret_network = n;
        return 0;
}

/* Strict-ish base64 decode (whitespace and newlines allowed). */
static int b64_decode(const char *in, unsigned char **ret, size_t *ret_len) {
        size_t inlen = strlen(in);
        unsigned char *out = malloc(inlen / 4 * 3 + 80);
        EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
        int n = 0, fin = 0, r = 0;

        if (!out || !ctx) {
                r = -ENOMEM;
                goto cleanup;
        }
        EVP_DecodeInit(ctx);
        if (EVP_DecodeUpdate(ctx, out, &n, (const unsigned char *)in, (int)inlen) < 0 ||
            EVP_DecodeFinal(ctx, out + n, &fin) < 0) {
                r = -EINVAL;
                goto cleanup;
        }
cleanup:
        EVP_ENCODE_CTX_free(ctx);
        if (r < 0) {
                free(out);
                return r;
        }
        *ret = out;
        *ret_len = (size_t)(n + fin);
        return 0;
}

int sf_configdrive_build(const sf_configdrive_t *cd, const char *iso_path) {
        static const char *const versions[] = {"2017-02-22", "latest"};
        _cleanup_free_ char *meta = NULL, *net = NULL;
        _cleanup_free_ unsigned char *ud = NULL;
        char tmp[PATH_MAX], paths[2][5][64];
        sf_iso_file_t files[10];
        size_t udlen = 0, n = 0;
        bool have_ud = cd && cd->user_data_b64 && cd->user_data_b64[0];
        int r;

        if (!cd || !iso_path)
                return -EINVAL;
        if (snprintf(tmp, sizeof(tmp), "%s.tmp", iso_path) >= (int)sizeof(tmp))
                return -ENAMETOOLONG;
        if (have_ud && b64_decode(cd->user_data_b64, &ud, &udlen) < 0) {
                log_err("configdrive %s: user_data is not valid base64", cd->uuid);
                return -EINVAL;
        }
        r = sf_configdrive_json(cd, &meta, &net);
        if (r < 0)
                return r;
        /* openstack/<version>/: meta_data.json, network_data.json, vendor_data.json,
         * vendor_data2.json and user_data if given, for both versions. */
        for (size_t v = 0; v < SF_ARRAY_SIZE(versions); v++) {
                static const char *const names[] = {"meta_data.json", "network_data.json", "vendor_data.json",
                                                    "vendor_data2.json", "user_data"};
                for (size_t i = 0; i < SF_ARRAY_SIZE(names); i++) {
                        if (i == 4 && !have_ud)
                                continue;
                        snprintf(paths[v][i], sizeof(paths[v][i]), "openstack/%s/%s", versions[v], names[i]);
                        files[n].path = paths[v][i];
                        files[n].data = i == 0 ? meta : i == 1 ? net : i == 4 ? (const char *)ud : "{}";
                        files[n].len = i == 0 ? strlen(meta) : i == 1 ? strlen(net) : i == 4 ? udlen : 2;
                        n++;
                }
        }
        /* Written in process (iso.c: ISO 9660 + Joliet, label config-2): no genisoimage
         * exec.  0600: user_data may hold secrets; libvirt's dynamic ownership hands the
         * file to qemu. */
        r = sf_iso_write(tmp, "config-2", files, n, 0600);
        if (r < 0) {
                log_err("configdrive %s: cannot write %s: %s", cd->uuid, tmp, strerror(-r));
                return r;
        }
        if (rename(tmp, iso_path) < 0) {
                r = -errno;
                unlink(tmp);
        }
        return r;
}
