/* sf-compute: a small ISO 9660 writer with Joliet names, for config drives (an exec of
 * genisoimage costs tens of milliseconds, most of a create on a fast hypervisor).
 *
 * Layout, in 2048-byte sectors: 0-15 system area; 16 primary volume descriptor; 17 the
 * Joliet supplementary descriptor (UCS-2 level 3); 18 the terminator; then the L and M
 * path tables of each tree, one directory per sector per tree (a directory of a config
 * drive holds a handful of entries, far below one sector), and the file contents.  Both
 * trees point at the same file extents.  Readers (Linux, blkid, cloud-init, cloudbase)
 * find the names either in the primary tree's Rock Ridge entries (as `genisoimage -R`
 * writes them: PX and NM, SP and ER in the root) or in the Joliet tree; the primary
 * tree's own names are uppercase d-characters for readers that know neither. */
#include "iso.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SECTOR 2048
#define MAX_DIRS 32
#define NAME_MAX_ISO 64

typedef struct {
        char name[NAME_MAX_ISO]; /* this component, as given */
        int parent;              /* index in dirs; the root is its own parent */
        uint32_t lba[2];         /* primary, Joliet */
} dir_t;

typedef struct {
        const sf_iso_file_t *f;
        int dir;
        const char *name; /* last component */
        uint32_t lba;
} file_t;

typedef struct {
        dir_t dirs[MAX_DIRS];
        int ndirs;
        file_t *files;
        size_t nfiles;
        unsigned char rec_date[7];
        char vd_date[17];
} iso_t;

static void le16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }
static void be16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)(v >> 8), p[1] = (unsigned char)v; }
static void le32(unsigned char *p, uint32_t v) {
        le16(p, (uint16_t)v);
        le16(p + 2, (uint16_t)(v >> 16));
}
static void be32(unsigned char *p, uint32_t v) {
        be16(p, (uint16_t)(v >> 16));
        be16(p + 2, (uint16_t)v);
}
static void both16(unsigned char *p, uint16_t v) { le16(p, v), be16(p + 2, v); }
static void both32(unsigned char *p, uint32_t v) { le32(p, v), be32(p + 4, v); }

/* A name in the primary tree: uppercase d-characters (A-Z 0-9 _), at most 30. */
static size_t primary_name(const char *in, bool file, char out[40]) {
        size_t n = 0;
        bool dot = false;

        for (const char *p = in; *p && n < 30; p++) {
                char c = *p;
                if (c >= 'a' && c <= 'z')
                        c = (char)(c - 'a' + 'A');
                else if (c == '.' && file && !dot && !strchr(p + 1, '.'))
                        dot = true; /* the last dot separates the extension */
                else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
                        c = '_';
                out[n++] = c;
        }
        if (file) {
                if (!dot)
                        out[n++] = '.';
                out[n++] = ';';
                out[n++] = '1';
        }
        out[n] = 0;
        return n;
}

/* A Joliet name: UCS-2 big endian of the ASCII name (config drive names are ASCII). */
static size_t joliet_name(const char *in, unsigned char out[2 * NAME_MAX_ISO]) {
        size_t n = 0;
        for (const char *p = in; *p && n < 2 * NAME_MAX_ISO - 1; p++) {
                out[n++] = 0;
                out[n++] = (unsigned char)*p;
        }
        return n;
}

/* One directory record at p, with su (system use: Rock Ridge) after the name; returns
 * its length. */
static size_t dir_record(unsigned char *p, uint32_t lba, uint32_t size, bool is_dir, const unsigned char *id,
                         size_t idlen, const unsigned char date[7], const unsigned char *su, size_t sulen) {
        size_t base = 33 + idlen + (idlen % 2 == 0 ? 1 : 0), len = base + sulen + (sulen % 2);

        memset(p, 0, len);
        p[0] = (unsigned char)len;
        both32(p + 2, lba);
        both32(p + 10, size);
        memcpy(p + 18, date, 7);
        p[25] = is_dir ? 2 : 0;
        both16(p + 28, 1);
        p[32] = (unsigned char)idlen;
        memcpy(p + 33, id, idlen);
        if (sulen)
                memcpy(p + base, su, sulen);
        return len;
}

/* Rock Ridge (RRIP 1.10) for the primary tree: PX (mode, links) and NM (the real name);
 * the root's "." also gets SP and ER, which is how readers detect it.  Returns the length. */
