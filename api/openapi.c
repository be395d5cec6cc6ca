/* GET /openapi.json: an OpenAPI 3 description of every route sf-api serves.  The paths
 * come from the table below, which tests/unit/test_openapi.c checks against the route
 * table (api/routes.c) both ways: an undocumented route, or a documented one that is not
 * served, fails the build's tests. */
#include "api.h"
#include "openapi.h"

#include "json.h"
#include "util.h"

#include <string.h>

/* auth: "none", "token" (any valid bearer token) or "system" (the system namespace). */
const sf_api_doc_t sf_api_docs[] = {
        {"GET", "/", "Service page listing implemented capabilities", "none"},
        {"GET", "/openapi.json", "This description", "none"},
        {"POST", "/auth", "Exchange a namespace key for a bearer token (rate-limited per address)", "none"},
        {"GET", "/auth/namespaces", "Namespaces the caller is trusted by", "token"},
        {"POST", "/auth/namespaces", "Create a namespace, optionally with a key", "system"},
        {"GET", "/auth/namespaces/{namespace}", "One namespace", "token"},
        {"DELETE", "/auth/namespaces/{namespace}", "Delete a namespace without instances or networks", "system"},
        {"GET", "/auth/namespaces/{namespace}/keys", "Key names of a namespace", "token"},
        {"POST", "/auth/namespaces/{namespace}/keys", "Add a key, or rotate it by re-posting", "token"},
        {"PUT", "/auth/namespaces/{namespace}/keys", "Rotate an existing key (404 for an unknown key name)", "token"},
        {"DELETE", "/auth/namespaces/{namespace}/keys/{key_name}", "Delete a key (its tokens die)", "token"},
        {"POST", "/auth/namespaces/{namespace}/trust", "Trust another namespace", "token"},
        {"DELETE", "/auth/namespaces/{namespace}/trust/{external_namespace}", "Stop trusting a namespace",
         "token"},
        {"GET", "/auth/namespaces/{namespace}/events", "Events of a namespace (with its objects' audit events)",
         "token"},
        {"GET", "/auth/namespaces/{namespace}/metadata", "Namespace metadata", "token"},
        {"POST", "/auth/namespaces/{namespace}/metadata", "Set a namespace metadata key", "token"},
        {"PUT", "/auth/namespaces/{namespace}/metadata/{key}", "Set a namespace metadata key", "token"},
        {"DELETE", "/auth/namespaces/{namespace}/metadata/{key}", "Delete a namespace metadata key", "token"},
        {"GET", "/networks", "Networks", "token"},
        {"POST", "/networks", "Create a network", "token"},
        {"DELETE", "/networks", "Delete every network of a namespace", "token"},
        {"GET", "/networks/{network}", "One network (name or UUID)", "token"},
        {"DELETE", "/networks/{network}", "Delete a network", "token"},
        {"GET", "/networks/{network}/events", "Events of a network", "token"},
        {"GET", "/networks/{network}/interfaces", "Interfaces on a network", "token"},
        {"GET", "/networks/{network}/metadata", "Network metadata", "token"},
        {"POST", "/networks/{network}/metadata", "Set a network metadata key", "token"},
        {"PUT", "/networks/{network}/metadata/{key}", "Set a network metadata key", "token"},
        {"DELETE", "/networks/{network}/metadata/{key}", "Delete a network metadata key", "token"},
        {"GET", "/instances", "Instances", "token"},
        {"POST", "/instances", "Create an instance", "token"},
        {"DELETE", "/instances", "Delete every instance of a namespace", "token"},
        {"GET", "/instances/{instance}", "One instance (name or UUID)", "token"},
        {"DELETE", "/instances/{instance}", "Delete an instance", "token"},
        {"GET", "/instances/{instance}/events", "Events of an instance", "token"},
        {"GET", "/instances/{instance}/interfaces", "Interfaces of an instance", "token"},
        {"GET", "/instances/{instance}/consoledata", "Serial console output", "token"},
        {"DELETE", "/instances/{instance}/consoledata", "Clear the serial console log", "token"},
        {"POST", "/instances/{instance}/rebootsoft", "Reboot through ACPI (the guest decides)", "token"},
        {"POST", "/instances/{instance}/reboothard", "Reset the instance", "token"},
        {"POST", "/instances/{instance}/poweroff", "Power the instance off (hard)", "token"},
        {"POST", "/instances/{instance}/poweron", "Power the instance on", "token"},
        {"POST", "/instances/{instance}/pause", "Pause (suspend) the instance", "token"},
        {"POST", "/instances/{instance}/unpause", "Resume a paused instance", "token"},
        {"GET", "/instances/{instance}/vdiconsolehelper", "A virt-viewer (.vv) file for the VDI console",
         "token"},
        {"GET", "/instances/{instance}/screenshot", "Take a screenshot into a new blob; its UUID", "token"},
        {"GET", "/instances/{instance}/metadata", "Instance metadata", "token"},
        {"POST", "/instances/{instance}/metadata", "Set an instance metadata key", "token"},
        {"PUT", "/instances/{instance}/metadata/{key}", "Set an instance metadata key", "token"},
        {"DELETE", "/instances/{instance}/metadata/{key}", "Delete an instance metadata key", "token"},
        {"GET", "/nodes", "Nodes", "system"},
        {"GET", "/nodes/{node}", "One node", "system"},
        {"DELETE", "/nodes/{node}", "Delete a node: it stays deleted, its instances go to error", "system"},
        {"GET", "/nodes/{node}/events", "Events of a node", "system"},
        {"GET", "/nodes/{node}/metadata", "Node metadata", "system"},
        {"POST", "/nodes/{node}/metadata", "Set a node metadata key", "system"},
        {"PUT", "/nodes/{node}/metadata/{key}", "Set a node metadata key", "system"},
        {"DELETE", "/nodes/{node}/metadata/{key}", "Delete a node metadata key", "system"},
        {"GET", "/interfaces/{interface}", "One network interface (UUID)", "token"},
        {"GET", "/interfaces/{interface}/events", "Events of a network interface", "token"},
        {"GET", "/events/stream",
         "Live events as Server-Sent Events (text/event-stream): query type, uuid; header Last-Event-ID resumes",
         "token"},
        {"GET", "/admin/locks", "Locks held now, with holder and fencing token", "system"},
        {"GET", "/admin/cacert", "The SPICE CA certificate (PEM, empty without one)", "token"},
        {"GET", "/blobs/{blob}", "One blob (UUID; any namespace may read it), with the instances using it",
         "token"},
        {"GET", "/blobs/{blob}/data",
         "The blob's bytes (text/plain, streamed): query offset (default 0), limit (0 = all)", "token"},
        {"GET", "/interfaces/{interface}/metadata", "Interface metadata", "token"},
        {"POST", "/interfaces/{interface}/metadata", "Set an interface metadata key", "token"},
        {"PUT", "/interfaces/{interface}/metadata/{key}", "Set an interface metadata key", "token"},
        {"DELETE", "/interfaces/{interface}/metadata/{key}", "Delete an interface metadata key", "token"},
};
const size_t sf_api_ndocs = SF_ARRAY_SIZE(sf_api_docs);

