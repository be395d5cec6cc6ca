/* The route table of sf-api (api.md §2): literal routes before {} ones. */
#include "api.h"

#include "util.h"

const sf_http_route_t sf_api_routes[] = {
        {"GET", "/", sf_api_root},
        {"POST", "/auth", sf_api_auth_post},
        {"GET", "/auth/namespaces", sf_api_namespaces_get},
        {"POST", "/auth/namespaces", sf_api_namespaces_post},
        {"GET", "/auth/namespaces/{}", sf_api_namespace_get},
        {"GET", "/auth/namespaces/{}/keys", sf_api_namespace_keys_get},
        {"POST", "/auth/namespaces/{}/keys", sf_api_namespace_keys_post},
        {"DELETE", "/auth/namespaces/{}/keys/{}", sf_api_namespace_key_delete},
        {"GET", "/networks", sf_api_networks_get},
        {"POST", "/networks", sf_api_networks_post},
        {"GET", "/networks/{}", sf_api_network_get},
        {"DELETE", "/networks/{}", sf_api_network_delete},
        {"GET", "/networks/{}/events", sf_api_network_events},
        {"GET", "/networks/{}/interfaces", sf_api_network_interfaces},
        {"GET", "/instances", sf_api_instances_get},
        {"POST", "/instances", sf_api_instances_post},
        {"GET", "/instances/{}", sf_api_instance_get},
        {"DELETE", "/instances/{}", sf_api_instance_delete},
        {"GET", "/instances/{}/events", sf_api_instance_events},
        {"GET", "/instances/{}/interfaces", sf_api_instance_interfaces},
        {"GET", "/instances/{}/consoledata", sf_api_instance_consoledata},
        {"GET", "/interfaces/{}", sf_api_interface_get},
};
const size_t sf_api_nroutes = SF_ARRAY_SIZE(sf_api_routes);
