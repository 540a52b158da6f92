#define _GNU_SOURCE
#include "CBinderyOpenBeneath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

static int walk_beneath(int directory_fd, const char *relative, int flags) {
    char path[PATH_MAX];
    size_t length = strlen(relative);
    if (length == 0 || length >= sizeof(path)) return -ENAMETOOLONG;
    memcpy(path, relative, length + 1);
    int current = dup(directory_fd);
    if (current < 0) return -errno;
    char *save = NULL;
    char *component = strtok_r(path, "/", &save);
    while (component != NULL) {
        char *next = strtok_r(NULL, "/", &save);
        if (strcmp(component, "..") == 0 || strcmp(component, ".") == 0) { close(current); return -EXDEV; }
        int opened = next == NULL
            ? openat(current, component, flags | O_NOFOLLOW | O_CLOEXEC)
            : openat(current, component, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        close(current);
        if (opened < 0) return -saved;
        current = opened;
        component = next;
    }
    return current;
}

int bindery_open_beneath(const char *directory, const char *relative, int flags) {
    int directory_fd = open(directory, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (directory_fd < 0) return -errno;
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, directory_fd, relative, &how, sizeof(how));
    int result = fd >= 0 ? (int)fd : -errno;
    if (fd < 0 && errno == ENOSYS) result = walk_beneath(directory_fd, relative, flags);
    close(directory_fd);
    return result;
}

long bindery_filesystem_type(int fd) {
    struct statfs info;
    if (fstatfs(fd, &info) != 0) return -errno;
    return (long)info.f_type;
}