void sf_api_doc_route_path(const char *doc_path, char *out, size_t len) {
        size_t o = 0;

        for (const char *p = doc_path; *p && o + 3 < len; p++) {
                if (*p == '{') {
                        out[o++] = '{';
                        out[o++] = '}';
                        p = strchr(p, '}');
                        if (!p)
                                break;
                        continue;
                }
                out[o++] = *p;
        }
        out[o] = 0;
}

static json_object *operation(const sf_api_doc_t *d) {
        json_object *op = json_object_new_object(), *params = json_object_new_array(), *responses;

        json_object_object_add(op, "summary", json_object_new_string(d->summary));
        for (const char *p = strchr(d->path, '{'); p; p = strchr(p + 1, '{')) {
                const char *e = strchr(p, '}');
                json_object *param = json_object_new_object(), *schema = json_object_new_object();
                if (!e)
                        break;
                json_object_object_add(param, "name", json_object_new_string_len(p + 1, (int)(e - p - 1)));
                json_object_object_add(param, "in", json_object_new_string("path"));
                json_object_object_add(param, "required", json_object_new_boolean(true));
                json_object_object_add(schema, "type", json_object_new_string("string"));
                json_object_object_add(param, "schema", schema);
                json_object_array_add(params, param);
        }
        if (json_object_array_length(params) > 0)
                json_object_object_add(op, "parameters", params);
        else
                json_object_put(params);
        if (strcmp(d->auth, "none") != 0) {
                json_object *sec = json_object_new_array(), *req = json_object_new_object();
                json_object_object_add(req, "bearer", json_object_new_array());
                json_object_array_add(sec, req);
                json_object_object_add(op, "security", sec);
        }
        json_object_object_add(op, "x-sf-auth", json_object_new_string(d->auth));
        responses = json_object_new_object();
        {
                json_object *ok = json_object_new_object(), *err = json_object_new_object();
                json_object_object_add(ok, "description", json_object_new_string("success (JSON)"));
                json_object_object_add(err, "description",
                                       json_object_new_string("error envelope {\"error\": ..., \"status\": N}"));
                json_object_object_add(responses, "200", ok);
                json_object_object_add(responses, "default", err);
        }
        json_object_object_add(op, "responses", responses);
        return op;
}

json_object *sf_api_openapi(void) {
        json_object *doc = json_object_new_object(), *info = json_object_new_object(), *paths = json_object_new_object(),
                    *comp = json_object_new_object(), *schemes = json_object_new_object(),
                    *bearer = json_object_new_object();

        json_object_object_add(doc, "openapi", json_object_new_string("3.0.3"));
        json_object_object_add(info, "title", json_object_new_string("sf (Shaken Fist compatible) REST API"));
        json_object_object_add(info, "version", json_object_new_string("1"));
        json_object_object_add(doc, "info", info);
        for (size_t i = 0; i < sf_api_ndocs; i++) {
                const sf_api_doc_t *d = &sf_api_docs[i];
                json_object *item = NULL;
                char method[16];
                size_t k;

                if (!json_object_object_get_ex(paths, d->path, &item)) {
                        item = json_object_new_object();
                        json_object_object_add(paths, d->path, item);
                }
                for (k = 0; d->method[k] && k + 1 < sizeof(method); k++)
                        method[k] = (char)(d->method[k] | 0x20); /* lower case */
                method[k] = 0;
                json_object_object_add(item, method, operation(d));
        }
        json_object_object_add(doc, "paths", paths);
        json_object_object_add(bearer, "type", json_object_new_string("http"));
        json_object_object_add(bearer, "scheme", json_object_new_string("bearer"));
        json_object_object_add(bearer, "bearerFormat", json_object_new_string("JWT"));
        json_object_object_add(schemes, "bearer", bearer);
        json_object_object_add(comp, "securitySchemes", schemes);
        json_object_object_add(doc, "components", comp);
        return doc;
}

int sf_api_openapi_get(sf_http_req_t *req, sf_http_resp_t *resp) {
        (void)req;
        return sf_http_json(resp, 200, sf_api_openapi());
}
