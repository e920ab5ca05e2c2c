// N-API glue: the JS `Engine` class. It turns method calls into Commands for
// the engine thread and delivers the thread's Events to `onEvents` from a
// uv_async callback on the JS thread. See ../API.md for the contract.
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <uv.h>

#include <sys/socket.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

#include "engine.h"
#include "net_util.h"
#include "route.h"
#include "tls.h"

namespace {

using tcplb::Command;
using tcplb::Event;

constexpr const char* kVersion = "tcplb-native 4";  // 4: TLS_READY names a fast-path backend; setTls: detected by its presence

// ---- small N-API helpers ---------------------------------------------------

// Throws a JS error describing the last failed N-API call, unless one is
// already pending. Used where an N-API call fails unexpectedly.
void throwLastError(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info* info = nullptr;
  napi_get_last_error_info(env, &info);
  const char* msg = (info && info->error_message) ? info->error_message : "N-API call failed";
  napi_throw_error(env, nullptr, msg);
}

#define NAPI_OK_OR_RETURN(env, call) \
  do {                               \
    if ((call) != napi_ok) {         \
      throwLastError(env);           \
      return nullptr;                \
    }                                \
  } while (0)

bool argNumber(napi_env env, napi_value v, const char* name, double* out) {
  if (napi_get_value_double(env, v, out) == napi_ok) return true;
  std::string msg = std::string(name) + " must be a number";
  napi_throw_type_error(env, nullptr, msg.c_str());
  return false;
}

bool argInt64(napi_env env, napi_value v, const char* name, int64_t* out) {
  double d;
  if (!argNumber(env, v, name, &d)) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

// Clamps a JS number of milliseconds into [0, UINT32_MAX].
bool argMillis(napi_env env, napi_value v, const char* name, uint32_t* out) {
  double d;
  if (!argNumber(env, v, name, &d)) return false;
  if (!(d > 0)) d = 0;  // also NaN
  if (d > 4294967295.0) d = 4294967295.0;
  *out = static_cast<uint32_t>(d);
  return true;
}

// Addresses are short; anything that does not fit is not an IP literal.
bool argString(napi_env env, napi_value v, const char* name, char* buf, size_t cap) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) {
    std::string msg = std::string(name) + " must be a string";
    napi_throw_type_error(env, nullptr, msg.c_str());
    return false;
  }
  // Truncated: make it an invalid literal (not "", which means "all interfaces").
  if (len + 1 >= cap) snprintf(buf, cap, "%s", "!");
  return true;
}

napi_value makeInt(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

void setProp(napi_env env, napi_value obj, const char* key, napi_value v) {
  napi_set_named_property(env, obj, key, v);
}

napi_value errResult(napi_env env, int err) {
  napi_value obj, f, code;
  napi_create_object(env, &obj);
  napi_get_boolean(env, false, &f);
  setProp(env, obj, "ok", f);
  setProp(env, obj, "errno", makeInt(env, err));
  napi_create_string_utf8(env, uv_err_name(-err), NAPI_AUTO_LENGTH, &code);
  setProp(env, obj, "code", code);
  return obj;
}

void notifyJs(void* arg) {
  uv_async_send(static_cast<uv_async_t*>(arg));
}

class JsEngine;

// The uv_async_t and what its close must do, kept apart from JsEngine because
// it outlives it: the handle is freed only in its close callback. The async
// cleanup hook registered with it makes Node wait for that callback at
// environment teardown; without it a Worker could unload this library while
// the close callback is still queued.
struct AsyncBox {
  uv_async_t handle;  // first member: uv_handle_t* <-> AsyncBox*
  JsEngine* owner = nullptr;  // nullptr once closing
  napi_async_cleanup_hook_handle hook = nullptr;
};

// ---- the wrapped object ----------------------------------------------------

class JsEngine {
 public:
  static napi_value Define(napi_env env);

 private:
  JsEngine(napi_env env, AsyncBox* box) : env_(env), box_(box), engine_(&notifyJs, &box->handle) {}

  static constexpr int kMaxThreads = 64;

  static napi_value New(napi_env env, napi_callback_info info);
  static void Finalize(napi_env env, void* data, void* hint);
  static void AsyncCleanupHook(napi_async_cleanup_hook_handle handle, void* arg);
  static void OnAsync(uv_async_t* handle);
  static void OnClosed(uv_handle_t* handle);
  static JsEngine* Unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv);
  static JsEngine* ListenerObjectArgs(napi_env env, napi_callback_info info, const char* notObject, int64_t* id,
                                      napi_value* obj);

  static napi_value Listen(napi_env env, napi_callback_info info);
  static napi_value Activate(napi_env env, napi_callback_info info);
  static napi_value CloseListener(napi_env env, napi_callback_info info);
  static napi_value Connect(napi_env env, napi_callback_info info);
  static napi_value SetRoute(napi_env env, napi_callback_info info);
  static napi_value SetTls(napi_env env, napi_callback_info info);
  static napi_value Reject(napi_env env, napi_callback_info info);
  static napi_value Kill(napi_env env, napi_callback_info info);
  static napi_value CloseAll(napi_env env, napi_callback_info info);
  static napi_value Stats(napi_env env, napi_callback_info info);
  static napi_value Counts(napi_env env, napi_callback_info info);
  static napi_value Stop(napi_env env, napi_callback_info info);

  static napi_value PostIdCommand(napi_env env, napi_callback_info info, Command::Type type);

  void deliver();
  napi_value buildEventArray();
  void reportCallbackError();
  void closeAsync();
  void release();

  napi_env env_;
  AsyncBox* box_;  // nullptr once closing; freed by OnClosed
  tcplb::EngineGroup engine_;
  napi_ref self_ = nullptr;      // strong while running: keeps `this` alive
  napi_ref onEvents_ = nullptr;  // strong while running
  napi_async_context asyncCtx_ = nullptr;
  bool stopped_ = false;   // stop() called (or env teardown)
  bool released_ = false;  // refs dropped and async handle closed
  std::unordered_set<int64_t> listenerIds_;  // listeners bound and not closed
  std::vector<Event> batch_;
  std::vector<double> statsScratch_;
};

