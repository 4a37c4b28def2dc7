#include "common.h"

bool init_mapping(napi_env env, napi_value exports) { return true; }
