"""A small ctypes binding of libvrev's tunnel API (include/vrev/tunnel.h).

libvrev runs inside an event loop; this module makes a context with a loop of its own
(vrev_ctx_new_loop: no libevent call needed here) and runs it in a thread of its own, which
waits in vrev_ctx_run(ctx, -1) and uses no CPU while nothing happens. Every libvrev call is
made from that thread, as the library requires: Loop.call hands a function to it with
vrev_ctx_post, the one call any thread may make.

    loop = Loop()
    portal = loop.call(Portal, listen="127.0.0.1:0", public=["127.0.0.1:0"], id=UUID)
    ...
    loop.close()
"""
import ctypes
import ctypes.util
import itertools
import os
import queue
import threading
import time

_lib_path = os.environ.get("VREV_LIB") or ctypes.util.find_library("vrev") or "libvrev.so.0"
lib = ctypes.CDLL(_lib_path)

c_p = ctypes.c_void_p
EVENT_CB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint64,
                            ctypes.c_uint64, c_p)
POST_CB = ctypes.CFUNCTYPE(None, c_p)

for name, res, args in [
    ("vrev_ctx_new_loop", ctypes.c_int, [ctypes.POINTER(c_p), c_p]),
    ("vrev_ctx_run", ctypes.c_int, [c_p, ctypes.c_int]),
    ("vrev_ctx_stop", None, [c_p]),
    ("vrev_ctx_post", ctypes.c_int, [c_p, POST_CB, c_p]),
    ("vrev_ctx_free", None, [c_p]),
    ("vrev_strerror", ctypes.c_char_p, [ctypes.c_int]),
    ("vrev_version_string", ctypes.c_char_p, []),
    ("vrev_tunnel_opts_new", ctypes.c_int, [ctypes.POINTER(c_p)]),
    ("vrev_tunnel_opts_free", None, [c_p]),
    ("vrev_tunnel_opts_error", ctypes.c_char_p, [c_p]),
    ("vrev_tunnel_opts_set_id", ctypes.c_int, [c_p, ctypes.c_char_p]),
    ("vrev_tunnel_opts_set_listen", ctypes.c_int, [c_p, ctypes.c_char_p]),
    ("vrev_tunnel_opts_add_public", ctypes.c_int, [c_p, ctypes.c_char_p, ctypes.c_char_p]),
    ("vrev_tunnel_opts_set_portal", ctypes.c_int, [c_p, ctypes.c_char_p]),
    ("vrev_tunnel_opts_add_target", ctypes.c_int, [c_p, ctypes.c_char_p, ctypes.c_char_p]),
    ("vrev_portal_new", ctypes.c_int, [ctypes.POINTER(c_p), c_p, c_p, ctypes.c_char_p,
                                       ctypes.c_size_t]),
    ("vrev_portal_free", None, [c_p]),
    ("vrev_portal_set_event_cb", None, [c_p, EVENT_CB, c_p]),
    ("vrev_portal_counter", ctypes.c_uint64, [c_p, ctypes.c_int]),
    ("vrev_portal_public_port", ctypes.c_uint, [c_p, ctypes.c_size_t]),
    ("vrev_portal_tunnel_port", ctypes.c_uint, [c_p]),
    ("vrev_bridge_new", ctypes.c_int, [ctypes.POINTER(c_p), c_p, c_p, ctypes.c_char_p,
                                       ctypes.c_size_t]),
    ("vrev_bridge_start", ctypes.c_int, [c_p]),
    ("vrev_bridge_free", None, [c_p]),
    ("vrev_bridge_set_event_cb", None, [c_p, EVENT_CB, c_p]),
    ("vrev_bridge_counter", ctypes.c_uint64, [c_p, ctypes.c_int]),
]:
    f = getattr(lib, name)
    f.restype, f.argtypes = res, args

TUNNEL_UP, TUNNEL_DOWN, SESSION_REFUSED = 1, 2, 5
COUNTER = {"tunnels": 1, "tunnels_opened": 2, "sessions": 3, "sessions_active": 4,
           "refused": 5, "bytes_up": 6, "bytes_down": 7}


class VrevError(Exception):
    pass


def _check(rc, what):
    if rc < 0:
        raise VrevError("%s: %s" % (what, lib.vrev_strerror(rc).decode()))