napi_value JsEngine::Define(napi_env env) {
  napi_property_descriptor methods[] = {
      {"listen", nullptr, Listen, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"activate", nullptr, Activate, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"closeListener", nullptr, CloseListener, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"connect", nullptr, Connect, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setRoute", nullptr, SetRoute, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setTls", nullptr, SetTls, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reject", nullptr, Reject, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"kill", nullptr, Kill, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"closeAll", nullptr, CloseAll, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"stats", nullptr, Stats, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"counts", nullptr, Counts, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"stop", nullptr, Stop, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_value cls;
  NAPI_OK_OR_RETURN(env, napi_define_class(env, "Engine", NAPI_AUTO_LENGTH, New, nullptr,
                                           sizeof methods / sizeof methods[0], methods, &cls));
  return cls;
}

napi_value JsEngine::New(napi_env env, napi_callback_info info) {
  napi_value target;
  NAPI_OK_OR_RETURN(env, napi_get_new_target(env, info, &target));
  if (target == nullptr) {
    napi_throw_type_error(env, nullptr, "Engine must be called with new");
    return nullptr;
  }
  size_t argc = 2;
  napi_value argv[2], self;
  NAPI_OK_OR_RETURN(env, napi_get_cb_info(env, info, &argc, argv, &self, nullptr));
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t);
  if (t != napi_function) {
    napi_throw_type_error(env, nullptr, "new Engine(onEvents): onEvents must be a function");
    return nullptr;
  }
  // new Engine(onEvents, { threads }) - threads: integer 1..kMaxThreads, default 1.
  int threads = 1;
  napi_valuetype ot = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &ot);
  if (ot == napi_object) {
    napi_value tv;
    napi_valuetype tt = napi_undefined;
    if (napi_get_named_property(env, argv[1], "threads", &tv) == napi_ok) napi_typeof(env, tv, &tt);
    if (tt != napi_undefined) {
      double d = 0;
      if (tt != napi_number || napi_get_value_double(env, tv, &d) != napi_ok || !(d >= 1 && d <= kMaxThreads) ||
          d != static_cast<double>(static_cast<int>(d))) {
        napi_throw_type_error(env, nullptr, "new Engine(onEvents, opts): opts.threads must be an integer in 1..64");
        return nullptr;
      }
      threads = static_cast<int>(d);
    }
  } else if (ot != napi_undefined && ot != napi_null) {
    napi_throw_type_error(env, nullptr, "new Engine(onEvents, opts): opts must be an object");
    return nullptr;
  }

  uv_loop_s* loop = nullptr;
  NAPI_OK_OR_RETURN(env, napi_get_uv_event_loop(env, &loop));
  auto* box = new AsyncBox;
  if (uv_async_init(loop, &box->handle, OnAsync) != 0) {
    delete box;
    napi_throw_error(env, nullptr, "tcplb-native: uv_async_init failed");
    return nullptr;
  }
  uv_unref(reinterpret_cast<uv_handle_t*>(&box->handle));  // never keeps the process alive
  auto* je = new JsEngine(env, box);
  box->owner = je;
  if (napi_add_async_cleanup_hook(env, AsyncCleanupHook, box, &box->hook) != napi_ok) {
    box->hook = nullptr;
    je->closeAsync();
    delete je;
    throwLastError(env);
    return nullptr;
  }

  int err = je->engine_.start(threads);
  if (err != 0) {
    je->closeAsync();
    delete je;
    std::string msg = std::string("tcplb-native: engine start failed: ") + strerror(err);
    napi_throw_error(env, nullptr, msg.c_str());
    return nullptr;
  }
  if (napi_wrap(env, self, je, Finalize, nullptr, nullptr) != napi_ok) {
    je->engine_.stop();
    je->closeAsync();
    delete je;
    throwLastError(env);
    return nullptr;
  }
  napi_create_reference(env, self, 1, &je->self_);
  napi_create_reference(env, argv[0], 1, &je->onEvents_);
  napi_value resName;
  napi_create_string_utf8(env, "tcplb_native", NAPI_AUTO_LENGTH, &resName);
  napi_async_init(env, self, resName, &je->asyncCtx_);
  return self;
}

// Runs when the JS object is collected: normally long after stop() released
// everything, or at environment teardown with the engine still running.
void JsEngine::Finalize(napi_env /*env*/, void* data, void* /*hint*/) {
  auto* je = static_cast<JsEngine*>(data);
  je->stopped_ = true;
  je->engine_.stop();
  je->release();  // normally done already; user-owned refs are never freed by Node
  delete je;
}

