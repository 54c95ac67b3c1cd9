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

A bridge can serve its sessions in Python, with no local socket: Bridge(..., handlers={None:
MyHandler}) gives each session a MyHandler() (a Handler: data, drained, end, error) and its
Stream (write, shutdown, pause, close), both run in the loop's thread.
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
# vrev_bridge_accept_cb and vrev_stream_cb (include/vrev/tunnel.h, stream.h)
ACCEPT_CB = ctypes.CFUNCTYPE(None, c_p, ctypes.c_char_p, c_p)
STREAM_CB = ctypes.CFUNCTYPE(None, c_p, ctypes.c_int, ctypes.c_int, c_p)

for name, res, args in [
    ("vrev_ctx_new_loop", ctypes.c_int, [ctypes.POINTER(c_p), c_p]),
    ("vrev_ctx_run", ctypes.c_int, [c_p, ctypes.c_int]),
    ("vrev_ctx_stop", None, [c_p]),
    ("vrev_ctx_post", ctypes.c_int, [c_p, POST_CB, c_p]),
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
    ("vrev_tunnel_opts_add_handler", ctypes.c_int, [c_p, ctypes.c_char_p, ACCEPT_CB, c_p]),
    ("vrev_stream_set_cb", ctypes.c_int, [c_p, STREAM_CB, c_p]),
    ("vrev_stream_read", ctypes.c_int, [c_p, ctypes.c_void_p, ctypes.c_size_t]),
    ("vrev_stream_readable", ctypes.c_size_t, [c_p]),
    ("vrev_stream_ended", ctypes.c_int, [c_p]),
    ("vrev_stream_write", ctypes.c_int, [c_p, ctypes.c_char_p, ctypes.c_size_t]),
    ("vrev_stream_buffered", ctypes.c_size_t, [c_p]),
    ("vrev_stream_shutdown", ctypes.c_int, [c_p]),
    ("vrev_stream_pause", ctypes.c_int, [c_p, ctypes.c_int]),
    ("vrev_stream_bytes_in", ctypes.c_uint64, [c_p]),
    ("vrev_stream_bytes_out", ctypes.c_uint64, [c_p]),
    ("vrev_stream_close", None, [c_p, ctypes.c_int]),
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
    """A bridge delivering its sessions to `targets` ("HOST:PORT", the default target) and to
    `handlers`, in-process: {name: factory}, name None for the default target; each session
    of that name gets factory() (a Handler) and its Stream, in the loop's thread."""

    def __init__(self, loop, portal, targets, id, handlers=None):
        o = _opts(loop.ctx, portal=portal, targets=targets, id=id)
        try:
            self._handlers = _Handlers(o, handlers or {})
        except Exception:
            lib.vrev_tunnel_opts_free(o)
            raise
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
        self._handlers.close_all()  # streams still open are reset: the bridge goes
        lib.vrev_bridge_free(self.handle)


# --- in-process handlers: sessions as vrev_stream (include/vrev/stream.h) -----------------

STREAM_READABLE, STREAM_DRAINED, STREAM_END, STREAM_ERROR = 1, 2, 3, 4


class Handler:
    """What serves one session of a handler's target, like an asyncio Protocol. Its methods
    run in the loop's thread; override what you need. Close the stream when done."""

    def connected(self, stream):
        pass

    def data(self, stream, data):
        """Bytes from the public client (what was waiting, read at once)."""

    def drained(self, stream):
        """Everything written has gone out (stream.buffered() is 0)."""

    def end(self, stream):
        """The client ended its sending side; writing may go on. Default: close."""
        stream.close()

    def error(self, stream, err):
        """The session failed (err: the VREV_ERR_* message). Default: close."""
        stream.close(abort=True)


class Stream:
    """One session, a vrev_stream: bytes both ways, as a connected socket."""

    def __init__(self, handle, handler, owner):
        self.handle, self.handler, self.closed = handle, handler, False
        self._owner = owner  # the bridge's set of open streams

    def write(self, data):
        _check(lib.vrev_stream_write(self.handle, bytes(data), len(data)), "vrev_stream_write")

    def shutdown(self):
        """End our sending side once what was written is out (the client sees the end)."""
        _check(lib.vrev_stream_shutdown(self.handle), "vrev_stream_shutdown")

    def pause(self, paused=True):
        """Stop (or restart) taking the client's bytes: backpressure."""
        _check(lib.vrev_stream_pause(self.handle, 1 if paused else 0), "vrev_stream_pause")

    def buffered(self):
        return lib.vrev_stream_buffered(self.handle)

    def bytes_in(self):
        return lib.vrev_stream_bytes_in(self.handle)

    def bytes_out(self):
        return lib.vrev_stream_bytes_out(self.handle)

    def close(self, abort=False):
        """Free the session: gracefully (what was written still goes out, then the end) or,
        with abort, at once with a reset. Safe from inside a Handler method."""
        if not self.closed:
            self.closed = True
            lib.vrev_stream_close(self.handle, 1 if abort else 0)
            _Handlers.live.pop(self.handle, None)
            self._owner.discard(self)

    def _read_all(self):
        chunks, buf = [], ctypes.create_string_buffer(65536)
        while not self.closed:
            n = lib.vrev_stream_read(self.handle, buf, len(buf))
            if n <= 0:
                break
            chunks.append(buf.raw[:n])
        return b"".join(chunks)

    def _event(self, event, err):
        h = self.handler
        if event == STREAM_READABLE:
            data = self._read_all()
            if data:
                h.data(self, data)
        elif event == STREAM_DRAINED:
            h.drained(self)
        elif event == STREAM_END:
            h.end(self)
        elif event == STREAM_ERROR:
            h.error(self, lib.vrev_strerror(err).decode())


class _Handlers:
    """The accept callbacks of one bridge's handlers, and the streams they opened."""

    live = {}  # vrev_stream address -> Stream, for the one C callback of every stream

    def __init__(self, o, handlers):
        self.streams = set()
        self._accepts = []  # ctypes keeps no reference to a callback it was handed
        for name, factory in handlers.items():
            cb = ACCEPT_CB(lambda s, n, u, f=factory: self._accept(s, f))
            self._accepts.append(cb)
            if lib.vrev_tunnel_opts_add_handler(o, name.encode() if name else None, cb,
                                                None) < 0:
                raise VrevError(lib.vrev_tunnel_opts_error(o).decode())

    def _accept(self, handle, factory):
        try:
            stream = Stream(handle, factory(), self.streams)
        except Exception:
            lib.vrev_stream_close(handle, 1)
            raise
        self.streams.add(stream)
        _Handlers.live[handle] = stream
        lib.vrev_stream_set_cb(handle, _stream_cb, None)
        _guard(stream, stream.handler.connected, stream)

    def close_all(self):
        for stream in list(self.streams):
            stream.close(abort=True)


def _guard(stream, fn, *args):
    """Run a Handler method; an exception resets its stream (and is printed)."""
    try:
        fn(*args)
    except Exception:
        import traceback
        traceback.print_exc()
        stream.close(abort=True)


@STREAM_CB
def _stream_cb(handle, event, err, user):
    stream = _Handlers.live.get(handle)
    if stream is not None:
        _guard(stream, stream._event, event, err)
