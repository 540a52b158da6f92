// Intentionally small: the wrappers live in include/COpenSSL.h as static inline functions.
#include "COpenSSL.h"
