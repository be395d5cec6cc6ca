/* Instance endpoints (api.md §2.3) and the create flow's API half (§7 step 1). */
#include "api.h"
#include "keys.h"
#include "scheduler.h"

#include "event.h"
#include "intent.h"
#include "ipam.h"
#include "log.h"
#include "netpolicy.h"
#include "object.h"
#include "sflimits.h"
#include "state.h"
#include "store.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* ---- request validation ---- */

typedef sf_api_nic_t net_req_t;

typedef struct create_req {
        const char *name, *ns, *ssh_key, *user_data, *placed_on, *configdrive, *nvram;
        int64_t cpus, memory;
        bool uefi, secure_boot;
        json_object *disks, *video, *metadata, *side_channels;
        net_req_t nets[SF_MAX_NICS];
        size_t nnets;
        char artifacts[SF_MAX_DISKS][SF_UUID_LEN]; /* per disk: artifact uuid or "" */
        size_t ndisks;
} create_req_t;

static void create_req_done(create_req_t *c) {
        for (size_t i = 0; i < c->nnets; i++)
                json_object_put(c->nets[i].net);
        json_object_put(c->video);
}

/* "xx:xx:xx:xx:xx:xx" (hex, either case) into lower case, so that one MAC has one
 * spelling in sf:mac:<mac>.  -EINVAL if malformed, -EADDRNOTAVAIL if multicast (a NIC
 * address must be unicast: low bit of the first octet clear). */
static int mac_normalize(const char *m, char out[18]) {
        static const char hex[] = "0123456789abcdef";

        if (strlen(m) != 17)
                return -EINVAL;
        for (size_t i = 0; i < 17; i++) {
                if (i % 3 == 2 ? m[i] != ':' : !isxdigit((unsigned char)m[i]))
                        return -EINVAL;
                out[i] = (char)tolower((unsigned char)m[i]);
        }
        out[17] = 0;
        if ((strchr(hex, out[1]) - hex) & 1)
                return -EADDRNOTAVAIL;
        return 0;
}

