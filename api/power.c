/* sf-api: power operations and consoles of an instance (api.md §2.3).
 *
 * Upstream runs these on the hypervisor before it answers, so a client that reads the
 * instance after the `null` sees the new power_state.  sf does the same through an
 * intent to the instance's node (instance.power, instance.consoleclear,
 * instance.screenshot: workers/compute/power.c) and waits, bounded by POWER_WAIT_MS, for
 * the intent to be done: its record in Redis says done or failed, and a failure carries
 * the worker's message (409 for "you cannot <verb> a powered off instance").  If the node
 * does not finish in time the answer is the same `null` and the intent still runs: an
 * asynchronous operation, as upstream's client allows for (it reads power_state later). */
#include "api.h"

#include "event.h"
#include "intent.h"
#include "keys.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define POWER_WAIT_MS 15000
/* At most this many requests wait at once: each holds one of SF_HTTP_THREADS, and the
 * API must keep answering everything else while a node is slow.  Beyond it, and for a
 * node that has not checked in for NODE_LIVE_S, the answer does not wait. */
#define POWER_MAX_WAITERS 2
#define NODE_LIVE_S 120 /* NODE_CHECKIN_MAXIMUM */
#define SPICE_CA_PATH "/etc/pki/libvirt-spice/ca-cert.pem"

typedef enum { INTENT_DONE, INTENT_FAILED, INTENT_PENDING } intent_outcome_t;

/* Waits for intent id to leave "pending", up to POWER_WAIT_MS.  err gets a failure's
 * message.  Polls Redis (a few ms apart at first: most operations take tens of ms). */
static int intent_wait(sf_ctx_t *ctx, const char *id, intent_outcome_t *ret, char *err, size_t errlen) {
        int64_t deadline = sf_mono_ms() + POWER_WAIT_MS;
        useconds_t pause = 2000;

        for (;;) {
                _cleanup_reply_ redisReply *r = sf_store_cmd(ctx->store, "HMGET " SF_KEY_INTENT " state error", id);
                const char *st;

                if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
                        return -EIO;
                st = r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : "";
                if (strcmp(st, SF_INTENT_DONE) == 0) {
                        *ret = INTENT_DONE;
                        return 0;
                }
                if (strcmp(st, SF_INTENT_FAILED) == 0) {
                        snprintf(err, errlen, "%s",
                                 r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "failed");
                        *ret = INTENT_FAILED;
                        return 0;
                }
                if (sf_mono_ms() >= deadline) {
                        *ret = INTENT_PENDING;
                        return 0;
                }
                usleep(pause);
                if (pause < 50000)
                        pause *= 2;
        }
}

static atomic_int waiters;

/* Has the node checked in lately?  Unreadable counts as yes: the wait is bounded anyway. */
static bool node_live(sf_ctx_t *ctx, const char *node) {
        _cleanup_json_ json_object *doc = NULL;

        if (sf_store_get(ctx->store, "node", node, &doc, NULL) < 0)
                return true;
        return sf_now() - (double)sf_json_int(doc, "lastseen", 0) <= NODE_LIVE_S;
}

/* Submit kind (with args) to the instance's node and wait; fills resp with `null` or the
 * failure's 4xx/5xx.  A never-placed instance has nothing on any node: `null` at once. */
static int instance_intent_run(sf_ctx_t *ctx, sf_http_resp_t *resp, json_object *doc, const char *kind,
                               const char *const *args) {
        const char *uuid = sf_json_str(doc, "uuid"), *node = sf_json_str(doc, "node");
        char id[SF_UUID_LEN], err[512] = "";
        intent_outcome_t out;
        int r;

        if (!node || !*node)
                return sf_http_json(resp, 200, NULL);
        r = sf_intent_submit(ctx, node, "compute", kind, "instance", uuid, sf_json_str(doc, "namespace"), args, id);
        if (r < 0)
                return r;
        out = INTENT_PENDING;
        if (node_live(ctx, node)) {
                if (atomic_fetch_add(&waiters, 1) < POWER_MAX_WAITERS)
                        r = intent_wait(ctx, id, &out, err, sizeof(err));
                atomic_fetch_sub(&waiters, 1);
                if (r < 0)
                        return r;
        }
        if (out == INTENT_PENDING)
                log_info("instance %s: %s queued; answering without waiting for it", uuid, kind);
        if (out != INTENT_FAILED)
                return sf_http_json(resp, 200, NULL);
        if (strncmp(err, "you cannot ", 11) == 0)
                return sf_http_error(resp, 409, "%s", err);
        if (strstr(err, " is not ready (") || strstr(err, " is not running") || strstr(err, " has no screen"))
                return sf_http_error(resp, 406, "%s", err);
        if (strcmp(err, "instance not found") == 0)
                return sf_http_error(resp, 404, "instance not found");
        return sf_http_error(resp, 500, "%s failed: %s", kind, err);
}

