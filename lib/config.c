#include "config.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void str_env(const char *name, const char *def, char *out, size_t len) {
        const char *v = getenv(name);

        snprintf(out, len, "%s", v && *v ? v : def);
}

static int int_env(const char *name, int def, int *out) {
        const char *v = getenv(name);
        char *end;
        long n;

        if (!v || !*v) {
                *out = def;
                return 0;
        }
        errno = 0;
        n = strtol(v, &end, 10);
        if (errno || *end || n < 0 || n > 1000000) {
                log_err("config: %s=%s is not a valid number", name, v);
                return -EINVAL;
        }
        *out = (int)n;
        return 0;
}

static int u64_env(const char *name, uint64_t def, uint64_t *out) {
        const char *v = getenv(name);
        char *end;
        unsigned long long n;

        if (!v || !*v) {
                *out = def;
                return 0;
        }
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno || *end || *v == '-' || n == 0) {
                log_err("config: %s=%s is not a valid positive number", name, v);
                return -EINVAL;
        }
        *out = n;
        return 0;
}

/* A non-negative number (fractions allowed) of at most max. */
static int double_env(const char *name, double def, double max, double *out) {
        const char *v = getenv(name);
        char *end;
        double d;

        if (!v || !*v) {
                *out = def;
                return 0;
        }
        errno = 0;
        d = strtod(v, &end);
        if (errno || *end || !(d >= 0 && d <= max)) {
                log_err("config: %s=%s is not a number between 0 and %g", name, v, max);
                return -EINVAL;
        }
        *out = d;
        return 0;
}

/* A retention in seconds: -1 (forever) or 1 .. 100 years. */
static int retention_env(const char *name, int64_t def, int64_t *out) {
        const char *v = getenv(name);
        char *end;
        long long n;

        if (!v || !*v) {
                *out = def;
                return 0;
        }
        errno = 0;
        n = strtoll(v, &end, 10);
        if (errno || *end || n == 0 || n < -1 || n > 100LL * 365 * 86400) {
                log_err("config: %s=%s is not -1 or a number of seconds", name, v);
                return -EINVAL;
        }
        *out = n;
        return 0;
}

/* A secret: NAME itself, or else the first line of the file named by NAME_FILE (preferred:
 * it keeps the secret out of every process's environment). */
static int secret_env(const char *name, char *out, size_t len) {
        char file_var[64];
        const char *path;
        FILE *f;
        int r;

        str_env(name, "", out, len);
        snprintf(file_var, sizeof(file_var), "%s_FILE", name);
        path = getenv(file_var);
        if (out[0] || !path || !*path)
                return 0;
        f = fopen(path, "re");
        if (!f) {
                r = -errno;
                log_err("config: cannot read %s %s: %s", file_var, path, strerror(-r));
                return r;
        }
        if (!fgets(out, (int)len, f))
                out[0] = 0;
        fclose(f);
        out[strcspn(out, "\r\n")] = 0;
        return 0;
}