static bool valid_base64(const char *s) {
        size_t len = strlen(s), out = 3 * (len / 4) + 3;
        _cleanup_free_ unsigned char *buf = malloc(out + 1);

        if (!buf || len % 4 != 0)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!(s[i] == '+' || s[i] == '/' || s[i] == '=' || (s[i] >= '0' && s[i] <= '9') ||
                      (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
                        return false;
        return EVP_DecodeBlock(buf, (const unsigned char *)s, (int)len) >= 0;
}

static bool url_ok(const char *u) {
        return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0;
}

/* Find a visible image artifact for url that is not dead, or create one (state initial). */
static int artifact_for_url(sf_ctx_t *ctx, const char *ns, const char *url, char out[SF_UUID_LEN]) {
        _cleanup_reply_ redisReply *m = sf_store_cmd(ctx->store, "SMEMBERS " SF_KEY_ARTIFACTS_URL, url);
        _cleanup_json_ json_object *doc = NULL;
        int r;

        if (!m || m->type != REDIS_REPLY_ARRAY)
                return -EIO;
        for (size_t i = 0; i < m->elements; i++) {
                _cleanup_json_ json_object *a = NULL;
                const char *st, *ans;
                if (sf_store_get(ctx->store, "artifact", m->element[i]->str, &a, NULL) < 0)
                        continue;
                st = sf_json_str(a, "state") ?: "";
                ans = sf_json_str(a, "namespace") ?: "";
                if ((strcmp(st, "initial") == 0 || strcmp(st, "created") == 0) &&
                    (strcmp(ans, ns) == 0 || strcmp(ans, "system") == 0 || sf_json_bool(a, "shared", false))) {
                        snprintf(out, SF_UUID_LEN, "%s", m->element[i]->str);
                        return 0;
                }
        }
        sf_uuid_new(out);
        doc = json_object_new_object();
        json_object_object_add(doc, "uuid", json_object_new_string(out));
        json_object_object_add(doc, "namespace", json_object_new_string(ns));
        json_object_object_add(doc, "state", json_object_new_string("initial"));
        json_object_object_add(doc, "state_updated", json_object_new_double(sf_now()));
        json_object_object_add(doc, "metadata", json_object_new_object());
        json_object_object_add(doc, "artifact_type", json_object_new_string("image"));
        json_object_object_add(doc, "source_url", json_object_new_string(url));
        json_object_object_add(doc, "max_versions", json_object_new_int(3));
        json_object_object_add(doc, "shared", json_object_new_boolean(false));
        json_object_object_add(doc, "index", json_object_new_int(0));
        json_object_object_add(doc, "blobs", json_object_new_object());
        r = sf_obj_create(ctx, "artifact", out, doc);
        if (r < 0)
                return r;
        freeReplyObject(sf_store_cmd(ctx->store, "SADD " SF_KEY_ARTIFACTS_URL " %s", url, out));
        return 0;
}

static const char *const disk_buses[] = {"virtio", "sata", "scsi", "usb", "nvme"};

/* The disk list's shape and each spec's type, size and base: upstream's "disk list" step
 * (api.md §2.3.1), which comes before nvram; the bus check (IDE) comes after it. */
static int disks_check_list(json_object *body, const sf_config_t *cfg, sf_http_resp_t *resp, size_t *ret_ndisks) {
        json_object *d;
        size_t ndisks;

        if (!json_object_object_get_ex(body, "disk", &d) || !d ||
            !json_object_is_type(d, json_type_array) || json_object_array_length(d) == 0)
                return sf_http_error(resp, 400, "instance must specify at least one disk"), -EINVAL;
        if (json_object_array_length(d) > SF_MAX_DISKS)
                return sf_http_error(resp, 400, "too many disks (at most %d)", SF_MAX_DISKS), -EINVAL;
        ndisks = json_object_array_length(d);
        for (size_t i = 0; i < ndisks; i++) {
                json_object *spec = json_object_array_get_idx(d, i), *v;
                const char *type, *base;
                bool cdrom;

                if (!json_object_is_type(spec, json_type_object))
                        return sf_http_error(resp, 400, "disk specification should contain JSON objects"),
                               -EINVAL;
                type = sf_json_str(spec, "type");
                if (type && strcmp(type, "disk") != 0 && strcmp(type, "cdrom") != 0)
                        return sf_http_error(resp, 400, "invalid disk type %s", type), -EINVAL;
                cdrom = type && strcmp(type, "cdrom") == 0;
                if (json_object_object_get_ex(spec, "size", &v) && v &&
                    (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
                     json_object_get_int64(v) > SF_MAX_DISK_GIB))
                        return sf_http_error(resp, 400, "disk size must be a positive integer (GiB)"), -EINVAL;
                base = sf_json_str(spec, "base");
                if (!base || !*base || strcmp(base, "none") == 0) {
                        /* A cdrom without an image is an empty drive: it needs no size. */
                        if (!cdrom && sf_json_int(spec, "size", 0) <= 0)
                                return sf_http_error(resp, 400, "a blank disk needs a size"), -EINVAL;
                        continue;
                }
                if (!url_ok(base) || strlen(base) > 2048 || strpbrk(base, " \t\r\n"))
                        return sf_http_error(resp, 400,
                                             "unsupported disk base \"%s\": only http and https URLs are supported",
                                             base),
                               -EINVAL;
                char why[256];
                if (sf_netpolicy_check_base_url(cfg, base, why, sizeof(why)) < 0)
                        return sf_http_error(resp, 400, "disk base \"%s\" is refused: %s", base, why), -EINVAL;
        }
        *ret_ndisks = ndisks;
        return 0;
}

/* Each disk's bus: upstream's IDE step, after nvram (api.md §2.3.1). */
static int disks_check_bus(json_object *body, sf_http_resp_t *resp) {
        json_object *d = NULL;

        json_object_object_get_ex(body, "disk", &d);
        for (size_t i = 0; d && i < json_object_array_length(d); i++) {
                json_object *spec = json_object_array_get_idx(d, i), *bv;
                const char *bus;
                bool known = false;

                if (!json_object_object_get_ex(spec, "bus", &bv) || !bv)
                        continue;
                if (!json_object_is_type(bv, json_type_string))
                        return sf_http_error(resp, 400, "invalid disk bus %s", json_object_to_json_string(bv)),
                               -EINVAL;
                bus = json_object_get_string(bv);
                if (strcmp(bus, "ide") == 0)
                        return sf_http_error(resp, 400, "IDE disks are no longer supported"), -EINVAL;
                for (size_t b = 0; b < SF_ARRAY_SIZE(disk_buses); b++)
                        known |= strcmp(bus, disk_buses[b]) == 0;
                if (!known)
                        return sf_http_error(resp, 400, "invalid disk bus %s", bus), -EINVAL;
        }
        return 0;
}

int sf_api_disks_check(json_object *body, const sf_config_t *cfg, sf_http_resp_t *resp, size_t *ret_ndisks) {
        size_t n;
        int r = disks_check_list(body, cfg, resp, &n);

        if (r == 0)
                r = disks_check_bus(body, resp);
        if (r == 0)
                *ret_ndisks = n;
        return r;
}

static int create_parse_disks(sf_ctx_t *ctx, sf_http_req_t *req, sf_http_resp_t *resp, create_req_t *c) {
        int r = disks_check_list(req->body, &ctx->cfg, resp, &c->ndisks);

        if (r < 0)
                return r;
        json_object_object_get_ex(req->body, "disk", &c->disks);
        for (size_t i = 0; i < c->ndisks; i++)
                c->artifacts[i][0] = 0;
        return 0;
}

int sf_api_nic_check(json_object *spec, json_object *net, const char *ns, sf_http_resp_t *resp,
                     sf_api_nic_t *n) {
        static const char *const models[] = {"virtio", "e1000", "rtl8139", "ne2k_pci", "pcnet",
                                             "i82551", "i82557b", "i82559er"};
        const char *addr, *mac, *model, *state;
        bool known = false;
        sf_cidr_t cidr;
        uint32_t ip;
        int r;

        snprintf(n->network_uuid, sizeof(n->network_uuid), "%s", sf_json_str(net, "uuid"));
        addr = sf_json_str(spec, "address");
        n->address[0] = 0;
        if (addr && *addr && strcmp(addr, "none") != 0) {
                if (sf_cidr_parse(sf_json_str(net, "netblock"), &cidr, NULL) < 0 ||
                    sf_ip_parse(addr, &ip) < 0 || !sf_cidr_contains(&cidr, ip))
                        return sf_http_error(resp, 400,
                                             "network specification requests an address outside the "
                                             "range of the network"),
                               -EINVAL;
                snprintf(n->address, sizeof(n->address), "%s", addr);
        }
        if (addr && strcmp(addr, "none") == 0)
                snprintf(n->address, sizeof(n->address), "none");
        state = sf_json_str(net, "state") ?: "";
        if (strcmp(state, "created") != 0)
                return sf_http_error(resp, 406, "network %s is not ready (%s)", n->network_uuid, state),
                       -EAGAIN;
        if (strcmp(sf_json_str(net, "namespace") ?: "", ns) != 0)
                return sf_http_error(resp, 404, "network %s does not exist", n->network_uuid), -ENOENT;
        mac = sf_json_str(spec, "macaddress");
        n->mac[0] = 0;
        r = mac ? mac_normalize(mac, n->mac) : 0;
        if (r == -EADDRNOTAVAIL)
                return sf_http_error(resp, 400, "MAC address %s is a multicast address", mac), -EINVAL;
        if (r < 0)
                return sf_http_error(resp, 400, "invalid MAC address %s", mac), -EINVAL;
        model = sf_json_str(spec, "model");
        for (size_t m = 0; model && m < SF_ARRAY_SIZE(models); m++)
                known |= strcmp(model, models[m]) == 0;
        if (model && !known)
                return sf_http_error(resp, 400, "invalid network model %s", model), -EINVAL;
        snprintf(n->model, sizeof(n->model), "%s", model ? model : "virtio");
        if (sf_json_bool(spec, "float", false))
                return sf_http_error(resp, 400, "floating addresses are not supported yet"), -EINVAL;
        return 0;
}

static int create_resolve_networks(sf_ctx_t *ctx, const sf_caller_t *caller, sf_http_req_t *req,
                                   sf_http_resp_t *resp, create_req_t *c) {
        json_object *list;

        if (!json_object_object_get_ex(req->body, "network", &list) || !list)
                return 0;
        if (!json_object_is_type(list, json_type_array))
                return sf_http_error(resp, 400, "network specification should be a list"), -EINVAL;
        if (json_object_array_length(list) > SF_MAX_NICS)
                return sf_http_error(resp, 400, "too many network interfaces (at most %d)", SF_MAX_NICS),
                       -EINVAL;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *spec = json_object_array_get_idx(list, i), *net = NULL;
                net_req_t *n = &c->nets[c->nnets];
                const char *ref;
                sf_caller_t scope = *caller;
                int r;

                if (!json_object_is_type(spec, json_type_object) || !(ref = sf_json_str(spec, "network_uuid")))
                        return sf_http_error(resp, 400, "network specification is missing network_uuid"),
                               -EINVAL;
                /* Networks are looked up in the instance's namespace. */
                snprintf(scope.ns, sizeof(scope.ns), "%s", c->ns);
                scope.system = strcmp(c->ns, "system") == 0;
                if (sf_api_lookup(ctx, &scope, "network", ref, resp, &net) < 0) {
                        if (resp->status == 404)
                                sf_http_error(resp, 404, "network %s not found", ref);
                        return -ENOENT;
                }
                n->net = net;
                c->nnets++;
                r = sf_api_nic_check(spec, net, c->ns, resp, n);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Video memory in KiB: an integer, or a string of decimal digits, which is what upstream's
 * client sends for `-V memory=N` (its video spec values stay strings). */
static int video_memory_parse(json_object *mem, int64_t *ret_kib) {
        const char *s;
        char *end;
        long long n;

        if (json_object_is_type(mem, json_type_int)) {
                *ret_kib = json_object_get_int64(mem);
                return 0;
        }
        if (!json_object_is_type(mem, json_type_string))
                return -EINVAL;
        s = json_object_get_string(mem);
        if (!(*s >= '0' && *s <= '9') && !(*s == '-' && s[1] >= '0' && s[1] <= '9'))
                return -EINVAL;
        errno = 0;
        n = strtoll(s, &end, 10);
        if (*end)
                return -EINVAL;
        /* out of range saturates (strtoll's LLONG_MIN/MAX): the caller's range check words it */
        *ret_kib = n;
        return 0;
}

/* The video models libvirt knows for x86 guests (its <video><model type=...>). */
static bool video_model_known(const char *m) {
        static const char *const models[] = {"cirrus", "vga", "qxl", "virtio", "bochs", "ramfb", "vmvga", "none"};

        for (size_t i = 0; i < SF_ARRAY_SIZE(models); i++)
                if (strcmp(m, models[i]) == 0)
                        return true;
        return false;
}

static int create_parse_body(sf_ctx_t *ctx, const sf_caller_t *caller, sf_http_req_t *req,
                             sf_http_resp_t *resp, create_req_t *c) {
        static const char *const allowed[] = {
                "name", "cpus", "memory", "disk", "network", "ssh_key", "user_data", "placed_on",
                "namespace", "video", "uefi", "secure_boot", "nvram_template", "configdrive",
                "metadata", "side_channels", NULL};
        json_object *v;
        int r;

        if (sf_http_check_keys(req, resp, allowed) < 0)
                return -EINVAL;
        r = sf_http_body_str(req, "namespace", &c->ns);
        if (r == -EINVAL)
                return sf_http_error(resp, 400, "namespace is not a string"), -EINVAL;
        if (!c->ns)
                c->ns = caller->ns;
        if (strcmp(c->ns, caller->ns) != 0) {
                _cleanup_json_ json_object *nsdoc = NULL;
                /* api.md §3.4: a namespace trusted by ns may create instances in it. */
                if (sf_store_get(ctx->store, "namespace", c->ns, &nsdoc, NULL) < 0 ||
                    strcmp(sf_json_str(nsdoc, "state") ?: "", "created") != 0 || !sf_api_trusted_by(caller, nsdoc))
                        return sf_http_error(resp, 404, "namespace not found"), -ENOENT;
        }
        if (sf_http_body_str(req, "name", &c->name) < 0)
                return sf_http_error(resp, 400, "post() missing 1 required positional argument: 'name'"),
                       -EINVAL;
        r = sf_api_name_check(resp, "instance", c->name);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(req->body, "cpus", &v) || !v)
                return sf_http_error(resp, 400, "post() missing 1 required positional argument: 'cpus'"),
                       -EINVAL;
        if (sf_http_body_int(req, "cpus", 0, &c->cpus) < 0 || c->cpus < 1 || c->cpus > SF_MAX_CPUS)
                return sf_http_error(resp, 400, "cpus must be an integer between 1 and %d", SF_MAX_CPUS), -EINVAL;
        if (!json_object_object_get_ex(req->body, "memory", &v) || !v)
                return sf_http_error(resp, 400, "post() missing 1 required positional argument: 'memory'"),
                       -EINVAL;
        if (sf_http_body_int(req, "memory", 0, &c->memory) < 0 || c->memory < SF_MIN_MEMORY_MIB ||
            c->memory > SF_MAX_MEMORY_MIB)
                return sf_http_error(resp, 400, "memory must be an integer number of MiB between %d and %d",
                                     SF_MIN_MEMORY_MIB, SF_MAX_MEMORY_MIB),
                       -EINVAL;
        if (sf_http_body_bool(req, "uefi", false, &c->uefi) < 0 ||
            sf_http_body_bool(req, "secure_boot", false, &c->secure_boot) < 0)
                return sf_http_error(resp, 400, "uefi and secure_boot must be booleans"), -EINVAL;
        if (c->secure_boot && !c->uefi)
                return sf_http_error(resp, 400, "secure boot requires UEFI be enabled"), -EINVAL;
        if (sf_http_body_str(req, "placed_on", &c->placed_on) == -EINVAL)
                return sf_http_error(resp, 400, "placed_on is not a string"), -EINVAL;
        if (c->placed_on) {
                _cleanup_json_ json_object *node = NULL;
                if (sf_store_get(ctx->store, "node", c->placed_on, &node, NULL) < 0)
                        return sf_http_error(resp, 404, "Specified node does not exist"), -ENOENT;
                if (sf_now() - (double)sf_json_int(node, "lastseen", 0) > ctx->cfg.node_checkin_max_s ||
                    strcmp(sf_json_str(node, "state") ?: "created", "created") != 0)
                        return sf_http_error(resp, 404, "Specified node not ready"), -ENOENT;
        }
        r = sf_http_body_str(req, "configdrive", &c->configdrive);
        if (r == -EINVAL || (c->configdrive && strcmp(c->configdrive, "openstack-disk") != 0 &&
                             strcmp(c->configdrive, "none") != 0))
                return sf_http_error(resp, 400, "invalid config drive type"), -EINVAL;
        if (!c->configdrive)
                c->configdrive = "openstack-disk";
        r = create_parse_disks(ctx, req, resp, c);
        if (r < 0)
                return r;
        /* nvram_template names a label or a blob (api.md §2.3.1); sf has neither an artifact
         * nor a label API yet, so there is nothing it could resolve to. */
        r = sf_http_body_str(req, "nvram_template", &c->nvram);
        if (r == -EINVAL)
                return sf_http_error(resp, 400, "nvram_template is not a string"), -EINVAL;
        if (c->nvram)
                return sf_http_error(resp, 400,
                                     "nvram templates are not supported yet: sf has no labels or blobs to "
                                     "resolve %s from",
                                     c->nvram),
                       -EINVAL;
        r = disks_check_bus(req->body, resp);
        if (r < 0)
                return r;
        r = create_resolve_networks(ctx, caller, req, resp, c);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(req->body, "video", &v) && v) {
                const char *model = sf_json_str(v, "model"), *vdi;
                json_object *mem;
                int64_t kib;
                if (!json_object_is_type(v, json_type_object) || !model)
                        return sf_http_error(resp, 400, "video specification requires a model"), -EINVAL;
                if (!json_object_object_get_ex(v, "memory", &mem) || video_memory_parse(mem, &kib) < 0)
                        return sf_http_error(resp, 400, "video specification requires a memory size"), -EINVAL;
                if (kib < 1 || kib > SF_MAX_VIDEO_MEMORY_KIB)
                        return sf_http_error(resp, 400, "video memory must be between 1 and %d KiB",
                                             SF_MAX_VIDEO_MEMORY_KIB),
                               -EINVAL;
                if (!video_model_known(model))
                        return sf_http_error(resp, 400, "invalid video model %s", model), -EINVAL;
                vdi = sf_json_str(v, "vdi") ?: "spice";
                if (strcmp(vdi, "vnc") && strcmp(vdi, "spice") && strcmp(vdi, "spiceconcurrent"))
                        return sf_http_error(resp, 400, "invalid vdi type %s", vdi), -EINVAL;
                c->video = json_object_new_object();
                json_object_object_add(c->video, "model", json_object_new_string(model));
                json_object_object_add(c->video, "memory", json_object_new_int64(kib));
                json_object_object_add(c->video, "vdi", json_object_new_string(vdi));
        } else {
                c->video = json_object_new_object();
                json_object_object_add(c->video, "model", json_object_new_string("cirrus"));
                json_object_object_add(c->video, "memory", json_object_new_int(16384));
                json_object_object_add(c->video, "vdi", json_object_new_string("spice"));
        }
        if (json_object_object_get_ex(req->body, "metadata", &v) && v) {
                if (!json_object_is_type(v, json_type_object))
                        return sf_http_error(resp, 400, "metadata must be a JSON dictionary"), -EINVAL;
                json_object_object_foreach(v, mk, mv) {
                        if (sf_api_meta_validate(resp, "instance", mk, mv) < 0)
                                return -EINVAL;
                }
                c->metadata = v;
        }
        if (json_object_object_get_ex(req->body, "side_channels", &v) && v) {
                if (!json_object_is_type(v, json_type_array))
                        return sf_http_error(resp, 400, "side_channels must be a list of strings"), -EINVAL;
                if (json_object_array_length(v) > SF_MAX_SIDE_CHANNELS)
                        return sf_http_error(resp, 400, "too many side channels (at most %d)", SF_MAX_SIDE_CHANNELS),
                               -EINVAL;
                for (size_t i = 0; i < json_object_array_length(v); i++)
                        if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_string) ||
                            !sf_name_valid(json_object_get_string(json_object_array_get_idx(v, i))))
                                return sf_http_error(resp, 400, "side_channels must be a list of names"), -EINVAL;
                c->side_channels = v;
        }
        /* Not checked upstream at all; ours come last so upstream's order stays intact. */
        if (sf_http_body_str(req, "ssh_key", &c->ssh_key) == -EINVAL)
                return sf_http_error(resp, 400, "ssh_key is not a string"), -EINVAL;
        r = sf_http_body_str(req, "user_data", &c->user_data);
        if (r == -EINVAL || (c->user_data && !valid_base64(c->user_data)))
                return sf_http_error(resp, 400, "user_data must be base64 encoded"), -EINVAL;
        return 0;
}

