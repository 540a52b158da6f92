// Every wrapper is static inline in include/CBinderySQLite.h; SwiftPM needs a source file.
#include "CBinderySQLite.h"
