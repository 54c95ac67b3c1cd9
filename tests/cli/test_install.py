"""make install into a DESTDIR (library, headers, vrev, systemd units, man pages, bash
completion), then build an example with pkg-config alone and run it."""
import os
import subprocess

from cliutil import ROOT, run


def test_install_and_build_example(tmp_path):
    build = os.environ.get("VREV_BUILD", "build")
    dest = tmp_path / "root"
    r = run("make", "-s", "BUILD=" + build, "CC=" + os.environ.get("VREV_CC", "cc"),
            "install", "DESTDIR=" + str(dest), "PREFIX=/usr/local", cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    prefix = dest / "usr/local"
    for f in ("include/vrev.h", "include/vrev/mux.h", "include/vrev/control.h",
              "lib/libvrev.a", "lib/libvrev.so.0", "lib/libvrev.so", "lib/pkgconfig/libvrev.pc",
              "bin/vrev"):
        assert (prefix / f).exists(), f
    assert os.readlink(prefix / "lib/libvrev.so.0").startswith("libvrev.so.0.")
    # the systemd units (ExecStart at the installed binary), man pages and bash completion
    units = prefix / "lib/systemd/system"
    for unit, cmd in (("vrev@.service", "run -c /etc/vrev/%i.json"),
                      ("vrev-portal@.service", "portal --config-file /etc/vrev/%i.conf"),
                      ("vrev-bridge@.service", "bridge --config-file /etc/vrev/%i.conf")):
        text = (units / unit).read_text()
        assert "\nExecStart=/usr/local/bin/vrev %s\n" % cmd in text, text
        assert "\nExecReload=/bin/kill -HUP $MAINPID\n" in text
        assert "@BINDIR@" not in text
    for f in ("share/man/man1/vrev.1", "share/man/man3/libvrev.3",
              "share/bash-completion/completions/vrev"):
        assert (prefix / f).is_file(), f
    man = run("man", "-l", str(prefix / "share/man/man1/vrev.1"), env=dict(os.environ,
                                                                           MANWIDTH="80"))
    assert man.returncode == 0 and "--dead-after" in man.stdout.replace("\u2010", "-")
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib/pkgconfig"),
               PKG_CONFIG_SYSROOT_DIR=str(dest))
    flags = run("pkg-config", "--cflags", "--libs", "libvrev", env=env)
    assert flags.returncode == 0, flags.stderr
    assert "-lvrev" in flags.stdout and str(dest) in flags.stdout
    exe = tmp_path / "mux_pair"
    cc = os.environ.get("VREV_CC", "cc")
    san = os.environ.get("VREV_SAN_FLAGS", "").split()
    r = run(cc, *san, "-o", str(exe), os.path.join(ROOT, "examples/mux_pair.c"),
            *flags.stdout.split(), env=env)
    assert r.returncode == 0, r.stderr
    out = run(str(exe), env=dict(env, LD_LIBRARY_PATH=str(prefix / "lib")))
    assert out.returncode == 0, out.stderr
    assert "server: session 1 opened to 127.0.0.1:80" in out.stdout
    assert "server: session 1 ended" in out.stdout
    # the installed example links the shared library, not a copy
    ldd = run("ldd", str(exe), env=dict(env, LD_LIBRARY_PATH=str(prefix / "lib")))
    assert str(prefix / "lib/libvrev.so.0") in ldd.stdout
    # the installed CLI runs
    v = run(str(prefix / "bin/vrev"), "version")
    assert v.returncode == 0 and v.stdout.startswith("vrev ")
    # and uninstall removes it all again
    r = run("make", "-s", "BUILD=" + build, "uninstall", "DESTDIR=" + str(dest),
            "PREFIX=/usr/local", cwd=ROOT)
    assert r.returncode == 0
    left = [p for p in prefix.rglob("*") if p.is_file() or p.is_symlink()]
    assert left == []