/* ---- create ---- */

static void random_mac(char out[18]) {
        unsigned char b[3];

        sf_random_bytes(b, sizeof(b));
        snprintf(out, 18, "02:00:00:%02x:%02x:%02x", b[0], b[1], b[2]);
}

static int set_iface_mac(json_object *doc, void *ud) {
        json_object_object_add(doc, "macaddr", json_object_new_string(ud));
        return 0;
}

/* Claim mac for interface iu (cluster-wide unique, lower case).  The interface record
 * already names the candidate, so a crash after the claim leaves nothing unaccounted; a
 * random MAC that collides is replaced (record first, claim after). */
/* KEYS[1] claim key, ARGV[1] owner: 1 if the key is (now) the owner's, 0 if another's. */
static const char CLAIM_LUA[] = "if redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 1 end "
                                "if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end return 0";

static int mac_claim(sf_ctx_t *ctx, bool requested, const char *iu, char mac[18]) {
        for (int attempt = 0; attempt < 50; attempt++) {
                _cleanup_reply_ redisReply *r = NULL;

                if (attempt > 0) {
                        random_mac(mac);
                        if (sf_store_update(ctx->store, "networkinterface", iu, NULL, set_iface_mac, mac, NULL) < 0)
                                return -EIO;
                }
                /* SET NX re-sent after a lost reply finds its own value: a claim is ours when
                 * the key names this interface, whoever's SET wrote it. */
                r = sf_store_cmd(ctx->store, "EVAL %s 1 " SF_KEY_MAC " %s", CLAIM_LUA, mac, iu);
                if (!r || r->type != REDIS_REPLY_INTEGER)
                        return -EIO;
                if (r->integer == 1)
                        return 0;
                if (requested)
                        return -EADDRINUSE;
        }
        return -ENOSPC;
}

