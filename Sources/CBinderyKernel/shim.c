// The wrappers are static inline in include/CBinderyKernel.h.
#include "CBinderyKernel.h"
