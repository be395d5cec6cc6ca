/* sf instance ...: list, show, create (upstream's disk, network, video and metadata specs:
 * cli/spec.h), delete, delete-all, events, set/delete-metadata and consoledata, with
 * upstream's arguments and output (cli.md §1.2, §4), power operations (reboot, poweron,
 * poweroff, pause, unpause), consoledelete and the VDI console (vdiconsole runs
 * remote-viewer, vdiconsolefile prints the .vv) and screenshot (the image through
 * GET /blobs/<uuid>/data).  Snapshots and agent commands are absent: the API does not
 * serve them yet.
 *
 * Where upstream exits 0 after refusing (small memory without --force, no disk, a bad spec,
 * delete-all without --confirm) we print the same words on stderr and exit 1: nothing was
 * done, and a script must be able to tell. */
#include "cli.h"
#include "live.h"
#include "out.h"
#include "spec.h"
#include "wait.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Create waits while the instance is in one of these (upstream: initial, creating; sf has
 * preflight between them). */
static const char *const CREATE_PENDING[] = {"initial", "preflight", "creating", NULL};

/* ---- rendering helpers ---- */

/* Python's str(d.get(key, dflt)): dflt is already the rendering of the default. */
static char *field_or(json_object *o, const char *key, const char *dflt) {
        json_object *v;
        char *s;
        if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v))
                return sf_out_pystr(v);
        s = strdup(dflt);
        if (!s)
                abort();
        return s;
}

/* Python truthiness of a JSON value (NULL = None or absent). */
static int py_truthy(json_object *v) {
        switch (v ? json_object_get_type(v) : json_type_null) {
        case json_type_null: return 0;
        case json_type_boolean: return json_object_get_boolean(v);
        case json_type_int: return json_object_get_int64(v) != 0;
        case json_type_double: return json_object_get_double(v) != 0;
        case json_type_string: return json_object_get_string_len(v) > 0;
        case json_type_array: return json_object_array_length(v) > 0;
        case json_type_object: return json_object_object_length(v) > 0;
        }
        return 0;
}

static json_object *member(json_object *o, const char *key) {
        json_object *v = NULL;
        if (json_object_is_type(o, json_type_object))
                json_object_object_get_ex(o, key, &v);
        return v;
}

static size_t array_len(json_object *a) {
        return json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

static FILE *memstream(char **buf, size_t *len) {
        FILE *f = open_memstream(buf, len);
        if (!f)
                abort();
        return f;
}

/* The interfaces column of instance list: pretty "order: ipv4[ (floating)]" lines,
 * simple "order:ipv4[(floating)]" joined by ';' (upstream's two spellings). */
static char *interfaces_cell(json_object *ifaces, int pretty) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = memstream(&buf, &len);
        for (size_t i = 0; i < array_len(ifaces); i++) {
                json_object *iface = json_object_array_get_idx(ifaces, i), *fl = member(iface, "floating");
                char *order = field_or(iface, "order", "None");
                char *ipv4 = field_or(iface, "ipv4", pretty ? "No address assigned" : "None");
                fprintf(f, "%s%s%s%s", i ? (pretty ? "\n" : ";") : "", order, pretty ? ": " : ":", ipv4);
                if (py_truthy(fl)) {
                        char *s = sf_out_pystr(fl);
                        fprintf(f, pretty ? " (%s)" : "(%s)", s);
                        free(s);
                }
                free(order);
                free(ipv4);
        }
        fclose(f);
        return buf;
}

/* ---- list ---- */

static const sf_opt_t list_opts[] = {
        SF_OPT("all", 'a', NULL, "Include instances in error and deleted instances"),
        {0},
};

static int inst_list(sf_cli_t *cli, sf_args_t *a) {
        json_object *body = json_object_new_object(), *list = NULL;
        static const char *const hdr[] = {"uuid", "name", "namespace", "cpus", "memory", "hypervisor",
                                          "power state", "state", "interfaces"};
        static const char *const keys[] = {"uuid", "name", "namespace", "cpus", "memory", "node"};
        sf_table_t *t = NULL;

        json_object_object_add(body, "all", json_object_new_boolean(sf_arg_flag(a, "all", 0)));
        if (sf_cli_call(cli, "GET", strdup("/instances"), body, &list) < 0)
                return 1;
        if (!json_object_is_type(list, json_type_array)) {
                json_object_put(list);
                list = json_object_new_array();
        }
        if (cli->out == OUT_JSON) {
                json_object *wrap = json_object_new_object();
                for (size_t i = 0; i < array_len(list); i++) {
                        json_object *inst = json_object_array_get_idx(list, i);
                        if (json_object_is_type(inst, json_type_object) && !member(inst, "interfaces"))
                                json_object_object_add(inst, "interfaces", json_object_new_array());
                }
                json_object_object_add(wrap, "instances", list);
                sf_out_json(stdout, wrap);
                json_object_put(wrap);
                return 0;
        }
        if (cli->out == OUT_PRETTY) {
                t = sf_table_new(9, hdr);
                sf_table_left(t, 8);
        } else {
                printf("uuid,name,namespace,cpus,memory,hypervisor,power state,state,interfaces\n");
        }
        for (size_t i = 0; i < array_len(list); i++) {
                json_object *inst = json_object_array_get_idx(list, i);
                char *cell[9];
                for (size_t k = 0; k < 6; k++)
                        cell[k] = field_or(inst, keys[k], "None");
                cell[6] = field_or(inst, "power_state", "unknown");
                cell[7] = field_or(inst, "state", "None");
                cell[8] = interfaces_cell(member(inst, "interfaces"), t != NULL);
                if (t)
                        sf_table_add(t, (const char *const *)cell);
                else
                        printf("%s,%s,%s,%s,%s,%s,%s,%s,%s\n", cell[0], cell[1], cell[2], cell[3], cell[4], cell[5],
                               cell[6], cell[7], cell[8]);
                for (size_t k = 0; k < 9; k++)
                        free(cell[k]);
        }
        if (t) {
                sf_table_print(stdout, t);
                sf_table_free(t);
        }
        json_object_put(list);
        return 0;
}