/* Give back the addresses and MACs of an instance that never reached a node. */
static void release_interfaces(sf_ctx_t *ctx, json_object *ifaces) {
        for (size_t i = 0; ifaces && i < json_object_array_length(ifaces); i++) {
                const char *iu = json_object_get_string(json_object_array_get_idx(ifaces, i));
                if (iu)
                        sf_obj_release_interface(ctx, iu, NULL);
        }
}

static int set_interfaces(json_object *doc, void *ud) {
        json_object_object_add(doc, "interfaces", json_object_get((json_object *)ud));
        return 0;
}

typedef struct {
        json_object *artifacts;
        const char *node;
} placement_t;

static int set_placement(json_object *doc, void *ud) {
        const placement_t *p = ud;

        json_object_object_add(doc, "artifacts", json_object_get(p->artifacts));
        json_object_object_add(doc, "node", json_object_new_string(p->node));
        return 0;
}

typedef struct {
        const char *mac, *ip;
} iface_addr_t;

static int set_iface_addr(json_object *doc, void *ud) {
        iface_addr_t *a = ud;

        json_object_object_add(doc, "macaddr", json_object_new_string(a->mac));
        json_object_object_add(doc, "ipv4", a->ip[0] ? json_object_new_string(a->ip) : NULL);
        return 0;
}

