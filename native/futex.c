#include "common.h"

bool init_futex(napi_env env, napi_value exports) { return true; }
