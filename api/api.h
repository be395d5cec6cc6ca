/* sf-api internals shared by the handler files. */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>

#include "auth.h"
#include "ctx.h"
#include "http.h"
#include "util.h"

/* Upstream schema versions (api.md §4.1): emitted, never a revision counter. */
#define SF_VERSION_INSTANCE 13
#define SF_VERSION_NETWORK 4
#define SF_VERSION_INTERFACE 3
#define SF_VERSION_ARTIFACT 6
#define SF_VERSION_BLOB 6
#define SF_VERSION_NAMESPACE 5

typedef struct sf_caller {
        char ns[64];
        char keyname[64];
        bool system;
        long exp;        /* the token's expiry, epoch seconds */
} sf_caller_t;

/* This thread's context (own Redis connection; the bus is shared). */
sf_ctx_t *sf_api_ctx(void);
/* Process-wide setup before the server starts. */
int sf_api_init(const sf_config_t *cfg, sf_bus_t *bus);

/* 0 with *caller filled, or a negative errno with resp filled (401). */
int sf_api_auth(sf_http_req_t *req, sf_http_resp_t *resp, sf_caller_t *caller);

/* Namespace operations also used by sf-ctl. */
int sf_api_ns_ensure(sf_ctx_t *ctx, const char *ns);
int sf_api_ns_set_key(sf_ctx_t *ctx, const char *ns, const char *keyname, const char *secret);

/* Views: the exact upstream JSON shapes.  Return new objects. */
json_object *sf_view_instance(sf_ctx_t *ctx, json_object *doc);
json_object *sf_view_network(json_object *doc);
json_object *sf_view_interface(json_object *doc);
json_object *sf_view_namespace(json_object *doc);

/* Look up an object by UUID (any state) or by name among active objects visible to the
 * caller.  On failure resp is filled (404 "<type> not found", 400 ambiguous). */
int sf_api_lookup(sf_ctx_t *ctx, const sf_caller_t *caller, const char *type, const char *ref,
                  sf_http_resp_t *resp, json_object **ret_doc);
/* Authenticate, then look up params[0] as a <type> reference.  0, or <0 with resp filled. */
int sf_api_find(sf_http_req_t *req, sf_http_resp_t *resp, const char *type, sf_caller_t *caller,
                json_object **ret_doc);
/* Is caller trusted by namespace doc (api.md §3.4): system, the namespace itself, or listed
 * in its trust.full? */
bool sf_api_trusted_by(const sf_caller_t *caller, json_object *ns);
/* Upstream's metadata rules for one key of a `type` object (api.md §2.3: instances'
 * `tags` a JSON list, `affinity` a dict of int-castable values; other types unchecked).
 * 0, or a negative errno with the 400 filled in. */
int sf_api_meta_validate(sf_http_resp_t *resp, const char *type, const char *key, json_object *value);
/* GET of one object by UUID through the view cache (instances): authenticates and reads
 * the namespace and the object in one round trip, then answers as sf_api_find plus
 * sf_http_check_keys(allowed) plus the view would.  1 if it does not apply (a name, not a
 * UUID; another type): use the ordinary path. */
int sf_api_get_cached(sf_http_req_t *req, sf_http_resp_t *resp, const char *type,
                      const char *const *allowed);
/* Can caller see an instance/network/interface of namespace ns (own or system)? */
bool sf_api_owns(const sf_caller_t *caller, const char *ns);

/* The one rule for every name a user gives an object, namespace or key (sf_name_valid_with):
 * instances are DNS labels (api.md §2.3.1: letters, digits and hyphens, 1..63, 400 "instance
 * name <name> is not useable as a DNS and Linux host name..."); namespaces and keys may also
 * hold '_', networks '_' and '.' (as upstream accepts them).  0, or a negative errno with
 * the 400 filled in.  sf_api_name_extra(what) is the extra characters for `what`. */
const char *sf_api_name_extra(const char *what);
int sf_api_name_check(sf_http_resp_t *resp, const char *what, const char *name);

/* The pure checks of POST /instances (api.md §2.3.3), also driven by the fuzzers.
 * Disks: body's "disk" list (shape, bus, type, size, base URL and the download policy of
 * cfg); 0 and *ret_ndisks, or a negative errno with the 400 filled in. */