/* Undo what a failed create reserved, and leave the instance listed in error. */
static void create_failed(sf_ctx_t *ctx, const char *uuid, json_object *ifaces, const char *msg) {
        release_interfaces(ctx, ifaces);
        sf_obj_set_state(ctx, "instance", uuid, "initial-error", msg, NULL, NULL);
        sf_obj_set_state(ctx, "instance", uuid, "error", NULL, NULL, NULL);
}

/* Step: the instance record, state initial (api.md §2.3.1: after all validation). */
static int instance_record_write(sf_ctx_t *ctx, const create_req_t *c, const char *uuid) {
        _cleanup_json_ json_object *doc = json_object_new_object();

        json_object_object_add(doc, "uuid", json_object_new_string(uuid));
        json_object_object_add(doc, "name", json_object_new_string(c->name));
        json_object_object_add(doc, "namespace", json_object_new_string(c->ns));
        json_object_object_add(doc, "state", json_object_new_string("initial"));
        json_object_object_add(doc, "state_updated", json_object_new_double(sf_now()));
        json_object_object_add(doc, "metadata", c->metadata ? json_object_get(c->metadata) : json_object_new_object());
        json_object_object_add(doc, "cpus", json_object_new_int64(c->cpus));
        json_object_object_add(doc, "memory", json_object_new_int64(c->memory));
        json_object_object_add(doc, "disk_spec", json_object_get(c->disks));
        json_object_object_add(doc, "ssh_key", c->ssh_key ? json_object_new_string(c->ssh_key) : NULL);
        json_object_object_add(doc, "user_data", c->user_data ? json_object_new_string(c->user_data) : NULL);
        json_object_object_add(doc, "video", json_object_get(c->video));
        json_object_object_add(doc, "uefi", json_object_new_boolean(c->uefi));
        json_object_object_add(doc, "configdrive", json_object_new_string(c->configdrive));
        json_object_object_add(doc, "nvram_template", NULL);
        json_object_object_add(doc, "secure_boot", json_object_new_boolean(c->secure_boot));
        json_object_object_add(doc, "machine_type", json_object_new_string(c->secure_boot ? "q35" : "pc"));
        json_object_object_add(doc, "side_channels", c->side_channels ? json_object_get(c->side_channels) : NULL);
        json_object_object_add(doc, "agent_state", NULL);
        json_object_object_add(doc, "agent_start_time", NULL);
        json_object_object_add(doc, "agent_system_boot_time", NULL);
        json_object_object_add(doc, "error_message", NULL);
        if (c->placed_on)
                json_object_object_add(doc, "requested_placement", json_object_new_string(c->placed_on));
        json_object_object_add(doc, "console_port", NULL);
        json_object_object_add(doc, "node", NULL);
        json_object_object_add(doc, "power_state", json_object_new_string("initial"));
        json_object_object_add(doc, "vdi_port", NULL);
        json_object_object_add(doc, "vdi_tls_port", NULL);
        json_object_object_add(doc, "interfaces", json_object_new_array());
        json_object_object_add(doc, "disks", json_object_new_array());
        /* Filled in by instance_place, in the write that sets "node". */
        json_object_object_add(doc, "artifacts", json_object_new_array());
        return sf_obj_create(ctx, "instance", uuid, doc);
}