// Environment teardown (process exit, Worker exit): join the thread and close
// the handle; Node keeps the environment (and this library) alive until
// OnClosed removes the hook.
void JsEngine::AsyncCleanupHook(napi_async_cleanup_hook_handle /*handle*/, void* arg) {
  auto* box = static_cast<AsyncBox*>(arg);
  JsEngine* je = box->owner;
  if (je == nullptr) return;  // already closing: OnClosed removes the hook
  je->stopped_ = true;
  je->engine_.stop();  // pending events are dropped: JS is going away
  je->release();
}

void JsEngine::OnClosed(uv_handle_t* handle) {
  auto* box = reinterpret_cast<AsyncBox*>(handle);
  if (box->hook != nullptr) napi_remove_async_cleanup_hook(box->hook);
  delete box;
}

void JsEngine::OnAsync(uv_async_t* handle) {
  JsEngine* je = reinterpret_cast<AsyncBox*>(handle)->owner;
  if (je == nullptr) return;
  je->deliver();
  if (je->stopped_) {
    // stop() may have been called from inside onEvents: the thread is joined,
    // so one more drain gets the last events (CLOSED for killed connections).
    je->deliver();
    je->release();
  }
}

JsEngine* JsEngine::Unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  napi_value self;
  if (napi_get_cb_info(env, info, argc, argv, &self, nullptr) != napi_ok) {
    throwLastError(env);
    return nullptr;
  }
  void* p = nullptr;
  if (napi_unwrap(env, self, &p) != napi_ok || p == nullptr) {
    napi_throw_type_error(env, nullptr, "not a tcplb_native Engine");
    return nullptr;
  }
  return static_cast<JsEngine*>(p);
}

// ---- event delivery --------------------------------------------------------

void JsEngine::deliver() {
  if (released_) return;
  engine_.takeEvents(batch_);
  if (batch_.empty()) return;

  napi_handle_scope scope;
  if (napi_open_handle_scope(env_, &scope) != napi_ok) return;
  napi_value arr = buildEventArray();
  napi_value fn = nullptr, self = nullptr, result;
  napi_get_reference_value(env_, onEvents_, &fn);
  napi_get_reference_value(env_, self_, &self);
  if (arr != nullptr && fn != nullptr && self != nullptr) {
    // make_callback (not call_function): runs the nextTick and microtask
    // queues afterwards and keeps async_hooks context, like any I/O callback.
    if (napi_make_callback(env_, asyncCtx_, self, fn, 1, &arr, &result) != napi_ok) {
      reportCallbackError();
    }
  }
  napi_close_handle_scope(env_, scope);
  // A burst (closeAll of 100k connections) must not pin its memory forever.
  if (batch_.capacity() > 4096) std::vector<Event>().swap(batch_);
}

// One flat array, records concatenated (API.md table).
napi_value JsEngine::buildEventArray() {
  size_t len = 0;
  for (const Event& e : batch_) {
    switch (e.type) {
      case tcplb::EV_ACCEPT: len += 7; break;
      case tcplb::EV_ACCEPT_ROUTED: len += 8; break;
      case tcplb::EV_CONNECTED: len += 2; break;
      case tcplb::EV_CONNECT_FAILED: len += 3; break;
      case tcplb::EV_CLOSED: len += 7; break;
      case tcplb::EV_ACCEPT_ERROR: len += 3; break;
      case tcplb::EV_TLS_READY: len += 8; break;
      case tcplb::EV_TLS_FAILED: len += 5; break;
    }
  }
  napi_env env = env_;
  napi_value arr;
  if (napi_create_array_with_length(env, len, &arr) != napi_ok) return nullptr;
  uint32_t i = 0;
  auto putInt = [&](int64_t v) {
    napi_value x;
    if (v >= INT32_MIN && v <= INT32_MAX) {
      napi_create_int32(env, static_cast<int32_t>(v), &x);  // small ints stay Smis
    } else {
      napi_create_double(env, static_cast<double>(v), &x);
    }
    napi_set_element(env, arr, i++, x);
  };
  auto putDouble = [&](double v) {
    napi_value x;
    napi_create_double(env, v, &x);
    napi_set_element(env, arr, i++, x);
  };
  auto putStr = [&](const char* s) {
    napi_value x;
    napi_create_string_latin1(env, s, NAPI_AUTO_LENGTH, &x);
    napi_set_element(env, arr, i++, x);
  };
  for (const Event& e : batch_) {
    putInt(e.type);
    switch (e.type) {
      case tcplb::EV_ACCEPT:
      case tcplb::EV_ACCEPT_ROUTED:
        putDouble(static_cast<double>(e.connId));
        putInt(e.listenerId);
        putStr(e.clientIp);
        putInt(e.clientPort);
        putStr(e.localIp);
        putInt(e.localPort);
        if (e.type == tcplb::EV_ACCEPT_ROUTED) putInt(e.backendKey);
        break;
      case tcplb::EV_CONNECTED:
        putDouble(static_cast<double>(e.connId));
        break;
      case tcplb::EV_CONNECT_FAILED:
        putDouble(static_cast<double>(e.connId));
        putInt(e.err);
        break;
      case tcplb::EV_CLOSED:
        putDouble(static_cast<double>(e.connId));
        putDouble(e.bytesIn);
        putDouble(e.bytesOut);
        putInt(e.how);
        putInt(e.err);
        putInt(e.side);
        break;
      case tcplb::EV_ACCEPT_ERROR:
        putInt(e.listenerId);
        putInt(e.err);
        break;
      case tcplb::EV_TLS_READY: {
        // version, cipher, servername, alpn: '\0'-separated in `text`
        putDouble(static_cast<double>(e.connId));
        putInt(e.how);
        size_t at = 0;
        for (int f = 0; f < 4; f++) {
          size_t end = e.text.find('\0', at);
          if (end == std::string::npos) end = e.text.size();
          napi_value x;
          napi_create_string_utf8(env, e.text.data() + at, end - at, &x);
          napi_set_element(env, arr, i++, x);
          at = end < e.text.size() ? end + 1 : end;
        }
        putInt(e.backendKey);
        break;
      }
      case tcplb::EV_TLS_FAILED:
        putDouble(static_cast<double>(e.connId));
        putInt(e.how);
        putInt(e.err);
        putStr(e.text.c_str());
        break;
    }
  }
  return arr;
}