/* ---- show ---- */

/* upstream's _pretty_data: "key=<str(value).ljust(w)>  " per key; absent keys print ''. */
static void pretty_data(FILE *f, json_object *row, const char *const *keys, const int *widths) {
        for (size_t i = 0; keys[i]; i++) {
                char *v = field_or(row, keys[i], "");
                fprintf(f, "%s=%-*s  ", keys[i], widths[i], v);
                free(v);
        }
}

/* upstream's _pretty_dict(16, rows, ...): rows after the first on new lines indented 16. */
static char *pretty_rows(json_object *rows, const char *const *keys, const int *widths) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = memstream(&buf, &len);
        for (size_t i = 0; i < array_len(rows); i++) {
                if (i)
                        fprintf(f, "\n%16s", "");
                pretty_data(f, json_object_array_get_idx(rows, i), keys, widths);
        }
        fclose(f);
        return buf;
}

static void show_line(sf_cli_t *cli, const char *key, const char *value) {
        if (cli->out == OUT_SIMPLE)
                printf("%s:%s\n", key, value);
        else
                printf("%-14s: %s\n", key, value);
}

static void show_field(sf_cli_t *cli, const char *label, json_object *inst, const char *key, const char *dflt) {
        char *v = field_or(inst, key, dflt);
        show_line(cli, label, v);
        free(v);
}

/* metadata as upstream's show prints it: pretty "Metadata:" and "    %-8s: %s" lines,
 * simple a "metadata,key,value" header and "metadata,k,v" lines. */
static void print_metadata(sf_cli_t *cli, json_object *md) {
        printf(cli->out == OUT_PRETTY ? "Metadata:\n" : "metadata,key,value\n");
        if (!json_object_is_type(md, json_type_object))
                return;
        json_object_object_foreach(md, k, v) {
                char *s = sf_out_pystr(v);
                if (cli->out == OUT_PRETTY)
                        printf("    %-8s: %s\n", k, s);
                else
                        printf("metadata,%s,%s\n", k, s);
                free(s);
        }
}

/* upstream's util.show_interface (pretty or simple), with the interface's metadata when
 * the server lists the interface-metadata capability (else an empty block, as upstream). */
