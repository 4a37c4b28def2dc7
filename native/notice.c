/* Notices: warnings that native code must give from places where it cannot call JavaScript (finalizers
 * run during or right after garbage collection; a socket's close callback runs inside libuv).
 *
 * Lifetime rules:
 *  - One queue per env, reached through the env's instance data. Posting only records the notice and
 *    wakes a uv_async_t on the env's own loop; the async callback hands each notice to the JS handler
 *    registered by src/binding.ts (setNoticeHandler), which turns it into a process warning.
 *  - The async handle is unref'd: a pending notice never keeps the process alive.
 *  - When the env goes away (exit, Worker.terminate()) the async cleanup hook stops the queue and closes
 *    the handle; finalizers that run after that (env teardown collects everything) post nothing: a
 *    resource closed by the teardown itself is not a leak of the program's.
 *  - The queue memory outlives uv_close's callback; the env waits for that callback. */
#include "common.h"

#include <stdlib.h>
#include <uv.h>

#define NOTICE_QUEUE_MAX 64 /* the JS side reports one warning per kind anyway */

typedef struct notice {
  uint8_t what;
  uint8_t kind;
  int fd;
} notice;

struct notice_queue {
  uv_async_t async;
  napi_env env;
  napi_ref handler;
  napi_async_cleanup_hook_handle hook;
  notice items[NOTICE_QUEUE_MAX];
  unsigned count;
  bool stopped;
};

static void on_async_closed(uv_handle_t *handle) {
  notice_queue *q = handle->data;
  napi_async_cleanup_hook_handle hook = q->hook;
  free(q);
  napi_remove_async_cleanup_hook(hook);
}

static void on_env_cleanup(napi_async_cleanup_hook_handle hook, void *arg) {
  notice_queue *q = arg;
  q->stopped = true;
  addon_data *d = addon_get_data(q->env);
  if (d != NULL && d->notices == q) d->notices = NULL;
  if (q->handler != NULL) {
    napi_delete_reference(q->env, q->handler);
    q->handler = NULL;
  }
  uv_close((uv_handle_t *)&q->async, on_async_closed);
}

static void on_async(uv_async_t *handle) {
  notice_queue *q = handle->data;
  if (q->stopped || q->handler == NULL) {
    q->count = 0;
    return;
  }
  napi_env env = q->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn = NULL, global = NULL;
  if (napi_get_reference_value(env, q->handler, &fn) == napi_ok && fn != NULL && napi_get_global(env, &global) == napi_ok) {
    /* Copy first: the handler may run code whose garbage collection posts more notices. */
    notice batch[NOTICE_QUEUE_MAX];
    unsigned n = q->count;
    for (unsigned i = 0; i < n; i++) batch[i] = q->items[i];
    q->count = 0;
    for (unsigned i = 0; i < n; i++) {
      napi_value argv[3], result;
      argv[0] = make_int32(env, batch[i].what);
      argv[1] = make_int32(env, batch[i].kind);
      argv[2] = make_int32(env, batch[i].fd);
      if (argv[0] == NULL || argv[1] == NULL || argv[2] == NULL) break;
      napi_status st = napi_make_callback(env, NULL, global, fn, 3, argv, &result);
      if (st == napi_pending_exception) {
        napi_value exc;
        if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

void notice_post(napi_env env, notice_what what, int kind, int fd) {
  addon_data *d = addon_get_data(env);
  notice_queue *q = d != NULL ? d->notices : NULL;
  if (q == NULL || q->stopped) return;
  if (q->count < NOTICE_QUEUE_MAX) q->items[q->count++] = (notice){(uint8_t)what, (uint8_t)kind, fd};
  uv_async_send(&q->async);
}

/* setNoticeHandler(fn): fn(what, kind, fd) is called on the loop for every notice. */
static napi_value js_set_notice_handler(napi_env env, napi_callback_info info) {
  addon_data *d = addon_get_data(env);
  notice_queue *q = d != NULL ? d->notices : NULL;
  return store_function_arg(env, info, q != NULL ? &q->handler : NULL);
}

bool init_notice(napi_env env, napi_value exports) {
  addon_data *d = addon_get_data(env);
  uv_loop_t *loop = NULL;
  if (d == NULL || napi_get_uv_event_loop(env, &loop) != napi_ok || loop == NULL) return false;
  notice_queue *q = calloc(1, sizeof *q);
  if (q == NULL) return false;
  q->env = env;
  if (uv_async_init(loop, &q->async, on_async) != 0) {
    free(q);
    return false;
  }
  q->async.data = q;
  uv_unref((uv_handle_t *)&q->async);
  if (napi_add_async_cleanup_hook(env, on_env_cleanup, q, &q->hook) != napi_ok) {
    /* Initialised handles can only go through uv_close; without a hook we cannot wait for it, so keep
     * the handle (unref'd, inert) for the life of the loop. */
    q->stopped = true;
    return false;
  }
  d->notices = q;
  static const export_entry entries[] = {{"setNoticeHandler", js_set_notice_handler}};
  return export_functions(env, exports, entries, 1);
}