// An exception from onEvents must not take the process down from inside a
// uv callback: print it (with its stack) and carry on.
void JsEngine::reportCallbackError() {
  bool pending = false;
  napi_is_exception_pending(env_, &pending);
  if (!pending) {
    const napi_extended_error_info* info = nullptr;
    napi_get_last_error_info(env_, &info);
    fprintf(stderr, "tcplb-native: onEvents call failed: %s\n",
            (info && info->error_message) ? info->error_message : "unknown N-API error");
    return;
  }
  napi_value exc, text = nullptr;
  napi_get_and_clear_last_exception(env_, &exc);
  napi_valuetype t;
  napi_typeof(env_, exc, &t);
  if (t == napi_object) {
    napi_value stack;
    napi_valuetype st;
    if (napi_get_named_property(env_, exc, "stack", &stack) == napi_ok &&
        napi_typeof(env_, stack, &st) == napi_ok && st == napi_string) {
      text = stack;
    }
  }
  if (text == nullptr && napi_coerce_to_string(env_, exc, &text) != napi_ok) text = nullptr;
  napi_get_and_clear_last_exception(env_, &exc);  // a throwing getter/toString
  char buf[2048] = "(unprintable exception)";
  if (text != nullptr) {
    size_t n;
    napi_get_value_string_utf8(env_, text, buf, sizeof buf, &n);
  }
  fprintf(stderr, "tcplb-native: onEvents threw: %s\n", buf);
}

void JsEngine::closeAsync() {
  if (box_ == nullptr) return;
  box_->owner = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&box_->handle), OnClosed);
  box_ = nullptr;
}

// After stop and the final drain: drop everything that kept JS objects alive.
void JsEngine::release() {
  if (released_) return;
  released_ = true;
  closeAsync();
  if (asyncCtx_ != nullptr) napi_async_destroy(env_, asyncCtx_);
  asyncCtx_ = nullptr;
  if (onEvents_ != nullptr) napi_delete_reference(env_, onEvents_);
  onEvents_ = nullptr;
  if (self_ != nullptr) napi_delete_reference(env_, self_);  // may be collected now
  self_ = nullptr;
}

// ---- methods ---------------------------------------------------------------

// listen(listenerId, host, port, backlog) -> {ok, port} | {ok:false, errno, code}
napi_value JsEngine::Listen(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  JsEngine* je = Unwrap(env, info, &argc, argv);
  if (je == nullptr) return nullptr;
  int64_t id;
  double port, backlog;
  char host[256];
  if (!argInt64(env, argv[0], "listenerId", &id) || !argString(env, argv[1], "host", host, sizeof host) ||
      !argNumber(env, argv[2], "port", &port) || !argNumber(env, argv[3], "backlog", &backlog)) {
    return nullptr;
  }
  if (je->stopped_) return errResult(env, ESHUTDOWN);
  if (je->listenerIds_.count(id) != 0) return errResult(env, EEXIST);
  if (!(port >= 0 && port <= 65535)) return errResult(env, EINVAL);
  if (!(backlog >= 0 && backlog <= 65535)) backlog = 511;

  int boundPort = 0;
  std::vector<int> fds(static_cast<size_t>(je->engine_.threads()), -1);
  int err = tcplb::createListenerGroup(host, static_cast<int>(port), static_cast<int>(backlog),
                                       je->engine_.threads(), fds.data(), &boundPort);
  if (err != 0) return errResult(env, err);
  je->engine_.addListener(id, fds);
  je->listenerIds_.insert(id);

  napi_value obj, t;
  napi_create_object(env, &obj);
  napi_get_boolean(env, true, &t);
  setProp(env, obj, "ok", t);
  setProp(env, obj, "port", makeInt(env, boundPort));
  return obj;
}

napi_value JsEngine::PostIdCommand(napi_env env, napi_callback_info info, Command::Type type) {
  size_t argc = 1;
  napi_value argv[1];
  JsEngine* je = Unwrap(env, info, &argc, argv);
  if (je == nullptr) return nullptr;
  int64_t id;
  if (!argInt64(env, argv[0], "id", &id)) return nullptr;
  if (je->stopped_) return nullptr;
  if (type == Command::CLOSE_LISTENER) je->listenerIds_.erase(id);
  Command cmd;
  cmd.type = type;
  cmd.id = id;
  je->engine_.post(std::move(cmd));
  return nullptr;
}

