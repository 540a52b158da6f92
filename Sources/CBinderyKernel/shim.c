// The wrappers are static inline in include/CBinderyKernel.h; what needs _GNU_SOURCE is here.
#define _GNU_SOURCE
#include <sys/mman.h>
#include "CBinderyKernel.h"

int bindery_memfd(const char *name) { return memfd_create(name, MFD_CLOEXEC); }