class Loop:
    """A libvrev context with its own loop, run by a thread of its own."""

    def __init__(self):
        self._ready = threading.Event()
        self._calls = {}  # key -> function, until the loop's thread has run it
        self._keys = itertools.count(1)
        self._lock = threading.Lock()
        # one C function pointer for every post, alive as long as the loop: the key of the
        # Python function to run travels as the post's user pointer
        self._trampoline = POST_CB(self._dispatch)
        self.runs = 0  # vrev_ctx_run calls made by the loop's thread (one, without polling)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait()
        _check(self._rc, "vrev_ctx_new_loop")

    def _run(self):
        self.ctx = c_p()
        self._rc = lib.vrev_ctx_new_loop(ctypes.byref(self.ctx), None)
        self._ready.set()
        if self._rc < 0:
            return
        self.runs += 1
        lib.vrev_ctx_run(self.ctx, -1)  # until close() posts the stop

    def _dispatch(self, key):
        with self._lock:
            fn = self._calls.pop(key)
        fn()

    def _post(self, fn):
        with self._lock:
            key = next(self._keys)
            self._calls[key] = fn
        rc = lib.vrev_ctx_post(self.ctx, self._trampoline, key)
        if rc < 0:
            with self._lock:
                del self._calls[key]
            _check(rc, "vrev_ctx_post")

    def call(self, fn, *args, **kw):
        """Run fn(loop, *args, **kw) in the loop's thread and return its result."""
        box = queue.Queue()

        def run():
            try:
                box.put((True, fn(self, *args, **kw)))
            except Exception as e:  # handed back to the caller
                box.put((False, e))
        self._post(run)
        ok, value = box.get(timeout=30)
        if not ok:
            raise value
        return value

    def cpu_seconds(self):
        """CPU time the loop's thread has used (Linux)."""
        return time.clock_gettime(time.pthread_getcpuclockid(self._thread.ident))

    def close(self):
        self._post(lambda: lib.vrev_ctx_stop(self.ctx))
        self._thread.join(10)
        lib.vrev_ctx_free(self.ctx)  # runs the loop's last deferred work, then frees it


def _opts(**kw):
    o = c_p()
    _check(lib.vrev_tunnel_opts_new(ctypes.byref(o)), "vrev_tunnel_opts_new")
    try:
        for key, setter in [("id", lib.vrev_tunnel_opts_set_id),
                            ("listen", lib.vrev_tunnel_opts_set_listen),
                            ("portal", lib.vrev_tunnel_opts_set_portal)]:
            if kw.get(key):
                if setter(o, kw[key].encode()) < 0:
                    raise VrevError(lib.vrev_tunnel_opts_error(o).decode())
        for hp in kw.get("public", []):
            if lib.vrev_tunnel_opts_add_public(o, hp.encode(), None) < 0:
                raise VrevError(lib.vrev_tunnel_opts_error(o).decode())
        for hp in kw.get("targets", []):
            if lib.vrev_tunnel_opts_add_target(o, None, hp.encode()) < 0:
                raise VrevError(lib.vrev_tunnel_opts_error(o).decode())
    except Exception:
        lib.vrev_tunnel_opts_free(o)
        raise
    return o


class _Tunnel:
    def _events(self, set_cb):
        self.events = []
        self._cb = EVENT_CB(lambda ev, name, up, down, user: self.events.append(ev))
        set_cb(self.handle, self._cb, None)


class Portal(_Tunnel):
    def __init__(self, loop, listen, public, id):
        o = _opts(listen=listen, public=public, id=id)
        self.handle, err = c_p(), ctypes.create_string_buffer(256)
        rc = lib.vrev_portal_new(ctypes.byref(self.handle), loop.ctx, o, err, 256)
        lib.vrev_tunnel_opts_free(o)
        if rc < 0:
            raise VrevError(err.value.decode())
        self._events(lib.vrev_portal_set_event_cb)

    def counter(self, name):
        return lib.vrev_portal_counter(self.handle, COUNTER[name])

    def tunnel_port(self):
        return lib.vrev_portal_tunnel_port(self.handle)

    def public_port(self, i=0):
        return lib.vrev_portal_public_port(self.handle, i)

    def free(self, loop=None):
        lib.vrev_portal_free(self.handle)


class Bridge(_Tunnel):
    def __init__(self, loop, portal, targets, id):
        o = _opts(portal=portal, targets=targets, id=id)
        self.handle, err = c_p(), ctypes.create_string_buffer(256)
        rc = lib.vrev_bridge_new(ctypes.byref(self.handle), loop.ctx, o, err, 256)
        lib.vrev_tunnel_opts_free(o)
        if rc < 0:
            raise VrevError(err.value.decode())
        self._events(lib.vrev_bridge_set_event_cb)
        lib.vrev_bridge_start(self.handle)

    def counter(self, name):
        return lib.vrev_bridge_counter(self.handle, COUNTER[name])

    def free(self, loop=None):
        lib.vrev_bridge_free(self.handle)