napi_value JsEngine::Activate(napi_env env, napi_callback_info info) {
  return PostIdCommand(env, info, Command::ACTIVATE);
}

napi_value JsEngine::CloseListener(napi_env env, napi_callback_info info) {
  return PostIdCommand(env, info, Command::CLOSE_LISTENER);
}

napi_value JsEngine::Reject(napi_env env, napi_callback_info info) {
  return PostIdCommand(env, info, Command::REJECT);
}

napi_value JsEngine::Kill(napi_env env, napi_callback_info info) {
  return PostIdCommand(env, info, Command::KILL);
}

// connect(connId, ip, port, timeoutMs, idleMs, preamble?, backendKey?)
napi_value JsEngine::Connect(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  JsEngine* je = Unwrap(env, info, &argc, argv);
  if (je == nullptr) return nullptr;
  Command cmd;
  cmd.type = Command::CONNECT;
  char ip[256];
  double port;
  if (!argInt64(env, argv[0], "connId", &cmd.id) || !argString(env, argv[1], "ip", ip, sizeof ip) ||
      !argNumber(env, argv[2], "port", &port) || !argMillis(env, argv[3], "timeoutMs", &cmd.timeoutMs) ||
      !argMillis(env, argv[4], "idleMs", &cmd.idleMs)) {
    return nullptr;
  }
  napi_valuetype pt = napi_undefined;
  if (argc >= 6) napi_typeof(env, argv[5], &pt);
  if (pt != napi_undefined && pt != napi_null) {
    bool isTyped = false;
    napi_is_typedarray(env, argv[5], &isTyped);
    if (!isTyped) {
      napi_throw_type_error(env, nullptr, "preamble must be a Buffer or undefined");
      return nullptr;
    }
    napi_typedarray_type type;
    size_t length;
    void* data;
    NAPI_OK_OR_RETURN(env, napi_get_typedarray_info(env, argv[5], &type, &length, &data, nullptr, nullptr));
    if (type != napi_uint8_array && type != napi_int8_array && type != napi_uint8_clamped_array) {
      napi_throw_type_error(env, nullptr, "preamble must be a Buffer or undefined");
      return nullptr;
    }
    if (length > 0) {
      cmd.preamble.reset(new char[length]);
      memcpy(cmd.preamble.get(), data, length);
      cmd.preambleLen = static_cast<uint32_t>(length);
    }
  }
  napi_valuetype kt = napi_undefined;
  if (argc >= 7) napi_typeof(env, argv[6], &kt);
  if (kt != napi_undefined && kt != napi_null) {
    int64_t key;
    if (!argInt64(env, argv[6], "backendKey", &key)) return nullptr;
    cmd.backendKey = (key >= 0 && key <= INT32_MAX) ? static_cast<int32_t>(key) : -1;
  }
  if (je->stopped_) return nullptr;
  // Parsed here so a bad literal becomes CONNECT_FAILED(EINVAL) in order.
  if (!(port >= 1 && port <= 65535)) {
    cmd.addrErr = EINVAL;
  } else {
    cmd.addrErr = tcplb::parseIpLiteral(ip, static_cast<int>(port), &cmd.addr, &cmd.addrLen);
  }
  je->engine_.post(std::move(cmd));
  return nullptr;
}

// ---- setRoute(listenerId, table | null) ------------------------------------

// Reads obj[key] as a number; throws a TypeError naming `what` otherwise.
bool propNumber(napi_env env, napi_value obj, const char* key, const char* what, double* out) {
  napi_value v;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return false;
  if (napi_get_value_double(env, v, out) == napi_ok) return true;
  std::string msg = std::string(what) + "." + key + " must be a number";
  napi_throw_type_error(env, nullptr, msg.c_str());
  return false;
}

bool propUint32(napi_env env, napi_value obj, const char* key, const char* what, uint32_t* out) {
  double d;
  if (!propNumber(env, obj, key, what, &d)) return false;
  if (!(d > 0)) d = 0;  // also NaN
  if (d > 4294967295.0) d = 4294967295.0;
  *out = static_cast<uint32_t>(d);
  return true;
}

bool propBool(napi_env env, napi_value obj, const char* key, bool* out) {
  napi_value v;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return false;
  napi_coerce_to_bool(env, v, &v);
  return napi_get_value_bool(env, v, out) == napi_ok;
}

void throwRouteError(napi_env env, const std::string& msg) {
  napi_throw_type_error(env, nullptr, ("setRoute: " + msg).c_str());
}