static int print_interface(sf_cli_t *cli, json_object *iface) {
        static const char *const keys[] = {"uuid", "network_uuid", "macaddr", "order", "ipv4", "floating", "model"};
        static const char *const labels[] = {"uuid", "network", "macaddr", "order", "ipv4", "floating", "model"};
        json_object *md = NULL;
        char *v[7], *uuid = field_or(iface, "uuid", "None");
        int cap = sf_client_capable(&cli->client, "interface-metadata");

        if (cap < 0 ||
            (cap && sf_cli_call(cli, "GET", sf_cli_path("/interfaces/%s/metadata", uuid, NULL), NULL, &md) < 0)) {
                free(uuid);
                return -1;
        }
        free(uuid);
        for (size_t i = 0; i < 7; i++)
                v[i] = field_or(iface, keys[i], i == 4 || i == 5 ? "" : "None");
        if (cli->out == OUT_PRETTY)
                for (size_t i = 0; i < 7; i++)
                        printf("    %-8s: %s\n", labels[i], v[i]);
        else
                printf("iface,%s,%s,%s,%s,%s,%s,%s\n", v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
        printf("\n");
        print_metadata(cli, md);
        for (size_t i = 0; i < 7; i++)
                free(v[i]);
        json_object_put(md);
        return 0;
}

/* --json: the instance filtered to upstream's keys, plus network_interfaces and metadata. */
static void print_instance_json(json_object *inst, json_object *ifaces, json_object *md) {
        static const char *const keys[] = {"uuid", "name", "namespace", "cpus", "memory", "disk_spec", "video",
                                           "node", "console_port", "vdi_port", "vdi_tls_port", "ssh_key",
                                           "user_data", "power_state", "state", "uefi", "secure_boot",
                                           "nvram_template", "side_channels", "agent_state", NULL};
        static const char *const ikeys[] = {"uuid", "network_uuid", "macaddr", "order", "ipv4", "floating", "model",
                                            NULL};
        json_object *out = json_object_new_object(), *nis = json_object_new_array(), *v;

        for (size_t i = 0; keys[i]; i++)
                if (json_object_object_get_ex(inst, keys[i], &v))
                        json_object_object_add(out, keys[i], json_object_get(v));
        for (size_t n = 0; n < array_len(ifaces); n++) {
                json_object *iface = json_object_array_get_idx(ifaces, n), *o = json_object_new_object();
                for (size_t i = 0; ikeys[i]; i++)
                        if (json_object_is_type(iface, json_type_object) && json_object_object_get_ex(iface, ikeys[i], &v))
                                json_object_object_add(o, ikeys[i], json_object_get(v));
                json_object_array_add(nis, o);
        }
        json_object_object_add(out, "network_interfaces", nis);
        json_object_object_add(out, "metadata", md ? json_object_get(md) : json_object_new_object());
        sf_out_json(stdout, out);
        json_object_put(out);
}

/* upstream's _show_instance without snapshots and agent operations (not served yet). */
static int print_instance(sf_cli_t *cli, json_object *inst) {
        static const char *const dkeys[] = {"type", "bus", "size", "base", NULL};
        static const int dwidths[] = {5, 4, 3, 0};
        static const char *const vkeys[] = {"model", "memory", "vdi", NULL};
        static const int vwidths[] = {0, 0, 0};
        json_object *md = NULL, *ifaces = NULL, *disks, *video, *sc;
        char *uuid;
        int rc = 1;

        if (!json_object_is_type(inst, json_type_object)) {
                fprintf(stderr, "Instance not found\n");
                return 1;
        }
        uuid = field_or(inst, "uuid", "None");
        if (sf_cli_call(cli, "GET", sf_cli_path("/instances/%s/metadata", uuid, NULL), NULL, &md) < 0 ||
            sf_cli_call(cli, "GET", sf_cli_path("/instances/%s/interfaces", uuid, NULL), NULL, &ifaces) < 0)
                goto cleanup;
        if (cli->out == OUT_JSON) {
                print_instance_json(inst, ifaces, md);
                rc = 0;
                goto cleanup;
        }
        disks = member(inst, "disk_spec");
        video = member(inst, "video");
        show_field(cli, "uuid", inst, "uuid", "None");
        show_field(cli, "name", inst, "name", "None");
        show_field(cli, "namespace", inst, "namespace", "None");
        show_field(cli, "cpus", inst, "cpus", "None");
        show_field(cli, "memory", inst, "memory", "None");
        show_field(cli, "uefi", inst, "uefi", "False");
        show_field(cli, "secure boot", inst, "secure_boot", "False");
        show_field(cli, "nvram template", inst, "nvram_template", "None");
        if (cli->out == OUT_PRETTY) {
                json_object *one = json_object_new_array();
                char *d = pretty_rows(disks, dkeys, dwidths), *v;
                json_object_array_add(one, json_object_get(video));
                v = pretty_rows(one, vkeys, vwidths);
                show_line(cli, "disk spec", d);
                show_line(cli, "video", v);
                free(d);
                free(v);
                json_object_put(one);
        }
        show_field(cli, "node", inst, "node", "");
        show_field(cli, "power state", inst, "power_state", "");
        show_field(cli, "state", inst, "state", "");
        show_field(cli, "agent state", inst, "agent_state", "");
        show_field(cli, "error message", inst, "error_message", "");
        show_field(cli, "console port", inst, "console_port", "");
        show_field(cli, "vdi port", inst, "vdi_port", "");
        if (py_truthy(member(inst, "vdi_tls_port")))
                show_field(cli, "vdi tls port", inst, "vdi_tls_port", "");
        {
                /* ' '.join(side_channels); upstream would crash on null, we print nothing */
                char *buf = NULL;
                size_t len = 0;
                FILE *f = memstream(&buf, &len);
                sc = member(inst, "side_channels");
                for (size_t i = 0; i < array_len(sc); i++) {
                        char *s = sf_out_pystr(json_object_array_get_idx(sc, i));
                        fprintf(f, "%s%s", i ? " " : "", s);
                        free(s);
                }
                fclose(f);
                show_line(cli, "side channels", buf);
                free(buf);
        }
        printf("\n");
        show_field(cli, "ssh key", inst, "ssh_key", "None");
        show_field(cli, "user data", inst, "user_data", "None");
        if (cli->out == OUT_SIMPLE) {
                printf("\ndisk_spec,type,bus,size,base\n");
                for (size_t i = 0; i < array_len(disks); i++) {
                        json_object *d = json_object_array_get_idx(disks, i);
                        char *v[4];
                        for (size_t k = 0; k < 4; k++)
                                v[k] = field_or(d, dkeys[k], "None");
                        printf("disk_spec,%s,%s,%s,%s\n", v[0], v[1], v[2], v[3]);
                        for (size_t k = 0; k < 4; k++)
                                free(v[k]);
                }
                char *model = field_or(video, "model", "None"), *mem = field_or(video, "memory", "None");
                printf("\nvideo,model,memory\nvideo,%s,%s\n", model, mem);
                free(model);
                free(mem);
        }
        printf("\n");
        print_metadata(cli, md);
        printf("\n");
        if (cli->out == OUT_PRETTY)
                printf("Interfaces:\n");
        else
                printf("iface,interface uuid,network uuid,macaddr,order,ipv4,floating,model\n");
        for (size_t i = 0; i < array_len(ifaces); i++) {
                if (cli->out == OUT_PRETTY)
                        printf("\n");
                if (print_interface(cli, json_object_array_get_idx(ifaces, i)) < 0)
                        goto cleanup;
        }
        rc = 0;
cleanup:
        free(uuid);
        json_object_put(md);
        json_object_put(ifaces);
        return rc;
}

static int inst_show(sf_cli_t *cli, sf_args_t *a) {
        json_object *inst = NULL;
        int rc;
        if (sf_cli_call(cli, "GET", sf_cli_path("/instances/%s", a->pos[0], NULL), NULL, &inst) < 0)
                return 1;
        rc = print_instance(cli, inst);
        json_object_put(inst);
        return rc;
}

/* ---- create ---- */

static const sf_opt_t create_opts[] = {
        SF_OPT("network", 'n', "NET[@ADDR]", "A short form definition of a network to attach.", .multiple = 1),
        SF_OPT("floated", 'f', "NET[@ADDR]", "As for --network, but with implied float of the interface.",
               .multiple = 1),
        SF_OPT("networkspec", 'N', "K=V,...", "A long form \"networkspec\" definition of a network to attach.",
               .multiple = 1),
        SF_OPT("disk", 'd', "SIZE[@BASE]", "A short form definition of a disk to attach (size in GiB).",
               .multiple = 1),
        SF_OPT("diskspec", 'D', "K=V,...", "A long form \"diskspec\" definition of a disk to attach.", .multiple = 1),
        SF_OPT("sshkey", 'i', "PATH", "The path to a ssh public key to configure via config drive."),
        SF_OPT("sshkeydata", 'I', "TEXT", "A ssh public key as a string to configure via config drive."),
        SF_OPT("userdata", 'u', "PATH", "The path to a file of user data for the config drive."),
        SF_OPT("encodeduserdata", 'U', "B64", "Base64 encoded user data for the config drive."),
        SF_OPT("placement", 'p', "NODE", "Force placement of instance on specified node."),
        SF_OPT("videospec", 'V', "K=V,...", "A detailed \"videospec\" definition of the video configuration."),
        SF_OPT("configdrive", 0, "[openstack-disk|none]", "Select config drive format (default openstack-disk)."),
        SF_OPT("namespace", 0, "NS", "If you are an admin, you can create this object in a different namespace."),
        SF_OPT("uefi", 0, NULL, "Pass --uefi to use UEFI boot instead of BIOS boot (default --bios).", .neg = "bios"),
        SF_OPT("secure-boot", 0, NULL, "Pass --secure-boot to enable UEFI secure boot.", .neg = "no-secure-boot"),
        SF_OPT("nvram-template", 0, "TEXT", "A label or blob UUID to use as a template for UEFI NVRAM."),
        SF_OPT("force", 0, NULL, "Allow very small memory instances."),
        SF_OPT("metadata", 'm', "KEY=VALUE", "Add key=value pair to instance metadata eg. affinity='{\"fastdisk\":10}'",
               .multiple = 1),
        SF_OPT("side-channel", 's', "NAME", "A named side channel, a virtio-serial port inside the guest.",
               .multiple = 1),
        {0},
};

/* click's INT for a positional argument: Python int() or a usage error. */
static int arg_int(const char *name, const char *s, int64_t *ret) {
        if (sf_spec_pyint(s, ret) == 0)
                return 0;
        fprintf(stderr, "Error: Invalid value for '%s': '%s' is not a valid integer.\n", name, s);
        return -EINVAL;
}

/* The whole of a file (click.Path(exists=True) refuses a missing one before anything runs). */
static int file_read(const char *opt, const char *path, char **ret, size_t *ret_len) {
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        size_t len = 0, n;
        char chunk[65536];
        FILE *m;

        if (!f) {
                int r = -errno;
                fprintf(stderr, "Error: Invalid value for '%s': Path '%s' %s.\n", opt, path,
                        r == -ENOENT ? "does not exist" : strerror(-r));
                return r;
        }
        m = memstream(&buf, &len);
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                fwrite(chunk, 1, n, m);
        fclose(m);
        if (ferror(f)) {
                fprintf(stderr, "Error: cannot read '%s'\n", path);
                fclose(f);
                free(buf);
                return -EIO;
        }
        fclose(f);
        *ret = buf;
        *ret_len = len;
        return 0;
}

static char *base64(const unsigned char *p, size_t len) {
        static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
        if (!out)
                abort();
        for (size_t i = 0; i < len; i += 3) {
                unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0) |
                             (i + 2 < len ? p[i + 2] : 0);
                *o++ = tbl[v >> 18 & 63];
                *o++ = tbl[v >> 12 & 63];
                *o++ = i + 1 < len ? tbl[v >> 6 & 63] : '=';
                *o++ = i + 2 < len ? tbl[v & 63] : '=';
        }
        *o = 0;
        return out;
}