static size_t rock_ridge(unsigned char *su, bool is_dir, const char *name, bool root_self) {
        size_t n = 0, nl = name ? strlen(name) : 0;

        if (root_self) {
                memcpy(su, "SP\x07\x01\xbe\xef\x00", 7);
                n = 7;
                memcpy(su + n, "ER", 2);
                su[n + 2] = 8 + 10, su[n + 3] = 1, su[n + 4] = 10, su[n + 5] = 0, su[n + 6] = 0, su[n + 7] = 1;
                memcpy(su + n + 8, "RRIP_1991A", 10);
                n += 18;
        }
        memcpy(su + n, "PX", 2);
        su[n + 2] = 36, su[n + 3] = 1;
        both32(su + n + 4, is_dir ? 040555 : 0100444);
        both32(su + n + 12, is_dir ? 2 : 1);
        both32(su + n + 20, 0);
        both32(su + n + 28, 0);
        n += 36;
        if (nl) {
                memcpy(su + n, "NM", 2);
                su[n + 2] = (unsigned char)(5 + nl), su[n + 3] = 1, su[n + 4] = 0;
                memcpy(su + n + 5, name, nl);
                n += 5 + nl;
        }
        return n;
}

static int find_dir(iso_t *iso, const char *name, int parent) {
        for (int i = 1; i < iso->ndirs; i++)
                if (iso->dirs[i].parent == parent && strcmp(iso->dirs[i].name, name) == 0)
                        return i;
        return -1;
}

/* Directories of path (all but the last component) exist; the file's directory index. */
static int add_path(iso_t *iso, const char *path, const char **ret_name) {
        char comp[NAME_MAX_ISO];
        int cur = 0;
        const char *p = path, *slash;

        while ((slash = strchr(p, '/'))) {
                size_t n = (size_t)(slash - p);
                int d;
                if (n == 0 || n >= sizeof(comp))
                        return -EINVAL;
                memcpy(comp, p, n);
                comp[n] = 0;
                d = find_dir(iso, comp, cur);
                if (d < 0) {
                        if (iso->ndirs == MAX_DIRS)
                                return -E2BIG;
                        d = iso->ndirs++;
                        snprintf(iso->dirs[d].name, sizeof(iso->dirs[d].name), "%s", comp);
                        iso->dirs[d].parent = cur;
                }
                cur = d;
                p = slash + 1;
        }
        if (!*p || strlen(p) >= NAME_MAX_ISO)
                return -EINVAL;
        *ret_name = p;
        return cur;
}

/* Directories in path-table order: by depth, then parent, then name.  The root is 0. */
static int depth(const iso_t *iso, int d) {
        int n = 0;
        while (d != 0)
                d = iso->dirs[d].parent, n++;
        return n;
}

static void sort_dirs(iso_t *iso, int order[MAX_DIRS]) {
        for (int i = 0; i < iso->ndirs; i++)
                order[i] = i;
        for (int i = 1; i < iso->ndirs; i++)
                for (int j = i; j > 1; j--) {
                        int a = order[j - 1], b = order[j];
                        int da = depth(iso, a), db = depth(iso, b);
                        bool swap = da > db || (da == db && (iso->dirs[a].parent > iso->dirs[b].parent ||
                                                             (iso->dirs[a].parent == iso->dirs[b].parent &&
                                                              strcmp(iso->dirs[a].name, iso->dirs[b].name) > 0)));
                        if (!swap)
                                break;
                        order[j - 1] = b, order[j] = a;
                }
}

/* The path table of tree t (0 primary, 1 Joliet), little (L) or big endian (M). */
static size_t path_table(const iso_t *iso, const int order[MAX_DIRS], int t, bool big, unsigned char *out) {
        int number[MAX_DIRS];
        size_t n = 0;

        for (int i = 0; i < iso->ndirs; i++)
                number[order[i]] = i + 1;
        for (int i = 0; i < iso->ndirs; i++) {
                const dir_t *d = &iso->dirs[order[i]];
                unsigned char id[2 * NAME_MAX_ISO];
                size_t idlen;
                if (order[i] == 0)
                        id[0] = 0, idlen = 1;
                else if (t == 0)
                        idlen = primary_name(d->name, false, (char *)id);
                else
                        idlen = joliet_name(d->name, id);
                out[n] = (unsigned char)idlen;
                out[n + 1] = 0;
                if (big) {
                        be32(out + n + 2, d->lba[t]);
                        be16(out + n + 6, (uint16_t)number[d->parent]);
                } else {
                        le32(out + n + 2, d->lba[t]);
                        le16(out + n + 6, (uint16_t)number[d->parent]);
                }
                memcpy(out + n + 8, id, idlen);
                n += 8 + idlen + (idlen % 2);
        }
        return n;
}

/* Entries of directory d in tree t, sorted by their name in that tree. */
typedef struct {
        unsigned char id[2 * NAME_MAX_ISO];
        size_t idlen;
        uint32_t lba, size;
        bool is_dir;
        const char *name; /* as given (Rock Ridge NM) */
} entry_t;

