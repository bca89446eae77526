#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""make install / make uninstall with PREFIX and DESTDIR: the binaries, the systemd units (naming
the installed paths), the sysusers entry, the example settings file and wsd(8), whose variable
list comes from the binary's own table (wsd --help-man) and names every variable, signal and
exit status; man renders it. Uninstall leaves no file behind (an edited settings file is kept,
and said so). Every subprocess is bounded by a timeout."""

import os
import re
import shutil
import stat
import subprocess
import tempfile

from wsdtest import REPO, WSD_BIN, Skip, case, check, run

BUILD = os.path.dirname(WSD_BIN)


def make(*args, timeout=120):
    r = subprocess.run(["make", "--no-print-directory", "-C", REPO, f"BUILD={BUILD}", *args],
                       capture_output=True, text=True, timeout=timeout)
    check(r.returncode == 0, f"make {' '.join(args)}: status {r.returncode}\n{r.stdout}{r.stderr}")
    return r.stdout


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


class Dest:
    """A temporary DESTDIR, removed at the end."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="wsd-destdir-")

    def __enter__(self):
        return self

    def __exit__(self, *a):
        shutil.rmtree(self.root, ignore_errors=True)

    def path(self, rel):
        return os.path.join(self.root, rel.lstrip("/"))


USR_FILES = {
    "usr/sbin/wsd": 0o755, "usr/bin/wsctl": 0o755, "usr/share/man/man8/wsd.8": 0o644,
    "usr/lib/systemd/system/wsd.service": 0o644, "usr/lib/systemd/system/wsd.socket": 0o644,
    "usr/lib/systemd/system/wsd-tls.socket": 0o644, "usr/lib/sysusers.d/wsd.conf": 0o644,
    "etc/wsd/wsd.env": 0o644,
}


@case("make install PREFIX=/usr DESTDIR=...: every file in place, with its mode, nothing else")
def install_usr():
    with Dest() as d:
        make("install", "PREFIX=/usr", f"DESTDIR={d.root}")
        got = files_under(d.root)
        check(got == set(USR_FILES), f"installed {sorted(got)}, want {sorted(USR_FILES)}")
        for rel, mode in USR_FILES.items():
            m = stat.S_IMODE(os.stat(d.path(rel)).st_mode)
            check(m == mode, f"{rel}: mode {m:o}, want {mode:o}")


@case("the installed wsd runs (--version) and its --help-man is the installed wsd(8)")
def installed_binary_runs():
    with Dest() as d:
        make("install", "PREFIX=/usr", f"DESTDIR={d.root}")
        wsd = d.path("/usr/sbin/wsd")
        r = subprocess.run([wsd, "--version"], capture_output=True, text=True, timeout=10)
        check(r.returncode == 0 and r.stdout.startswith("wsd "), f"--version: {r}")
        r = subprocess.run([wsd, "--help-man"], capture_output=True, text=True, timeout=10)
        check(r.returncode == 0 and r.stdout == open(d.path("/usr/share/man/man8/wsd.8")).read(),
              "the installed page is not what the installed binary generates")


@case("wsd(8) lists every variable of wsd --help, every signal and exit status")
def man_lists_everything():
    page = subprocess.run([WSD_BIN, "--help-man"], capture_output=True, text=True,
                          timeout=10).stdout
    helptext = subprocess.run([WSD_BIN, "--help"], capture_output=True, text=True,
                              timeout=10).stdout
    names = re.findall(r"^  (WSD_[A-Z0-9_]+) ", helptext, re.M)
    check(len(names) >= 25, f"--help lists only {names}")
    in_page = re.findall(r"^\.B (WSD_[A-Z0-9_]+)$", page, re.M)
    check(in_page == names, f"ENVIRONMENT lists {in_page}, --help {names}")
    for section in ("ENVIRONMENT", "SIGNALS", "EXIT STATUS", "FILES", "SEE ALSO"):
        check(f".SH {section}\n" in page, f"no {section} section")
    signals = page.split(".SH SIGNALS")[1].split(".SH ")[0]
    for sig in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR2"):
        check(sig in signals, f"SIGNALS does not list {sig}")
    exits = page.split(".SH EXIT STATUS")[1].split(".SH ")[0]
    check(re.findall(r"^\.B (\d+)$", exits, re.M) == ["0", "1", "2", "3"],
          f"EXIT STATUS: {exits}")


