# SPDX-License-Identifier: MIT
"""testcerts: a throwaway PKI for the TLS tests, made with the openssl CLI at test time (no key
is ever committed): a root CA, an intermediate CA it signs, and leaf certificates the
intermediate signs, each with its own key and serial. A client that trusts only the root must
verify the whole chain, so wsd has to send leaf + intermediate."""

import os
import subprocess
import tempfile

_CA_EXT = """basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
"""
_LEAF_EXT = """basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
"""
# `openssl ca` is only used where `x509 -req` cannot go: dates in the past.
_CA_CNF = """[ca]
default_ca = d
[d]
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = p
unique_subject = no
copy_extensions = copy
x509_extensions = leaf
[p]
commonName = supplied
[leaf]
""" + _LEAF_EXT


def _openssl(*args, cwd=None):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr.decode(errors='replace')}")
    return r.stdout


class TestPKI:
    """root -> intermediate -> leaves, in a temporary directory (removed by cleanup())."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="wsd-pki-")
        self.dir = self.tmp.name
        self.root_key = self._key("root", "ec")
        self.root = self._path("root.pem")
        _openssl("req", "-x509", "-new", "-key", self.root_key, "-out", self.root, "-days", "3",
                 "-subj", "/CN=wsd test root", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.inter_key = self._key("inter", "ec")
        self.inter = self._path("inter.pem")
        self._sign("inter", self.inter_key, "/CN=wsd test intermediate", self.root,
                   self.root_key, 2, _CA_EXT, self.inter)
        self.serial = 100

    def _path(self, name):
        return os.path.join(self.dir, name)

    def _key(self, name, kind):
        path = self._path(f"{name}.key")
        if kind == "rsa":
            _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                     "-out", path)
        else:
            _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-out", path)
        os.chmod(path, 0o600)
        return path

    def _sign(self, name, key, subject, ca, ca_key, serial, ext, out, days=2):
        csr = self._path(f"{name}.csr")
        extfile = self._path(f"{name}.ext")
        with open(extfile, "w") as f:
            f.write(ext)
        _openssl("req", "-new", "-key", key, "-subj", subject, "-out", csr)
        _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial",
                 str(serial), "-days", str(days), "-sha256", "-extfile", extfile, "-out", out)

    def leaf(self, name="leaf", kind="ec", expired=False):
        """A leaf for localhost/127.0.0.1 signed by the intermediate: returns (chain, key, serial)
        where chain is the PEM file leaf + intermediate. kind: "ec" (P-256) or "rsa" (2048)."""
        self.serial += 1
        key = self._key(name, kind)
        cert = self._path(f"{name}.crt")
        if expired:
            self._sign_expired(name, key, cert)
        else:
            self._sign(name, key, f"/CN=localhost {name}", self.inter, self.inter_key,
                       self.serial, _LEAF_EXT, cert)
        chain = self._path(f"{name}.chain.pem")
        with open(chain, "w") as f:
            f.write(open(cert).read() + open(self.inter).read())
        return chain, key, self.serial

    def _sign_expired(self, name, key, out):
        cadir = self._path(f"ca-{name}")
        os.makedirs(cadir)
        open(os.path.join(cadir, "index.txt"), "w").close()
        with open(os.path.join(cadir, "serial"), "w") as f:
            f.write(f"{self.serial:04X}\n")
        cnf = os.path.join(cadir, "ca.cnf")
        with open(cnf, "w") as f:
            f.write(_CA_CNF.format(dir=cadir))
        csr = self._path(f"{name}.csr")
        _openssl("req", "-new", "-key", key, "-subj", f"/CN=localhost {name}", "-out", csr)
        _openssl("ca", "-batch", "-config", cnf, "-cert", self.inter, "-keyfile", self.inter_key,
                 "-in", csr, "-out", out, "-notext", "-startdate", "20200101000000Z",
                 "-enddate", "20200201000000Z")

    def client_context(self):
        """An ssl.SSLContext that trusts only this root and checks the host name."""
        import ssl

        ctx = ssl.create_default_context(cafile=self.root)
        return ctx

    def cleanup(self):
        self.tmp.cleanup()