// Converts the JS table (API.md) into a RouteTable; nullptr with an exception pending on error.
std::unique_ptr<tcplb::RouteTable> parseRouteTable(napi_env env, napi_value t) {
  auto r = std::make_unique<tcplb::RouteTable>();
  napi_value algo;
  char algoName[32];
  size_t len = 0;
  if (napi_get_named_property(env, t, "algo", &algo) != napi_ok ||
      napi_get_value_string_utf8(env, algo, algoName, sizeof algoName, &len) != napi_ok) {
    throwRouteError(env, "table.algo must be a string");
    return nullptr;
  }
  if (strcmp(algoName, "round_robin") == 0) {
    r->algo = tcplb::Algo::ROUND_ROBIN;
  } else if (strcmp(algoName, "least_conn") == 0) {
    r->algo = tcplb::Algo::LEAST_CONN;
  } else if (strcmp(algoName, "ip_hash") == 0) {
    r->algo = tcplb::Algo::IP_HASH;
  } else {
    throwRouteError(env, std::string("unknown algo \"") + algoName + "\"");
    return nullptr;
  }
  if (!propUint32(env, t, "connectTimeoutMs", "table", &r->connectTimeoutMs) ||
      !propUint32(env, t, "idleMs", "table", &r->idleMs) ||
      !propUint32(env, t, "maxConnections", "table", &r->maxConnections)) {
    return nullptr;
  }
  bool hasPp = false;
  if (napi_has_named_property(env, t, "proxyProtocol", &hasPp) == napi_ok && hasPp) {
    uint32_t pp = 0;
    if (!propUint32(env, t, "proxyProtocol", "table", &pp)) return nullptr;
    if (pp > 2) {
      throwRouteError(env, "table.proxyProtocol must be 0 (none), 1 (v1) or 2 (v2)");
      return nullptr;
    }
    r->proxyProtocol = static_cast<uint8_t>(pp);
  }
  napi_value list;
  bool isArray = false;
  if (napi_get_named_property(env, t, "backends", &list) != napi_ok ||
      napi_is_array(env, list, &isArray) != napi_ok || !isArray) {
    throwRouteError(env, "table.backends must be an array");
    return nullptr;
  }
  uint32_t n = 0;
  napi_get_array_length(env, list, &n);
  r->backends.resize(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value o;
    napi_valuetype ot = napi_undefined;
    if (napi_get_element(env, list, i, &o) != napi_ok || napi_typeof(env, o, &ot) != napi_ok || ot != napi_object) {
      throwRouteError(env, "every backend must be an object");
      return nullptr;
    }
    tcplb::RouteBackend& b = r->backends[i];
    double key, port, idHash;
    char ip[256];
    napi_value ipv;
    if (!propNumber(env, o, "key", "backend", &key) || !propNumber(env, o, "port", "backend", &port) ||
        !propUint32(env, o, "weight", "backend", &b.weight) ||
        !propUint32(env, o, "maxConns", "backend", &b.maxConns) || !propBool(env, o, "backup", &b.backup) ||
        !propBool(env, o, "usable", &b.usable) || !propNumber(env, o, "idHash", "backend", &idHash)) {
      return nullptr;
    }
    if (!(key >= 0 && key <= INT32_MAX)) {
      throwRouteError(env, "backend.key must be an integer in 0..2^31-1");
      return nullptr;
    }
    if (napi_get_named_property(env, o, "ip", &ipv) != napi_ok || !argString(env, ipv, "backend.ip", ip, sizeof ip)) {
      return nullptr;
    }
    if (!(port >= 1 && port <= 65535) ||
        tcplb::parseIpLiteral(ip, static_cast<int>(port), &b.addr, &b.addrLen) != 0) {
      throwRouteError(env, std::string("backend ") + ip + " port " + std::to_string(port) +
                               " is not an IP literal and port");
      return nullptr;
    }
    b.key = static_cast<int32_t>(key);
    // The uint32 TS hash; an int32 form (`h | 0`) wraps to the same bits.
    if (!(idHash >= -2147483648.0 && idHash <= 4294967295.0)) idHash = 0;
    b.idHash = static_cast<uint32_t>(static_cast<int64_t>(idHash));
  }
  return r;
}

// The (listenerId, object | null) arguments of setRoute and setTls: the
// engine, the id and the object (*obj nullptr for null or undefined); nullptr
// with an exception pending when they are wrong (`notObject`: the message).
JsEngine* JsEngine::ListenerObjectArgs(napi_env env, napi_callback_info info, const char* notObject, int64_t* id,
                                       napi_value* obj) {
  size_t argc = 2;
  napi_value argv[2];
  JsEngine* je = Unwrap(env, info, &argc, argv);
  if (je == nullptr) return nullptr;
  if (!argInt64(env, argv[0], "listenerId", id)) return nullptr;
  napi_valuetype tt = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &tt);
  *obj = nullptr;
  if (tt == napi_object) {
    *obj = argv[1];
  } else if (tt != napi_null && tt != napi_undefined) {
    napi_throw_type_error(env, nullptr, notObject);
    return nullptr;
  }
  return je;
}

napi_value JsEngine::SetRoute(napi_env env, napi_callback_info info) {
  int64_t id;
  napi_value table;
  JsEngine* je = ListenerObjectArgs(env, info, "setRoute: table must be an object or null", &id, &table);
  if (je == nullptr) return nullptr;
  Command cmd;
  cmd.type = Command::SET_ROUTE;
  cmd.id = id;
  if (table != nullptr) {
    cmd.route = parseRouteTable(env, table);
    if (cmd.route == nullptr) return nullptr;
  }
  if (je->stopped_) return nullptr;
  je->engine_.post(std::move(cmd));
  return nullptr;
}

// setTls(listenerId, settings | null): see API.md. Builds the SSL_CTXs here
// (the JS thread), so a refused certificate or key throws at the call.
bool getStringProp(napi_env env, napi_value obj, const char* key, std::string* out, bool optional) {
  napi_value v;
  napi_valuetype t = napi_undefined;
  if (napi_get_named_property(env, obj, key, &v) == napi_ok) napi_typeof(env, v, &t);
  if (t == napi_undefined && optional) return true;
  size_t len = 0;
  if (t != napi_string || napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) {
    std::string msg = std::string("tls.") + key + " must be a string";
    napi_throw_type_error(env, nullptr, msg.c_str());
    return false;
  }
  out->resize(len + 1);
  napi_get_value_string_utf8(env, v, &(*out)[0], len + 1, &len);
  out->resize(len);
  return true;
}