static int cmp_entry(const void *a, const void *b) {
        const entry_t *x = a, *y = b;
        size_t n = x->idlen < y->idlen ? x->idlen : y->idlen;
        int c = memcmp(x->id, y->id, n);
        return c ? c : (x->idlen > y->idlen) - (x->idlen < y->idlen);
}

static int dir_sector(const iso_t *iso, int d, int t, unsigned char *sec) {
        entry_t e[64];
        size_t ne = 0, pos = 0;
        unsigned char self = 0, up = 1;

        for (int i = 1; i < iso->ndirs; i++) {
                if (iso->dirs[i].parent != d || i == d)
                        continue;
                if (ne == SF_ARRAY_SIZE(e))
                        return -E2BIG;
                e[ne].idlen = t == 0 ? primary_name(iso->dirs[i].name, false, (char *)e[ne].id)
                                     : joliet_name(iso->dirs[i].name, e[ne].id);
                e[ne].lba = iso->dirs[i].lba[t];
                e[ne].size = SECTOR;
                e[ne].is_dir = true;
                e[ne].name = iso->dirs[i].name;
                ne++;
        }
        for (size_t i = 0; i < iso->nfiles; i++) {
                if (iso->files[i].dir != d)
                        continue;
                if (ne == SF_ARRAY_SIZE(e))
                        return -E2BIG;
                e[ne].idlen = t == 0 ? primary_name(iso->files[i].name, true, (char *)e[ne].id)
                                     : joliet_name(iso->files[i].name, e[ne].id);
                e[ne].lba = iso->files[i].f->len ? iso->files[i].lba : 0;
                e[ne].size = (uint32_t)iso->files[i].f->len;
                e[ne].is_dir = false;
                e[ne].name = iso->files[i].name;
                ne++;
        }
        qsort(e, ne, sizeof(e[0]), cmp_entry);
        unsigned char su[160];
        size_t sul;

        memset(sec, 0, SECTOR);
        sul = t == 0 ? rock_ridge(su, true, NULL, d == 0) : 0;
        pos += dir_record(sec + pos, iso->dirs[d].lba[t], SECTOR, true, &self, 1, iso->rec_date, su, sul);
        sul = t == 0 ? rock_ridge(su, true, NULL, false) : 0;
        pos += dir_record(sec + pos, iso->dirs[iso->dirs[d].parent].lba[t], SECTOR, true, &up, 1, iso->rec_date, su,
                          sul);
        for (size_t i = 0; i < ne; i++) {
                sul = t == 0 ? rock_ridge(su, e[i].is_dir, e[i].name, false) : 0;
                if (pos + 34 + e[i].idlen + sul + 1 > SECTOR)
                        return -E2BIG;
                pos += dir_record(sec + pos, e[i].lba, e[i].size, e[i].is_dir, e[i].id, e[i].idlen, iso->rec_date,
                                  su, sul);
        }
        return 0;
}

/* a-characters padded with spaces, or their UCS-2 form for Joliet. */
static void put_text(unsigned char *p, size_t len, const char *s, bool ucs2) {
        size_t n = strlen(s);
        for (size_t i = 0; i < len; i++) {
                if (ucs2) {
                        size_t c = i / 2;
                        p[i] = i % 2 == 0 ? 0 : (unsigned char)(c < n ? s[c] : ' ');
                } else {
                        p[i] = (unsigned char)(i < n ? s[i] : ' ');
                }
        }
}

static void volume_descriptor(const iso_t *iso, int t, const char *label, uint32_t total, uint32_t pt_size,
                              uint32_t l_lba, uint32_t m_lba, unsigned char *sec) {
        bool j = t == 1;
        unsigned char self = 0;

        memset(sec, 0, SECTOR);
        sec[0] = j ? 2 : 1;
        memcpy(sec + 1, "CD001", 5);
        sec[6] = 1;
        put_text(sec + 8, 32, "LINUX", j);
        put_text(sec + 40, 32, label, j);
        both32(sec + 80, total);
        if (j)
                memcpy(sec + 88, "%/E", 3); /* UCS-2 level 3 */
        both16(sec + 120, 1);
        both16(sec + 124, 1);
        both16(sec + 128, SECTOR);
        both32(sec + 132, pt_size);
        le32(sec + 140, l_lba);
        be32(sec + 148, m_lba);
        dir_record(sec + 156, iso->dirs[0].lba[t], SECTOR, true, &self, 1, iso->rec_date, NULL, 0);
        put_text(sec + 190, 128, "", j);
        put_text(sec + 318, 128, "", j);
        put_text(sec + 446, 128, "", j);
        put_text(sec + 574, 128, "SF", j);
        put_text(sec + 702, 37, "", j);
        put_text(sec + 739, 37, "", j);
        put_text(sec + 776, 37, "", j);
        memcpy(sec + 813, iso->vd_date, 17);
        memcpy(sec + 830, iso->vd_date, 17);
        memset(sec + 847, '0', 16);
        memset(sec + 864, '0', 16);
        sec[881] = 1;
}

