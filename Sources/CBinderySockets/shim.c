#include "CBinderySockets.h"