/* A string option as a JSON value: null when not given. */
static json_object *opt_string(const sf_args_t *a, const char *name) {
        const char *v = sf_arg(a, name);
        return v ? json_object_new_string(v) : NULL;
}

/* The ssh_key and user_data values: -I wins over -i, -U over -u (base64 of the file). */
static int create_config_drive_data(const sf_args_t *a, json_object **ret_key, json_object **ret_userdata) {
        const char *keyfile = sf_arg(a, "sshkey"), *udfile = sf_arg(a, "userdata");
        json_object *key = NULL, *ud = NULL;
        char *buf;
        size_t len;

        if (keyfile && file_read("-i' / '--sshkey", keyfile, &buf, &len) < 0)
                return -EINVAL;
        if (keyfile) {
                key = json_object_new_string_len(buf, (int)len);
                free(buf);
        }
        if (udfile && file_read("-u' / '--userdata", udfile, &buf, &len) < 0) {
                json_object_put(key);
                return -EINVAL;
        }
        if (udfile) {
                char *b64 = base64((const unsigned char *)buf, len);
                ud = json_object_new_string(b64);
                free(b64);
                free(buf);
        }
        if (sf_arg(a, "sshkeydata")) {
                json_object_put(key);
                key = opt_string(a, "sshkeydata");
        }
        if (sf_arg(a, "encodeduserdata")) {
                json_object_put(ud);
                ud = opt_string(a, "encodeduserdata");
        }
        *ret_key = key;
        *ret_userdata = ud;
        return 0;
}