/* The instance params[0] names, in state created (406 otherwise, upstream's words). */
static int instance_find_created(sf_http_req_t *req, sf_http_resp_t *resp, json_object **ret_doc) {
        static const char *const allowed[] = {"namespace", NULL};
        _cleanup_json_ json_object *doc = NULL;
        sf_caller_t caller;
        const char *st;

        if (sf_api_find(req, resp, "instance", &caller, &doc) < 0)
                return -ENOENT;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return -EINVAL;
        st = sf_json_str(doc, "state") ?: "";
        if (strcmp(st, "created") != 0)
                return sf_http_error(resp, 406, "instance %s is not ready (%s)", sf_json_str(doc, "uuid"), st),
                       -EAGAIN;
        *ret_doc = doc;
        doc = NULL;
        return 0;
}

/* One power operation.  verb: the word of the 409 when the instance is off (NULL: any
 * power state is fine).  The node checks again against libvirt, which has the last word. */
static int power_request(sf_http_req_t *req, sf_http_resp_t *resp, const char *op, const char *verb) {
        sf_ctx_t *ctx = sf_api_ctx();
        _cleanup_json_ json_object *doc = NULL;
        const char *const args[] = {"op", op, NULL};

        if (instance_find_created(req, resp, &doc) < 0)
                return 0;
        if (verb && strcmp(sf_json_str(doc, "power_state") ?: "", "off") == 0)
                return sf_http_error(resp, 409, "you cannot %s a powered off instance", verb);
        return instance_intent_run(ctx, resp, doc, "instance.power", args);
}

int sf_api_instance_rebootsoft(sf_http_req_t *req, sf_http_resp_t *resp) {
        return power_request(req, resp, "rebootsoft", "reboot");
}

int sf_api_instance_reboothard(sf_http_req_t *req, sf_http_resp_t *resp) {
        return power_request(req, resp, "reboothard", "reboot");
}

int sf_api_instance_poweroff(sf_http_req_t *req, sf_http_resp_t *resp) {
        return power_request(req, resp, "poweroff", NULL);
}

int sf_api_instance_poweron(sf_http_req_t *req, sf_http_resp_t *resp) {
        return power_request(req, resp, "poweron", NULL);
}

int sf_api_instance_pause(sf_http_req_t *req, sf_http_resp_t *resp) {
        return power_request(req, resp, "pause", "pause");
}

int sf_api_instance_unpause(sf_http_req_t *req, sf_http_resp_t *resp) {
        return power_request(req, resp, "unpause", "unpause");
}

/* DELETE consoledata: the log is truncated on the hypervisor.  Like the power
 * operations, only for a created instance: before that the node is still building it. */
int sf_api_instance_consoledata_delete(sf_http_req_t *req, sf_http_resp_t *resp) {
        _cleanup_json_ json_object *doc = NULL;

        if (instance_find_created(req, resp, &doc) < 0)
                return 0;
        return instance_intent_run(sf_api_ctx(), resp, doc, "instance.consoleclear", NULL);
}

