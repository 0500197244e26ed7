"""
The Debian package (cmake/cpack.cmake): built once per module with `cpack -G DEB` in a temporary
build tree configured with -DCMAKE_INSTALL_PREFIX=/usr, then

- on the host: the control data (name, section, Depends: computed by dpkg-shlibdeps plus the
  dlopen()ed libev plugin, conffiles, maintainer scripts) and the file list;
- the man pages: every setting and option documented, rendered by groff without warnings.

CTest builds the package once (package.deb, tests/systemd/package.sh: the README's Install
commands) and hands it over in WSBEAT_DEB_DIR; by hand, the fixture builds it. What happens in a
real systemd (`apt-get install ./wsbeat_*.deb` into a clean Debian 12 guest, `systemctl enable
--now`, shards, removal and purge) is CTest's systemd.deb (tests/systemd/deb.sh).
"""
import glob
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("WSBEAT_SRC") or os.path.abspath(os.path.join(HERE, "..", ".."))
SCALE = float(os.environ.get("WSBEAT_TEST_TIMEOUT_SCALE", "1"))

RUNTIME_DEPS = ["libwebsockets17", "libwebsockets-evlib-ev", "libconfig9", "libc-ares2",
                "libsystemd0", "libssl3"]


def run(argv, timeout=120, **kw):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout * SCALE, **kw)


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    given = os.environ.get("WSBEAT_DEB_DIR")
    if given:
        debs = glob.glob(os.path.join(given, "wsbeat_*.deb"))
        assert len(debs) == 1, "want one wsbeat_*.deb in WSBEAT_DEB_DIR=%s: %s" % (given, debs)
        return debs[0]
    for tool, pkg in (("cmake", "cmake"), ("cpack", "cmake"), ("dpkg-deb", "dpkg"),
                      ("dpkg-shlibdeps", "dpkg-dev")):
        if not shutil.which(tool):
            pytest.skip("%s is not installed (package %s)" % (tool, pkg))
    build = str(tmp_path_factory.mktemp("deb") / "build")
    r = run(["cmake", "-S", SRC, "-B", build, "-DCMAKE_INSTALL_PREFIX=/usr",
             "-DBUILD_TESTING=OFF"])
    assert r.returncode == 0, r.stdout.decode(errors="replace")[-4000:]
    assert os.path.exists(os.path.join(build, "CPackConfig.cmake")), \
        "no CPackConfig.cmake: is include(cmake/cpack.cmake) in CMakeLists.txt?"
    r = run(["cmake", "--build", build, "-j2"], timeout=300)
    assert r.returncode == 0, r.stdout.decode(errors="replace")[-4000:]
    r = run(["cpack", "-G", "DEB"], cwd=build, timeout=300)
    assert r.returncode == 0, r.stdout.decode(errors="replace")[-4000:]
    debs = glob.glob(os.path.join(build, "wsbeat_*.deb"))
    assert len(debs) == 1, (debs, r.stdout.decode(errors="replace"))
    return debs[0]


def field(deb, name):
    r = run(["dpkg-deb", "-f", deb, name])
    assert r.returncode == 0, r.stdout
    return r.stdout.decode().strip()


def depends(deb):
    """Depends: as {package: version constraint or ''}."""
    out = {}
    for item in field(deb, "Depends").split(","):
        item = item.strip()
        name, _, rest = item.partition(" ")
        out[name] = rest.strip()
    return out


def test_control_fields(deb):
    project_version = None
    for line in open(os.path.join(SRC, "CMakeLists.txt")):
        if line.startswith("project(wsbeat VERSION "):
            project_version = line.split()[2]
    assert field(deb, "Package") == "wsbeat"
    assert field(deb, "Version") == project_version
    assert field(deb, "Section") == "net"
    assert field(deb, "Maintainer")
    desc = field(deb, "Description").splitlines()
    assert desc[0] == "keeps many WebSocket feeds connected and alive"
    assert len(desc) > 3 and desc[1].strip() != desc[0], desc
    assert os.path.basename(deb) == "wsbeat_%s_%s.deb" % (project_version,
                                                          field(deb, "Architecture"))


def test_depends_computed_from_shared_libraries_plus_the_libev_plugin(deb):
    deps = depends(deb)
    missing = [p for p in RUNTIME_DEPS if p not in deps]
    assert not missing, "Depends: %s lacks %s" % (field(deb, "Depends"), missing)
    # dpkg-shlibdeps versions what it computed; the plugin is ours, unversioned.
    assert deps["libssl3"].startswith("(>="), deps
    assert "libc6" in deps, deps