/* One interface: recorded and listed on the instance (ifaces) before anything is claimed
 * for it, so whatever a crash interrupts can be found and given back; then its MAC and
 * its address.  A conflict fills resp (409/507) and returns <0. */
static int instance_add_interface(sf_ctx_t *ctx, const create_req_t *c, size_t i, const char *uuid,
                                  json_object *ifaces, sf_http_resp_t *resp) {
        const net_req_t *n = &c->nets[i];
        _cleanup_json_ json_object *idoc = json_object_new_object();
        char iu[SF_UUID_LEN], ip[16] = "", mac[18];
        sf_cidr_t cidr;
        int r;

        sf_uuid_new(iu);
        if (n->mac[0])
                snprintf(mac, sizeof(mac), "%s", n->mac);
        else
                random_mac(mac);
        json_object_object_add(idoc, "uuid", json_object_new_string(iu));
        json_object_object_add(idoc, "namespace", json_object_new_string(c->ns));
        json_object_object_add(idoc, "state", json_object_new_string("initial"));
        json_object_object_add(idoc, "state_updated", json_object_new_double(sf_now()));
        json_object_object_add(idoc, "metadata", json_object_new_object());
        json_object_object_add(idoc, "network_uuid", json_object_new_string(n->network_uuid));
        json_object_object_add(idoc, "instance_uuid", json_object_new_string(uuid));
        json_object_object_add(idoc, "macaddr", json_object_new_string(mac));
        json_object_object_add(idoc, "ipv4", NULL);
        json_object_object_add(idoc, "order", json_object_new_int((int)i));
        json_object_object_add(idoc, "model", json_object_new_string(n->model));
        json_object_object_add(idoc, "floating", NULL);
        r = sf_obj_create(ctx, "networkinterface", iu, idoc);
        if (r < 0)
                return r;
        json_object_array_add(ifaces, json_object_new_string(iu));
        r = sf_store_update(ctx->store, "instance", uuid, NULL, set_interfaces, ifaces, NULL);
        if (r < 0)
                return r;
        freeReplyObject(sf_store_cmd(ctx->store, "SADD " SF_KEY_NETIFACES " %s", n->network_uuid, iu));

        r = mac_claim(ctx, n->mac[0] != 0, iu, mac);
        if (r == -EADDRINUSE)
                sf_http_error(resp, 409, "mac address %s in use", n->mac);
        if (r < 0)
                return r;
        if (strcmp(n->address, "none") != 0) {
                if (sf_cidr_parse(sf_json_str(n->net, "netblock"), &cidr, NULL) < 0)
                        return -EIO;
                r = sf_ipam_reserve(ctx->store, n->network_uuid, &cidr, n->address[0] ? n->address : NULL, iu,
                                    ip);
                if (r == -EADDRINUSE || r == -ERANGE)
                        sf_http_error(resp, 409, "address %s in use", n->address);
                else if (r == -ENOSPC)
                        sf_http_error(resp, 507, "No free addresses on network");
                if (r < 0)
                        return r;
        }
        return sf_store_update(ctx->store, "networkinterface", iu, NULL, set_iface_addr,
                               &(iface_addr_t){.mac = mac, .ip = ip}, NULL);
}