static int write_all(int fd, const void *buf, size_t len) {
        const unsigned char *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n, len -= (size_t)n;
        }
        return 0;
}

int sf_iso_write(const char *path, const char *label, const sf_iso_file_t *files, size_t nfiles, mode_t mode) {
        iso_t *iso = NULL;
        unsigned char *img = NULL;
        int order[MAX_DIRS], fd = -1, r = 0;
        uint32_t lba, pt_lba[4], pt_size = 0, total;
        size_t img_len;
        time_t now = time(NULL);
        struct tm tm;

        if (!path || !label || strlen(label) > 16 || (nfiles && !files))
                return -EINVAL;
        iso = calloc(1, sizeof(*iso));
        if (!iso || !(iso->files = calloc(nfiles + 1, sizeof(*iso->files)))) {
                r = -ENOMEM;
                goto cleanup;
        }
        gmtime_r(&now, &tm);
        iso->rec_date[0] = (unsigned char)tm.tm_year, iso->rec_date[1] = (unsigned char)(tm.tm_mon + 1);
        iso->rec_date[2] = (unsigned char)tm.tm_mday, iso->rec_date[3] = (unsigned char)tm.tm_hour;
        iso->rec_date[4] = (unsigned char)tm.tm_min, iso->rec_date[5] = (unsigned char)tm.tm_sec;
        snprintf(iso->vd_date, sizeof(iso->vd_date), "%04d%02d%02d%02d%02d%02d0", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec % 60);
        iso->ndirs = 1; /* the root, its own parent */
        for (size_t i = 0; i < nfiles; i++) {
                const char *name;
                int d;
                if (!files[i].path || (files[i].len && !files[i].data) || files[i].len > UINT32_MAX) {
                        r = -EINVAL;
                        goto cleanup;
                }
                d = add_path(iso, files[i].path, &name);
                if (d < 0) {
                        r = d;
                        goto cleanup;
                }
                iso->files[i] = (file_t){.f = &files[i], .dir = d, .name = name};
        }
        iso->nfiles = nfiles;
        sort_dirs(iso, order);

        /* sectors: 16 system, PVD, SVD, terminator, 4 path tables, dirs x2, files */
        {
                unsigned char scratch[SECTOR * 2];
                size_t n = path_table(iso, order, 1, false, scratch); /* Joliet's is the larger */
                if (n > SECTOR) {
                        r = -E2BIG;
                        goto cleanup;
                }
                (void)n;
        }
        lba = 19;
        for (int i = 0; i < 4; i++)
                pt_lba[i] = lba++;
        for (int t = 0; t < 2; t++)
                for (int i = 0; i < iso->ndirs; i++)
                        iso->dirs[order[i]].lba[t] = lba++;
        for (size_t i = 0; i < nfiles; i++) {
                iso->files[i].lba = lba;
                lba += (uint32_t)((files[i].len + SECTOR - 1) / SECTOR);
        }
        total = lba;
        img_len = (size_t)total * SECTOR;
        img = calloc(1, img_len);
        if (!img) {
                r = -ENOMEM;
                goto cleanup;
        }
        for (int t = 0; t < 2; t++) {
                size_t l = path_table(iso, order, t, false, img + (size_t)pt_lba[2 * t] * SECTOR);
                path_table(iso, order, t, true, img + (size_t)pt_lba[2 * t + 1] * SECTOR);
                if (t == 0)
                        pt_size = (uint32_t)l;
                volume_descriptor(iso, t, label, total, (uint32_t)l, pt_lba[2 * t], pt_lba[2 * t + 1],
                                  img + (size_t)(16 + t) * SECTOR);
                for (int i = 0; i < iso->ndirs; i++) {
                        r = dir_sector(iso, order[i], t, img + (size_t)iso->dirs[order[i]].lba[t] * SECTOR);
                        if (r < 0)
                                goto cleanup;
                }
        }
        (void)pt_size;
        img[18 * SECTOR] = 255;
        memcpy(img + 18 * SECTOR + 1, "CD001", 5);
        img[18 * SECTOR + 6] = 1;
        for (size_t i = 0; i < nfiles; i++)
                if (files[i].len)
                        memcpy(img + (size_t)iso->files[i].lba * SECTOR, files[i].data, files[i].len);

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0) {
                r = -errno;
                goto cleanup;
        }
        if (fchmod(fd, mode) < 0)
                r = -errno;
        if (r == 0)
                r = write_all(fd, img, img_len);
cleanup:
        if (fd >= 0 && close(fd) < 0 && r == 0)
                r = -errno;
        if (r < 0 && fd >= 0)
                unlink(path);
        free(img);
        if (iso)
                free(iso->files);
        free(iso);
        return r;
}