/* The disk list: every -d, then every -D. */
static int create_disks(const sf_args_t *a, json_object **ret) {
        json_object *list = json_object_new_array(), *d;
        const char *const *v;
        char err[512];
        int n;

        v = sf_arg_all(a, "disk", &n);
        for (int i = 0; i < n; i++) {
                if (sf_spec_disk(v[i], &d, err, sizeof(err)) < 0)
                        goto fail;
                json_object_array_add(list, d);
        }
        v = sf_arg_all(a, "diskspec", &n);
        for (int i = 0; i < n; i++) {
                if (sf_spec_diskspec(v[i], &d, err, sizeof(err)) < 0)
                        goto fail;
                json_object_array_add(list, d);
        }
        *ret = list;
        return 0;
fail:
        fprintf(stderr, "%s\n", err);
        json_object_put(list);
        return -EINVAL;
}

/* The network list: every -f, then every -n, then every -N (upstream's order). */
static int create_networks(const sf_args_t *a, json_object **ret) {
        json_object *list = json_object_new_array(), *n;
        const char *const *v;
        char err[512];
        int count;

        v = sf_arg_all(a, "floated", &count);
        for (int i = 0; i < count; i++) {
                if (sf_spec_network(v[i], 1, &n, err, sizeof(err)) < 0)
                        goto fail;
                json_object_array_add(list, n);
        }
        v = sf_arg_all(a, "network", &count);
        for (int i = 0; i < count; i++) {
                if (sf_spec_network(v[i], 0, &n, err, sizeof(err)) < 0)
                        goto fail;
                json_object_array_add(list, n);
        }
        v = sf_arg_all(a, "networkspec", &count);
        for (int i = 0; i < count; i++) {
                if (sf_spec_networkspec(v[i], &n, err, sizeof(err)) < 0)
                        goto fail;
                json_object_array_add(list, n);
        }
        *ret = list;
        return 0;
fail:
        fprintf(stderr, "%s\n", err);
        json_object_put(list);
        return -EINVAL;
}

static int create_metadata(const sf_args_t *a, json_object **ret) {
        json_object *md = json_object_new_object();
        const char *const *v;
        char err[512];
        int n;

        v = sf_arg_all(a, "metadata", &n);
        for (int i = 0; i < n; i++)
                if (sf_spec_metadata_add(md, v[i], err, sizeof(err)) < 0) {
                        fprintf(stderr, "%s\n", err);
                        json_object_put(md);
                        return -EINVAL;
                }
        *ret = md;
        return 0;
}

/* --configdrive: click.Choice, case-insensitive, sent as the canonical spelling. */
static int create_configdrive(const sf_args_t *a, json_object **ret) {
        const char *v = sf_arg(a, "configdrive");
        if (!v || !strcasecmp(v, "openstack-disk")) {
                *ret = json_object_new_string("openstack-disk");
                return 0;
        }
        if (!strcasecmp(v, "none")) {
                *ret = json_object_new_string("none");
                return 0;
        }
        fprintf(stderr, "Error: Invalid value for '--configdrive': '%s' is not one of 'openstack-disk', 'none'.\n", v);
        return -EINVAL;
}