int sf_config_load(sf_config_t *cfg) {
        char host[64] = "localhost";
        int r = 0, rs;

        memset(cfg, 0, sizeof(*cfg));
        if (gethostname(host, sizeof(host) - 1) == 0) {
                char *dot = strchr(host, '.');
                if (dot)
                        *dot = 0;
        }
        str_env("SF_NODE", host, cfg->node, sizeof(cfg->node));
        str_env("SF_REDIS_HOST", "127.0.0.1", cfg->redis_host, sizeof(cfg->redis_host));
        str_env("SF_NATS_URL", "nats://127.0.0.1:4222", cfg->nats_url, sizeof(cfg->nats_url));
        str_env("SF_API_BIND", "127.0.0.1", cfg->api_bind, sizeof(cfg->api_bind));
        str_env("SF_CONSOLE_BIND", "127.0.0.1", cfg->console_bind, sizeof(cfg->console_bind));
        str_env("SF_STORAGE", "/srv/sf", cfg->storage, sizeof(cfg->storage));
        str_env("SF_DOMAIN_TYPE", "auto", cfg->domain_type, sizeof(cfg->domain_type));
        str_env("SF_LIBVIRT_URI", "qemu:///system", cfg->libvirt_uri, sizeof(cfg->libvirt_uri));
        str_env("SF_ZONE", "shakenfist", cfg->zone, sizeof(cfg->zone));
        str_env("SF_MESH_IP", "127.0.0.1", cfg->mesh_ip, sizeof(cfg->mesh_ip));
        str_env("SF_MESH_DEV", "lo", cfg->mesh_dev, sizeof(cfg->mesh_dev));
        str_env("SF_DNS_SERVER", "8.8.8.8", cfg->dns_server, sizeof(cfg->dns_server));
        str_env("SF_NETWORK_NODE", cfg->node, cfg->network_node, sizeof(cfg->network_node));
        str_env("SF_FLOATING_NETWORK", "192.168.20.0/24", cfg->floating_network,
                sizeof(cfg->floating_network));
        r |= int_env("SF_REDIS_PORT", 6379, &cfg->redis_port);
        r |= int_env("SF_API_PORT", 13000, &cfg->api_port);
        r |= int_env("SF_MTU", 1450, &cfg->mtu);
        r |= int_env("SF_ACK_WAIT", 15, &cfg->ack_wait_s);
        r |= int_env("SF_MAX_ATTEMPTS", 5, &cfg->max_attempts);
        r |= int_env("SF_REDRIVE_AFTER", 60, &cfg->redrive_after_s);
        r |= int_env("SF_CLEANER_DELAY", 3600, &cfg->cleaner_delay_s);
        r |= int_env("SF_AUTH_RATE", 120, &cfg->auth_rate_per_min);
        r |= int_env("SF_AUTH_BURST", 20, &cfg->auth_burst);
        r |= int_env("SF_AUTH_AUDIT_WINDOW", 60, &cfg->auth_audit_window_s);
        if (!cfg->auth_rate_per_min || !cfg->auth_burst || !cfg->auth_audit_window_s) {
                log_err("config: SF_AUTH_RATE, SF_AUTH_BURST and SF_AUTH_AUDIT_WINDOW must be positive");
                r = -EINVAL;
        }
        r |= int_env("SF_STUCK_AFTER", 600, &cfg->stuck_after_s);
        r |= int_env("SF_RECONCILE_INTERVAL", 30, &cfg->reconcile_interval_s);
        r |= int_env("SF_LOCK_TTL_MS", 30000, &cfg->lock_ttl_ms);
        if (cfg->lock_ttl_ms < 300) {
                log_err("config: SF_LOCK_TTL_MS must be at least 300");
                r = -EINVAL;
        }
        r |= int_env("SF_DOWNLOAD_TIMEOUT", 1800, &cfg->download_timeout_s);
        r |= u64_env("SF_DOWNLOAD_MAX_BYTES", 20ULL << 30, &cfg->download_max_bytes);
        r |= int_env("SF_BLOB_CONCURRENCY", 4, &cfg->blob_concurrency);
        {
                static const char *const names[SF_CONFIG_EVENT_TYPES] = {
                        "AUDIT", "MUTATE", "STATUS", "USAGE", "RESOURCES", "PRUNE", "HISTORIC"};
                static const int days[SF_CONFIG_EVENT_TYPES] = {90, 90, 7, 30, 7, 30, 90};
                for (int i = 0; i < SF_CONFIG_EVENT_TYPES; i++) {
                        char var[64];
                        snprintf(var, sizeof(var), "SF_EVENT_RETENTION_%s", names[i]);
                        r |= retention_env(var, (int64_t)days[i] * 86400, &cfg->event_retention_s[i]);
                }
        }
        str_env("SF_DOWNLOAD_ALLOW", "", cfg->download_allow, sizeof(cfg->download_allow));
        r |= int_env("SF_STREAM_HEARTBEAT", 15, &cfg->stream_heartbeat_s);
        r |= int_env("SF_STREAM_MAX_SUBSCRIBERS", 256, &cfg->stream_max_subscribers);
        r |= int_env("SF_STREAM_BACKLOG", 1000, &cfg->stream_backlog);
        r |= int_env("SF_STREAM_WRITE_TIMEOUT", 30, &cfg->stream_write_timeout_s);
        r |= int_env("SF_STREAM_RING", 8192, &cfg->stream_ring);
        if (cfg->stream_heartbeat_s < 1 || cfg->stream_backlog < 1 || cfg->stream_write_timeout_s < 1 ||
            cfg->stream_ring < 16 || cfg->stream_max_subscribers > 3000) {
                log_err("config: SF_STREAM_HEARTBEAT, SF_STREAM_BACKLOG and SF_STREAM_WRITE_TIMEOUT must be >= 1, "
                        "SF_STREAM_RING >= 16, SF_STREAM_MAX_SUBSCRIBERS <= 3000");
                r = -EINVAL;
        }
        r |= double_env("SF_CPU_OVERCOMMIT_RATIO", 16, 1000, &cfg->cpu_overcommit_ratio);
        r |= double_env("SF_RAM_OVERCOMMIT_RATIO", 3.0, 1000, &cfg->ram_overcommit_ratio);
        r |= double_env("SF_RAM_SYSTEM_RESERVATION", 2.0, 1 << 20, &cfg->ram_system_reservation_gib);
        r |= int_env("SF_MINIMUM_FREE_DISK", 20, &cfg->minimum_free_disk_gib);
        r |= int_env("SF_SCHEDULER_CACHE_TIMEOUT", 5, &cfg->scheduler_cache_timeout_s);
        r |= int_env("SF_NODE_CHECKIN_MAXIMUM", 120, &cfg->node_checkin_max_s);
        r |= int_env("SF_USAGE_EVENT_FREQUENCY", 60, &cfg->usage_event_frequency_s);
        if (cfg->node_checkin_max_s < 1) {
                log_err("config: SF_NODE_CHECKIN_MAXIMUM must be >= 1");
                r = -EINVAL;
        }
        if (cfg->download_timeout_s < 1 || cfg->blob_concurrency < 1 || cfg->blob_concurrency > 64) {
                log_err("config: SF_DOWNLOAD_TIMEOUT must be >= 1, SF_BLOB_CONCURRENCY 1..64");
                r = -EINVAL;
        }
        {
                char def[256];
                snprintf(def, sizeof(def), "http://%s:%d", cfg->api_bind, cfg->api_port);
                str_env("SF_API_URL", def, cfg->api_url, sizeof(cfg->api_url));
        }
        rs = secret_env("SF_AUTH_SECRET", cfg->auth_secret, sizeof(cfg->auth_secret));
        if (rs == 0)
                rs = secret_env("SF_REDIS_PASSWORD", cfg->redis_password, sizeof(cfg->redis_password));
        if (rs == 0)
                rs = secret_env("SF_NATS_PASSWORD", cfg->nats_password, sizeof(cfg->nats_password));
        if (rs < 0)
                return rs;
        str_env("SF_NATS_USER", "", cfg->nats_user, sizeof(cfg->nats_user));
        if (strcmp(cfg->domain_type, "auto") && strcmp(cfg->domain_type, "kvm") &&
            strcmp(cfg->domain_type, "qemu")) {
                log_err("config: SF_DOMAIN_TYPE must be auto, kvm or qemu");
                return -EINVAL;
        }
        if (!cfg->node[0] || strlen(cfg->node) > 63)
                return -EINVAL;
        /* Paths under storage are built in PATH_MAX buffers: keep plenty of room. */
        if (cfg->storage[0] != '/' || strlen(cfg->storage) > 1024) {
                log_err("config: SF_STORAGE must be an absolute path of at most 1024 characters");
                return -EINVAL;
        }
        return r ? -EINVAL : 0;
}

void sf_config_node_token(const char *node, char *out, size_t outlen) {
        size_t i;

        for (i = 0; node[i] && i + 1 < outlen; i++) {
                char c = node[i];
                out[i] = (c == '.' || c == '*' || c == '>' || c == ' ') ? '_' : c;
        }
        out[i] = 0;
}
