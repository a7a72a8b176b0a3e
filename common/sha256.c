#include "common/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/err.h"

/* OpenSSL 3 looks the algorithm up in its provider tables, under a lock, on
 * every init with EVP_sha256(); the merkle tree hashes one 16 KiB leaf per
 * call, so the lookup is done once here and the fetched method reused. It is
 * immutable and lives as long as the process. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

static const EVP_MD *sha256_method(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_md ? sha256_md : EVP_sha256();
}

int ox_sha256_init(ox_sha256_t *s)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c)
        return OX_ENOMEM;
    if (EVP_DigestInit_ex(c, sha256_method(), NULL) != 1) {
        EVP_MD_CTX_free(c);
        return OX_ENOMEM;
    }
    s->ctx = c;
    return 0;
}

int ox_sha256_update(ox_sha256_t *s, const void *p, size_t n)
{
    return EVP_DigestUpdate(s->ctx, p, n) == 1 ? 0 : OX_EINVAL;
}

int ox_sha256_final(ox_sha256_t *s, uint8_t out[32])
{
    unsigned int len = 32;
    return EVP_DigestFinal_ex(s->ctx, out, &len) == 1 ? 0 : OX_EINVAL;
}

void ox_sha256_free(ox_sha256_t *s)
{
    if (s->ctx)
        EVP_MD_CTX_free(s->ctx);
    s->ctx = NULL;
}

void ox_sha256_raw(const void *p, size_t n, uint8_t out[32])
{
    unsigned int len = 32;
    EVP_Digest(p, n, out, &len, sha256_method(), NULL);
}

void ox_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

void ox_sha256_hex(const void *p, size_t n, char hex[65])
{
    uint8_t raw[32];
    ox_sha256_raw(p, n, raw);
    ox_hex_encode(raw, 32, hex);
}

int ox_sha256_file(const char *path, uint8_t out[32], uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? OX_ENOTFOUND : OX_EIO;
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    ox_sha256_t s = {0};
    int rc = ox_sha256_init(&s);
    size_t cap = 1 << 20;
    char *buf = rc ? NULL : malloc(cap);
    uint64_t total = 0;
    if (!rc && !buf)
        rc = OX_ENOMEM;
    while (!rc) {
        ssize_t r = read(fd, buf, cap);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = OX_EIO;
        if (r <= 0)
            break;
        total += (uint64_t)r;
        rc = ox_sha256_update(&s, buf, (size_t)r);
    }
    if (!rc)
        rc = ox_sha256_final(&s, out);
    ox_sha256_free(&s);
    free(buf);
    close(fd);
    if (!rc && size)
        *size = total;
    return rc;
}
