#include "common.h"

bool init_socket(napi_env env, napi_value exports) { return true; }