def test_control_archive_has_conffiles_and_maintainer_scripts(deb, tmp_path):
    r = run(["dpkg-deb", "-e", deb, str(tmp_path / "ctl")])
    assert r.returncode == 0, r.stdout
    ctl = tmp_path / "ctl"
    assert (ctl / "conffiles").read_text().split() == ["/etc/wsbeat/wsbeat.conf"]
    for script in ("postinst", "prerm", "postrm"):
        p = ctl / script
        assert p.exists(), "no %s" % script
        assert os.stat(str(p)).st_mode & 0o777 == 0o755, script
        text = p.read_text()
        assert text.startswith("#!/bin/sh"), script
        r = run(["sh", "-n", str(p)])
        assert r.returncode == 0, (script, r.stdout)
        assert "/run/systemd/system" in text, "%s must act only when systemd runs" % script
    post = (ctl / "postinst").read_text()
    assert "systemctl daemon-reload" in post and "journalctl --update-catalog" in post
    code = [ln for ln in post.splitlines() if not ln.lstrip().startswith("#")]
    assert not any("enable" in ln or "systemctl start" in ln for ln in code), \
        "postinst must not enable or start the service (the shipped config has demo feeds)"
    assert "systemctl stop" in (ctl / "prerm").read_text()


def test_contents(deb):
    r = run(["dpkg-deb", "-c", deb])
    assert r.returncode == 0, r.stdout
    files = {}
    for line in r.stdout.decode().splitlines():
        parts = line.split()
        files[parts[-1].lstrip(".")] = parts[0]
    want = {
        "/usr/sbin/wsbeat": "-rwxr-xr-x",
        "/etc/wsbeat/wsbeat.conf": "-rw-r--r--",
        "/usr/lib/systemd/system/wsbeat.service": "-rw-r--r--",
        "/usr/lib/systemd/system/wsbeat@.service": "-rw-r--r--",
        "/usr/lib/systemd/catalog/wsbeat.catalog": "-rw-r--r--",
        "/usr/share/man/man8/wsbeat.8.gz": "-rw-r--r--",
        "/usr/share/man/man5/wsbeat.conf.5.gz": "-rw-r--r--",
        "/usr/share/doc/wsbeat/README.md": "-rw-r--r--",
        "/usr/lib/wsbeat/helpers/kucoin-token": "-rwxr-xr-x",
        "/usr/lib/wsbeat/helpers/binance-listenkey": "-rwxr-xr-x",
        "/usr/lib/wsbeat/helpers/coinbase-jwt": "-rwxr-xr-x",
    }
    for path, mode in want.items():
        assert path in files, "%s not in the package:\n%s" % (path, "\n".join(sorted(files)))
        assert files[path] == mode, (path, files[path])
    # Nothing from the build or test tree, nothing outside the FHS places we chose.
    for path in files:
        assert path.startswith(("/etc/wsbeat", "/usr/sbin", "/usr/lib/systemd",
                                "/usr/lib/wsbeat", "/usr/share/man", "/usr/share/doc/wsbeat")) or \
            path.rstrip("/") in ("", "/etc", "/usr", "/usr/lib", "/usr/share",
                                 "/usr/share/doc"), path
    assert not any("testsrv" in p for p in files)


def test_binary_in_the_package_runs(deb, tmp_path):
    r = run(["dpkg-deb", "-x", deb, str(tmp_path / "root")])
    assert r.returncode == 0, r.stdout
    binary = str(tmp_path / "root" / "usr" / "sbin" / "wsbeat")
    r = run([binary, "--version"])
    assert r.returncode == 0 and r.stdout.decode().startswith("wsbeat "), r.stdout
    conf = str(tmp_path / "root" / "etc" / "wsbeat" / "wsbeat.conf")
    r = run([binary, "--check", "-c", conf])
    assert r.returncode == 0 and r.stdout.decode().strip() == "configuration OK", r.stdout


# --- the man pages: shipped in the package, kept in step with the code ------------------------

MAN8 = os.path.join(SRC, "man", "wsbeat.8")
MAN5 = os.path.join(SRC, "man", "wsbeat.conf.5")


def plain(roff):
    """roff source -> comparable text: no font escapes, \\- as -, no request names."""
    import re
    t = re.sub(r"\\f[BIRP]", "", roff).replace("\\-", "-").replace("\\(dq", '"')
    t = t.replace("\\(<=", "<=").replace("\\(mu", "x")
    return re.sub(r"^\.[A-Z]{1,2} ?", "", t, flags=re.M)


def man_entries(roff, name):
    """The texts of the .TP entries whose tag line is `.B name` (up to the next .TP/.RS/.RE):
    several groups may have a setting of that name (sink.keepalive, keepalive)."""
    lines, found = roff.splitlines(), []
    for i in range(1, len(lines)):
        if lines[i - 1] == ".TP" and lines[i] == ".B " + name:
            out = []
            for ln in lines[i + 1:]:
                if ln in (".TP", ".RS", ".RE") or ln.startswith(".SH"):
                    break
                out.append(ln)
            found.append(" ".join(plain("\n".join(out)).split()))
    return found


