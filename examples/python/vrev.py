"""A small ctypes binding of libvrev's tunnel API (include/vrev/tunnel.h).

libvrev runs inside an event loop; this module makes a context with a loop of its own
(vrev_ctx_new_loop: no libevent call needed here) and runs it in a thread of its own: every
libvrev call is made from that thread (Loop.call), as the library requires.

    loop = Loop()
    portal = loop.call(Portal, listen="127.0.0.1:0", public=["127.0.0.1:0"], id=UUID)
    ...
    loop.close()
"""
import ctypes
import ctypes.util
import os
import queue
import threading

_lib_path = os.environ.get("VREV_LIB") or ctypes.util.find_library("vrev") or "libvrev.so.0"
lib = ctypes.CDLL(_lib_path)

c_p = ctypes.c_void_p
EVENT_CB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint64,
                            ctypes.c_uint64, c_p)

for name, res, args in [
    ("vrev_ctx_new_loop", ctypes.c_int, [ctypes.POINTER(c_p), c_p]),
    ("vrev_ctx_run", ctypes.c_int, [c_p, ctypes.c_int]),
    ("vrev_ctx_free", None, [c_p]),
    ("vrev_strerror", ctypes.c_char_p, [ctypes.c_int]),
    ("vrev_version_string", ctypes.c_char_p, []),
    ("vrev_tunnel_opts_new", ctypes.c_int, [ctypes.POINTER(c_p), c_p]),
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
        self._calls = queue.Queue()
        self._ready = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self):
        self.ctx = c_p()
        _check(lib.vrev_ctx_new_loop(ctypes.byref(self.ctx), None), "vrev_ctx_new_loop")
        self._ready.set()
        while not self._stop:
            # short turns so that calls from other threads are picked up promptly
            lib.vrev_ctx_run(self.ctx, 0)
            try:
                fn, args, kw, box = self._calls.get(timeout=0.002)
            except queue.Empty:
                continue
            try:
                box.put((True, fn(self, *args, **kw)))
            except Exception as e:  # handed back to the caller
                box.put((False, e))

    def call(self, fn, *args, **kw):
        """Run fn(loop, *args, **kw) in the loop's thread and return its result."""
        box = queue.Queue()
        self._calls.put((fn, args, kw, box))
        ok, value = box.get(timeout=30)
        if not ok:
            raise value
        return value

    def close(self):
        def finish(loop):
            loop._stop = True
        self.call(finish)
        self._thread.join(10)
        lib.vrev_ctx_free(self.ctx)  # runs the loop's last deferred work, then frees it


def _opts(ctx, **kw):
    o = c_p()  # on the context's allocator
    _check(lib.vrev_tunnel_opts_new(ctypes.byref(o), ctx), "vrev_tunnel_opts_new")
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
        o = _opts(loop.ctx, listen=listen, public=public, id=id)
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
        o = _opts(loop.ctx, portal=portal, targets=targets, id=id)
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
