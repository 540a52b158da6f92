// Opening a file strictly beneath a directory: openat2(2) with RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, or, where the kernel lacks openat2 (< 5.6),
// a walk that opens each component with O_NOFOLLOW. `relative` must not contain `..`
// components (the caller refuses them before this is reached).
#ifndef C_BINDERY_OPEN_BENEATH_H
#define C_BINDERY_OPEN_BENEATH_H

#include <stdint.h>

/// The file `relative` beneath `directory`, opened with `flags` (O_CLOEXEC and O_NOFOLLOW are
/// added): a file descriptor, or -errno. ELOOP when a symlink is in the way, EXDEV when
/// resolution would leave `directory`.
int bindery_open_beneath(const char *directory, const char *relative, int flags);

/// The statfs f_type of the filesystem holding `fd`, or -errno.
long bindery_filesystem_type(int fd);

/// HUGETLBFS_MAGIC, PROC_SUPER_MAGIC, SYSFS_MAGIC, from linux/magic.h.
#define BINDERY_HUGETLBFS_MAGIC 0x958458f6L
#define BINDERY_PROC_SUPER_MAGIC 0x9fa0L
#define BINDERY_SYSFS_MAGIC 0x62656572L

#endif
