#include "common/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"

int ox_fs_join(char *out, size_t cap, const char *a, const char *b)
{
    size_t la = strlen(a);
    int n = snprintf(out, cap, "%s%s%s", a, (la && a[la - 1] == '/') ? "" : "/", b);
    return (n < 0 || (size_t)n >= cap) ? OX_ETOOBIG : 0;
}

int ox_fs_mkdir_p(const char *path, unsigned mode)
{
    char tmp[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof tmp)
        return OX_EINVAL;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, mode) != 0 && errno != EEXIST)
            return OX_EIO;
        *p = '/';
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
        return OX_EIO;
    struct stat st;
    if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode))
        return OX_EIO;
    return 0;
}

int ox_fs_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return OX_EIO;
    int rc = fsync(fd) == 0 ? 0 : OX_EIO;
    close(fd);
    return rc;
}

int ox_fs_fsync_parent(const char *path)
{
    char dir[4096];
    size_t len = strlen(path);
    if (len >= sizeof dir)
        return OX_ETOOBIG;
    memcpy(dir, path, len + 1);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return ox_fs_fsync_dir(".");
    if (slash == dir)
        slash[1] = 0;
    else
        *slash = 0;
    return ox_fs_fsync_dir(dir);
}

int ox_fs_write_atomic(const char *path, const void *data, size_t len)
{
    char dir[4096], tmp[4200];
    size_t plen = strlen(path);
    if (plen >= sizeof dir)
        return OX_ETOOBIG;
    memcpy(dir, path, plen + 1);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        if (dir[0] && ox_fs_mkdir_p(dir, 0755) != 0)
            return OX_EIO;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return OX_EIO;
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            unlink(tmp);
            return OX_EIO;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return OX_EIO;
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return OX_EIO;
    }
    return ox_fs_fsync_parent(path);
}

int ox_fs_read_all(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? OX_ENOTFOUND : OX_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return OX_EIO;
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return OX_ETOOBIG;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return OX_ENOMEM;
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            /* a short buffer would hash or parse as different content */
            close(fd);
            free(buf);
            return OX_EIO;
        }
        if (r == 0)
            break; /* shrank since fstat: what is there is the file */
        got += (size_t)r;
    }
    close(fd);
    buf[got] = 0;
    *out = buf;
    if (len)
        *len = got;
    return 0;
}

void ox_fs_prune_empty_dirs(const char *path, const char *stop)
{
    char dir[4096];
    size_t len = strlen(path), slen = strlen(stop);
    if (len >= sizeof dir)
        return;
    memcpy(dir, path, len + 1);
    while (slen && stop[slen - 1] == '/')
        slen--;
    for (;;) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            return;
        *slash = 0;
        if (strlen(dir) <= slen || strncmp(dir, stop, slen) != 0)
            return;
        if (rmdir(dir) != 0)
            return;
    }
}

int ox_fs_stat(const char *path, uint64_t *size, int64_t *mtime_ns)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? OX_ENOTFOUND : OX_EIO;
    if (!S_ISREG(st.st_mode))
        return OX_ENOTFOUND;
    if (size)
        *size = (uint64_t)st.st_size;
    if (mtime_ns)
        *mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    return 0;
}
