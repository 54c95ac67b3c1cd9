"""The command-line reference stays honest: every command main() dispatches and every option a
command's parser accepts (read from cli/*.c) is in `vrev --help` / the command's --help, the
man page vrev(1), the bash completion and the README's reference; every option a --help names
is one the parser takes; and vrev version names the libraries in use, at their installed
versions."""
import glob
import os
import re
import subprocess

import pytest

from cliutil import ROOT, run

MAN = os.path.join(ROOT, "man", "man1", "vrev.1")
COMPLETION = os.path.join(ROOT, "dist", "bash-completion", "vrev")
ALIASES = {"--help", "-h", "--version", "-version"}  # of `help` and `version`


def source(path):
    with open(path) as f:
        return f.read()


def commands():
    """The commands main() dispatches: strcmp(cmd, "NAME")."""
    found = re.findall(r'strcmp\(cmd, "([^"]+)"\)', source(os.path.join(ROOT, "cli", "main.c")))
    names = sorted(set(found) - ALIASES)
    assert {"portal", "bridge", "run", "test", "uuid", "limits", "mux-dump", "version",
            "help"} <= set(names), names
    return names


def options():
    """Every option some command's parser compares an argument with: strcmp(x, "-...")."""
    found = set()
    for path in glob.glob(os.path.join(ROOT, "cli", "*.c")):
        found |= set(re.findall(r'strcmp\([^,()]+, "(-{1,2}[a-z][a-z0-9-]*)"\)', source(path)))
    assert {"--heartbeat", "--dead-after", "--max-sessions", "--listen", "--to", "-c",
            "--skip"} <= found, found
    return sorted(found - ALIASES)


def readme_reference():
    text = source(os.path.join(ROOT, "README.md"))
    return text.split("### Command-line reference", 1)[1].split("\n## ", 1)[0]


def man_has_option(opt):
    """mdoc writes --x as `Fl \\-x` and -x as `Fl x`."""
    name = re.escape(opt[2:] if opt.startswith("--") else opt[1:])
    dashes = r"\\-" if opt.startswith("--") else ""
    return re.search(r"Fl %s%s\b" % (dashes, name), source(MAN)) is not None


@pytest.mark.parametrize("cmd", commands())
def test_every_command_is_documented(vrev, cmd):
    r = run(vrev, "--help")
    assert r.returncode == 0
    assert re.search(r"^  %s +\S" % re.escape(cmd), r.stdout, re.M), r.stdout  # one line each
    assert re.search(r"^\.It Cm %s$" % re.escape(cmd), source(MAN), re.M), "man page: " + cmd
    listed = re.search(r'local commands="([^"]*)"', source(COMPLETION)).group(1).split()
    assert cmd in listed, "completion: " + cmd
    assert "`vrev %s" % cmd in readme_reference(), "README: " + cmd
    if cmd != "help":
        r = run(vrev, cmd, "--help")
        assert r.returncode == 0 and r.stdout.startswith("usage: vrev %s" % cmd), r.stdout


def helps(vrev):
    out = ""
    for cmd in commands():
        r = run(vrev, cmd, "--help")
        out += r.stdout
    return out


@pytest.mark.parametrize("opt", options())
def test_every_option_is_documented(vrev, opt):
    assert re.search(r"(^|[\s\[|,(])%s\b" % re.escape(opt), helps(vrev), re.M), \
        "no command's --help names " + opt
    assert man_has_option(opt), "man page: " + opt
    assert re.search(r'(^|[\s"])%s([\s"]|$)' % re.escape(opt), source(COMPLETION), re.M), \
        "completion: " + opt
    assert re.search(r"`%s[ `=]|[(`,] ?%s[`,) ]" % (re.escape(opt), re.escape(opt)),
                     readme_reference()), "README: " + opt


TAKES = {"portal": ["--listen", "127.0.0.1:1"], "bridge": ["--portal", "127.0.0.1:1"]}


@pytest.mark.parametrize("cmd", ["portal", "bridge", "run", "test", "mux-dump"])
def test_every_option_in_help_is_accepted(vrev, cmd):
    """The reverse: what a command's --help names, its parser knows."""
    text = run(vrev, cmd, "--help").stdout
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text)) - {"--help"}
    assert named
    for opt in sorted(named):
        r = run(vrev, cmd, opt, "1", timeout=10) if cmd != "mux-dump" else \
            run(vrev, cmd, opt, "/nonexistent", timeout=10)
        assert "unknown option" not in r.stderr and "unexpected argument" not in r.stderr, \
            (cmd, opt, r.stderr)


def dpkg_version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                       text=True)
    return r.stdout if r.returncode == 0 else None


def test_version_names_the_libraries_at_their_versions(vrev):
    r = run(vrev, "version")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    libs = dict(re.match(r"^  (\S+) +(.*)$", l).groups() for l in lines[1:])
    assert list(libs) == ["crypto/TLS", "libevent", "jansson", "nghttp2", "wslay"], lines
    backend = re.search(r"crypto (\w+)", lines[0]).group(1)
    if os.environ.get("CRYPTO"):
        assert backend == os.environ["CRYPTO"]
    # what each library says at run time is what Debian installed
    want = {"libevent": ("libevent-2.1-7", r"^(\d+\.\d+\.\d+-\w+)"),
            "jansson": ("libjansson4", r"^(\d+\.\d+(\.\d+)?)"),
            "nghttp2": ("libnghttp2-14", r"^(\d+\.\d+\.\d+)")}
    if backend == "openssl":
        assert libs["crypto/TLS"].startswith("OpenSSL 3."), libs
        want["crypto/TLS"] = ("libssl3", r"^(\d+\.\d+\.\d+)")
    else:
        assert libs["crypto/TLS"].startswith("mbed TLS 2.28."), libs
        want["crypto/TLS"] = ("libmbedcrypto7", r"^(\d+\.\d+\.\d+)")
    for name, (pkg, pattern) in want.items():
        installed = dpkg_version(pkg)
        if installed is None:
            continue  # not a Debian package here: nothing to compare with
        ver = re.match(pattern, installed).group(1)
        assert ver in libs[name], (name, libs[name], pkg, installed)
    assert "reports no version" in libs["wslay"]


@pytest.mark.skipif(not os.path.exists("/usr/share/bash-completion/bash_completion"),
                    reason="bash-completion is not installed (scripts/install-deps.sh)")
def test_completion_completes(vrev, tmp_path):
    script = tmp_path / "comp.sh"
    script.write_text(r'''
source /usr/share/bash-completion/bash_completion
source "$COMPLETION"
comp() {
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
    _vrev vrev "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}" 2>/dev/null
    echo "${COMPREPLY[*]}"
}
comp vrev mux
comp vrev portal --he
comp vrev bridge --he
comp vrev bridge --limit sess
comp vrev portal --security ''
comp vrev bridge --dead-after 50
''')
    env = dict(os.environ, COMPLETION=COMPLETION,
               PATH=os.path.dirname(vrev) + os.pathsep + os.environ["PATH"])
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "mux-dump", "--help --heartbeat", "--help", "sessionRate= sessionBurst=",
        "aes-128-gcm chacha20-poly1305 none", "500ms"], r.stdout

