/* createrun: POST /instances -> QEMU running, beside raw libvirt define+start of the same
 * domain XML (make bench, tools/bench/part-create.sh, metric create_to_running_ratio).
 *
 *   createrun -a API -t TOKEN -b BODY.json -d RAWDIR -s STORAGE [-n REPS] [-u URI]
 *
 * Each repetition:
 *   sf   POST BODY (its "name" gets a suffix); "running" is libvirt's STARTED lifecycle
 *        event of domain sf:<uuid>, "created" the first GET /instances/<uuid> that says
 *        so (polled every 2 ms);
 *   raw  the domain's inactive XML (virsh dumpxml --inactive) with a new name and uuid, its
 *        files copied to RAWDIR (sf's metadata and MACs dropped, so nothing of sf owns
 *        it), then virDomainDefineXML + virDomainCreate, "running" by the same event.
 * Both clocks start right before the first call (the POST; the define).  Then the raw
 * domain is destroyed and undefined, the instance deleted through the API (waited for).
 * Prints one JSON object: sf_running_ms, sf_created_ms, raw_running_ms (arrays) and their
 * medians.  Exits 1 on any failure. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPS 64

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- libvirt lifecycle events: the last STARTED times, by domain name ---- */
#define RING 64
static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
        char name[128];
        double t;
} ev_ring[RING];
static unsigned ev_next;

static int on_lifecycle(virConnectPtr c, virDomainPtr d, int event, int detail, void *opaque) {
        double t = now_ms();
        (void)c, (void)detail, (void)opaque;
        if (event != VIR_DOMAIN_EVENT_STARTED)
                return 0;
        pthread_mutex_lock(&ev_mu);
        snprintf(ev_ring[ev_next % RING].name, sizeof(ev_ring[0].name), "%s", virDomainGetName(d));
        ev_ring[ev_next % RING].t = t;
        ev_next++;
        pthread_mutex_unlock(&ev_mu);
        return 0;
}

static void *event_loop(void *arg) {
        (void)arg;
        for (;;)
                virEventRunDefaultImpl();
        return NULL;
}

/* When name was STARTED (names are never reused here), 0 after timeout_ms. */
static double ev_wait(const char *name, double timeout_ms) {
        double until = now_ms() + timeout_ms, t = 0;
        while (now_ms() < until) {
                pthread_mutex_lock(&ev_mu);
                for (int i = 0; i < RING; i++)
                        if (strcmp(ev_ring[i].name, name) == 0)
                                t = ev_ring[i].t;
                pthread_mutex_unlock(&ev_mu);
                if (t > 0)
                        return t;
                usleep(500);
        }
        return 0;
}

/* ---- HTTP ---- */
static const char *api_url, *token;
static CURL *curl;

typedef struct {
        char *data;
        size_t len;
} buf_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
        buf_t *b = ud;
        char *d = realloc(b->data, b->len + sz * n + 1);
        if (!d)
                return 0;
        memcpy(d + b->len, p, sz * n);
        b->data = d;
        b->len += sz * n;
        d[b->len] = 0;
        return sz * n;
}

/* method path body -> parsed JSON answer (NULL on failure), *code the status. */
static json_object *http(const char *method, const char *path, const char *body, long *code) {
        char url[1024], auth[2048];
        struct curl_slist *h = NULL;
        buf_t b = {0};
        json_object *o = NULL;

        snprintf(url, sizeof(url), "%s%s", api_url, path);
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "{}");
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
        *code = 0;
        if (curl_easy_perform(curl) == CURLE_OK) {
                curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, code);
                o = b.data ? json_tokener_parse(b.data) : NULL;
        }
        curl_slist_free_all(h);
        free(b.data);
        return o;
}

static const char *jstr(json_object *o, const char *k) {
        json_object *v;
        return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

/* ---- helpers ---- */
/* Every occurrence of from in s replaced by to; s is freed. */
#define SETTLE_US 1000000 /* quiet time before each timed start */

static char *replace_all(char *s, const char *from, const char *to) {
        size_t fl = strlen(from), tl = strlen(to), n = 0;
        char *p, *out, *o;

        for (p = s; (p = strstr(p, from)); p += fl)
                n++;
        out = malloc(strlen(s) + n * tl + 1);
        if (!out)
                exit(1);
        o = out;
        for (p = s;;) {
                char *q = strstr(p, from);
                if (!q) {
                        strcpy(o, p);
                        break;
                }
                memcpy(o, p, (size_t)(q - p));
                o += q - p;
                memcpy(o, to, tl);
                o += tl;
                p = q + fl;
        }
        free(s);
        return out;
}

/* Drops every region from start to the end of end (inclusive). */
static void drop_regions(char *s, const char *start, const char *end) {
        char *a, *b;
        while ((a = strstr(s, start)) && (b = strstr(a, end)))
                memmove(a, b + strlen(end), strlen(b + strlen(end)) + 1);
}

/* A free loopback TCP port (bound and closed: libvirt binds it a moment later). */
static int free_port(void) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

        if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
            getsockname(fd, (struct sockaddr *)&a, &l) == 0)
                port = ntohs(a.sin_port);
        if (fd >= 0)
                close(fd);
        if (port < 0)
                exit(1);
        return port;
}