/* upstream's body: every key present, null when unset; placed_on only when given. */
static int create_body(const sf_args_t *a, int64_t cpus, int64_t memory, json_object **ret) {
        json_object *body = json_object_new_object(), *key = NULL, *ud = NULL, *v = NULL, *sc;
        const char *const *names;
        char err[512];
        int n, r = -EINVAL;

        json_object_object_add(body, "name", json_object_new_string(a->pos[0]));
        json_object_object_add(body, "cpus", json_object_new_int64(cpus));
        json_object_object_add(body, "memory", json_object_new_int64(memory));
        if (create_networks(a, &v) < 0)
                goto cleanup;
        json_object_object_add(body, "network", v);
        if (create_config_drive_data(a, &key, &ud) < 0)
                goto cleanup;
        json_object_object_add(body, "ssh_key", key);
        json_object_object_add(body, "user_data", ud);
        json_object_object_add(body, "namespace", opt_string(a, "namespace"));
        if (sf_spec_video(sf_arg(a, "videospec"), &v, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s\n", err);
                goto cleanup;
        }
        json_object_object_add(body, "video", v);
        if (create_configdrive(a, &v) < 0)
                goto cleanup;
        json_object_object_add(body, "configdrive", v);
        if (create_metadata(a, &v) < 0)
                goto cleanup;
        json_object_object_add(body, "metadata", v);
        sc = json_object_new_array();
        names = sf_arg_all(a, "side-channel", &n);
        for (int i = 0; i < n; i++)
                json_object_array_add(sc, json_object_new_string(names[i]));
        json_object_object_add(body, "side_channels", sc);
        json_object_object_add(body, "uefi", json_object_new_boolean(sf_arg_flag(a, "uefi", 0)));
        json_object_object_add(body, "secure_boot", json_object_new_boolean(sf_arg_flag(a, "secure-boot", 0)));
        json_object_object_add(body, "nvram_template", opt_string(a, "nvram-template"));
        if (sf_arg(a, "placement") && *sf_arg(a, "placement"))
                json_object_object_add(body, "placed_on", opt_string(a, "placement"));
        if (create_disks(a, &v) < 0)
                goto cleanup;
        json_object_object_add(body, "disk", v);
        *ret = body;
        body = NULL;
        r = 0;
cleanup:
        json_object_put(body);
        return r;
}

static int state_in(json_object *o, const char *const *states) {
        json_object *st = member(o, "state");
        const char *s = json_object_is_type(st, json_type_string) ? json_object_get_string(st) : NULL;
        for (size_t i = 0; s && states[i]; i++)
                if (!strcmp(s, states[i]))
                        return 1;
        return 0;
}

static int inst_create(sf_cli_t *cli, sf_args_t *a) {
        json_object *body = NULL, *inst = NULL;
        int64_t cpus, memory;
        int nd, nD, rc;

        if (arg_int("CPUS", a->pos[1], &cpus) < 0 || arg_int("MEMORY", a->pos[2], &memory) < 0)
                return 1;
        if (memory < 128 && !sf_arg_flag(a, "force", 0)) {
                fprintf(stderr, "Specified memory size is %lldMB. This is very small.\n"
                                "Use the --force flag if this is deliberate\n", (long long)memory);
                return 1;
        }
        sf_arg_all(a, "disk", &nd);
        sf_arg_all(a, "diskspec", &nD);
        if (nd < 1 && nD < 1) {
                fprintf(stderr, "You must specify at least one disk\n");
                return 1;
        }
        if (create_body(a, cpus, memory, &body) < 0)
                return 1;
        if (sf_cli_call(cli, "POST", strdup("/instances"), body, &inst) < 0)
                return 1;
        if (state_in(inst, CREATE_PENDING) && sf_wait_deadline_s(cli) > 0) {
                json_object *last = NULL;
                char *uuid = field_or(inst, "uuid", "None"), *path = sf_cli_path("/instances/%s", uuid, NULL);
                int r = sf_wait_state(cli, uuid, path, CREATE_PENDING, NULL, &last);
                free(uuid);
                free(path);
                if (r == -1) {
                        json_object_put(last);
                        json_object_put(inst);
                        return 1;
                }
                if (last) { /* at the deadline too: upstream shows what it has */
                        json_object_put(inst);
                        inst = last;
                }
        }
        rc = print_instance(cli, inst);
        json_object_put(inst);
        return rc;
}

/* ---- delete ---- */

static const sf_opt_t delete_opts[] = {
        SF_OPT("namespace", 0, "NS", "The namespace the instance must be in."),
        {0},
};

/* Polls until uuid is deleted (or the --async deadline); *ret the last object seen. */
static int wait_deleted(sf_cli_t *cli, const char *uuid, json_object **ret) {
        char *path = sf_cli_path("/instances/%s", uuid, NULL);
        int r = sf_wait_state(cli, uuid, path, NULL, "deleted", ret);
        free(path);
        return r == -1 ? -1 : 0;
}

static int inst_delete(sf_cli_t *cli, sf_args_t *a) {
        json_object *body = NULL, *out = NULL, *last = NULL, *uuid;
        const char *ns = sf_arg(a, "namespace");

        if (ns) {
                body = json_object_new_object();
                json_object_object_add(body, "namespace", json_object_new_string(ns));
        }
        if (sf_cli_call(cli, "DELETE", sf_cli_path("/instances/%s", a->pos[0], NULL), body, &out) < 0)
                return 1;
        uuid = member(out, "uuid");
        if (!json_object_is_type(uuid, json_type_string)) {
                fprintf(stderr, "ERROR: No instance UUID returned by API\n");
                json_object_put(out);
                return 1;
        }
        if (wait_deleted(cli, json_object_get_string(uuid), &last) < 0) {
                json_object_put(last);
                json_object_put(out);
                return 1;
        }
        json_object_put(out);
        if (cli->out == OUT_JSON)
                sf_out_json(stdout, last);
        json_object_put(last);
        return 0;
}

static const sf_opt_t delete_all_opts[] = {
        SF_OPT("confirm", 0, NULL, "Yes, delete every instance of the namespace."),
        SF_OPT("namespace", 0, "NS", "The namespace to empty (system must name one)."),
        {0},
};

static int inst_delete_all(sf_cli_t *cli, sf_args_t *a) {
        json_object *body, *list = NULL;
        int rc = 0;

        if (!sf_arg_flag(a, "confirm", 0)) {
                fprintf(stderr, "You must be sure. Use option --confirm.\n");
                return 1;
        }
        body = json_object_new_object();
        json_object_object_add(body, "confirm", json_object_new_boolean(1));
        json_object_object_add(body, "namespace", opt_string(a, "namespace"));
        if (sf_cli_call(cli, "DELETE", strdup("/instances"), body, &list) < 0)
                return 1;
        /* one after the other: by the time the first is deleted the rest mostly are too */
        for (size_t i = 0; i < array_len(list) && !rc; i++) {
                json_object *u = json_object_array_get_idx(list, i);
                if (json_object_is_type(u, json_type_string) && wait_deleted(cli, json_object_get_string(u), NULL) < 0)
                        rc = 1;
        }
        /* upstream prints nothing even with --json; the uuids it deleted are more use */
        if (!rc && cli->out == OUT_JSON) {
                if (!list)
                        list = json_object_new_array(); /* an empty answer prints as upstream would */
                sf_out_json(stdout, list);
        }
        json_object_put(list);
        return rc;
}

/* ---- events, metadata, console ---- */

static int inst_events(sf_cli_t *cli, sf_args_t *a) {
        return sf_cli_events(cli, "instances", a);
}

static int inst_set_metadata(sf_cli_t *cli, sf_args_t *a) {
        return sf_cli_set_metadata(cli, "instances", a->pos[0], a->pos[1], a->pos[2], 1);
}

static int inst_delete_metadata(sf_cli_t *cli, sf_args_t *a) {
        return sf_cli_delete_metadata(cli, "instances", a->pos[0], a->pos[1]);
}

/* The console text as the API sends it, then a newline (upstream's print()), in every
 * output format. LENGTH (default 10240; -1 = all) is sent unless it is 0. */
static int inst_consoledata(sf_cli_t *cli, sf_args_t *a) {
        json_object *body = NULL;
        int64_t length = 10240;
        char *path, *text = NULL;
        size_t len = 0;
        int r;

        if (a->npos > 1 && arg_int("LENGTH", a->pos[1], &length) < 0)
                return 1;
        if (length) {
                body = json_object_new_object();
                json_object_object_add(body, "length", json_object_new_int64(length));
        }
        path = sf_cli_path("/instances/%s/consoledata", a->pos[0], NULL);
        r = sf_client_request_raw(&cli->client, "GET", path, body, &text, &len);
        free(path);
        json_object_put(body);
        if (r < 0)
                return 1;
        fwrite(text, 1, len, stdout);
        putchar('\n');
        free(text);
        return 0;
}

/* ---- power and consoles: upstream prints nothing, `{}` with --json ---- */

/* POST /instances/<ref>/<op>. */
static int power_call(sf_cli_t *cli, const char *ref, const char *op) {
        char fmt[64];

        snprintf(fmt, sizeof(fmt), "/instances/%%s/%s", op);
        if (sf_cli_call(cli, "POST", sf_cli_path(fmt, ref, NULL), NULL, NULL) < 0)
                return 1;
        sf_cli_json_empty(cli);
        return 0;
}

static const sf_opt_t reboot_opts[] = {
        SF_OPT("hard", 0, NULL, "Reset the instance (--soft, the default: an ACPI reboot the guest performs).",
               .neg = "soft"),
        {0},
};

static int inst_reboot(sf_cli_t *cli, sf_args_t *a) {
        return power_call(cli, a->pos[0], sf_arg_flag(a, "hard", 0) ? "reboothard" : "rebootsoft");
}

static int inst_poweron(sf_cli_t *cli, sf_args_t *a) { return power_call(cli, a->pos[0], "poweron"); }
static int inst_poweroff(sf_cli_t *cli, sf_args_t *a) { return power_call(cli, a->pos[0], "poweroff"); }
static int inst_pause(sf_cli_t *cli, sf_args_t *a) { return power_call(cli, a->pos[0], "pause"); }
static int inst_unpause(sf_cli_t *cli, sf_args_t *a) { return power_call(cli, a->pos[0], "unpause"); }

/* Upstream prints nothing here, even with --json. */
static int inst_consoledelete(sf_cli_t *cli, sf_args_t *a) {
        return sf_cli_call(cli, "DELETE", sf_cli_path("/instances/%s/consoledata", a->pos[0], NULL), NULL, NULL) < 0;
}

/* Upstream's `instance screenshot`: DESTINATION is opened (created or truncated) first, then
 * GET screenshot (the uuid of a new blob holding the image) and the blob's bytes are
 * written to it.  Prints nothing, in every output format. */
static int inst_screenshot(sf_cli_t *cli, sf_args_t *a) {
        json_object *blob = NULL;
        int cap, rc = 1;
        FILE *f;

        f = fopen(a->pos[1], "wb");
        if (!f) {
                fprintf(stderr, "ERROR: cannot open %s: %s\n", a->pos[1], strerror(errno));
                return 1;
        }
        cap = sf_client_capable(&cli->client, "instance-screenshot");
        if (cap == 0)
                fprintf(stderr, "ERROR: The API server version you are talking to does not support fetching a "
                                "screenshot of an instance.\n");
        if (cap != 1 || sf_cli_call(cli, "GET", sf_cli_path("/instances/%s/screenshot", a->pos[0], NULL), NULL,
                                    &blob) < 0)
                goto cleanup;
        if (!json_object_is_type(blob, json_type_string)) {
                fprintf(stderr, "ERROR: the screenshot answer names no blob: %s\n",
                        blob ? json_object_to_json_string(blob) : "null");
                goto cleanup;
        }
        if (sf_cli_blob_download(cli, json_object_get_string(blob), f) < 0)
                goto cleanup;
        rc = 0;
cleanup:
        if (fclose(f) != 0 && rc == 0) {
                fprintf(stderr, "ERROR: cannot write %s: %s\n", a->pos[1], strerror(errno));
                rc = 1;
        }
        json_object_put(blob);
        return rc;
}

/* The .vv text of GET vdiconsolehelper, after upstream's capability check; NULL (message
 * printed) on failure. */
static char *vdi_helper_get(sf_cli_t *cli, const char *ref) {
        int cap = sf_client_capable(&cli->client, "vdi-console-helper");
        char *path, *text = NULL;
        size_t len = 0;
        int r;

        if (cap == 0)
                fprintf(stderr, "Unfortunately this server does not implement VDI console helpers.\n");
        if (cap != 1)
                return NULL;
        path = sf_cli_path("/instances/%s/vdiconsolehelper", ref, NULL);
        r = sf_client_request_raw(&cli->client, "GET", path, NULL, &text, &len);
        free(path);
        return r < 0 ? NULL : text;
}

static int inst_vdiconsolefile(sf_cli_t *cli, sf_args_t *a) {
        char *text = vdi_helper_get(cli, a->pos[0]);

        if (!text)
                return 1;
        printf("%s\n", text); /* upstream's print() */
        free(text);
        return 0;
}

/* Writes the .vv to a private temporary file and runs remote-viewer on it (argv, no
 * shell), removing the file afterwards unless the viewer already did (delete-this-file). */
static int inst_vdiconsole(sf_cli_t *cli, sf_args_t *a) {
        char tmpl[] = "/tmp/sf-vdi-XXXXXX", *text = vdi_helper_get(cli, a->pos[0]);
        int fd, status = 0, rc = 1;
        size_t len;
        pid_t pid;

        if (!text)
                return 1;
        len = strlen(text);
        fd = mkstemp(tmpl);
        if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
                fprintf(stderr, "ERROR: cannot write %s: %s\n", tmpl, strerror(errno));
                goto cleanup;
        }
        close(fd);
        fd = -1;
        pid = fork();
        if (pid == 0) {
                char *argv[] = {"remote-viewer", cli->client.verbose ? "--debug" : tmpl,
                                cli->client.verbose ? tmpl : NULL, NULL};
                execvp(argv[0], argv);
                fprintf(stderr, "ERROR: cannot run remote-viewer: %s\n", strerror(errno));
                _exit(127);
        }
        while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (cli->client.verbose)
                printf("Remote viewer process exited with %d return code\n",
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        rc = pid > 0 ? 0 : 1;
cleanup:
        if (fd >= 0)
                close(fd);
        unlink(tmpl);
        free(text);
        return rc;
}

static const sf_cmd_t cmds[] = {
        SF_CMD("list", "", "List instances", 0, inst_list, .opts = list_opts),
        SF_CMD("show", "INSTANCE_REF", "Show an instance", 1, inst_show),
        SF_CMD("create", "NAME CPUS MEMORY",
               "Create an instance (CPUS vCPUs, MEMORY MiB); wait for it per --async, then show it", 3, inst_create,
               .opts = create_opts),
        SF_CMD("delete", "INSTANCE_REF", "Delete an instance (waits until deleted per --async)", 1, inst_delete,
               .opts = delete_opts),
        SF_CMD("delete-all", "", "Delete ALL instances", 0, inst_delete_all, .opts = delete_all_opts),
        SF_CMD("events", "INSTANCE_REF", "Display events for an instance", 1, inst_events,
               .opts = sf_cli_events_opts),
        SF_CMD("set-metadata", "INSTANCE_REF KEY VALUE", "Set a metadata item", 3, inst_set_metadata),
        SF_CMD("delete-metadata", "INSTANCE_REF KEY", "Delete a metadata item", 2, inst_delete_metadata),
        SF_CMD("consoledata", "INSTANCE_REF [LENGTH]", "Get console data for an instance", 1, inst_consoledata,
               .noptargs = 1),
        SF_CMD("reboot", "INSTANCE_REF", "Reboot instance", 1, inst_reboot, .opts = reboot_opts),
        SF_CMD("poweron", "INSTANCE_REF", "Power on an instance", 1, inst_poweron),
        SF_CMD("poweroff", "INSTANCE_REF", "Power off an instance", 1, inst_poweroff),
        SF_CMD("pause", "INSTANCE_REF", "Pause an instance", 1, inst_pause),
        SF_CMD("unpause", "INSTANCE_REF", "Unpause an instance", 1, inst_unpause),
        SF_CMD("consoledelete", "INSTANCE_REF", "Clear the console log for this instance", 1, inst_consoledelete),
        SF_CMD("vdiconsole", "INSTANCE_REF", "Launch a VDI console for the instance", 1, inst_vdiconsole),
        SF_CMD("vdiconsolefile", "INSTANCE_REF", "Download a .vv file for the VDI console", 1, inst_vdiconsolefile),
        SF_CMD("screenshot", "INSTANCE_REF DESTINATION", "Download a screenshot of the console of an instance", 2,
               inst_screenshot),
        SF_CMD("watch", "INSTANCE_REF", "Follow an instance live until created, deleted or error", 1, sf_live_instance_watch),
        {0},
};

const sf_group_t sf_group_instance = {"instance", "Instance commands", cmds};