int sf_api_disks_check(json_object *body, const sf_config_t *cfg, sf_http_resp_t *resp, size_t *ret_ndisks);

/* One NIC of a create request, once its network doc (net) has been looked up. */
typedef struct sf_api_nic {
        char network_uuid[SF_UUID_LEN];
        char address[16];
        char mac[18];
        char model[16];
        json_object *net; /* network doc (the caller's; sf_api_nic_check does not set it) */
} sf_api_nic_t;
/* Check spec (address in the netblock, network created and in namespace ns, MAC, model,
 * float) and fill n's strings; 0, or a negative errno with the 4xx filled in. */
int sf_api_nic_check(json_object *spec, json_object *net, const char *ns, sf_http_resp_t *resp,
                     sf_api_nic_t *n);

/* The route table (api/routes.c). */
extern const sf_http_route_t sf_api_routes[];
extern const size_t sf_api_nroutes;

/* Handlers. */
int sf_api_root(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_auth_post(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_namespaces_get(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_namespaces_post(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_namespace_get(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_namespace_delete(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_namespace_trust_post(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_namespace_trust_delete(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_namespace_keys_get(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_namespace_keys_post(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_namespace_keys_put(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_namespace_key_delete(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_networks_get(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_networks_post(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_networks_delete(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_network_get(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_network_delete(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_network_events(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_network_interfaces(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instances_get(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instances_post(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instances_delete(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instance_get(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instance_delete(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instance_events(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instance_interfaces(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instance_consoledata(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_interface_get(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_nodes_get(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_node_get(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_node_events(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_node_delete(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_interface_events(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_namespace_events(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_admin_locks(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_openapi_get(sf_http_req_t *req, sf_http_resp_t *resp);
/* GET /events/stream (api/stream.c, docs/events-stream.md). */
int sf_api_events_stream(sf_http_req_t *req, sf_http_resp_t *resp);
/* Stop the stream's hub threads (after sf_http_stop: no subscriber is left). */
void sf_api_stream_stop(void);

/* GET of a collection: body {"all": bool}; active objects unless all. */
int sf_api_list(sf_http_req_t *req, sf_http_resp_t *resp, const char *type,
                json_object *(*view)(sf_ctx_t *ctx, json_object *doc));

/* DELETE /instances and /networks (api.md §2.4, §2.6): `confirm` must be true; system must
 * name the namespace, others may name only their own.  *ret_ns (borrowed from the body or
 * caller) on success; else a negative errno with the error filled in. */
int sf_api_delete_all_target(sf_http_req_t *req, sf_http_resp_t *resp, const sf_caller_t *caller,
                             const char **ret_ns);

/* Metadata (api/metadata.c). */
#define SF_API_META_DECL(name)                                                     \
        int sf_api_##name##_meta_get(sf_http_req_t *req, sf_http_resp_t *resp);    \
        int sf_api_##name##_meta_post(sf_http_req_t *req, sf_http_resp_t *resp);   \
        int sf_api_##name##_meta_put(sf_http_req_t *req, sf_http_resp_t *resp);    \
        int sf_api_##name##_meta_delete(sf_http_req_t *req, sf_http_resp_t *resp);
SF_API_META_DECL(instance)
SF_API_META_DECL(network)
SF_API_META_DECL(interface)
SF_API_META_DECL(namespace)
SF_API_META_DECL(node)

/* Shared by the events routes. */
int sf_api_events(sf_http_req_t *req, sf_http_resp_t *resp, const char *type, const char *uuid);

/* api/power.c: power operations and consoles (api.md §2.3). */
int sf_api_instance_rebootsoft(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instance_reboothard(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instance_poweroff(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instance_poweron(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instance_pause(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instance_unpause(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instance_consoledata_delete(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instance_screenshot(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_instance_vdiconsolehelper(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_admin_cacert(sf_http_req_t *req, sf_http_resp_t *resp);

/* api/blobs.c: GET /blobs/<uuid> and its data (api.md §2.8). */
int sf_api_blob_get(sf_http_req_t *req, sf_http_resp_t *resp);
int sf_api_blob_data(sf_http_req_t *req, sf_http_resp_t *resp);