def man_entry(roff, name):
    entries = man_entries(roff, name)
    return entries[0] if entries else None


def key_rows():
    """(name, kind, args) of every row of the key tables in src/cfg.c and src/cfg_feed.c."""
    import re
    rows = []
    for f in ("cfg.c", "cfg_feed.c"):
        text = open(os.path.join(SRC, "src", f)).read()
        for m in re.finditer(r'^\s*KEY_(\w+)\("(\w+)",\s*(.*)\),\s*$', text, re.M):
            rows.append((m.group(2), m.group(1), [a.strip() for a in m.group(3).split(",")]))
    return rows


def human(expr):
    """A bound or default of the tables as the man page writes it: HOURS(24) -> '24 h'."""
    import re
    m = re.fullmatch(r"(MSECS|SECS|MINS|HOURS)\((\d+)\)", expr)
    if not m:
        return expr
    return "%s %s" % (m.group(2), {"MSECS": "ms", "SECS": "s", "MINS": "min",
                                    "HOURS": "h"}[m.group(1)])


def test_man_conf_documents_every_setting_with_its_bounds_and_default():
    roff = open(MAN5).read()
    rows = key_rows()
    assert len(rows) >= 30, rows
    missing, wrong = [], []
    for name, kind, args in rows:
        entry = man_entry(roff, name)
        if entry is None:
            # cert_file and key_file share one entry
            if not (".BR cert_file \", \" key_file" in roff and name in ("cert_file",
                                                                         "key_file")):
                missing.append(name)
            continue
        if kind == "DUR":  # KEY_DUR(name, off, lo, excl, hi, def)
            lo = "> 0" if args[2] == "true" else "0"
            rng = "%s to %s" % (lo, human(args[3]))
            default = human(args[4])
            if rng not in entry:
                wrong.append("%s: range '%s' not in: %s" % (name, rng, entry))
            if "Default %s" % default not in entry and not (
                    default == "0" and "Default 0" in entry):
                wrong.append("%s: 'Default %s' not in: %s" % (name, default, entry))
        elif kind == "NUM":  # KEY_NUM(name, kind, off, lo, hi, def)
            rng = "%s to %s" % (args[2], args[3])
            if rng not in entry:
                wrong.append("%s: range '%s' not in: %s" % (name, rng, entry))
            if "Default %s" % args[4] not in entry:
                wrong.append("%s: 'Default %s' not in: %s" % (name, args[4], entry))
        elif kind == "ENUM":
            if "Default" not in entry:
                wrong.append("%s: no default in: %s" % (name, entry))
        elif kind == "BOOL":
            want = "true" if args[1] == "1" else "false"
            if not any("Default %s" % want in e for e in man_entries(roff, name)):
                wrong.append("%s: 'Default %s' not in: %s" % (name, want, entry))
    assert not missing, "settings without an entry in wsbeat.conf(5): %s" % missing
    assert not wrong, "\n".join(wrong)


def test_man_wsbeat_covers_every_option_of_help(wsbeat_bin):
    import re
    r = run([wsbeat_bin, "--help"])
    assert r.returncode == 0
    help_text = r.stdout.decode()
    longs = set(re.findall(r"(--[a-z][a-z-]+)", help_text))
    shorts = set(re.findall(r"(?<![\w-])(-[a-zA-Z])\b", help_text))
    assert {"--config", "--check", "--shard", "--log-level", "--status"} <= longs, longs
    man = plain(open(MAN8).read())
    readme = open(os.path.join(SRC, "README.md")).read()
    for opt in sorted(longs | shorts):
        assert opt in man, "wsbeat(8) does not mention %s" % opt
    for opt in sorted(longs):
        assert opt in readme, "README.md does not mention %s" % opt
    for word in ("status", "SIGHUP", "SIGUSR1", "SIGUSR2", "NOTIFY_SOCKET", "WATCHDOG_USEC",
                 "JOURNAL_STREAM", "64", "78", "wsbeat@"):
        assert word in man, "wsbeat(8) does not mention %s" % word


@pytest.mark.parametrize("page", [MAN8, MAN5])
def test_man_pages_render_without_warnings(page):
    if not shutil.which("groff"):
        pytest.skip("groff is not installed")
    r = run(["groff", "-man", "-ww", "-z", page])
    assert r.returncode == 0 and r.stdout == b"", r.stdout.decode()
    if shutil.which("man"):
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
        r = subprocess.run(["man", "--warnings", "-l", page], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                           timeout=60)
        assert r.returncode == 0 and r.stderr == b"", r.stderr.decode()