/* Step: every interface, in order (api.md §2.3.1: after the record exists). */
static int instance_add_interfaces(sf_ctx_t *ctx, const create_req_t *c, const char *uuid, json_object *ifaces,
                                   sf_http_resp_t *resp) {
        for (size_t i = 0; i < c->nnets; i++) {
                int r = instance_add_interface(ctx, c, i, uuid, ifaces, resp);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Step: an image artifact per URL disk (api.md §6.3), found or created only once the
 * interfaces are claimed and a node is chosen, so a refused create leaves no artifact
 * behind; then the artifacts and the chosen node in one write (with the node's "set
 * attribute" event).  Last before the intents: once "node" is set, a re-drive (an API
 * killed before publishing) builds from this record, so it must be complete.
 * *ret_doc gets the record as written. */
static int instance_place(sf_ctx_t *ctx, create_req_t *c, const char *uuid, const char *node,
                          json_object **ret_doc) {
        _cleanup_json_ json_object *arts = json_object_new_array(), *extra = json_object_new_object();
        _cleanup_free_ char *stored_ts = NULL;
        sf_event_write_t ev = {.ctx = ctx, .objtype = "instance", .uuid = uuid, .type = "mutate",
                               .message = "set attribute", .extra = extra, .duration = -1};
        int r;

        if (!arts || !extra)
                return -ENOMEM;
        for (size_t i = 0; i < c->ndisks; i++) {
                const char *base = sf_json_str(json_object_array_get_idx(c->disks, i), "base");

                c->artifacts[i][0] = 0;
                if (base && *base && strcmp(base, "none") != 0) {
                        r = artifact_for_url(ctx, c->ns, base, c->artifacts[i]);
                        if (r < 0)
                                return r;
                }
                json_object_array_add(arts, c->artifacts[i][0] ? json_object_new_string(c->artifacts[i]) : NULL);
        }
        json_object_object_add(extra, "attribute", json_object_new_string("node"));
        json_object_object_add(extra, "value", json_object_new_string(node));
        r = sf_store_update_then(ctx->store, "instance", uuid, NULL, set_placement,
                                 &(placement_t){.artifacts = arts, .node = node}, sf_event_write_then, &ev, ret_doc,
                                 &stored_ts);
        if (r == 0 && stored_ts)
                sf_event_write_publish(&ev, stored_ts);
        sf_event_write_done(&ev);
        return r;
}

/* Step: intents, recorded in Redis then published; each worker converges its part. */
static int instance_publish(sf_ctx_t *ctx, const create_req_t *c, const char *uuid, json_object *ifaces,
                            const char *node) {
        int r;

        for (size_t i = 0; i < json_object_array_length(ifaces); i++) {
                const char *iu = json_object_get_string(json_object_array_get_idx(ifaces, i));
                r = sf_intent_submit(ctx, node, "network", "network.attach", "networkinterface", iu, c->ns, NULL,
                                     NULL);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < c->ndisks; i++) {
                bool dup = false;
                if (!c->artifacts[i][0])
                        continue;
                for (size_t j = 0; j < i; j++)
                        dup |= strcmp(c->artifacts[i], c->artifacts[j]) == 0;
                if (dup)
                        continue;
                r = sf_intent_submit(ctx, node, "blob", "blob.fetch", "artifact", c->artifacts[i], c->ns, NULL, NULL);
                if (r < 0)
                        return r;
        }
        return sf_intent_submit(ctx, node, "compute", "instance.create", "instance", uuid, c->ns, NULL, NULL);
}

/* POST /instances: validate everything, then record, claim, place, publish.  Nothing is
 * claimed before the whole body is valid; a failure after the record exists gives back
 * every claim and leaves the instance in error (upstream keeps it listed). */
int sf_api_instances_post(sf_http_req_t *req, sf_http_resp_t *resp) {
        sf_ctx_t *ctx = sf_api_ctx();
        create_req_t c = {0};
        char uuid[SF_UUID_LEN], node[64] = "";
        _cleanup_json_ json_object *ifaces = json_object_new_array(), *final = NULL;
        sf_caller_t caller;
        int r;

        if (sf_api_auth(req, resp, &caller) < 0)
                return 0;
        r = create_parse_body(ctx, &caller, req, resp, &c);
        if (r < 0)
                goto cleanup;

        sf_uuid_new(uuid);
        r = instance_record_write(ctx, &c, uuid);
        if (r < 0)
                goto cleanup;
        r = instance_add_interfaces(ctx, &c, uuid, ifaces, resp);
        if (r == 0)
                r = sf_api_schedule(ctx,
                                    &(sf_sched_req_t){.cpus = c.cpus, .memory = c.memory, .ns = c.ns,
                                                      .placed_on = c.placed_on, .disks = c.disks,
                                                      .metadata = c.metadata, .instance = uuid},
                                    resp, node);
        if (r == 0)
                r = instance_place(ctx, &c, uuid, node, &final);
        if (r < 0) {
                _cleanup_json_ json_object *answer = resp->status ? json_tokener_parse(resp->body) : NULL;

                /* The instance's error_message is what the caller was told. */
                create_failed(ctx, uuid, ifaces, sf_json_str(answer, "error") ?: "create failed");
                goto cleanup;
        }
        /* From here the record holds everything: a failed publish is re-driven, not undone. */
        r = instance_publish(ctx, &c, uuid, ifaces, node);
        if (r < 0)
                goto cleanup;
        /* The record as this request wrote it (state initial): a worker that already
         * moved it on is seen by the next GET. */
        r = sf_http_json(resp, 200, sf_view_instance(ctx, final));
cleanup:
        create_req_done(&c);
        return resp->status ? 0 : r;
}

/* ---- read ---- */

int sf_api_instances_get(sf_http_req_t *req, sf_http_resp_t *resp) {
        return sf_api_list(req, resp, "instance", sf_view_instance);
}

int sf_api_instance_get(sf_http_req_t *req, sf_http_resp_t *resp) {
        static const char *const allowed[] = {"namespace", NULL};
        _cleanup_json_ json_object *doc = NULL;
        sf_caller_t caller;
        int r = sf_api_get_cached(req, resp, "instance", allowed);

        if (r <= 0)
                return r;
        if (sf_api_find(req, resp, "instance", &caller, &doc) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        return sf_http_json(resp, 200, sf_view_instance(sf_api_ctx(), doc));
}

static bool node_deleted(sf_ctx_t *ctx, const char *node) {
        _cleanup_json_ json_object *n = NULL;

        return sf_store_get(ctx->store, "node", node, &n, NULL) == 0 &&
               strcmp(sf_json_str(n, "state") ?: "", "deleted") == 0;
}

/* Ask for one instance's delete (any state but deleted): one never placed has nothing on
 * any node and is finished here; a placed one gets its node's instance.delete intent. */
static int instance_request_delete(sf_ctx_t *ctx, json_object *doc) {
        const char *uuid = sf_json_str(doc, "uuid"), *node = sf_json_str(doc, "node");
        const char *state = sf_json_str(doc, "state") ?: "";
        int r;

        /* A deleted node consumes no intents: its instances finish here, like never-placed
         * ones (only when its record says so; an unreadable record is not a yes). */
        if (node && *node && node_deleted(ctx, node))
                node = NULL;
        if (node && *node)
                return sf_intent_submit(ctx, node, "compute", "instance.delete", "instance", uuid,
                                        sf_json_str(doc, "namespace"), NULL, NULL);
        json_object *ifaces = NULL;
        json_object_object_get_ex(doc, "interfaces", &ifaces);
        release_interfaces(ctx, ifaces);
        /* api.md §4.3: delete-wait-error leaves only through error. */
        if (strcmp(state, "delete-wait-error") == 0)
                sf_obj_set_state(ctx, "instance", uuid, "error", NULL, NULL, NULL);
        r = sf_obj_set_state(ctx, "instance", uuid, "deleted", NULL, NULL, NULL);
        return r == -EINVAL ? 0 : r;
}

int sf_api_instance_delete(sf_http_req_t *req, sf_http_resp_t *resp) {
        static const char *const allowed[] = {"namespace", NULL};
        sf_ctx_t *ctx = sf_api_ctx();
        _cleanup_json_ json_object *doc = NULL, *after = NULL;
        const char *ns = NULL, *uuid, *state;
        sf_caller_t caller;
        int r;

        if (sf_api_find(req, resp, "instance", &caller, &doc) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        uuid = sf_json_str(doc, "uuid");
        state = sf_json_str(doc, "state") ?: "";
        if (strcmp(state, "deleted") == 0)
                return sf_http_error(resp, 404, "instance not found");
        sf_http_body_str(req, "namespace", &ns);
        if (ns && strcmp(ns, sf_json_str(doc, "namespace") ?: "") != 0)
                return sf_http_error(resp, 404, "instance not in namespace");
        r = instance_request_delete(ctx, doc);
        if (r < 0)
                return r;
        if (sf_store_get(ctx->store, "instance", uuid, &after, NULL) < 0)
                return -EIO;
        return sf_http_json(resp, 200, sf_view_instance(ctx, after));
}

/* DELETE /instances (api.md §2.4): every instance of one namespace, in any state, is
 * queued for delete; the answer lists their uuids.  `confirm` must be true; system names
 * the namespace, others may only name their own. */
int sf_api_instances_delete(sf_http_req_t *req, sf_http_resp_t *resp) {
        static const char *const allowed[] = {"confirm", "namespace", NULL};
        sf_ctx_t *ctx = sf_api_ctx();
        const char *ns = NULL;
        json_object *list;
        sf_caller_t caller;
        char **uuids = NULL;
        int r;

        if (sf_api_auth(req, resp, &caller) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        if (sf_api_delete_all_target(req, resp, &caller, &ns) < 0)
                return 0;
        r = sf_store_index(ctx->store, "instance", "ns", ns, &uuids, NULL);
        if (r < 0)
                return r;
        list = json_object_new_array();
        for (char **p = uuids; *p && r >= 0; p++) {
                _cleanup_json_ json_object *doc = NULL;

                r = sf_store_get(ctx->store, "instance", *p, &doc, NULL);
                if (r == -ENOENT) {
                        r = 0;
                        continue;
                }
                if (r < 0 || strcmp(sf_json_str(doc, "state") ?: "", "deleted") == 0)
                        continue;
                r = instance_request_delete(ctx, doc);
                if (r == 0)
                        json_object_array_add(list, json_object_new_string(*p));
        }
        sf_strv_free(uuids);
        if (r < 0) {
                json_object_put(list);
                return r;
        }
        return sf_http_json(resp, 200, list);
}

int sf_api_instance_events(sf_http_req_t *req, sf_http_resp_t *resp) {
        _cleanup_json_ json_object *doc = NULL;
        sf_caller_t caller;

        if (sf_api_find(req, resp, "instance", &caller, &doc) < 0)
                return 0;
        return sf_api_events(req, resp, "instance", sf_json_str(doc, "uuid"));
}

int sf_api_instance_interfaces(sf_http_req_t *req, sf_http_resp_t *resp) {
        sf_ctx_t *ctx = sf_api_ctx();
        _cleanup_json_ json_object *doc = NULL, *view = NULL;
        json_object *ifaces;
        sf_caller_t caller;

        if (sf_api_find(req, resp, "instance", &caller, &doc) < 0)
                return 0;
        view = sf_view_instance(ctx, doc);
        json_object_object_get_ex(view, "interfaces", &ifaces);
        return sf_http_json(resp, 200, json_object_get(ifaces));
}

/* The interface params[0] names (UUID only), if the caller owns it; else fills 401/404. */
static int interface_find(sf_http_req_t *req, sf_http_resp_t *resp, json_object **ret_doc) {
        sf_ctx_t *ctx = sf_api_ctx();
        json_object *doc = NULL;
        char uuid[SF_UUID_LEN];
        sf_caller_t caller;

        if (sf_api_auth(req, resp, &caller) < 0)
                return -EACCES;
        if (!sf_uuid_parse(req->params[0], uuid) ||
            sf_store_get(ctx->store, "networkinterface", uuid, &doc, NULL) < 0 ||
            !sf_api_owns(&caller, sf_json_str(doc, "namespace"))) {
                json_object_put(doc);
                return sf_http_error(resp, 404, "interface not found"), -ENOENT;
        }
        *ret_doc = doc;
        return 0;
}

int sf_api_interface_get(sf_http_req_t *req, sf_http_resp_t *resp) {
        _cleanup_json_ json_object *doc = NULL;

        if (interface_find(req, resp, &doc) < 0)
                return 0;
        return sf_http_json(resp, 200, sf_view_interface(doc));
}

int sf_api_interface_events(sf_http_req_t *req, sf_http_resp_t *resp) {
        _cleanup_json_ json_object *doc = NULL;

        if (interface_find(req, resp, &doc) < 0)
                return 0;
        return sf_api_events(req, resp, "networkinterface", sf_json_str(doc, "uuid"));
}

int sf_api_instance_consoledata(sf_http_req_t *req, sf_http_resp_t *resp) {
        static const char *const allowed[] = {"length", NULL};
        sf_ctx_t *ctx = sf_api_ctx();
        _cleanup_json_ json_object *doc = NULL;
        _cleanup_free_ char *path = NULL, *buf = NULL;
        _cleanup_close_ int fd = -1;
        int64_t length = 10240;
        json_object *lv;
        sf_caller_t caller;
        struct stat st;
        off_t start;
        ssize_t n;
        size_t want;

        if (sf_api_find(req, resp, "instance", &caller, &doc) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        if (json_object_object_get_ex(req->body, "length", &lv) && lv) {
                if (sf_http_body_int(req, "length", 10240, &length) < 0)
                        return sf_http_error(resp, 400, "length is not an integer");
        }
        /* The console log lives on the hypervisor; one node here, so read it locally. */
        path = sf_strdupf("%s/instances/%s/console.log", ctx->cfg.storage, sf_json_str(doc, "uuid"));
        if (!path)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return sf_http_raw(resp, 200, "applicaton/octet-stream", "", 0);
        start = (length < 0 || length >= st.st_size) ? 0 : st.st_size - length;
        want = (size_t)(st.st_size - start);
        if (want > 64 * 1024 * 1024)
                want = 64 * 1024 * 1024;
        buf = malloc(want + 1);
        if (!buf)
                return -ENOMEM;
        n = pread(fd, buf, want, start);
        if (n < 0)
                return -errno;
        /* Upstream's mimetype typo, preserved for wire compatibility (api.md §1.3). */
        return sf_http_raw(resp, 200, "applicaton/octet-stream", buf, (size_t)n);
}