bool getStringList(napi_env env, napi_value obj, const char* key, std::vector<std::string>* out) {
  napi_value list;
  bool isArray = false;
  if (napi_get_named_property(env, obj, key, &list) != napi_ok || napi_is_array(env, list, &isArray) != napi_ok || !isArray) {
    std::string msg = std::string("tls.") + key + " must be an array of strings";
    napi_throw_type_error(env, nullptr, msg.c_str());
    return false;
  }
  uint32_t n = 0;
  napi_get_array_length(env, list, &n);
  napi_value holder;
  napi_create_object(env, &holder);
  for (uint32_t k = 0; k < n; k++) {
    napi_value item;
    napi_get_element(env, list, k, &item);
    napi_set_named_property(env, holder, "item", item);
    std::string s;
    if (!getStringProp(env, holder, "item", &s, false)) return false;
    out->push_back(std::move(s));
  }
  return true;
}

napi_value JsEngine::SetTls(napi_env env, napi_callback_info info) {
  int64_t id;
  napi_value o;
  JsEngine* je = ListenerObjectArgs(env, info, "tls must be an object or null", &id, &o);
  if (je == nullptr) return nullptr;
  Command cmd;
  cmd.type = Command::SET_TLS;
  cmd.id = id;
  if (o != nullptr) {
    tcplb::TlsSettings s;
    std::string minVersion;
    napi_value certs, v;
    bool isArray = false;
    if (!getStringProp(env, o, "minVersion", &minVersion, false) ||
        !getStringList(env, o, "alpn", &s.alpn) ||
        !getStringProp(env, o, "ciphers", &s.ciphers, true) ||
        !getStringProp(env, o, "ciphersuites", &s.ciphersuites, true)) {
      return nullptr;
    }
    if (minVersion == "TLSv1.2") {
      s.minVersion = TLS1_2_VERSION;
    } else if (minVersion == "TLSv1.3") {
      s.minVersion = TLS1_3_VERSION;
    } else {
      napi_throw_type_error(env, nullptr, "tls.minVersion must be TLSv1.2 or TLSv1.3");
      return nullptr;
    }
    bool strict = false;
    if (napi_get_named_property(env, o, "strictSni", &v) == napi_ok) napi_get_value_bool(env, v, &strict);
    s.strictSni = strict;
    double ms = 10000;
    if (napi_get_named_property(env, o, "handshakeTimeoutMs", &v) == napi_ok) napi_get_value_double(env, v, &ms);
    s.handshakeTimeoutMs = ms >= 1 && ms <= 4294967295.0 ? static_cast<uint32_t>(ms) : 10000;
    if (napi_get_named_property(env, o, "certificates", &certs) != napi_ok ||
        napi_is_array(env, certs, &isArray) != napi_ok || !isArray) {
      napi_throw_type_error(env, nullptr, "tls.certificates must be an array");
      return nullptr;
    }
    uint32_t n = 0;
    napi_get_array_length(env, certs, &n);
    for (uint32_t k = 0; k < n; k++) {
      napi_value c;
      napi_get_element(env, certs, k, &c);
      tcplb::TlsCertInput in;
      if (!getStringProp(env, c, "cert", &in.certPem, false) || !getStringProp(env, c, "key", &in.keyPem, false) ||
          !getStringList(env, c, "names", &in.names)) {
        return nullptr;
      }
      s.certs.push_back(std::move(in));
    }
    std::string err;
    cmd.tls = tcplb::TlsContext::build(s, &err);
    if (cmd.tls == nullptr) {
      napi_throw_error(env, "ERR_TLS_CONTEXT", err.c_str());
      return nullptr;
    }
  }
  if (je->stopped_) return nullptr;
  je->engine_.post(std::move(cmd));
  return nullptr;
}

napi_value JsEngine::CloseAll(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  JsEngine* je = Unwrap(env, info, &argc, nullptr);
  if (je == nullptr || je->stopped_) return nullptr;
  je->listenerIds_.clear();
  Command cmd;
  cmd.type = Command::CLOSE_ALL;
  je->engine_.post(std::move(cmd));
  return nullptr;
}

napi_value JsEngine::Stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  JsEngine* je = Unwrap(env, info, &argc, nullptr);
  if (je == nullptr) return nullptr;
  je->statsScratch_.clear();
  if (!je->stopped_) je->engine_.snapshotStats(je->statsScratch_);
  size_t n = je->statsScratch_.size();
  void* data = nullptr;
  napi_value ab, arr;
  NAPI_OK_OR_RETURN(env, napi_create_arraybuffer(env, n * sizeof(double), &data, &ab));
  if (n > 0) memcpy(data, je->statsScratch_.data(), n * sizeof(double));
  NAPI_OK_OR_RETURN(env, napi_create_typedarray(env, napi_float64_array, n, ab, 0, &arr));
  return arr;
}