@case("man -l renders the installed page; groff -ww reports no warnings")
def man_renders():
    if not shutil.which("man") or not shutil.which("groff"):
        raise Skip("man-db or groff is not installed")
    with Dest() as d:
        make("install", "PREFIX=/usr", f"DESTDIR={d.root}")
        page = d.path("/usr/share/man/man8/wsd.8")
        # MANPAGER=cat and no database: nothing here runs mandb or lexgrog. man-db loads a
        # seccomp filter into its helpers unless told not to: not needed here (kernel hazard)
        env = dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="100", MAN_DISABLE_SECCOMP="1")
        r = subprocess.run(["man", "-l", page], capture_output=True, text=True, timeout=30,
                           env=env, stdin=subprocess.DEVNULL)
        check(r.returncode == 0, f"man -l: status {r.returncode}: {r.stderr}")
        for word in ("WSD(8)", "WSD_DRAIN_TIMEOUT_MS", "SIGUSR2", "EXIT STATUS"):
            check(word in r.stdout, f"{word!r} not in the rendered page")
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page], capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
        check(r.returncode == 0 and not r.stderr, f"groff warnings: {r.stderr}")


@case("PREFIX=/opt/wsd: files under it; the unit names the installed wsd and settings file")
def other_prefix():
    with Dest() as d:
        make("install", "PREFIX=/opt/wsd", f"DESTDIR={d.root}")
        check(os.access(d.path("/opt/wsd/sbin/wsd"), os.X_OK), "no /opt/wsd/sbin/wsd")
        check(os.path.exists(d.path("/opt/wsd/etc/wsd/wsd.env")), "no /opt/wsd/etc/wsd/wsd.env")
        unit = open(d.path("/opt/wsd/lib/systemd/system/wsd.service")).read()
        check("ExecStart=/opt/wsd/sbin/wsd\n" in unit, "ExecStart does not name /opt/wsd/sbin/wsd")
        check("WSD_ENV_FILE=/opt/wsd/etc/wsd/wsd.env\n" in unit, "WSD_ENV_FILE path not updated")
        check(not any(f.startswith("usr/") for f in files_under(d.root)),
              f"files outside PREFIX: {sorted(files_under(d.root))}")


@case("default PREFIX is /usr/local")
def default_prefix():
    with Dest() as d:
        make("install", f"DESTDIR={d.root}")
        for rel in ("usr/local/sbin/wsd", "usr/local/bin/wsctl", "usr/local/share/man/man8/wsd.8",
                    "usr/local/lib/systemd/system/wsd.service", "usr/local/etc/wsd/wsd.env"):
            check(os.path.exists(d.path(rel)), f"{rel} missing")


@case("make uninstall leaves no file behind")
def uninstall_clean():
    with Dest() as d:
        make("install", "PREFIX=/usr", f"DESTDIR={d.root}")
        make("uninstall", "PREFIX=/usr", f"DESTDIR={d.root}")
        left = files_under(d.root)
        check(not left, f"left after uninstall: {sorted(left)}")
        check(not os.path.exists(d.path("/etc/wsd")), "the settings directory is left")


@case("an edited wsd.env survives a second install and an uninstall, which says so")
def edited_settings_kept():
    with Dest() as d:
        make("install", "PREFIX=/usr", f"DESTDIR={d.root}")
        env = d.path("/etc/wsd/wsd.env")
        with open(env, "a") as f:
            f.write("WSD_POOL_MIN=8\n")
        make("install", "PREFIX=/usr", f"DESTDIR={d.root}")
        check("WSD_POOL_MIN=8" in open(env).read(), "a second install overwrote wsd.env")
        out = make("uninstall", "PREFIX=/usr", f"DESTDIR={d.root}")
        check(files_under(d.root) == {"etc/wsd/wsd.env"}, f"left: {files_under(d.root)}")
        check("kept" in out and "wsd.env" in out, f"uninstall did not say it kept it: {out!r}")


run()
