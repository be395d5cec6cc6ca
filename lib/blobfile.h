/* The blob store's files, as every process finds them: <SF_STORAGE>/blobs/<uuid[0:2]>/<uuid>
 * (api.md §7: upstream's layout), and their sha512 as blob records carry it. */
#pragma once
#include <stddef.h>

#define SF_SHA512_HEX_LEN 129 /* 128 hex digits + NUL */

/* The file of blob uuid (canonical lower case) under storage.  0, or -EINVAL for a uuid
 * that is not one (it must never name a path outside the store), -ENAMETOOLONG. */
int sf_blobfile_path(const char *storage, const char *uuid, char *out, size_t len);

/* The sha512 of the file at path, lower-case hex into ret.  0, or -errno (open/read),
 * -EIO if the digest fails.  ret is untouched on failure. */
int sf_blobfile_sha512(const char *path, char ret[SF_SHA512_HEX_LEN]);