napi_value JsEngine::Counts(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  JsEngine* je = Unwrap(env, info, &argc, nullptr);
  if (je == nullptr) return nullptr;
  napi_value obj;
  napi_create_object(env, &obj);
  setProp(env, obj, "connections", makeInt(env, je->engine_.connectionCount()));
  setProp(env, obj, "listeners", makeInt(env, je->engine_.listenerCount()));
  setProp(env, obj, "fds", makeInt(env, je->engine_.fdCount()));
  return obj;
}

// closeAll, join the thread, then deliver what is left and let go.
napi_value JsEngine::Stop(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  JsEngine* je = Unwrap(env, info, &argc, nullptr);
  if (je == nullptr || je->stopped_) return nullptr;
  je->stopped_ = true;
  je->engine_.stop();
  je->listenerIds_.clear();
  if (je->box_ != nullptr) {
    // Ref'd for this one last turn so the final CLOSED events are delivered
    // even if nothing else keeps the loop alive; OnAsync then closes it.
    uv_ref(reinterpret_cast<uv_handle_t*>(&je->box_->handle));
    uv_async_send(&je->box_->handle);
  }
  return nullptr;
}

// ---- test-only exports (`_test`): the balancing primitives, for parity tests ----

// _test.ipHashPick(clientIp, idHashes: number[], weights: number[]) -> index | -1
napi_value TestIpHashPick(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_OK_OR_RETURN(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  char ip[256];
  if (argc < 3 || !argString(env, argv[0], "clientIp", ip, sizeof ip)) return nullptr;
  uint32_t n = 0, nw = 0;
  if (napi_get_array_length(env, argv[1], &n) != napi_ok || napi_get_array_length(env, argv[2], &nw) != napi_ok ||
      n != nw) {
    napi_throw_type_error(env, nullptr, "idHashes and weights must be arrays of one length");
    return nullptr;
  }
  std::vector<uint32_t> hs(n), ws(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    double d;
    napi_get_element(env, argv[1], i, &v);
    if (!argNumber(env, v, "idHash", &d)) return nullptr;
    hs[i] = static_cast<uint32_t>(static_cast<int64_t>(d));
    napi_get_element(env, argv[2], i, &v);
    if (!argNumber(env, v, "weight", &d)) return nullptr;
    ws[i] = static_cast<uint32_t>(d);
  }
  return makeInt(env, tcplb::ipHashPick(ip, hs.data(), ws.data(), static_cast<int>(n)));
}

// _test.hashString32(s, seed) -> uint32
napi_value TestHashString32(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_OK_OR_RETURN(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  char s[1024];
  double seed = 0;
  if (argc < 2 || !argString(env, argv[0], "s", s, sizeof s) || !argNumber(env, argv[1], "seed", &seed)) return nullptr;
  return makeInt(env, tcplb::hashString32(s, strlen(s), static_cast<uint32_t>(static_cast<int64_t>(seed))));
}

// _test.log(x) -> the fdlibm log the ip_hash scores use
napi_value TestLog(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_OK_OR_RETURN(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  double x;
  if (argc < 1 || !argNumber(env, argv[0], "x", &x)) return nullptr;
  napi_value r;
  napi_create_double(env, tcplb::jsLog(x), &r);
  return r;
}

// peerCredentials(fd) -> { pid, uid, gid } | null
// The credentials of the process at the other end of a connected Unix socket,
// as the kernel recorded them at connect() (SO_PEERCRED): the control socket
// names who ran a command by these, never by anything the client says. null
// when `fd` carries no credentials: getsockopt fails (not a socket), or the
// kernel recorded none (uid -1: a TCP socket, an unconnected one). pid is 0
// when the peer runs in a pid namespace this process cannot see.
napi_value PeerCredentials(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_OK_OR_RETURN(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  double d = 0;
  // A missing argument reads as undefined (napi_get_cb_info fills argv) and fails here.
  if (!argNumber(env, argv[0], "fd", &d)) return nullptr;
  if (!(d >= 0 && d <= 2147483647.0) || std::floor(d) != d) {
    napi_throw_type_error(env, nullptr, "fd must be a non-negative integer");
    return nullptr;
  }
  struct ucred cred;
  socklen_t len = sizeof cred;
  napi_value r;
  if (getsockopt(static_cast<int>(d), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred ||
      cred.uid == static_cast<uid_t>(-1)) {
    napi_get_null(env, &r);
    return r;
  }
  napi_create_object(env, &r);
  setProp(env, r, "pid", makeInt(env, cred.pid));
  setProp(env, r, "uid", makeInt(env, cred.uid));
  setProp(env, r, "gid", makeInt(env, cred.gid));
  return r;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_value version, cls;
  napi_create_string_utf8(env, kVersion, NAPI_AUTO_LENGTH, &version);
  napi_set_named_property(env, exports, "version", version);
  cls = JsEngine::Define(env);
  if (cls == nullptr) return nullptr;
  napi_set_named_property(env, exports, "Engine", cls);
  napi_value peer;
  napi_create_function(env, "peerCredentials", NAPI_AUTO_LENGTH, PeerCredentials, nullptr, &peer);
  napi_set_named_property(env, exports, "peerCredentials", peer);
  napi_value test;
  napi_create_object(env, &test);
  napi_property_descriptor fns[] = {
      {"ipHashPick", nullptr, TestIpHashPick, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"hashString32", nullptr, TestHashString32, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"log", nullptr, TestLog, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, test, sizeof fns / sizeof fns[0], fns);
  napi_set_named_property(env, exports, "_test", test);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