/* The instance's console and VDI ports are fixed in its XML (and in use by it): the raw
 * copy gets fresh fixed ports of its own, so libvirt does the same work for both. */
static char *move_ports(char *xml) {
        static const char *const keys[] = {"service='", "tlsPort='", "<graphics type='spice' port='",
                                           "<graphics type='vnc' port='"};
        int old[8], n = 0;

        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
                for (char *p = xml; (p = strstr(p, keys[k])); p += strlen(keys[k])) {
                        int v = atoi(p + strlen(keys[k])), seen = 0;
                        for (int i = 0; i < n; i++)
                                seen |= old[i] == v;
                        if (v >= 1024 && !seen && n < 8)
                                old[n++] = v;
                }
        for (int i = 0; i < n; i++) {
                char from[32], to[32];
                snprintf(from, sizeof(from), "'%d'", old[i]);
                snprintf(to, sizeof(to), "'%d'", free_port());
                xml = replace_all(xml, from, to);
        }
        return xml;
}

static int copy_file(const char *from, const char *to) {
        char buf[65536];
        size_t n;
        FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
        int r = in && out ? 0 : -1;
        while (r == 0 && (n = fread(buf, 1, sizeof(buf), in)) > 0)
                if (fwrite(buf, 1, n, out) != n)
                        r = -1;
        if (in)
                fclose(in);
        if (out && fclose(out) != 0)
                r = -1;
        return r;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

static double median(const double *v, int n) {
        double s[MAX_REPS];
        memcpy(s, v, sizeof(double) * (size_t)n);
        qsort(s, (size_t)n, sizeof(double), cmp_double);
        return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void put_array(const char *name, const double *v, int n) {
        printf("\"%s\": [", name);
        for (int i = 0; i < n; i++)
                printf("%s%.1f", i ? ", " : "", v[i]);
        printf("], ");
}

int main(int argc, char **argv) {
        const char *body_path = NULL, *rawdir = NULL, *storage = NULL, *uri = "qemu:///system";
        double sf_run[MAX_REPS], sf_created[MAX_REPS], raw_run[MAX_REPS];
        json_object *body;
        virConnectPtr conn;
        pthread_t loop;
        int reps = 5, opt;

        while ((opt = getopt(argc, argv, "a:t:b:d:s:n:u:")) != -1) {
                switch (opt) {
                case 'a': api_url = optarg; break;
                case 't': token = optarg; break;
                case 'b': body_path = optarg; break;
                case 'd': rawdir = optarg; break;
                case 's': storage = optarg; break;
                case 'n': reps = atoi(optarg); break;
                case 'u': uri = optarg; break;
                default: return 2;
                }
        }
        if (!api_url || !token || !body_path || !rawdir || !storage || reps < 1 || reps > MAX_REPS) {
                fprintf(stderr, "usage: createrun -a API -t TOKEN -b BODY.json -d RAWDIR -s STORAGE [-n REPS] [-u URI]\n");
                return 2;
        }
        body = json_object_from_file(body_path);
        if (!body) {
                fprintf(stderr, "cannot read %s\n", body_path);
                return 1;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl = curl_easy_init();
        virEventRegisterDefaultImpl();
        conn = virConnectOpen(uri);
        if (!conn || virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                       VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), NULL, NULL) < 0) {
                fprintf(stderr, "libvirt: cannot open %s or register for events\n", uri);
                return 1;
        }
        pthread_create(&loop, NULL, event_loop, NULL);

        for (int i = 0; i < reps; i++) {
                char name[128], path[512], dname[128], rawname[64], rawuuid[VIR_UUID_STRING_BUFLEN];
                const char *base = jstr(body, "name") ?: "bench";
                json_object *ans, *st;
                double t0, t;
                long code;
                char *xml;
                virDomainPtr d, raw;

                /* -- sf -- */
                snprintf(name, sizeof(name), "%s-%d", base, i);
                json_object_object_add(body, "name", json_object_new_string(name));
                /* Both starts begin on a settled node: the last repetition's delete (its
                 * network refresh, QEMU exiting, files removed) is not on sf's clock. */
                usleep(SETTLE_US);
                t0 = now_ms();
                ans = http("POST", "/instances", json_object_to_json_string(body), &code);
                if (code != 200 || !ans || !jstr(ans, "uuid")) {
                        fprintf(stderr, "POST /instances: %ld\n", code);
                        return 1;
                }
                char uuid[64];
                snprintf(uuid, sizeof(uuid), "%s", jstr(ans, "uuid"));
                json_object_put(ans);
                snprintf(dname, sizeof(dname), "sf:%s", uuid);
                t = ev_wait(dname, 120000);
                if (t == 0) {
                        fprintf(stderr, "domain %s did not start in 120 s\n", dname);
                        return 1;
                }
                sf_run[i] = t - t0;
                for (;;) {
                        snprintf(path, sizeof(path), "/instances/%s", uuid);
                        ans = http("GET", path, NULL, &code);
                        st = NULL;
                        const char *s = ans && json_object_object_get_ex(ans, "state", &st) ? json_object_get_string(st) : "";
                        if (strcmp(s, "created") == 0) {
                                sf_created[i] = now_ms() - t0;
                                json_object_put(ans);
                                break;
                        }
                        if (strstr(s, "error") || now_ms() - t0 > 120000) {
                                fprintf(stderr, "instance %s is %s\n", uuid, s);
                                return 1;
                        }
                        json_object_put(ans);
                        usleep(2000);
                }

                /* -- raw: the same XML, its own name, uuid and copies of the files -- */
                d = virDomainLookupByName(conn, dname);
                xml = d ? virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE) : NULL;
                if (!xml) {
                        fprintf(stderr, "no XML for %s\n", dname);
                        return 1;
                }
                /* The sf guest is still booting (TCG eats a core): paused, it does not
                 * slow down the raw domain's start (the instance is deleted after). */
                if (virDomainSuspend(d) < 0)
                        fprintf(stderr, "cannot pause %s: %s\n", dname, virGetLastErrorMessage());
                virDomainFree(d);
                {
                        FILE *f = fopen("/proc/sys/kernel/random/uuid", "re");
                        if (!f || !fgets(rawuuid, sizeof(rawuuid), f)) {
                                fprintf(stderr, "no uuid\n");
                                return 1;
                        }
                        fclose(f);
                        rawuuid[strcspn(rawuuid, "\n")] = 0;
                }
                snprintf(rawname, sizeof(rawname), "sfbench-raw-%d-%d", (int)getpid(), i);
                char idir[512], rdir[512];
                snprintf(idir, sizeof(idir), "%s/instances/%s", storage, uuid);
                snprintf(rdir, sizeof(rdir), "%s/%s", rawdir, rawname);
                mkdir(rdir, 0755);
                xml = replace_all(xml, idir, rdir);
                xml = replace_all(xml, dname, rawname);
                xml = replace_all(xml, uuid, rawuuid);
                drop_regions(xml, "<metadata>", "</metadata>");
                drop_regions(xml, "<mac address=", "/>");
                xml = move_ports(xml);
                {
                        static const char *files[] = {"vda.qcow2", "sda.qcow2", "config.iso", NULL};
                        for (const char **f = files; *f; f++) {
                                char a[1024], b[1024];
                                snprintf(a, sizeof(a), "%s/%s", idir, *f);
                                snprintf(b, sizeof(b), "%s/%s", rdir, *f);
                                if (access(a, F_OK) == 0 && copy_file(a, b) < 0) {
                                        fprintf(stderr, "cannot copy %s\n", a);
                                        return 1;
                                }
                        }
                }
                usleep(SETTLE_US);
                t0 = now_ms();
                raw = virDomainDefineXML(conn, xml);
                if (!raw || virDomainCreate(raw) < 0) {
                        fprintf(stderr, "raw define/start failed: %s\n", virGetLastErrorMessage());
                        if (raw)
                                virDomainUndefineFlags(raw, VIR_DOMAIN_UNDEFINE_NVRAM);
                        return 1;
                }
                t = ev_wait(rawname, 120000);
                if (t == 0) {
                        fprintf(stderr, "raw domain did not start\n");
                        return 1;
                }
                raw_run[i] = t - t0;
                free(xml);
                virDomainDestroy(raw);
                virDomainUndefine(raw);
                virDomainFree(raw);
                fprintf(stderr, "rep %d: sf running %.0f ms, created %.0f ms; raw running %.0f ms (instance %s)\n", i,
                        sf_run[i], sf_created[i], raw_run[i], uuid);

                /* -- clean up: the instance through the API -- */
                snprintf(path, sizeof(path), "/instances/%s", uuid);
                json_object_put(http("DELETE", path, NULL, &code));
                for (double until = now_ms() + 60000;;) {
                        ans = http("GET", path, NULL, &code);
                        const char *s = ans && json_object_object_get_ex(ans, "state", &st) ? json_object_get_string(st) : "";
                        bool gone = strcmp(s, "deleted") == 0 || code == 404;
                        json_object_put(ans);
                        if (gone)
                                break;
                        if (now_ms() > until) {
                                fprintf(stderr, "instance %s not deleted in 60 s\n", uuid);
                                return 1;
                        }
                        usleep(50000);
                }
        }
        printf("{");
        put_array("sf_running_ms", sf_run, reps);
        put_array("sf_created_ms", sf_created, reps);
        put_array("raw_running_ms", raw_run, reps);
        printf("\"sf_running_median_ms\": %.1f, \"sf_created_median_ms\": %.1f, \"raw_running_median_ms\": %.1f}\n",
               median(sf_run, reps), median(sf_created, reps), median(raw_run, reps));
        json_object_put(body);
        return 0;
}