/* GET screenshot: the node writes the image into a new blob; the answer is its uuid. */
int sf_api_instance_screenshot(sf_http_req_t *req, sf_http_resp_t *resp) {
        sf_ctx_t *ctx = sf_api_ctx();
        _cleanup_json_ json_object *doc = NULL;
        char blob[SF_UUID_LEN];
        const char *args[] = {"blob", blob, NULL};
        int r;

        if (instance_find_created(req, resp, &doc) < 0)
                return 0;
        if (strcmp(sf_json_str(doc, "power_state") ?: "", "off") == 0)
                return sf_http_error(resp, 406, "instance %s is not running", sf_json_str(doc, "uuid"));
        sf_uuid_new(blob);
        r = instance_intent_run(ctx, resp, doc, "instance.screenshot", args);
        if (r < 0 || resp->status != 200)
                return r;
        return sf_http_json(resp, 200, json_object_new_string(blob));
}

/* The CA certificate of the SPICE TLS setup, "" without one. */
static int spice_ca_read(char **ret, size_t *ret_len) {
        char *buf = NULL;
        size_t len = 0;
        int r = sf_file_read(SPICE_CA_PATH, &buf, &len);

        if (r == -ENOENT) {
                buf = strdup("");
                if (!buf)
                        return -ENOMEM;
                r = 0;
        }
        if (r < 0)
                return r;
        *ret = buf;
        *ret_len = len;
        return 0;
}

/* GET vdiconsolehelper: a virt-viewer file (api.md §2.3) for the instance's VDI port on
 * its node (the node's address, else its name). */
int sf_api_instance_vdiconsolehelper(sf_http_req_t *req, sf_http_resp_t *resp) {
        static const char *const allowed[] = {"namespace", NULL};
        sf_ctx_t *ctx = sf_api_ctx();
        _cleanup_json_ json_object *doc = NULL, *node = NULL;
        _cleanup_free_ char *ca = NULL, *text = NULL;
        json_object *video = NULL, *port, *tls;
        const char *type = "vnc", *host;
        size_t calen = 0, len = 0;
        sf_caller_t caller;
        FILE *f;
        int r;

        if (sf_api_find(req, resp, "instance", &caller, &doc) < 0)
                return 0;
        if (sf_http_check_keys(req, resp, allowed) < 0)
                return 0;
        if (json_object_object_get_ex(doc, "video", &video) && sf_json_str(video, "vdi"))
                type = sf_json_str(video, "vdi");
        /* spiceconcurrent is spice to the viewer. */
        if (strncmp(type, "spice", 5) == 0)
                type = "spice";
        port = json_object_object_get(doc, "vdi_port");
        tls = json_object_object_get(doc, "vdi_tls_port");
        if (!json_object_is_type(port, json_type_int))
                return sf_http_error(resp, 406, "instance %s is not ready (no console port yet)",
                                     sf_json_str(doc, "uuid"));
        host = sf_json_str(doc, "node") ?: "";
        if (*host && sf_store_get(ctx->store, "node", host, &node, NULL) == 0 && sf_json_str(node, "ip") &&
            *sf_json_str(node, "ip"))
                host = sf_json_str(node, "ip");
        r = spice_ca_read(&ca, &calen);
        if (r < 0)
                return r;
        f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "[virt-viewer]\ntype=%s\nhost=%s\nport=%d\n", type, host, json_object_get_int(port));
        if (json_object_is_type(tls, json_type_int))
                fprintf(f, "tls-port=%d\n", json_object_get_int(tls));
        fputs("delete-this-file=1\n", f);
        if (calen) {
                /* One line: the PEM's newlines written as \n, as remote-viewer reads them. */
                fputs("ca=", f);
                for (size_t i = 0; i < calen; i++)
                        fputs(ca[i] == '\n' ? "\\n" : (char[]){ca[i], 0}, f);
                fputc('\n', f);
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        return sf_http_raw(resp, 200, "application/x-virt-viewer", text, len);
}

/* GET /admin/cacert: the SPICE CA certificate, or an empty body. */
int sf_api_admin_cacert(sf_http_req_t *req, sf_http_resp_t *resp) {
        _cleanup_free_ char *ca = NULL;
        sf_caller_t caller;
        size_t len = 0;
        int r;

        if (sf_api_auth(req, resp, &caller) < 0)
                return 0;
        r = spice_ca_read(&ca, &len);
        if (r < 0)
                return r;
        return sf_http_raw(resp, 200, "text/plain", ca, len);
}
